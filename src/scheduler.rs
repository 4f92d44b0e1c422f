//! One run of the scheduler, from load to detach, and the threads it starts.
//!
//! ```text
//!   main thread: load ─▶ start workers (pinned, each registers itself with BPF) ─▶ balancer
//!               ─▶ mlockall ─▶ attach ─▶ every 100 ms: Ctrl-C? kernel exit?
//!               stats every --stats-interval ─▶ detach ─▶ exit record
//!   worker d:   pin to domain d's CPUs ─▶ open its ring buffers ─▶ Worker::run
//!   balancer:   every --balance-interval-ms: loads ─▶ transfers ─▶ requests
//!   rescue:     every 10 ms: domains BPF found starved ─▶ widen / re-pin their workers
//! ```
//!
//! The kernel can end the run on its own (an error, the watchdog, or a CPU
//! hotplug asking for a restart); the main thread notices through the exit
//! record BPF writes, and the caller decides whether to start again.

use std::mem::MaybeUninit;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use crossbeam_channel::{bounded, Receiver, Sender};
use topology::{DomainId, Plan};

use crate::balancer::{self, BalanceConfig, DomainLoad};
use crate::bpf::{ExitInfo, KernelChannel, LoadOptions, Session, Shared};
use crate::rescue::{self, Change, Follower};
use crate::stats::{self, BalanceStats, Sampler};
use crate::task::QueuedTask;
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
    pub stats_format: stats::Format,
    /// Where to serve stats for --monitor.
    pub stats_socket: PathBuf,
    pub balance: Option<(Duration, BalanceConfig)>,
}

/// How a run ended.
pub struct Outcome {
    /// The kernel's exit record; None if it never wrote one.
    pub exit: Option<ExitInfo>,
    /// The user asked us to stop (Ctrl-C, SIGTERM).
    pub by_user: bool,
}

/// How often the main thread checks for Ctrl-C and the kernel's exit, at
/// most; a monitor's request wakes it sooner.
const TICK: Duration = Duration::from_millis(100);

/// The threads and channels every domain's worker is linked to.
struct Wiring {
    states: Arc<[DomainState]>,
    balancer_requests: Vec<Sender<MoveRequest>>,
    balance_stats: Arc<BalanceStats>,
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
    let wiring = start_workers(cfg, plan, &mut session)?;
    if let (Some((interval, bcfg)), true) = (&cfg.balance, plan.domains.len() > 1) {
        start_balancer(*interval, bcfg, plan, &wiring, &mut session)?;
    }
    // Partial mode's workers are CFS tasks: RT hogs do not starve them
    // (the fair server keeps them running), and BPF does not hold them.
    if plan.domains.len() > 1 && !cfg.partial {
        start_rescue(plan, &wiring, &mut session)?;
    }
    lock_memory();

    session.attach()?;
    let n = plan.domains.len();
    println!(
        "scx-userland: attached, {} domain{} ({}), batch {}{}",
        n,
        if n == 1 { "" } else { "s" },
        plan.spec(),
        cfg.batch,
        if cfg.partial { ", SCHED_EXT tasks only" } else { "" }
    );
    let sampler = Sampler::new(session.shared(), &wiring.states, &wiring.balance_stats, plan);
    let by_user = supervise(cfg, &session.shared(), &sampler, shutdown)?;
    session.shutdown();
    Ok(Outcome {
        exit: session.shared().exit_info(),
        by_user,
    })
}

/// Starts one pinned worker per domain and waits until each has
/// registered itself with BPF: attaching before that would queue the
/// workers to themselves.
fn start_workers(cfg: &RunConfig, plan: &Plan, session: &mut Session) -> Result<Wiring> {
    let n = plan.domains.len();
    let states: Arc<[DomainState]> = (0..n).map(|_| DomainState::default()).collect();
    let (inbox_tx, inbox_rx): (Vec<Sender<QueuedTask>>, Vec<Receiver<_>>) =
        (0..n).map(|_| bounded(INBOX_CAPACITY)).unzip();
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
            nearest: plan.steal_order(d.id),
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
                // Built (its queue warmed up) before the memory is locked.
                let mut worker =
                    Worker::new(dom, batch, backlog_limit, QUEUE_CAPACITY, chan, links).sleep_when_idle(partial);
                let _ = started_tx.send((dom, Ok(())));
                worker.run();
            })
            .context("starting a worker thread")?;
        session.adopt(handle);
    }

    for _ in 0..n {
        let (dom, started) = started_rx
            .recv_timeout(Duration::from_secs(10))
            .map_err(|_| anyhow!("a worker thread did not start within 10 s"))?;
        started.map_err(|e| anyhow!("worker of domain {dom} could not start: {e}"))?;
    }
    Ok(Wiring {
        states,
        balancer_requests: req_tx,
        balance_stats: Arc::new(BalanceStats::default()),
    })
}

fn start_balancer(
    interval: Duration,
    bcfg: &BalanceConfig,
    plan: &Plan,
    wiring: &Wiring,
    session: &mut Session,
) -> Result<()> {
    let (bcfg, states, stop) = (bcfg.clone(), wiring.states.clone(), session.stop_flag());
    let (loads_of, requests, bstats) = (
        plan_loads(plan),
        wiring.balancer_requests.clone(),
        wiring.balance_stats.clone(),
    );
    let (warm_tx, warm_rx) = bounded::<()>(1);
    let handle = thread::Builder::new()
        .name("sul-balancer".into())
        .spawn(move || {
            // A first plan before the memory is locked: the thread's
            // allocator then holds what a round needs, and rounds after
            // attach take no page fault.
            let mut busy = loads_of.clone();
            for (i, l) in busy.iter_mut().enumerate() {
                l.queued_weight = if i == 0 { 1 << 20 } else { 0 };
                l.movable_weight = l.queued_weight;
            }
            drop(balancer::plan_transfers(&busy, &bcfg));
            let _ = warm_tx.send(());
            balance_loop(interval, &bcfg, &loads_of, &states, &requests, &stop, &bstats)
        })
        .context("starting the balancer thread")?;
    session.adopt(handle);
    warm_rx
        .recv_timeout(Duration::from_secs(10))
        .map_err(|_| anyhow!("the balancer thread did not start within 10 s"))
}

fn start_rescue(plan: &Plan, wiring: &Wiring, session: &mut Session) -> Result<()> {
    let (states, stop, shared) = (wiring.states.clone(), session.stop_flag(), session.shared());
    let homes: Vec<Vec<u32>> = plan.domains.iter().map(|d| d.cpus.clone()).collect();
    let handle = thread::Builder::new()
        .name("sul-rescue".into())
        .spawn(move || rescue_loop(shared, &homes, &states, &stop))
        .context("starting the starvation watch thread")?;
    session.adopt(handle);
    Ok(())
}

/// Every `rescue::TICK`: follows the domains BPF found starved
/// (rescue.rs), widening or re-pinning their workers.
fn rescue_loop(shared: Shared, homes: &[Vec<u32>], states: &[DomainState], stop: &AtomicBool) {
    let everywhere: Vec<u32> = homes.iter().flatten().copied().collect();
    let mut follower = Follower::new(states.len());
    let mut changes = Vec::with_capacity(states.len());
    while !stop.load(Ordering::Acquire) {
        thread::sleep(rescue::TICK);
        follower.follow(
            (0..states.len()).map(|i| shared.starved(DomainId(i as u32))),
            &mut changes,
        );
        for &change in &changes {
            let (d, starved) = match change {
                Change::Starve(d) => (d, true),
                Change::Recover(d) => (d, false),
            };
            let (state, home) = (&states[d.0 as usize], homes[d.0 as usize].as_slice());
            let tid = nix::unistd::Pid::from_raw(state.tid.load(Ordering::Relaxed));
            state.starved.store(starved, Ordering::Release);
            let pin = if starved { &everywhere[..] } else { home };
            if let Err(e) = set_affinity(tid, pin) {
                eprintln!("scx-userland: warning: domain {d}'s worker: {e}");
            }
            if starved {
                eprintln!(
                    "scx-userland: domain {d} (CPUs {}): work waited {} ms and none of its CPUs asked for it \
                     (held by real-time or deadline tasks?); its tasks go to other domains",
                    topology::format_cpu_ranges(home),
                    rescue::GRACE_NS / 1_000_000
                );
            } else {
                eprintln!("scx-userland: domain {d}: its CPUs run sched_ext tasks again");
            }
        }
    }
}

/// Page faults on the paths that schedule tasks would stall everything
/// waiting for us; lock what we have and will have.
fn lock_memory() {
    use nix::sys::mman::{mlockall, MlockAllFlags};
    if let Err(e) = mlockall(MlockAllFlags::MCL_CURRENT | MlockAllFlags::MCL_FUTURE) {
        eprintln!("scx-userland: warning: mlockall failed ({e}); running without locked memory");
    }
}

/// The main thread while attached: prints stats, answers monitors, and
/// returns when the user or the kernel ends the run (true: the user).
fn supervise(cfg: &RunConfig, shared: &Shared, sampler: &Sampler, shutdown: &AtomicBool) -> Result<bool> {
    // Started only now that we are attached: a second instance, refused
    // at attach, must not take the first one's socket.
    let server = match stats::serve(&cfg.stats_socket) {
        Ok(server) => Some(server),
        Err(e) => {
            eprintln!("scx-userland: warning: {e:#}; --monitor cannot reach this instance");
            None
        }
    };
    let monitors = server.as_ref().map(|s| s.channels());
    let mut printed = sampler.take();
    let mut next_stats = cfg.stats_interval.map(|every| Instant::now() + every);
    loop {
        if shutdown.load(Ordering::Acquire) {
            return Ok(true);
        }
        if shared.exit_info().is_some() {
            return Ok(false);
        }
        match &monitors {
            Some((answer, requests)) => {
                if let Ok(earlier) = requests.recv_timeout(TICK) {
                    let later = sampler.take();
                    let stats = sampler.stats(&earlier, &later);
                    // The monitor may have gone meanwhile.
                    let _ = answer.send((later, stats));
                }
            }
            None => thread::sleep(TICK),
        }
        if let (Some(every), Some(due)) = (cfg.stats_interval, next_stats) {
            if Instant::now() >= due {
                let later = sampler.take();
                println!("{}", cfg.stats_format.render(&sampler.stats(&printed, &later))?);
                printed = later;
                next_stats = Some(due + every);
            }
        }
    }
}

fn pin_to(cpus: &[u32]) -> Result<(), String> {
    set_affinity(nix::unistd::Pid::from_raw(0), cpus)
}

/// Restricts thread `tid` (0: the caller) to `cpus`.
fn set_affinity(tid: nix::unistd::Pid, cpus: &[u32]) -> Result<(), String> {
    use nix::sched::{sched_setaffinity, CpuSet};
    let mut set = CpuSet::new();
    for &cpu in cpus {
        set.set(cpu as usize).map_err(|e| format!("CPU {cpu}: {e}"))?;
    }
    sched_setaffinity(tid, &set).map_err(|e| format!("pinning to CPUs {cpus:?}: {e}"))
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
    stats.tid.store(nix::unistd::gettid().as_raw(), Ordering::Relaxed);
    let mut loads = template.to_vec();
    while !stop.load(Ordering::Acquire) {
        thread::sleep(interval);
        for ((l, s), t) in loads.iter_mut().zip(states).zip(template) {
            // A starved domain runs nothing: its worker empties it itself.
            l.nr_cpus = if s.starved.load(Ordering::Relaxed) {
                0
            } else {
                t.nr_cpus
            };
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
