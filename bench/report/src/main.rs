//! `bench-report [--title TEXT] KIND RESULTS_FILE OUT_DIR`: writes
//! results.csv, chart.svg and summary.md for the results file of a VM
//! benchmark (KIND: bench, fairness, latency or imbalance, as in
//! bench/vm-KIND). The bench/vm-* scripts run it after their tables.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};

const USAGE: &str = "usage: bench-report [--title TEXT] KIND RESULTS_FILE OUT_DIR\n  \
    KIND: bench, fairness, latency or imbalance (the bench/vm-KIND script that wrote RESULTS_FILE)";

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-report: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Vec<String>) -> Result<()> {
    let mut title = None;
    let mut positional = Vec::new();
    let mut args = args.into_iter();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--title" => title = Some(args.next().context("--title needs a value")?),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            _ => positional.push(a),
        }
    }
    let [kind, results, out_dir] = <[String; 3]>::try_from(positional).ok().context(USAGE)?;
    let kind: bench_report::Kind = kind.parse()?;
    let results = PathBuf::from(results);
    if !results.is_file() {
        bail!("{}: no such results file", results.display());
    }
    for path in bench_report::write_report(kind, &results, &PathBuf::from(out_dir), title.as_deref())? {
        println!("{}", path.display());
    }
    Ok(())
}
