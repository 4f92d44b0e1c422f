//! The binary's behaviour on bad input and for `--show-domains`, natively:
//! none of it needs sched_ext.

use std::path::Path;
use std::process::{Command, Output};

fn sched(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_scx-userland"))
        .args(args)
        .output()
        .expect("running scx-userland")
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("topology/fixtures")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn invalid_flags_exit_non_zero_with_a_reason() {
    for (args, says) in [
        (vec!["--domains", "bogus"], "llc"),
        (vec!["--domains", "0"], "domain"),
        (vec!["--batch", "0"], "batch"),
        // Once accepted, it overflowed `Instant + Duration` after attach.
        (vec!["--stats-interval", "18446744073709551615"], "stats-interval"),
        (vec!["--no-such-flag"], "--no-such-flag"),
    ] {
        let o = sched(&args);
        assert!(!o.status.success(), "{args:?} must fail");
        assert!(text(&o).contains(says), "{args:?}: {}", text(&o));
    }
}

#[test]
fn show_domains_prints_the_plan_of_a_topology_file() {
    let o = sched(&[
        "--show-domains",
        "--domains",
        "llc",
        "--topology-xml",
        &fixture("numa-llc.xml"),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let lines: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        lines,
        [
            "domain 0 cpus 0-1 numa 0 llc 0",
            "domain 1 cpus 2-3 numa 0 llc 1",
            "domain 2 cpus 4-5 numa 1 llc 2",
            "domain 3 cpus 6-7 numa 1 llc 3"
        ]
    );
}

#[test]
fn a_topology_that_cannot_be_split_is_refused() {
    let o = sched(&[
        "--show-domains",
        "--domains",
        "9",
        "--topology-xml",
        &fixture("numa-llc.xml"),
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("cannot split 8 cores into 9 domains"), "{}", text(&o));
}

#[test]
fn without_root_it_refuses_to_load() {
    if !nix::unistd::geteuid().is_root() {
        let o = sched(&["--stats-interval", "0"]);
        assert!(!o.status.success());
        assert!(text(&o).contains("must run as root"), "{}", text(&o));
        return;
    }
    // As root, drop to nobody for the run (util-linux setpriv).
    let o = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            env!("CARGO_BIN_EXE_scx-userland"),
        ])
        .output()
        .expect("running setpriv (util-linux)");
    assert!(!o.status.success());
    assert!(text(&o).contains("must run as root"), "{}", text(&o));
}

#[test]
fn a_kernel_without_sched_ext_is_refused() {
    if Path::new("/sys/kernel/sched_ext").exists() || !nix::unistd::geteuid().is_root() {
        eprintln!("SKIPPED: this host has sched_ext or we are not root; the VM tests cover attaching");
        return;
    }
    let o = sched(&["--stats-interval", "0"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("CONFIG_SCHED_CLASS_EXT"), "{}", text(&o));
}

#[test]
fn help_stats_describes_the_json_fields() {
    let o = sched(&["--help-stats"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    for field in [
        "user_dispatches",
        "queued",
        "faults",
        "dispatch_rate",
        "worker_busy_pct",
        "migrations_node",
    ] {
        assert!(
            out.lines()
                .any(|l| l.trim_start().starts_with(field) && l.contains(" : ")),
            "{field} is not described:\n{out}"
        );
    }
}

#[test]
fn monitor_waits_for_a_scheduler_and_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("stats");
    let mut child = Command::new(env!("CARGO_BIN_EXE_scx-userland"))
        .args(["--monitor", "0.1", "--stats-socket"])
        .arg(&socket)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    std::thread::sleep(std::time::Duration::from_millis(500));
    // Still running: a monitor outlives a scheduler that is not there yet.
    assert!(child.try_wait().expect("wait").is_none(), "the monitor gave up");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("SIGINT");
    let o = child.wait_with_output().expect("output");
    assert!(o.status.success(), "Ctrl-C ends the monitor cleanly: {}", text(&o));
    assert!(text(&o).contains("waiting for one"), "{}", text(&o));
}

#[test]
fn the_plan_covers_cpus_outside_the_schedulers_own_affinity() {
    // sched_ext schedules every CPU: started under `taskset`, the scheduler
    // still plans them all (its workers pin themselves to their domains).
    let all = sched(&["--show-domains", "--domains", "1"]);
    assert!(all.status.success(), "{}", text(&all));
    let o = match Command::new("taskset")
        .args([
            "-c",
            "0",
            env!("CARGO_BIN_EXE_scx-userland"),
            "--show-domains",
            "--domains",
            "1",
        ])
        .output()
    {
        Ok(o) => o,
        Err(e) => {
            println!("skipped: taskset cannot run ({e}); apt-get install util-linux");
            return;
        }
    };
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(text(&o), text(&all), "the plan under taskset -c 0 differs");
}
