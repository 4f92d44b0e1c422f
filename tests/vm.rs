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

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::Duration;

/// A guest that has not printed its first line by then did not boot (a
/// normal boot takes 5 to 40 s under emulation on a loaded host).
const BOOT_DEADLINE: Duration = Duration::from_secs(150);

/// Runs the VM; returns its status, or None if it never booted, and its
/// output (stdout and stderr, interleaved by line).
fn run_vm(cmd: &mut Command) -> (Option<ExitStatus>, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("starting ../shared/vm/run");
    let (tx, rx) = mpsc::channel::<String>();
    let readers: Vec<_> = [
        child
            .stdout
            .take()
            .map(|o| Box::new(o) as Box<dyn std::io::Read + Send>),
        child
            .stderr
            .take()
            .map(|e| Box::new(e) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|r| {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(r).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        })
    })
    .collect();
    drop(tx);
    let mut text = String::new();
    match rx.recv_timeout(BOOT_DEADLINE) {
        Ok(first) => text.push_str(&(first + "\n")),
        Err(_) => {
            // Kill vm/run and the qemu it started (same process group).
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = child.wait();
            return (None, format!("no output within {BOOT_DEADLINE:?}"));
        }
    }
    for line in rx {
        text.push_str(&(line + "\n"));
    }
    for r in readers {
        let _ = r.join();
    }
    let status = child.wait().expect("waiting for ../shared/vm/run");
    // vng can exit while its qemu keeps running (seen with "vng exit 255");
    // such an orphan would eat the CPUs of every later VM: end the group.
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    // 125: the VM ended without reporting the command's status.
    if status.code() == Some(125) && text.contains("without CMD's exit status") {
        return (None, text);
    }
    (Some(status), text)
}

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
    let mut cmd = Command::new(&runner);
    cmd.args(["--topo", topo, "--timeout", &timeout_s.to_string(), "--"])
        .arg("env")
        .arg(format!("SCHED={}", env!("CARGO_BIN_EXE_scx-userland")))
        .arg("bash")
        .arg(dir.join(script))
        .args(args);
    // The emulated VM occasionally dies: vng exits 255 and vm/run 125
    // without the command's status. Its console shows why: "Oops: int3" in
    // sched_tick or __schedule milliseconds after "BPF scheduler enabled".
    // Enabling sched_ext flips static keys, patched in place through an int3
    // while the other CPUs run, and an emulated CPU (TCG) can still execute
    // the breakpoint after the patch completed; it is seen most with the 8
    // CPUs of numa-llc (bench/lib.sh has the details). The same oops also
    // happens during boot, before the command starts. Such a run is booted
    // again, up to twice; a scenario that reported a status, pass or fail,
    // never is.
    let (mut status, mut text) = run_vm(&mut cmd);
    for _ in 0..2 {
        if status.is_some() {
            break;
        }
        eprintln!("{script}: the VM died without a status ({text:?}); booting it again");
        (status, text) = run_vm(&mut cmd);
    }
    let ok = status.is_some_and(|s| s.success());
    println!("=== {script} {args:?} on {topo}\n{text}");
    assert!(
        ok && text.lines().any(|l| l.trim() == pass),
        "{script} {args:?} on {topo} failed ({status:?}):\n{text}"
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
    scenario(
        "llc",
        400,
        "domains.sh",
        &["llc:2", "numa:1"],
        "PASS domains llc:2 numa:1",
    );
}

#[test]
fn vm_numa_domains() {
    scenario(
        "numa",
        400,
        "domains.sh",
        &["numa:2", "llc:2"],
        "PASS domains numa:2 llc:2",
    );
}

#[test]
fn vm_numa_llc_domains() {
    scenario(
        "numa-llc",
        500,
        "domains.sh",
        &["llc:4", "numa:2"],
        "PASS domains llc:4 numa:2",
    );
}

#[test]
fn vm_numa_llc_scx_ci_stress_with_llc_domains() {
    scenario(
        "numa-llc",
        300,
        "scx-ci-stress.sh",
        &["--domains", "llc"],
        "PASS scx-ci-stress --domains llc",
    );
}

#[test]
fn vm_numa_llc_pinned_tasks_do_not_starve_a_free_one() {
    scenario(
        "numa-llc",
        300,
        "pinned-crowd.sh",
        &["--domains", "llc"],
        "PASS pinned-crowd --domains llc",
    );
}

#[test]
fn vm_numa_llc_balancer_moves_queued_tasks() {
    scenario("numa-llc", 300, "balance.sh", &["on"], "PASS balance on");
}

#[test]
fn vm_numa_llc_no_balance_moves_nothing() {
    scenario("numa-llc", 300, "balance.sh", &["off"], "PASS balance off");
}

#[test]
fn vm_flat_full_ring_buffers_lose_no_task() {
    scenario("flat", 300, "ringbuf-full.sh", &[], "PASS ringbuf-full");
}

#[test]
fn vm_llc_cpu_hotplug_restarts_the_scheduler() {
    scenario("llc", 400, "hotplug.sh", &[], "PASS hotplug");
}

/// Shares over 20 s, as the issue states them: over 10 s a capped task's
/// share (nice -5 among nice 0, entitled to a whole CPU) swung from 3% to
/// 11% short between runs in the emulator.
#[test]
fn vm_flat_scheduling_quality() {
    scenario(
        "flat",
        1200,
        "quality.sh",
        &["QUALITY_SECS=20", "--domains 1", "--domains 1 --partial"],
        "PASS quality --domains 1 --domains 1 --partial",
    );
}

/// Two known gaps with several domains (README, "Known gaps"): a CPU still
/// idles 1-3% of the time beside one hog per CPU (EEVDF: 0-1.4%), so the
/// bar here is 5%; shares follow weights only within each domain; and a
/// woken task waits for its domain's worker, which has only that domain's
/// CPUs (12 ms mean wakeup latency against EEVDF's 5 ms). Shares and
/// latency are reported, not asserted, until those gaps are closed.
#[test]
fn vm_numa_llc_scheduling_quality() {
    scenario(
        "numa-llc",
        1500,
        "quality.sh",
        &[
            "IDLE_PCT=5",
            "FAIRNESS=report",
            "LATENCY=report",
            "--domains llc",
            "--domains numa",
        ],
        "PASS quality --domains llc --domains numa",
    );
}
