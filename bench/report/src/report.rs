//! What each benchmark's report holds, and the arithmetic behind it. Each
//! kind reads its script's results columns (see the script's header) and
//! summarises them as the script's awk table does:
//!
//! - `bench` (bench/vm-bench): five workloads; a figure's ratio divides by
//!   the geometric mean of the EEVDF figures of the same boot (EEVDF is
//!   measured again each round), and hackbench, a time, is inverted
//!   (EEVDF's / ours), so above 1 is better for every workload. A
//!   configuration's summary is the geometric mean of its rounds' ratios.
//! - `fairness` (bench/vm-fairness): per load (2x, 8x), the worst share
//!   errors and Jain's index, EEVDF's beside each configuration's; no
//!   ratios, as the script prints none (an error near 0 divides badly).
//! - `latency` (bench/vm-latency): mean, 99.9th percentile and worst wakeup
//!   latency, and each divided by EEVDF's of the same boot (lower is better).
//! - `imbalance` (bench/vm-imbalance): hog throughput divided by EEVDF's of
//!   the same boot, geometric mean per balancer mode, on / off; the
//!   spread of dispatches across domains; and the least busy CPU after the
//!   widening (the guest's own idle time), EEVDF's beside each mode's.
//!
//! Where several rows share a label (rounds, boots), the chart draws the
//! mean named in its title and the min–max of the rows.

use std::fmt::Write as _;
use std::str::FromStr;

use anyhow::{bail, Result};

use crate::chart::{Panel, Series};
use crate::results::{baseline, labels, Row, Spread};

/// Which benchmark wrote the results file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bench,
    Fairness,
    Latency,
    Imbalance,
}

impl FromStr for Kind {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Kind> {
        Ok(match s {
            "bench" => Kind::Bench,
            "fairness" => Kind::Fairness,
            "latency" => Kind::Latency,
            "imbalance" => Kind::Imbalance,
            _ => bail!("unknown kind {s:?}: bench, fairness, latency or imbalance"),
        })
    }
}

impl Kind {
    /// Figures per results line, between item and status.
    pub fn figures(self) -> usize {
        match self {
            Kind::Bench => WORKLOADS.len(),
            Kind::Fairness => 6,
            Kind::Latency => 3,
            Kind::Imbalance => 5,
        }
    }
}

/// A report: CSV rows (header first), chart panels, Markdown body.
#[derive(Debug, Clone)]
pub struct Report {
    pub csv: Vec<Vec<String>>,
    pub panels: Vec<Panel>,
    pub markdown: String,
}

pub fn build(kind: Kind, rows: &[Row]) -> Report {
    match kind {
        Kind::Bench => bench(rows),
        Kind::Fairness => fairness(rows),
        Kind::Latency => latency(rows),
        Kind::Imbalance => imbalance(rows),
    }
}

/// vm-bench's workloads, in its columns' order.
pub const WORKLOADS: [&str; 5] = ["cpu-x2", "switch", "futex", "fork", "hackbench"];
const HACKBENCH: usize = 4;

/// vm-bench's ratio of `row`'s workload `i` to EEVDF of its boot, higher
/// is better.
pub fn bench_ratio(rows: &[Row], row: &Row, i: usize) -> Option<f64> {
    let eevdf = baseline(rows, &row.boot, i)?;
    let ours = row.figure(i).filter(|x| *x > 0.0)?;
    Some(if i == HACKBENCH { eevdf / ours } else { ours / eevdf })
}

/// Figure `i` of `row` divided by EEVDF's of its boot (latency, imbalance).
pub fn ratio_to_eevdf(rows: &[Row], row: &Row, i: usize) -> Option<f64> {
    let eevdf = baseline(rows, &row.boot, i)?;
    Some(row.figure(i)? / eevdf)
}

/// One series per label, its value in each of `groups` summarised by
/// `mean` over the label's rows.
fn series(
    rows: &[Row],
    labels: &[String],
    groups: usize,
    value: impl Fn(&Row, usize) -> Option<f64>,
    mean: fn(&[f64]) -> Option<Spread>,
) -> Vec<Series> {
    labels
        .iter()
        .map(|label| Series {
            label: label.clone(),
            values: (0..groups)
                .map(|g| {
                    let v: Vec<f64> = rows
                        .iter()
                        .filter(|r| &r.label == label)
                        .filter_map(|r| value(r, g))
                        .collect();
                    mean(&v)
                })
                .collect(),
        })
        .collect()
}

fn fixed(x: Option<f64>, decimals: usize) -> String {
    x.map(|x| format!("{x:.decimals$}")).unwrap_or_default()
}

fn spread_cell(s: &Option<Spread>) -> String {
    match s {
        Some(s) if s.n > 1 => format!("{:.2} ({:.2}–{:.2})", s.center, s.min, s.max),
        Some(s) => format!("{:.2}", s.center),
        None => "?".to_string(),
    }
}

/// A Markdown table; cells are escaped so a `|` in a label cannot split a row.
fn md_table(out: &mut String, header: &[&str], rows: &[Vec<String>]) {
    let line = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
    out.push_str(&line(&header.iter().map(|h| h.to_string()).collect::<Vec<_>>()));
    out.push_str(&line(&vec!["---".to_string(); header.len()]));
    for r in rows {
        out.push_str(&line(&r.iter().map(|c| c.replace('|', "\\|")).collect::<Vec<_>>()));
    }
    out.push('\n');
}

fn code(label: &str) -> String {
    format!("`{label}`")
}

/// The CSV: a header, then per row its boot, item, label and round, the
/// `columns` (`middle(row)`) and its status.
fn csv_rows(columns: Vec<String>, rows: &[Row], middle: impl Fn(&Row) -> Vec<String>) -> Vec<Vec<String>> {
    let mut header: Vec<String> = ["boot", "item", "config", "round"].map(String::from).into();
    header.extend(columns);
    header.push("status".into());
    let mut csv = vec![header];
    for r in rows {
        let mut line = vec![
            r.boot.clone(),
            r.item.clone(),
            r.label.clone(),
            r.round.map(|n| n.to_string()).unwrap_or_default(),
        ];
        line.extend(middle(r));
        line.push(r.status.clone());
        csv.push(line);
    }
    csv
}

/// The Markdown table's rows for `rows`: item and boot, then `rest(row)`.
fn md_rows<'a>(rows: impl Iterator<Item = &'a Row>, rest: impl Fn(&Row) -> Vec<String>) -> Vec<Vec<String>> {
    rows.map(|r| {
        let mut cells = vec![code(&r.item), r.boot.clone()];
        cells.extend(rest(r));
        cells
    })
    .collect()
}

fn bench(rows: &[Row]) -> Report {
    let mut columns: Vec<String> = WORKLOADS.iter().map(|w| w.to_string()).collect();
    columns.extend(WORKLOADS.iter().map(|w| format!("{w} / EEVDF")));
    let csv = csv_rows(columns, rows, |r| {
        let mut cells = r.fields.clone();
        cells.extend((0..WORKLOADS.len()).map(|i| fixed(bench_ratio(rows, r, i), 4)));
        cells
    });

    let labels = labels(rows);
    let series = series(
        rows,
        &labels,
        WORKLOADS.len(),
        |r, i| bench_ratio(rows, r, i),
        Spread::geometric,
    );
    let panel = Panel {
        title: "Ratio to EEVDF of the same boot (higher is better): geometric mean, min–max of rounds".into(),
        y_label: "ratio to EEVDF".into(),
        groups: WORKLOADS.iter().map(|w| w.to_string()).collect(),
        series: series.clone(),
        reference: Some(1.0),
    };

    let mut md = String::from(
        "Ratio to EEVDF of the same boot, higher is better (hackbench is a time: EEVDF's / ours); \
         each round divides by the geometric mean of the boot's EEVDF rounds. Geometric mean over \
         rounds, min–max in brackets. The EEVDF row is EEVDF's own rounds against their mean: \
         the emulator's noise.\n\n",
    );
    let mut header = vec!["configuration", "rounds"];
    header.extend(WORKLOADS);
    let table: Vec<Vec<String>> = series
        .iter()
        .map(|s| {
            let n = s.values.iter().flatten().map(|v| v.n).max().unwrap_or(0);
            let mut cells = vec![code(&s.label), n.to_string()];
            cells.extend(s.values.iter().map(spread_cell));
            cells
        })
        .collect();
    md_table(&mut md, &header, &table);
    Report {
        csv,
        panels: vec![panel],
        markdown: md,
    }
}

/// The loads of a fairness file (2x, 8x), in order of appearance.
fn loads(rows: &[Row]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in rows {
        if !out.contains(&r.fields[0]) {
            out.push(r.fields[0].clone());
        }
    }
    out
}

/// The per-nice worst errors of a fairness line: `-5:0.6,0:0.6,...`.
fn per_nice(field: &str) -> Vec<(String, String)> {
    field
        .split(',')
        .filter_map(|kv| kv.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn fairness(rows: &[Row]) -> Report {
    let mut nices: Vec<String> = Vec::new();
    for r in rows {
        for (k, _) in per_nice(&r.fields[5]) {
            if !nices.contains(&k) {
                nices.push(k);
            }
        }
    }
    let mut columns: Vec<String> = ["load", "worst_big_err_pct", "worst_err_pct", "jain", "busy_cpus"]
        .map(String::from)
        .into();
    columns.extend(nices.iter().map(|k| format!("err_pct nice {k}")));
    let csv = csv_rows(columns, rows, |r| {
        let mut cells = r.fields[..5].to_vec();
        let pn = per_nice(&r.fields[5]);
        cells.extend(nices.iter().map(|k| {
            pn.iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        }));
        cells
    });

    let labels = labels(rows);
    let loads = loads(rows);
    let at = |field: usize| {
        let loads = loads.clone();
        move |r: &Row, g: usize| if r.fields[0] == loads[g] { r.figure(field) } else { None }
    };
    let panels = vec![
        Panel {
            title: "Worst error of a task's CPU share against its weight share, tasks due >= 0.1 CPU \
                    (%, lower is better): mean, min–max"
                .into(),
            y_label: "worst error %".into(),
            groups: loads.iter().map(|l| format!("{l} overcommit")).collect(),
            series: series(rows, &labels, loads.len(), at(1), Spread::arithmetic),
            reference: None,
        },
        Panel {
            title: "Jain's index over actual/expected shares (1 is fair): mean, min–max".into(),
            y_label: "Jain's index".into(),
            groups: loads.iter().map(|l| format!("{l} overcommit")).collect(),
            series: series(rows, &labels, loads.len(), at(3), Spread::arithmetic),
            reference: Some(1.0),
        },
    ];

    let mut md = String::from(
        "Worst error of a task's CPU share against its weight share (%; \"big\": tasks due at least \
         0.1 CPU), Jain's index over actual/expected shares, CPUs the hogs kept busy, and the worst \
         error per nice level (bench/fairness.py).\n\n",
    );
    let table = md_rows(rows.iter(), |r| r.fields.clone());
    md_table(
        &mut md,
        &[
            "scheduler",
            "boot",
            "load",
            "worst big err%",
            "worst err%",
            "Jain",
            "busy",
            "worst err% per nice",
        ],
        &table,
    );
    Report {
        csv,
        panels,
        markdown: md,
    }
}

const LATENCY: [&str; 3] = ["mean", "99.9th percentile", "max"];

fn latency(rows: &[Row]) -> Report {
    let columns = [
        "avg_us",
        "p999_us",
        "max_us",
        "avg / EEVDF",
        "p99.9 / EEVDF",
        "max / EEVDF",
    ];
    let csv = csv_rows(columns.map(String::from).into(), rows, |r| {
        let mut cells = r.fields.clone();
        cells.extend((0..3).map(|i| fixed(ratio_to_eevdf(rows, r, i), 4)));
        cells
    });

    let labels = labels(rows);
    let groups: Vec<String> = LATENCY.map(String::from).into();
    let panels = vec![
        Panel {
            title: "Wakeup latency (ms, lower is better): mean, min–max of boots and rounds".into(),
            y_label: "ms".into(),
            groups: groups.clone(),
            series: series(
                rows,
                &labels,
                3,
                |r, i| r.figure(i).map(|us| us / 1000.0),
                Spread::arithmetic,
            ),
            reference: None,
        },
        Panel {
            title: "Ratio to EEVDF of the same boot (lower is better): geometric mean, min–max".into(),
            y_label: "ratio to EEVDF".into(),
            groups,
            series: series(rows, &labels, 3, |r, i| ratio_to_eevdf(rows, r, i), Spread::geometric),
            reference: Some(1.0),
        },
    ];

    let mut md = String::from(
        "cyclictest wakeup latency (us): the mean of the threads' averages, the 99.9th percentile \
         of all wakeups and the worst one, and each divided by EEVDF's of the same boot (lower is \
         better).\n\n",
    );
    let table = md_rows(rows.iter(), |r| {
        let mut cells = r.fields.clone();
        cells.extend((0..3).map(|i| fixed(ratio_to_eevdf(rows, r, i), 2)));
        cells
    });
    md_table(
        &mut md,
        &[
            "scheduler",
            "boot",
            "avg us",
            "p99.9 us",
            "max us",
            "avg/EEVDF",
            "p99.9/EEVDF",
            "max/EEVDF",
        ],
        &table,
    );
    Report {
        csv,
        panels,
        markdown: md,
    }
}

/// vm-imbalance's summary: per balancer mode, the geometric mean of the
/// runs' throughput ratios to EEVDF and their count.
pub fn imbalance_modes(rows: &[Row]) -> Vec<(String, Option<Spread>)> {
    labels(rows)
        .into_iter()
        .filter(|l| l != "EEVDF")
        .map(|mode| {
            let v: Vec<f64> = rows
                .iter()
                .filter(|r| r.label == mode)
                .filter_map(|r| ratio_to_eevdf(rows, r, 0))
                .collect();
            let s = Spread::geometric(&v);
            (mode, s)
        })
        .collect()
}

/// vm-imbalance's least busy CPU after the widening, per mode (EEVDF,
/// then `balancer on`, `balancer off`, ...): the mean over the runs.
pub fn least_busy(rows: &[Row]) -> Vec<(String, Spread)> {
    labels(rows)
        .into_iter()
        .filter_map(|label| {
            let v: Vec<f64> = rows
                .iter()
                .filter(|r| r.label == label)
                .filter_map(|r| r.figure(4))
                .collect();
            let named = if label == "EEVDF" {
                label
            } else {
                format!("balancer {label}")
            };
            Some((named, Spread::arithmetic(&v)?))
        })
        .collect()
}

fn imbalance(rows: &[Row]) -> Report {
    let columns = [
        "hog_ops_per_s",
        "ops / EEVDF",
        "dispatches_per_domain",
        "spread",
        "migrations",
        "least_busy_cpu",
    ];
    let csv = csv_rows(columns.map(String::from).into(), rows, |r| {
        let mut cells = vec![r.fields[0].clone(), fixed(ratio_to_eevdf(rows, r, 0), 4)];
        cells.extend(r.fields[1..].iter().cloned());
        cells
    });

    let modes: Vec<String> = labels(rows).into_iter().filter(|l| l != "EEVDF").collect();
    let name = |s: Series| Series {
        label: format!("balancer {}", s.label),
        ..s
    };
    let panels = vec![
        Panel {
            title: "Hog throughput / EEVDF of the same boot (higher is better): geometric mean, min–max".into(),
            y_label: "ratio to EEVDF".into(),
            groups: vec!["hog bogo-ops/s".into()],
            series: series(rows, &modes, 1, |r, _| ratio_to_eevdf(rows, r, 0), Spread::geometric)
                .into_iter()
                .map(name)
                .collect(),
            reference: Some(1.0),
        },
        Panel {
            title: "Dispatches per domain after the widening, max / min (1 is even): mean, min–max".into(),
            y_label: "spread".into(),
            groups: vec!["dispatch spread".into()],
            series: series(rows, &modes, 1, |r, _| r.figure(2), Spread::arithmetic)
                .into_iter()
                .map(name)
                .collect(),
            reference: Some(1.0),
        },
        Panel {
            title: "Least busy CPU after the widening (1: no CPU idle): mean, min–max".into(),
            y_label: "busy fraction".into(),
            groups: vec!["least busy CPU".into()],
            series: series(rows, &labels(rows), 1, |r, _| r.figure(4), Spread::arithmetic)
                .into_iter()
                .map(|s| if s.label == "EEVDF" { s } else { name(s) })
                .collect(),
            reference: Some(1.0),
        },
    ];

    let mut md = String::from(
        "8 CPU hogs started on domain 0 and widened to every CPU (numa-llc, `--domains llc`): hog \
         throughput and its ratio to EEVDF of the same boot, dispatches per domain after the \
         widening, their spread (max/min), the balancer's migrations, and the least busy CPU from \
         the widening to the end (the guest's idle time: the hogs' throughput also depends on how \
         the host's cores share out the vCPUs).\n\n",
    );
    let table = md_rows(rows.iter().filter(|r| !r.is_eevdf()), |r| {
        let mut cells = vec![r.fields[0].clone(), fixed(ratio_to_eevdf(rows, r, 0), 2)];
        cells.extend(r.fields[1..].iter().cloned());
        cells
    });
    md_table(
        &mut md,
        &[
            "run",
            "boot",
            "hog ops/s",
            "/EEVDF",
            "dispatches per domain",
            "spread",
            "migrations",
            "least busy CPU",
        ],
        &table,
    );
    let summary = imbalance_modes(rows);
    for (mode, s) in &summary {
        if let Some(s) = s {
            let _ = writeln!(
                md,
                "- balancer {mode}: hog throughput {:.2} of EEVDF (geometric mean of {} runs)",
                s.center, s.n
            );
        }
    }
    let g = |m: &str| {
        summary
            .iter()
            .find(|(mode, _)| mode == m)
            .and_then(|(_, s)| *s)
            .map(|s| s.center)
    };
    if let (Some(on), Some(off)) = (g("on"), g("off")) {
        let _ = writeln!(md, "- throughput, balancer on / off: {:.2}", on / off);
    }
    for (label, s) in least_busy(rows) {
        let _ = writeln!(
            md,
            "- least busy CPU after the widening, {label}: {:.2} (mean of {} runs)",
            s.center, s.n
        );
    }
    Report {
        csv,
        panels,
        markdown: md,
    }
}
