//! Tests that run the scheduler for real: each boots the sched_ext kernel
//! from ../shared in a VM (../shared/vm/run) with a given CPU topology and
//! runs scenario scripts from tests/vm/ against the freshly built binary,
//! one after the other in the same boot (tests/vm/group.sh): an emulated
//! boot costs tens of seconds. The scripts check what the kernel says
//! (sched_ext state, root/ops, dmesg), what the scheduler counts, and what
//! the workload did; each ends with "PASS <name>" or "FAIL: <why>".
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

/// One script of tests/vm/ with its arguments, and the line that says it passed.
struct Scenario {
    script: &'static str,
    args: &'static [&'static str],
    pass: &'static str,
}

const fn sc(script: &'static str, args: &'static [&'static str], pass: &'static str) -> Scenario {
    Scenario { script, args, pass }
}

/// Writes a group's whole output to `vm-logs/<test>.log` under
/// CARGO_TARGET_TMPDIR (target/tmp): libtest shows a passing test's output
/// to nobody, and the times group.sh prints per scenario are what keeps CI
/// within its 45 minutes.
fn keep_log(text: &str) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("vm-logs");
    let name = std::thread::current().name().unwrap_or("vm").replace("::", "-");
    if let Err(e) = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(dir.join(format!("{name}.log")), text)) {
        eprintln!("could not keep the VM log in {}: {e}", dir.display());
    }
}

/// Runs SCENARIOS in one VM of topology TOPO (tests/vm/group.sh); asserts
/// that each printed its "PASS <name>" and that the group exited 0.
fn scenarios(topo: &str, timeout_s: u32, list: &[Scenario]) {
    let names: Vec<String> = list.iter().map(|s| format!("{} {:?}", s.script, s.args)).collect();
    let Some(runner) = vm_runner() else {
        eprintln!(
            "SKIPPED {names:?} on {topo}: ../shared/vm/run is absent, so there is no sched_ext kernel \
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
        .arg(dir.join("group.sh"));
    for (i, s) in list.iter().enumerate() {
        if i > 0 {
            cmd.arg("--");
        }
        cmd.arg(s.script).args(s.args);
    }
    // The emulated VM occasionally dies: vng exits 255 and vm/run 125
    // without the command's status. Its console shows why: "Oops: int3" in
    // sched_tick or __schedule milliseconds after "BPF scheduler enabled".
    // Enabling sched_ext flips static keys, patched in place through an int3
    // while the other CPUs run, and an emulated CPU (TCG) can still execute
    // the breakpoint after the patch completed; it is seen most with the 8
    // CPUs of numa-llc (bench/lib.sh has the details). The same oops also
    // happens during boot, before the command starts. Such a run is booted
    // again, up to twice; a group that reported a status, pass or fail,
    // never is.
    let started = std::time::Instant::now();
    let (mut status, mut text) = run_vm(&mut cmd);
    for _ in 0..2 {
        if status.is_some() {
            break;
        }
        eprintln!("{names:?}: the VM died without a status ({text:?}); booting it again");
        (status, text) = run_vm(&mut cmd);
    }
    let ok = status.is_some_and(|s| s.success());
    let report = format!("{names:?} on {topo}, {} s\n{text}", started.elapsed().as_secs());
    println!("=== {report}");
    keep_log(&report);
    let missing: Vec<&str> = list
        .iter()
        .filter(|s| !text.lines().any(|l| l.trim() == s.pass))
        .map(|s| s.pass)
        .collect();
    assert!(
        ok && missing.is_empty(),
        "on {topo}: {missing:?} not printed ({status:?}):\n{text}"
    );
}

/// The reference scheduler (`--domains 1`) with stress-ng and hackbench, a
/// second instance refused; partial mode; the scx project's CI stress; full
/// ring buffers losing no task; started in a pid namespace; started under
/// `taskset`; storms and churn (forks, pid wrap, affinity/nice/cgroup
/// changes) with tiny ring buffers.
#[test]
fn vm_flat_reference_partial_ci_stress_full_rings_pidns_taskset_churn() {
    scenarios(
        "flat",
        1500,
        &[
            sc("reference.sh", &[], "PASS reference"),
            sc("partial.sh", &[], "PASS partial --domains 1"),
            sc("scx-ci-stress.sh", &[], "PASS scx-ci-stress"),
            sc("ringbuf-full.sh", &[], "PASS ringbuf-full"),
            sc("pidns.sh", &[], "PASS pidns"),
            sc("outside-affinity.sh", &[], "PASS outside-affinity"),
            sc("churn.sh", &[], "PASS churn --ringbuf-kib 4"),
        ],
    );
}

/// Domains from hwloc on two LLCs, then CPU hotplug (last: it takes CPUs
/// away and back).
#[test]
fn vm_llc_domains_and_cpu_hotplug() {
    scenarios(
        "llc",
        800,
        &[
            sc("domains.sh", &["llc:2", "numa:1"], "PASS domains llc:2 numa:1"),
            sc("hotplug.sh", &[], "PASS hotplug"),
        ],
    );
}

#[test]
fn vm_numa_domains() {
    scenarios(
        "numa",
        400,
        &[sc("domains.sh", &["numa:2", "llc:2"], "PASS domains numa:2 llc:2")],
    );
}

/// Domains on 2 nodes x 2 LLCs; the scx CI stress with `--domains llc`;
/// partial mode with 4 domains; a free task among pinned ones; the balancer
/// on and off; started in a pid namespace; storms and churn with tiny ring
/// buffers.
#[test]
fn vm_numa_llc_domains_stress_partial_pinned_crowd_balancer_pidns_churn_starved() {
    scenarios(
        "numa-llc",
        1700,
        &[
            sc("domains.sh", &["llc:4", "numa:2"], "PASS domains llc:4 numa:2"),
            sc(
                "scx-ci-stress.sh",
                &["--domains", "llc"],
                "PASS scx-ci-stress --domains llc",
            ),
            sc("partial.sh", &["--domains", "llc"], "PASS partial --domains llc"),
            sc(
                "pinned-crowd.sh",
                &["--domains", "llc"],
                "PASS pinned-crowd --domains llc",
            ),
            sc("balance.sh", &["on"], "PASS balance on"),
            sc("balance.sh", &["off"], "PASS balance off"),
            sc("pidns.sh", &["--domains", "llc"], "PASS pidns --domains llc"),
            sc(
                "churn.sh",
                &["CHURN_SECS=30", "--domains", "llc", "--ringbuf-kib", "4"],
                "PASS churn --domains llc --ringbuf-kib 4",
            ),
            sc(
                "starved-domain.sh",
                &["--domains", "llc"],
                "PASS starved-domain --domains llc",
            ),
        ],
    );
}

/// Shares over 20 s, as the issue states them: over 10 s a capped task's
/// share (nice -5 among nice 0, entitled to a whole CPU) swung from 3% to
/// 11% short between runs in the emulator. Wakeup latency, mean and worst
/// (99.9th percentile), within 1.5x EEVDF's: measured 0.82-1.03x for the
/// mean, 0.85-0.98x for the worst (README, "Known gaps"), and once, in
/// CI, 1.62x for the free threads' worst while EEVDF's own pinned and free
/// figures of that boot were 64 and 44 ms: a miss gets a second run of
/// each, and both runs together decide (quality.sh). So does a miss of a
/// fairness bar: the same code passed and missed the 2x share of the
/// machine in two boots. In CI on 2026-12-01 the pinned threads' worst
/// missed over both runs (87.5 ms, EEVDF 47.4 ms): EEVDF's first run was
/// the boot's first cyclictest run, which the emulator favours when the
/// host is slow (bench/measure.sh); with the VM on one host core, EEVDF's
/// mean went from 5.0 ms in that run to 10.3-10.6 ms in the next ones,
/// ours 7.4-7.8 ms. Every boot now spends that run on a warm-up.
#[test]
fn vm_flat_scheduling_quality() {
    scenarios(
        "flat",
        1200,
        &[sc(
            "quality.sh",
            &["QUALITY_SECS=20", "--domains 1", "--domains 1 --partial"],
            "PASS quality --domains 1 --domains 1 --partial",
        )],
    );
}

/// With several domains the CPUs idle 0.2-0.6% of the time beside one hog
/// per CPU (EEVDF: 0; `--domains 1` on flat: at most 0.2%), so the idle
/// bar here is 2%, not 1%. Asserted: a pinned hog keeps its CPU, one hog
/// per CPU leaves none idle, no hog waits near the watchdog at 8x
/// (quality.sh's 8 s, as on flat; a light task's 5 s limit runs from its
/// enqueue here too: its worker hands it to BPF once it has waited 2.5 s
/// in the worker's queue, src/queue.rs, dispatch_overdue), and the wakeup
/// latency of pinned 1 ms timers beside 2 hogs per CPU is within 1.5x
/// EEVDF's, over 10 s (bench/vm-latency, 2026-12-01: 0.69-0.83x EEVDF's
/// mean, 0.72-0.90x its 99.9th percentile). Latency here looked 5-7 times
/// EEVDF's until the first cyclictest run of a boot, which the emulator
/// treats apart, went to a warm-up (bench/measure.sh). The shares follow
/// weights only within each domain (README, "Known gaps"): they are for
/// `bench/vm-fairness` to report. The free threads' latency and the
/// widened task are checked in the flat group only: CI's 45-minute budget
/// cannot spare them twice.
#[test]
fn vm_numa_llc_scheduling_quality() {
    scenarios(
        "numa-llc",
        1500,
        &[sc(
            "quality.sh",
            &[
                "IDLE_PCT=2",
                "FAIRNESS=off",
                "LAT_MODES=pinned",
                "LAT_SECS=10",
                "WIDEN=off",
                "--domains llc",
                "--domains numa",
            ],
            "PASS quality --domains llc --domains numa",
        )],
    );
}
