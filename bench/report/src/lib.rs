//! bench-report: turns the results file of a VM benchmark (bench/vm-bench,
//! vm-fairness, vm-latency, vm-imbalance; format in `results`) into
//! `results.csv` (every line with the ratios the script prints),
//! `chart.svg` (plotters, see `chart`) and `summary.md` (a Markdown table
//! with the chart linked), so results can be kept beside the code
//! (`--report DIR` of those scripts) and read without rerunning awk.
//!
//! The arithmetic is the scripts' (see `report`); the tests check it
//! against tables the scripts printed for the same files.

pub mod chart;
pub mod report;
pub mod results;

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

pub use report::Kind;

/// A CSV field, quoted when it holds a separator, quote or line break
/// (RFC 4180): items such as `--domains llc --no-balance` stay one field.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

pub fn csv(rows: &[Vec<String>]) -> String {
    rows.iter()
        .map(|r| r.iter().map(|c| csv_field(c)).collect::<Vec<_>>().join(",") + "\n")
        .collect()
}

/// The commit the benchmark measured: `version` beside the results file
/// (written by bench/lib.sh), if there is one.
fn version(results: &Path) -> Option<String> {
    let text = fs::read_to_string(results.with_file_name("version")).ok()?;
    Some(text.trim().to_string()).filter(|v| !v.is_empty())
}

/// Reads `results`, writes results.csv, chart.svg and summary.md into
/// `out_dir` (created if missing) and returns their paths.
pub fn write_report(kind: Kind, results: &Path, out_dir: &Path, title: Option<&str>) -> Result<Vec<PathBuf>> {
    let rows = results::read(results, kind.figures())?;
    let report = report::build(kind, &rows);
    fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;

    let mut heading = title
        .map(str::to_string)
        .unwrap_or_else(|| format!("vm-{kind:?}").to_lowercase());
    if let Some(v) = version(results) {
        heading.push_str(&format!(" (scx-userland {v})"));
    }

    let csv_path = out_dir.join("results.csv");
    fs::write(&csv_path, csv(&report.csv)).with_context(|| format!("writing {}", csv_path.display()))?;
    let svg_path = out_dir.join("chart.svg");
    chart::render(&svg_path, &heading, &report.panels)?;
    let md_path = out_dir.join("summary.md");
    let md = format!("## {heading}\n\n![{heading}](chart.svg)\n\n{}", report.markdown);
    fs::write(&md_path, md).with_context(|| format!("writing {}", md_path.display()))?;
    Ok(vec![csv_path, svg_path, md_path])
}
