//! One run of the scheduler, from load to detach, and the threads it starts.
//!
//! ```text
//!   main thread: load ─▶ start workers (pinned, each registers itself with BPF) ─▶ balancer
//!               ─▶ mlockall ─▶ attach ─▶ every 100 ms: Ctrl-C? kernel exit?
//!               stats every --stats-interval ─▶ detach ─▶ exit record
//!   worker d:   pin to domain d's CPUs ─▶ open its ring buffers ─▶ Worker::run
//!   balancer:   every --balance-interval-ms: loads ─▶ transfers ─▶ requests
//! ```
//!
//! The kernel can end the run on its own (an error, the watchdog, or a CPU
//! hotplug asking for a restart); the main thread notices through the exit
//! record BPF writes, and the caller decides whether to start again.

use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use crossbeam_channel::{bounded, Receiver, Sender};
use topology::{DomainId, Plan};

use crate::balancer::{self, BalanceConfig, DomainLoad};
use crate::bpf::{ExitInfo, KernelChannel, LoadOptions, Session};
use crate::stats::{BalanceStats, Snapshot};
use crate::worker::{DomainState, Links, MoveRequest, Worker};

/// Default balancing period. Balancing moves only queued tasks (no running
/// task is migrated, no cache is flushed by the decision itself) and costs a
/// handful of atomic loads, so it can run far more often than scx_rusty's
/// 2 s: 20 ms is one default slice, the time a queue takes to turn over.
pub const DEFAULT_BALANCE_INTERVAL_MS: u64 = 20;

/// Tasks a domain queue and inbox are sized for up front.
const QUEUE_CAPACITY: usize = 8192;
const INBOX_CAPACITY: usize = 4096;

pub struct RunConfig {
    pub batch: usize,
    pub partial: bool,
    pub fast_path: bool,
    pub verbose: bool,
    pub ringbuf_bytes: u32,
    pub stats_interval: Option<Duration>,
    pub balance: Option<(Duration, BalanceConfig)>,
}

/// How a run ended.
pub struct Outcome {
    /// The kernel's exit record; None if it never wrote one.
    pub exit: Option<ExitInfo>,
    /// The user asked us to stop (Ctrl-C, SIGTERM).
    pub by_user: bool,
}

pub fn run_once(cfg: &RunConfig, plan: &Plan, shutdown: &AtomicBool) -> Result<Outcome> {
    let mut open_object = MaybeUninit::uninit();
    let mut session = Session::load(
        &mut open_object,
        &LoadOptions {
            plan,
            partial: cfg.partial,
            fast_path: cfg.fast_path,
            verbose: cfg.verbose,
            ringbuf_bytes: cfg.ringbuf_bytes,
        },
    )?;

    let n = plan.domains.len();
    let balance_stats = Arc::new(BalanceStats::default());
    let states: Arc<[DomainState]> = (0..n).map(|_| DomainState::default()).collect();
    let (inbox_tx, inbox_rx): (Vec<Sender<_>>, Vec<Receiver<_>>) = (0..n).map(|_| bounded(INBOX_CAPACITY)).unzip();
    let (req_tx, req_rx): (Vec<Sender<MoveRequest>>, Vec<Receiver<MoveRequest>>) = (0..n).map(|_| bounded(16)).unzip();
    let (started_tx, started_rx) = bounded::<(DomainId, Result<(), String>)>(n);

    for (d, (inbox, requests)) in plan.domains.iter().zip(inbox_rx.into_iter().zip(req_rx)) {
        let maps = session
            .take_channel(d.id)
            .context("a domain's ring buffers are missing")?;
        let links = Links {
            states: states.clone(),
            inboxes: inbox_tx.clone(),
            inbox,
            requests,
            stop: session.stop_flag(),
        };
        let (dom, cpus, shared, started_tx, batch) =
            (d.id, d.cpus.clone(), session.shared(), started_tx.clone(), cfg.batch);
        let registrar = session.registrar()?;
        let backlog_limit = (n > 1).then_some(d.cpus.len() as u64);
        let partial = cfg.partial;
        let handle = thread::Builder::new()
            .name(format!("sul-worker-{dom}"))
            .spawn(move || {
                let started = pin_to(&cpus).and_then(|()| {
                    let chan = KernelChannel::new(maps, shared, QUEUE_CAPACITY).map_err(|e| format!("{e:#}"))?;
                    registrar.register_worker(dom).map_err(|e| format!("{e:#}"))?;
                    Ok(chan)
                });
                let chan = match started {
                    Ok(chan) => chan,
                    Err(e) => {
                        let _ = started_tx.send((dom, Err(e)));
                        return;
                    }
                };
                let _ = started_tx.send((dom, Ok(())));
                Worker::new(dom, batch, backlog_limit, QUEUE_CAPACITY, chan, links)
                    .sleep_when_idle(partial)
                    .run();
            })
            .context("starting a worker thread")?;
        session.adopt(handle);
    }

    // Every worker has registered itself with BPF before we attach.
    for _ in 0..n {
        let (dom, started) = started_rx
            .recv_timeout(Duration::from_secs(10))
            .map_err(|_| anyhow!("a worker thread did not start within 10 s"))?;
        started.map_err(|e| anyhow!("worker of domain {dom} could not start: {e}"))?;
    }

    if let (Some((interval, bcfg)), true) = (&cfg.balance, n > 1) {
        let (interval, bcfg, states, stop) = (*interval, bcfg.clone(), states.clone(), session.stop_flag());
        let loads_of = plan_loads(plan);
        let bstats = balance_stats.clone();
        let handle = thread::Builder::new()
            .name("sul-balancer".into())
            .spawn(move || balance_loop(interval, &bcfg, &loads_of, &states, &req_tx, &stop, &bstats))
            .context("starting the balancer thread")?;
        session.adopt(handle);
    }

    // Page faults on the paths that schedule tasks would stall everything
    // waiting for us; lock what we have and will have.
    use nix::sys::mman::{mlockall, MlockAllFlags};
    if let Err(e) = mlockall(MlockAllFlags::MCL_CURRENT | MlockAllFlags::MCL_FUTURE) {
        eprintln!("scx-userland: warning: mlockall failed ({e}); running without locked memory");
    }

    session.attach()?;
    let faults_at_attach = process_faults();
    println!(
        "scx-userland: attached, {} domain{} ({}), batch {}{}",
        n,
        if n == 1 { "" } else { "s" },
        plan.spec(),
        cfg.batch,
        if cfg.partial { ", SCHED_EXT tasks only" } else { "" }
    );

    let shared = session.shared();
    let mut prev = Snapshot::default();
    let mut next_stats = Instant::now() + cfg.stats_interval.unwrap_or(Duration::MAX / 4);
    let by_user = loop {
        if shutdown.load(Ordering::Acquire) {
            break true;
        }
        if shared.exit_info().is_some() {
            break false;
        }
        thread::sleep(Duration::from_millis(100));
        if let (Some(every), true) = (cfg.stats_interval, Instant::now() >= next_stats) {
            let mut snap = Snapshot::take(&shared, &states, &balance_stats, plan);
            snap.faults = process_faults().saturating_sub(faults_at_attach);
            println!("{}", snap.render(&prev, plan));
            prev = snap;
            next_stats += every;
        }
    };
    session.shutdown();
    Ok(Outcome {
        exit: shared.exit_info(),
        by_user,
    })
}

/// Page faults, minor and major, that all of this process's threads have
/// taken so far. Memory is locked (MCL_FUTURE), so a page added after
/// attach is populated at once and counted here too: after attach the
/// figure grows only when memory does (a queue deeper than ever before
/// takes a few more B-tree nodes), never by a fault on the hot paths'
/// existing memory.
fn process_faults() -> u64 {
    use nix::sys::resource::{getrusage, UsageWho};
    getrusage(UsageWho::RUSAGE_SELF)
        .map(|u| u64::try_from(u.minor_page_faults() + u.major_page_faults()).unwrap_or(0))
        .unwrap_or(0)
}

fn pin_to(cpus: &[u32]) -> Result<(), String> {
    use nix::sched::{sched_setaffinity, CpuSet};
    let mut set = CpuSet::new();
    for &cpu in cpus {
        set.set(cpu as usize).map_err(|e| format!("CPU {cpu}: {e}"))?;
    }
    sched_setaffinity(nix::unistd::Pid::from_raw(0), &set).map_err(|e| format!("pinning to CPUs {cpus:?}: {e}"))
}

fn plan_loads(plan: &Plan) -> Vec<DomainLoad> {
    plan.domains
        .iter()
        .map(|d| DomainLoad {
            id: d.id,
            numa_node: d.numa_node,
            nr_cpus: d.cpus.len() as u32,
            queued_weight: 0,
            movable_weight: 0,
        })
        .collect()
}

fn balance_loop(
    interval: Duration,
    cfg: &BalanceConfig,
    template: &[DomainLoad],
    states: &[DomainState],
    requests: &[Sender<MoveRequest>],
    stop: &AtomicBool,
    stats: &BalanceStats,
) {
    let mut loads = template.to_vec();
    while !stop.load(Ordering::Acquire) {
        thread::sleep(interval);
        for (l, s) in loads.iter_mut().zip(states) {
            l.queued_weight = s.queued_weight.load(Ordering::Relaxed);
            l.movable_weight = s.movable_weight.load(Ordering::Relaxed);
        }
        let plan = balancer::plan_transfers(&loads, cfg);
        if !plan.is_empty() {
            stats.active_rounds.fetch_add(1, Ordering::Relaxed);
            stats
                .imbalance_before_pct
                .store(balancer::imbalance_pct(&loads), Ordering::Relaxed);
            let after = balancer::imbalance_pct(&balancer::loads_after(&loads, &plan));
            stats.imbalance_after_pct.store(after, Ordering::Relaxed);
        }
        for t in plan {
            let req = MoveRequest {
                to: t.to,
                weight: t.weight,
                max_tasks: t.max_tasks,
                cross_numa: t.cross_numa,
            };
            if let Some(tx) = requests.get(t.from.0 as usize) {
                // A worker that has not served its last request yet will
                // see fresher loads next round.
                let _ = tx.try_send(req);
            }
        }
    }
}
