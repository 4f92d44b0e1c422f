//! bench-report against the fixtures (see fixtures/README.md): its ratios
//! and means, rounded as the scripts round them, equal what the scripts'
//! awk printed for the same results files; and the files it writes exist
//! and name every configuration.

use std::path::{Path, PathBuf};

use bench_report::report::{bench_ratio, build, imbalance_modes, least_busy, ratio_to_eevdf, Kind, WORKLOADS};
use bench_report::results::{self, Row, Spread};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name)
}

fn rows(name: &str, kind: Kind) -> Vec<Row> {
    results::read(&fixture(name), kind.figures()).expect("fixture parses")
}

fn table(name: &str) -> String {
    std::fs::read_to_string(fixture(name)).expect("fixture table")
}

/// The lines of a printed table's section, from the line after `heading`
/// to the next empty line.
fn section<'a>(text: &'a str, heading: &str) -> Vec<&'a str> {
    text.lines()
        .skip_while(|l| *l != heading)
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect()
}

fn two(x: Option<f64>) -> String {
    x.map(|x| format!("{x:.2}")).unwrap_or_else(|| "?".into())
}

fn check_bench(name: &str, printed: &str) {
    let rows = rows(name, Kind::Bench);
    let printed = table(printed);

    // Every round of every configuration, as "ratio to EEVDF of the same boot".
    let ratio_lines = section(&printed, "ratio to EEVDF of the same boot (higher is better)");
    let ours: Vec<&Row> = rows.iter().filter(|r| !r.is_eevdf()).collect();
    assert_eq!(
        ratio_lines.len(),
        ours.len(),
        "one printed line per configuration round"
    );
    for (line, row) in ratio_lines.iter().zip(&ours) {
        let (item, rest) = line.split_at(32);
        assert_eq!(item.trim(), row.item);
        let printed: Vec<&str> = rest.split_whitespace().skip(1).take(WORKLOADS.len()).collect();
        let computed: Vec<String> = (0..WORKLOADS.len()).map(|i| two(bench_ratio(&rows, row, i))).collect();
        assert_eq!(printed, computed, "{}", row.item);
    }

    // "geometric mean over rounds", per configuration.
    let report = build(Kind::Bench, &rows);
    let mean_lines = section(&printed, "geometric mean over rounds");
    let series: Vec<_> = report.panels[0].series.iter().filter(|s| s.label != "EEVDF").collect();
    assert_eq!(mean_lines.len(), series.len());
    for (line, s) in mean_lines.iter().zip(series) {
        let (label, rest) = line.split_at(32);
        assert_eq!(label.trim(), s.label);
        let printed: Vec<&str> = rest.split_whitespace().collect();
        let computed: Vec<String> = s.values.iter().map(|v| two(v.map(|v| v.center))).collect();
        assert_eq!(printed, computed, "{}", s.label);
        assert!(s
            .values
            .iter()
            .flatten()
            .all(|v| v.n == 3 && v.min <= v.center && v.center <= v.max));
    }
}

#[test]
fn bench_ratios_and_means_are_vm_benchs_flat() {
    check_bench("bench-flat.tsv", "bench-flat.table");
}

#[test]
fn bench_ratios_and_means_are_vm_benchs_numa_llc() {
    check_bench("bench-numa-llc.tsv", "bench-numa-llc.table");
}

#[test]
fn hackbench_is_a_time_so_its_ratio_is_inverted() {
    let rows = rows("bench-flat.tsv", Kind::Bench);
    // --domains 1 #1: 7.297 s against the geometric mean of EEVDF's 8.004,
    // 8.605 and 6.525 s: faster than EEVDF, so above 1.
    let eevdf = (8.004_f64 * 8.605 * 6.525).powf(1.0 / 3.0);
    let r = bench_ratio(&rows, &rows[1], 4).expect("measured");
    assert!((r - eevdf / 7.297).abs() < 1e-9, "{r}");
    assert!(r > 1.0);
}

#[test]
fn latency_ratios_are_vm_latencys_per_boot() {
    let rows = rows("latency-synthetic.tsv", Kind::Latency);
    let printed = table("latency-synthetic.table");
    let lines: Vec<&str> = printed.lines().skip(1).collect();
    assert_eq!(lines.len(), rows.len());
    for (line, row) in lines.iter().zip(&rows) {
        let cols: Vec<&str> = line[28..].split_whitespace().collect();
        let computed: Vec<String> = (0..3).map(|i| two(ratio_to_eevdf(&rows, row, i))).collect();
        if row.figure(0).is_none() {
            // awk divides "?" as 0; an unmeasured figure has no ratio here.
            assert_eq!(cols[4..7], ["0.00"; 3]);
            assert_eq!(computed, ["?"; 3]);
        } else {
            assert_eq!(cols[4..7], computed[..], "{}", row.item);
        }
    }
    // --domains llc in boot 2 divides by boot 2's EEVDF, not boot 1's.
    assert_eq!(two(ratio_to_eevdf(&rows, &rows[3], 0)), "4.29");
}

#[test]
fn imbalance_means_are_vm_imbalances() {
    let rows = rows("imbalance-synthetic.tsv", Kind::Imbalance);
    let printed = table("imbalance-synthetic.table");
    for row in rows.iter().filter(|r| !r.is_eevdf()) {
        let line = printed
            .lines()
            .find(|l| l.split_whitespace().next() == Some(row.item.as_str()))
            .expect("run printed");
        assert_eq!(
            line.split_whitespace().nth(3),
            Some(two(ratio_to_eevdf(&rows, row, 0)).as_str()),
            "{}",
            row.item
        );
    }
    let modes = imbalance_modes(&rows);
    let mean = |m: &str| {
        modes
            .iter()
            .find(|(mode, _)| mode == m)
            .and_then(|(_, s)| *s)
            .expect("mode measured")
    };
    let (on, off) = (mean("on"), mean("off"));
    assert_eq!((on.n, off.n), (2, 2));
    for (mode, s) in [("on ", on), ("off", off)] {
        let want = format!(
            "balancer {mode}: hog throughput {:.2} of EEVDF (geometric mean of 2 runs)",
            s.center
        );
        assert!(printed.contains(&want), "{want}");
    }
    assert!(printed.contains(&format!("throughput, balancer on / off: {:.2}", on.center / off.center)));
    // The least busy CPU, per mode, EEVDF first, as the script prints it.
    let busy = least_busy(&rows);
    assert_eq!(
        busy.iter().map(|(l, _)| l.as_str()).collect::<Vec<_>>(),
        ["EEVDF", "balancer on", "balancer off"]
    );
    for (label, s) in &busy {
        let want = format!(
            "least busy CPU after the widening, {label}: {:.2} (mean of 2 runs)",
            s.center
        );
        assert!(printed.contains(&want), "{want}");
    }
    assert_eq!(two(busy[2].1.center.into()), "0.20");

    // The dispatch spread panel leaves out `inf` rather than drawing it.
    let report = build(Kind::Imbalance, &rows);
    let spread = &report.panels[1].series;
    let off_spread = spread
        .iter()
        .find(|s| s.label == "balancer off")
        .and_then(|s| s.values[0])
        .expect("spread");
    assert_eq!(
        off_spread,
        Spread {
            center: 12.5,
            min: 12.5,
            max: 12.5,
            n: 1
        }
    );
}

#[test]
fn fairness_csv_has_a_column_per_nice_level() {
    let rows = rows("fairness-numa-llc.tsv", Kind::Fairness);
    let report = build(Kind::Fairness, &rows);
    let header = &report.csv[0];
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no {name} in {header:?}"))
    };
    let numa = &report.csv[2];
    assert_eq!(numa[col("item")], "--domains numa");
    assert_eq!(numa[col("err_pct nice 19")], "860.3");
    assert_eq!(numa[col("err_pct nice idle")], "950.7");
    assert_eq!(numa[col("jain")], "0.5106");
    // EEVDF's bar beside each configuration's, at each load.
    let labels: Vec<&str> = report.panels[0].series.iter().map(|s| s.label.as_str()).collect();
    assert_eq!(labels, ["EEVDF", "--domains numa", "--domains llc"]);
    assert_eq!(report.panels[0].groups, ["2x overcommit"]);
}

#[test]
fn a_results_file_of_another_kind_is_refused_with_its_line() {
    let err = results::read(&fixture("bench-flat.tsv"), Kind::Latency.figures()).unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("line 1") && msg.contains("bench-flat.tsv"), "{msg}");
}

/// The written files: a CSV line per results line, an SVG naming every
/// configuration and group, a Markdown table naming every configuration.
#[test]
fn every_kind_writes_csv_svg_and_markdown() {
    let cases = [
        (Kind::Bench, "bench-numa-llc.tsv"),
        (Kind::Fairness, "fairness-numa-llc.tsv"),
        (Kind::Fairness, "fairness-flat-partial.tsv"),
        (Kind::Latency, "latency-synthetic.tsv"),
        (Kind::Imbalance, "imbalance-synthetic.tsv"),
    ];
    for (kind, name) in cases {
        let dir = tempfile::tempdir().expect("temporary directory");
        let written =
            bench_report::write_report(kind, &fixture(name), dir.path(), Some("a title")).expect("report written");
        assert_eq!(written.len(), 3);
        let rows = rows(name, kind);
        let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).expect(f);

        let csv = read("results.csv");
        assert_eq!(
            csv.lines().count(),
            rows.len() + 1,
            "{name}: header and a line per result"
        );
        assert!(csv.lines().next().is_some_and(|h| h.starts_with("boot,")), "{name}");

        let svg = read("chart.svg");
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "{name}: not an SVG"
        );
        assert!(svg.contains("a title"), "{name}");
        let report = build(kind, &rows);
        for panel in &report.panels {
            for s in &panel.series {
                assert!(
                    svg.contains(&format!(">\n{}\n</text>", s.label)),
                    "{name}: no legend entry {}",
                    s.label
                );
            }
            for g in &panel.groups {
                assert!(svg.contains(&format!(">\n{g}\n</text>")), "{name}: no group label {g}");
            }
        }

        let md = read("summary.md");
        assert!(md.contains("![a title](chart.svg)"), "{name}");
        for r in rows.iter().filter(|r| kind != Kind::Imbalance || !r.is_eevdf()) {
            let cell = if kind == Kind::Bench { &r.label } else { &r.item };
            assert!(
                md.contains(&format!("| `{cell}` |")),
                "{name}: {cell} not in summary.md"
            );
        }
    }
}

#[test]
fn the_commit_measured_is_in_the_title() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let results = dir.path().join("results");
    std::fs::copy(fixture("latency-synthetic.tsv"), &results).expect("copy");
    std::fs::write(dir.path().join("version"), "abc1234\n").expect("version");
    let out = dir.path().join("out");
    bench_report::write_report(Kind::Latency, &results, &out, None).expect("report written");
    let md = std::fs::read_to_string(out.join("summary.md")).expect("summary");
    assert!(md.starts_with("## vm-latency (scx-userland abc1234)"), "{md}");
}

#[test]
fn the_binary_reports_bad_arguments_in_one_line_and_fails() {
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_bench-report"))
            .args(args)
            .output()
            .expect("running")
    };
    let dir = tempfile::tempdir().expect("temporary directory");
    let out_dir = dir.path().to_string_lossy().to_string();
    let results = fixture("latency-synthetic.tsv").to_string_lossy().to_string();

    let bad_kind = run(&["speed", &results, &out_dir]);
    assert!(!bad_kind.status.success());
    assert!(String::from_utf8_lossy(&bad_kind.stderr).contains("unknown kind \"speed\""));
    let missing = run(&["latency", "/nonexistent/results", &out_dir]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no such results file"));
    let too_few = run(&["latency", &results]);
    assert!(!too_few.status.success());
    assert!(String::from_utf8_lossy(&too_few.stderr).contains("usage: bench-report"));

    let ok = run(&["--title", "t", "latency", &results, &out_dir]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(dir.path().join("chart.svg").is_file());
}
