//! The results file every VM benchmark writes (`bench/lib.sh`): one
//! tab-separated line per measured item,
//!
//! ```text
//! boot  item  figure...  status
//! ```
//!
//! where `item` is `EEVDF`, `EEVDF #N` or a configuration (a set of
//! scx-userland flags, or `on#N`/`off#N` in vm-imbalance), optionally with
//! its round `#N`. A figure that was not measured is empty or `?`. EEVDF is
//! measured first in every boot of the VM, and every ratio divides by the
//! EEVDF of the same boot: a new boot is a new emulated machine.

use anyhow::{bail, Context, Result};

/// One line of a results file.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The VM boot it was measured in (1 unless a VM died).
    pub boot: String,
    /// The item as the benchmark names it, round included.
    pub item: String,
    /// The item without its round: what results are grouped by.
    pub label: String,
    /// The round (`#N`), if the item has one.
    pub round: Option<u32>,
    /// The figures between item and status, as written.
    pub fields: Vec<String>,
    /// How the scheduler ended (`-` for EEVDF).
    pub status: String,
}

impl Row {
    /// Whether this row measured the kernel's default scheduler.
    pub fn is_eevdf(&self) -> bool {
        self.label == "EEVDF"
    }

    /// Field `i` as a number, if it is one (not empty, `?`, `-`, `inf`).
    pub fn figure(&self, i: usize) -> Option<f64> {
        figure(self.fields.get(i)?)
    }
}

/// A figure as a number; anything else (not measured, `inf`) is `None`.
pub fn figure(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().filter(|x| x.is_finite())
}

/// Splits `item` into its label and round: `--domains 1 #2` and `on#2` are
/// round 2 of `--domains 1` and `on`.
pub fn label_and_round(item: &str) -> (String, Option<u32>) {
    if let Some((label, round)) = item.rsplit_once('#') {
        if let Ok(n) = round.parse::<u32>() {
            return (label.trim_end().to_string(), Some(n));
        }
    }
    (item.to_string(), None)
}

/// Parses a results file whose lines have `figures` figures each. A line
/// with another count is an error naming the line: the file and the KIND
/// given do not match.
pub fn parse(text: &str, figures: usize) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() != figures + 3 {
            bail!(
                "line {}: {} tab-separated columns, expected {} (boot, item, {figures} figures, status): {line:?}",
                n + 1,
                cols.len(),
                figures + 3
            );
        }
        let (label, round) = label_and_round(cols[1]);
        rows.push(Row {
            boot: cols[0].to_string(),
            item: cols[1].to_string(),
            label,
            round,
            fields: cols[2..cols.len() - 1].iter().map(|s| s.to_string()).collect(),
            status: cols[cols.len() - 1].to_string(),
        });
    }
    if rows.is_empty() {
        bail!("no results in the file");
    }
    Ok(rows)
}

/// Reads and parses a results file.
pub fn read(path: &std::path::Path, figures: usize) -> Result<Vec<Row>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse(&text, figures).with_context(|| format!("parsing {}", path.display()))
}

/// The geometric mean of the positive values, or `None` without any: the
/// summary the benchmarks use for ratios, which multiply.
pub fn geomean(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values
        .into_iter()
        .filter(|x| *x > 0.0)
        .fold((0.0, 0usize), |(s, n), x| (s + x.ln(), n + 1));
    (n > 0).then(|| (sum / n as f64).exp())
}

/// EEVDF's figure `i` in `boot`: the geometric mean of the boot's EEVDF
/// rows (`EEVDF`, `EEVDF #2`, ...), as vm-bench's awk computes it. The
/// other benchmarks measure EEVDF once per boot, where this is that figure.
pub fn baseline(rows: &[Row], boot: &str, i: usize) -> Option<f64> {
    geomean(
        rows.iter()
            .filter(|r| r.boot == boot && r.is_eevdf())
            .filter_map(|r| r.figure(i)),
    )
}

/// The labels in order of first appearance, EEVDF first if present.
pub fn labels(rows: &[Row]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if rows.iter().any(Row::is_eevdf) {
        out.push("EEVDF".to_string());
    }
    for r in rows {
        if !out.contains(&r.label) {
            out.push(r.label.clone());
        }
    }
    out
}

/// A summary of several runs of one thing: its centre (a mean of some
/// kind, said where it is made) and its range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    pub center: f64,
    pub min: f64,
    pub max: f64,
    pub n: usize,
}

impl Spread {
    /// Geometric mean and range of the positive values.
    pub fn geometric(values: &[f64]) -> Option<Spread> {
        let center = geomean(values.iter().copied())?;
        Self::with_center(center, values.iter().copied().filter(|x| *x > 0.0))
    }

    /// Arithmetic mean and range.
    pub fn arithmetic(values: &[f64]) -> Option<Spread> {
        let center = values.iter().sum::<f64>() / values.len() as f64;
        Self::with_center(center, values.iter().copied())
    }

    fn with_center(center: f64, values: impl Iterator<Item = f64>) -> Option<Spread> {
        let (min, max, n) = values.fold((f64::INFINITY, f64::NEG_INFINITY, 0), |(lo, hi, n), x| {
            (lo.min(x), hi.max(x), n + 1)
        });
        (n > 0).then_some(Spread { center, min, max, n })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_are_split_off_items_of_every_benchmark() {
        assert_eq!(label_and_round("EEVDF"), ("EEVDF".into(), None));
        assert_eq!(label_and_round("EEVDF #2"), ("EEVDF".into(), Some(2)));
        assert_eq!(
            label_and_round("--domains 1 -b 64 #3"),
            ("--domains 1 -b 64".into(), Some(3))
        );
        assert_eq!(label_and_round("--domains llc"), ("--domains llc".into(), None));
        assert_eq!(label_and_round("off#12"), ("off".into(), Some(12)));
        assert_eq!(label_and_round("odd #x"), ("odd #x".into(), None));
    }

    #[test]
    fn unmeasured_figures_are_none() {
        for s in ["", "?", "-", "inf", "NaN"] {
            assert_eq!(figure(s), None, "{s:?}");
        }
        assert_eq!(figure("8.004"), Some(8.004));
    }

    #[test]
    fn a_line_with_the_wrong_column_count_is_named() {
        let err = parse("1\tEEVDF\t1\t2\t-\n1\tx\t1\t-\n", 2).unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
        assert!(parse("\n", 2).is_err(), "an empty file is an error");
    }

    #[test]
    fn geomean_ignores_what_awk_ignores() {
        let g = geomean([2.0, 8.0, 0.0, -1.0]).expect("two positive values");
        assert!((g - 4.0).abs() < 1e-12, "{g}");
        assert_eq!(geomean([0.0]), None);
    }

    #[test]
    fn the_baseline_is_per_boot() {
        let rows = parse("1\tEEVDF\t2\t-\n1\tEEVDF #2\t8\t-\n2\tEEVDF\t5\t-\n2\tx\t1\tok\n", 1).expect("valid");
        assert!((baseline(&rows, "1", 0).expect("boot 1") - 4.0).abs() < 1e-12);
        assert!((baseline(&rows, "2", 0).expect("boot 2") - 5.0).abs() < 1e-12);
        assert_eq!(baseline(&rows, "3", 0), None);
        assert_eq!(labels(&rows), ["EEVDF", "x"]);
    }

    #[test]
    fn spreads() {
        let s = Spread::geometric(&[1.0, 4.0]).expect("values");
        assert_eq!((s.min, s.max, s.n), (1.0, 4.0, 2));
        assert!((s.center - 2.0).abs() < 1e-12);
        let a = Spread::arithmetic(&[1.0, 4.0]).expect("values");
        assert_eq!(a.center, 2.5);
        assert_eq!(Spread::arithmetic(&[]), None);
    }
}
