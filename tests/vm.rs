//! Tests that run the scheduler for real: each boots the sched_ext kernel
//! from ../shared in a VM (../shared/vm/run) with a given CPU topology and
//! runs one scenario script from tests/vm/ against the freshly built binary.
//! The scripts check what the kernel says (sched_ext state, root/ops,
//! dmesg), what the scheduler counts, and what the workload did; each ends
//! with "PASS <name>" or "FAIL: <why>".
//!
//! Without ../shared (a user's clone) there is no sched_ext kernel to run
//! on: each test then says so on stderr and does nothing else. VMs run one
//! at a time: the host has two cores and the guests are emulated.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

static ONE_VM_AT_A_TIME: Mutex<()> = Mutex::new(());

fn vm_runner() -> Option<PathBuf> {
    let runner = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/vm/run");
    runner.exists().then_some(runner)
}

/// Runs tests/vm/SCRIPT with ARGS in a VM of topology TOPO; asserts that it
/// printed "PASS <pass>" and exited 0.
fn scenario(topo: &str, timeout_s: u32, script: &str, args: &[&str], pass: &str) {
    let Some(runner) = vm_runner() else {
        eprintln!(
            "SKIPPED {script} {args:?} on {topo}: ../shared/vm/run is absent, so there is no sched_ext kernel \
             to run the scheduler on (see README: Testing)"
        );
        return;
    };
    let _one = ONE_VM_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vm");
    let out = Command::new(&runner)
        .args(["--topo", topo, "--timeout", &timeout_s.to_string(), "--"])
        .arg("env")
        .arg(format!("SCHED={}", env!("CARGO_BIN_EXE_scx-userland")))
        .arg("bash")
        .arg(dir.join(script))
        .args(args)
        .output()
        .expect("running ../shared/vm/run");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    println!("=== {script} {args:?} on {topo}\n{text}");
    assert!(
        out.status.success() && text.lines().any(|l| l.trim() == pass),
        "{script} {args:?} on {topo} failed ({}):\n{text}",
        out.status
    );
}

#[test]
fn vm_flat_reference_scheduler() {
    scenario("flat", 600, "reference.sh", &[], "PASS reference");
}

#[test]
fn vm_flat_partial_switches_only_sched_ext_tasks() {
    scenario("flat", 300, "partial.sh", &[], "PASS partial");
}

#[test]
fn vm_flat_scx_ci_stress() {
    scenario("flat", 300, "scx-ci-stress.sh", &[], "PASS scx-ci-stress");
}

#[test]
fn vm_llc_domains() {
    scenario("llc", 400, "domains.sh", &["llc:2", "numa:1"], "PASS domains llc:2 numa:1");
}

#[test]
fn vm_numa_domains() {
    scenario("numa", 400, "domains.sh", &["numa:2", "llc:2"], "PASS domains numa:2 llc:2");
}

#[test]
fn vm_numa_llc_domains() {
    scenario("numa-llc", 500, "domains.sh", &["llc:4", "numa:2"], "PASS domains llc:4 numa:2");
}

#[test]
fn vm_numa_llc_scx_ci_stress_with_llc_domains() {
    scenario("numa-llc", 300, "scx-ci-stress.sh", &["--domains", "llc"], "PASS scx-ci-stress --domains llc");
}

#[test]
fn vm_numa_llc_balancer_moves_queued_tasks() {
    scenario("numa-llc", 300, "balance.sh", &["on"], "PASS balance on");
}

#[test]
fn vm_numa_llc_no_balance_moves_nothing() {
    scenario("numa-llc", 300, "balance.sh", &["off"], "PASS balance off");
}
