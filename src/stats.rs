//! Statistics, each figure defined once: as a field of a typed record
//! ([`Stats`], [`DomainStats`], [`BalancerStats`]) with its description.
//! Everything a user sees comes from those records:
//!
//! ```text
//!  BPF counters (intf.h) ─┐                      ┌─▶ text: a line, and a table per domain
//!  DomainState atomics ───┼─▶ Snapshot ─┐        ├─▶ JSON: one object per line
//!  balancer atomics ──────┤  (totals,   ├─▶ Stats┼─▶ stats socket (scx_stats) ─▶ --monitor
//!  /proc/self/task/TID ───┘  at a time) │  ::between(earlier, later)
//!                        earlier sample ┘        └─▶ --help-stats: the descriptions
//! ```
//!
//! A [`Snapshot`] holds raw totals taken at one instant. Counters in
//! [`Stats`] are totals since attach, like the scx_userland example's;
//! rates, mean waits, migrations and busy time are over the interval
//! between two snapshots of the same reader. The periodic printer and every
//! `--monitor` connection keep their own earlier snapshot, so a monitor
//! attaching late neither disturbs the printer nor sees its intervals.
//!
//! The stats socket follows the scx convention (`/var/run/scx/root/stats`,
//! the `scx_stats` protocol), so generic scx tools can read it as well. Its
//! server threads only pass requests to the main thread, which answers them
//! between its 100 ms checks; nothing here runs on a scheduling path.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use scx_stats::prelude::*;
use scx_stats_derive::{stat_doc, Stats};
use serde::{Deserialize, Serialize};
use topology::Plan;

use crate::bpf::{BpfDomainStats, Shared};
use crate::worker::DomainState;

/// Where the stats socket is, unless --stats-socket says otherwise: the
/// path every scx scheduler's stats server uses by default.
pub const DEFAULT_SOCKET: &str = "/var/run/scx/root/stats";

/// Per-domain figures.
#[stat_doc]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, Stats)]
#[stat(_om_prefix = "d_", _om_label = "domain")]
pub struct DomainStats {
    #[stat(desc = "the domain's CPUs, as a CPU list")]
    pub cpus: String,
    #[stat(desc = "tasks in the domain's user-space queue now (its queue depth)")]
    pub queued: u64,
    #[stat(desc = "queued weight per CPU (1024: one nice-0 task per CPU)")]
    pub load: u64,
    #[stat(desc = "tasks BPF sent to the domain's worker, since attach")]
    pub enqueues: u64,
    #[stat(desc = "the worker's decisions BPF inserted into the domain's DSQ, since attach")]
    pub dispatches: u64,
    #[stat(desc = "dispatches per second over the interval")]
    pub dispatch_rate: u64,
    #[stat(desc = "tasks the domain's CPUs took from another domain's DSQ, since attach")]
    pub steals: u64,
    #[stat(
        desc = "tasks that started on one of the domain's CPUs in another LLC than the CPU they last ran on, since attach"
    )]
    pub llc_migrations: u64,
    #[stat(desc = "tasks kept in the kernel (restricted affinity, scheduler threads), since attach")]
    pub kernel_enqueues: u64,
    #[stat(desc = "tasks moved into the domain by the balancer, or evacuated to it by a starved one, since attach")]
    pub migrated_in: u64,
    #[stat(
        desc = "tasks moved out of the domain by the balancer, or evacuated while starved (see evacuated), since attach"
    )]
    pub migrated_out: u64,
    #[stat(desc = "times the worker found its ring buffer to the kernel full (it retries), since attach")]
    pub to_kernel_full: u64,
    #[stat(desc = "percent of the interval the domain's worker thread was on a CPU")]
    pub worker_busy_pct: f64,
    #[stat(desc = "page faults of the domain's worker thread since attach (expected: 0)")]
    pub worker_faults: u64,
    #[stat(desc = "1 while every CPU of the domain is held by a higher class (RT, deadline): its work goes elsewhere")]
    pub starved: u64,
    #[stat(desc = "times the domain was found starved, since attach")]
    pub starvations: u64,
    #[stat(desc = "tasks its worker moved to other domains while starved, since attach")]
    pub evacuated: u64,
    #[stat(desc = "while starved: its worker run, or its tasks taken, by another domain's CPUs, since attach")]
    pub rescued: u64,
}

/// What the load balancer did.
#[stat_doc]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, Stats)]
pub struct BalancerStats {
    #[stat(desc = "balancing rounds that planned at least one transfer, since attach")]
    pub active_rounds: u64,
    #[stat(desc = "load imbalance the last active round saw (percent above the average)")]
    pub imbalance_before_pct: u64,
    #[stat(desc = "imbalance the last active round's plan would leave (percent)")]
    pub imbalance_after_pct: u64,
    #[stat(desc = "tasks moved between domains of one NUMA node over the interval")]
    pub migrations_node: u64,
    #[stat(desc = "tasks moved across NUMA nodes over the interval")]
    pub migrations_cross_node: u64,
}

/// Everything, once per interval.
#[stat_doc]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, Stats)]
#[stat(top, desc = "scx-userland statistics")]
pub struct Stats {
    #[stat(desc = "when this sample was taken, microseconds since the Unix epoch")]
    pub at_us: u64,
    #[stat(desc = "milliseconds since the reader's previous sample, which rates and means cover")]
    pub interval_ms: u64,
    #[stat(desc = "BPF: tasks sent to user space, since attach (the example's `user`)")]
    pub bpf_user_enqueues: u64,
    #[stat(desc = "BPF: tasks kept in the kernel: restricted affinity, scheduler threads (`kern`)")]
    pub bpf_kernel_enqueues: u64,
    #[stat(desc = "BPF: tasks queued in the kernel because a ring buffer to user space was full (`failed`)")]
    pub bpf_failed_enqueues: u64,
    #[stat(desc = "BPF: all enqueues (`total`)")]
    pub bpf_total_enqueues: u64,
    #[stat(desc = "slices renewed in the kernel: the task was alone and nothing waited (`alone`)")]
    pub kept_alone: u64,
    #[stat(desc = "short slices renewed: nothing else to run there, the worker busy elsewhere (`last`)")]
    pub kept_last: u64,
    #[stat(desc = "woken or new tasks run on an idle CPU without the trip through user space (`direct`)")]
    pub direct: u64,
    #[stat(desc = "user space: tasks the workers received, since attach (`enqueues`)")]
    pub user_enqueues: u64,
    #[stat(desc = "user space: decisions the workers sent to the kernel, since attach (`dispatches`)")]
    pub user_dispatches: u64,
    #[stat(desc = "decisions dropped because the task was enqueued again or gone (`stale`)")]
    pub stale: u64,
    #[stat(desc = "tasks queued in user space now, all domains (`queued`)")]
    pub queued: u64,
    #[stat(desc = "tasks CPUs took from another domain's DSQ, since attach (`steals`)")]
    pub steals: u64,
    #[stat(desc = "tasks that started on a CPU in another LLC than the one they last ran on, since attach (`xllc`)")]
    pub llc_migrations: u64,
    #[stat(desc = "running tasks preempted for a woken task, since attach (`preempts`)")]
    pub preempts: u64,
    #[stat(desc = "decisions placed past the least debt bound (nice 19, SCHED_IDLE), queued apart, since attach")]
    pub debtors: u64,
    #[stat(
        desc = "of those, run before their vruntime's turn because they had waited 5 s since their enqueue, since attach (`overdue`)"
    )]
    pub overdue: u64,
    #[stat(
        desc = "several domains: debtors a worker handed to the kernel out of turn because they had waited 2.5 s in its queue, since attach (`overdue_user`)"
    )]
    pub user_overdue: u64,
    #[stat(desc = "BPF heartbeat timer runs (every 250 ms while attached)")]
    pub heartbeats: u64,
    #[stat(desc = "page faults of the scheduling threads (workers, balancer) since attach; expected 0")]
    pub faults: u64,
    #[stat(desc = "mean wait of woken tasks from wakeup to their worker's decision, microseconds")]
    pub wait_user_us: u64,
    #[stat(desc = "mean wait of woken tasks from the decision to running, microseconds")]
    pub wait_dsq_us: u64,
    #[stat(desc = "percent of the interval the workers were on a CPU, summed (100: one CPU)")]
    pub workers_busy_pct: f64,
    #[stat(desc = "user-space decisions per second over the interval, all domains")]
    pub dispatch_rate: u64,
    #[stat(desc = "records from BPF that could not be decoded (a BPF object from another intf.h)")]
    pub malformed: u64,
    #[stat(desc = "the load balancer (several domains only)")]
    pub balancer: BalancerStats,
    #[stat(desc = "per domain, by domain id")]
    pub domains: BTreeMap<u32, DomainStats>,
}

/// The balancer's own counters, written by its thread.
#[derive(Debug, Default)]
pub struct BalanceStats {
    /// Rounds that planned at least one transfer.
    pub active_rounds: AtomicU64,
    /// Of the last active round: the imbalance it saw, and what its plan
    /// would leave if every transfer moved exactly its weight (percent).
    pub imbalance_before_pct: AtomicU64,
    pub imbalance_after_pct: AtomicU64,
    /// The balancer thread's id, for its CPU time and faults (0: not yet).
    pub tid: AtomicI32,
}

/// One domain's user-space counters at one instant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct UserCounters {
    queued: u64,
    queued_weight: u64,
    received: u64,
    dispatched: u64,
    replaced_stale: u64,
    channel_full: u64,
    malformed: u64,
    migrated_in: u64,
    migrated_out: u64,
    migrated_out_numa: u64,
    starved: bool,
    evacuated: u64,
    user_overdue: u64,
}

/// CPU time and page faults of one thread, from /proc.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct ThreadUsage {
    cpu_ns: u64,
    faults: u64,
}

impl ThreadUsage {
    /// None when the thread is unknown (id 0) or gone.
    fn of(tid: i32) -> Option<ThreadUsage> {
        if tid <= 0 {
            return None;
        }
        let dir = PathBuf::from(format!("/proc/self/task/{tid}"));
        // schedstat: "<ns on CPU> <ns waiting> <timeslices>".
        let schedstat = std::fs::read_to_string(dir.join("schedstat")).ok()?;
        let cpu_ns = schedstat.split_whitespace().next()?.parse().ok()?;
        // stat: fields after the command name (which may hold spaces and
        // parentheses, hence the last ')'): minflt is the 10th field of
        // the line, majflt the 12th.
        let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
        let rest: Vec<&str> = stat.get(stat.rfind(')')? + 1..)?.split_whitespace().collect();
        let field = |n: usize| rest.get(n - 3).and_then(|s| s.parse::<u64>().ok());
        Some(ThreadUsage {
            cpu_ns,
            faults: field(10)? + field(12)?,
        })
    }
}

/// Raw totals at one instant; see the module doc.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// None: the zero sample, before anything was counted.
    at: Option<Instant>,
    wall: Option<SystemTime>,
    bpf: Vec<BpfDomainStats>,
    user: Vec<UserCounters>,
    /// Per domain's worker.
    workers: Vec<ThreadUsage>,
    balancer_thread: ThreadUsage,
    /// Active rounds, imbalance before and after of the last one.
    balance: (u64, u64, u64),
    heartbeats: u64,
}

/// Takes snapshots of one run.
pub struct Sampler<'a> {
    shared: Shared,
    states: &'a [DomainState],
    balance: &'a BalanceStats,
    plan: &'a Plan,
    /// Taken at attach: faults before it are the start's, not counted.
    at_attach: Snapshot,
}

impl<'a> Sampler<'a> {
    /// Call at attach: faults up to now are the start's, not counted.
    pub fn new(shared: Shared, states: &'a [DomainState], balance: &'a BalanceStats, plan: &'a Plan) -> Self {
        let mut s = Sampler {
            shared,
            states,
            balance,
            plan,
            at_attach: Snapshot::default(),
        };
        s.at_attach = s.take();
        s
    }

    pub fn take(&self) -> Snapshot {
        let rd = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let usage = |tid: &AtomicI32| ThreadUsage::of(tid.load(Ordering::Relaxed)).unwrap_or_default();
        Snapshot {
            at: Some(Instant::now()),
            wall: Some(SystemTime::now()),
            bpf: self
                .plan
                .domains
                .iter()
                .map(|d| self.shared.domain_stats(d.id))
                .collect(),
            user: self
                .states
                .iter()
                .map(|s| UserCounters {
                    queued: rd(&s.queued),
                    queued_weight: rd(&s.queued_weight),
                    received: rd(&s.received),
                    dispatched: rd(&s.dispatched),
                    replaced_stale: rd(&s.replaced_stale),
                    channel_full: rd(&s.channel_full),
                    malformed: rd(&s.malformed),
                    migrated_in: rd(&s.migrated_in),
                    migrated_out: rd(&s.migrated_out),
                    migrated_out_numa: rd(&s.migrated_out_numa),
                    starved: s.starved.load(Ordering::Relaxed),
                    evacuated: rd(&s.evacuated),
                    user_overdue: rd(&s.user_overdue),
                })
                .collect(),
            workers: self.states.iter().map(|s| usage(&s.tid)).collect(),
            balancer_thread: usage(&self.balance.tid),
            balance: (
                rd(&self.balance.active_rounds),
                rd(&self.balance.imbalance_before_pct),
                rd(&self.balance.imbalance_after_pct),
            ),
            heartbeats: self.shared.heartbeats(),
        }
    }

    /// The figures of `later` over the interval since `earlier`.
    pub fn stats(&self, earlier: &Snapshot, later: &Snapshot) -> Stats {
        Stats::between(earlier, later, self.plan, &self.at_attach)
    }
}

/// `part` of `interval` in percent, to one decimal.
fn pct(part_ns: u64, interval: Duration) -> f64 {
    let whole = interval.as_nanos().max(1) as f64;
    (part_ns as f64 * 1000.0 / whole).round() / 10.0
}

/// `n` events over `interval`, per second.
fn per_sec(n: u64, interval: Duration) -> u64 {
    (u128::from(n) * 1_000_000_000 / interval.as_nanos().max(1)) as u64
}

impl Stats {
    fn between(earlier: &Snapshot, later: &Snapshot, plan: &Plan, at_attach: &Snapshot) -> Stats {
        let interval = match (earlier.at, later.at) {
            (Some(a), Some(b)) => b.saturating_duration_since(a),
            _ => Duration::ZERO,
        };
        let sum = |v: &[BpfDomainStats]| v.iter().fold(BpfDomainStats::default(), |a, b| a + *b);
        let k = sum(&later.bpf);
        let dk = k.since(sum(&earlier.bpf));
        let earlier_user = |i: usize| earlier.user.get(i).copied().unwrap_or_default();
        let earlier_bpf = |i: usize| earlier.bpf.get(i).copied().unwrap_or_default();
        let earlier_worker = |i: usize| earlier.workers.get(i).copied().unwrap_or_default();
        let attach_worker = |i: usize| at_attach.workers.get(i).copied().unwrap_or_default();

        let mut domains = BTreeMap::new();
        let (mut moved, mut moved_numa, mut busy_ns) = (0, 0, 0);
        let mut faults = later
            .balancer_thread
            .faults
            .saturating_sub(at_attach.balancer_thread.faults);
        for (i, d) in plan.domains.iter().enumerate() {
            let (b, u, w) = (
                later.bpf.get(i).copied().unwrap_or_default(),
                later.user.get(i).copied().unwrap_or_default(),
                later.workers.get(i).copied().unwrap_or_default(),
            );
            let worker_ns = w.cpu_ns.saturating_sub(earlier_worker(i).cpu_ns);
            busy_ns += worker_ns;
            let worker_faults = w.faults.saturating_sub(attach_worker(i).faults);
            faults += worker_faults;
            moved += u.migrated_out - earlier_user(i).migrated_out;
            moved_numa += u.migrated_out_numa - earlier_user(i).migrated_out_numa;
            domains.insert(
                d.id.0,
                DomainStats {
                    cpus: topology::format_cpu_ranges(&d.cpus),
                    queued: u.queued,
                    load: u.queued_weight / d.cpus.len().max(1) as u64,
                    enqueues: b.user_enqueues,
                    dispatches: b.dispatches,
                    dispatch_rate: per_sec(b.dispatches.wrapping_sub(earlier_bpf(i).dispatches), interval),
                    steals: b.steals,
                    llc_migrations: b.llc_migrations,
                    kernel_enqueues: b.kernel_enqueues,
                    migrated_in: u.migrated_in,
                    migrated_out: u.migrated_out,
                    to_kernel_full: u.channel_full,
                    worker_busy_pct: pct(worker_ns, interval),
                    worker_faults,
                    starved: u64::from(u.starved),
                    starvations: b.starvations,
                    evacuated: u.evacuated,
                    rescued: b.rescued,
                },
            );
        }
        let user = |f: fn(&UserCounters) -> u64| later.user.iter().map(f).sum::<u64>();
        let mean_us = |ns: u64| ns / dk.waits.max(1) / 1000;
        Stats {
            at_us: later
                .wall
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_micros() as u64),
            interval_ms: interval.as_millis() as u64,
            bpf_user_enqueues: k.user_enqueues,
            bpf_kernel_enqueues: k.kernel_enqueues,
            bpf_failed_enqueues: k.failed,
            bpf_total_enqueues: k.user_enqueues + k.kernel_enqueues + k.failed,
            kept_alone: k.kept_alone,
            kept_last: k.kept_last,
            direct: k.direct,
            user_enqueues: user(|u| u.received),
            user_dispatches: user(|u| u.dispatched),
            stale: k.stale + user(|u| u.replaced_stale),
            queued: user(|u| u.queued),
            steals: k.steals,
            llc_migrations: k.llc_migrations,
            preempts: k.preempts,
            debtors: k.debtors,
            overdue: k.overdue,
            user_overdue: user(|u| u.user_overdue),
            heartbeats: later.heartbeats,
            faults,
            wait_user_us: mean_us(dk.wait_user_ns),
            wait_dsq_us: mean_us(dk.wait_dsq_ns),
            workers_busy_pct: pct(busy_ns, interval),
            dispatch_rate: per_sec(dk.dispatches, interval),
            malformed: user(|u| u.malformed),
            balancer: BalancerStats {
                active_rounds: later.balance.0,
                imbalance_before_pct: later.balance.1,
                imbalance_after_pct: later.balance.2,
                migrations_node: moved.saturating_sub(moved_numa),
                migrations_cross_node: moved_numa,
            },
            domains,
        }
    }

    /// The human-readable form: the scx_userland example's counters on one
    /// line, then, with several domains, the balancer and a row per domain.
    pub fn format(&self) -> String {
        let mut out = String::new();
        let _ = write!(
            out,
            "bpf enqueues: kern={} user={} failed={} total={} alone={} last={} direct={} | user space: enqueues={} dispatches={} \
             stale={} queued={} | steals={} xllc={} preempts={} overdue={} overdue_user={} heartbeats={} faults={} | wait us: user={} dsq={} | workers busy={:.1}%",
            self.bpf_kernel_enqueues,
            self.bpf_user_enqueues,
            self.bpf_failed_enqueues,
            self.bpf_total_enqueues,
            self.kept_alone,
            self.kept_last,
            self.direct,
            self.user_enqueues,
            self.user_dispatches,
            self.stale,
            self.queued,
            self.steals,
            self.llc_migrations,
            self.preempts,
            self.overdue,
            self.user_overdue,
            self.heartbeats,
            self.faults,
            self.wait_user_us,
            self.wait_dsq_us,
            self.workers_busy_pct,
        );
        // Never expected: a BPF object built from another intf.h.
        if self.malformed > 0 {
            let _ = write!(out, " | malformed records={}", self.malformed);
        }
        if self.domains.len() > 1 {
            let b = &self.balancer;
            let _ = write!(
                out,
                "\n  balancer: migrations node={} cross-node={}, active rounds={}, last imbalance {}% -> {}%",
                b.migrations_node,
                b.migrations_cross_node,
                b.active_rounds,
                b.imbalance_before_pct,
                b.imbalance_after_pct
            );
            let width = self.domains.values().map(|d| d.cpus.len()).max().unwrap_or(0).max(4);
            let _ = write!(
                out,
                "\n  {:>4} {:<width$} {:>7} {:>6} {:>10} {:>10} {:>8} {:>8} {:>8} {:>9} {:>8} {:>8} {:>6}",
                "dom",
                "cpus",
                "queued",
                "load",
                "enqueues",
                "dispatches",
                "disp/s",
                "steals",
                "xllc",
                "kern",
                "in",
                "out",
                "busy%"
            );
            let starved: Vec<String> = self
                .domains
                .iter()
                .filter(|(_, d)| d.starved > 0)
                .map(|(id, _)| id.to_string())
                .collect();
            for (id, d) in &self.domains {
                let _ = write!(
                    out,
                    "\n  {:>4} {:<width$} {:>7} {:>6} {:>10} {:>10} {:>8} {:>8} {:>8} {:>9} {:>8} {:>8} {:>6.1}",
                    id,
                    d.cpus,
                    d.queued,
                    d.load,
                    d.enqueues,
                    d.dispatches,
                    d.dispatch_rate,
                    d.steals,
                    d.llc_migrations,
                    d.kernel_enqueues,
                    d.migrated_in,
                    d.migrated_out,
                    d.worker_busy_pct,
                );
            }
            if !starved.is_empty() {
                let _ = write!(
                    out,
                    "\n  starved (every CPU held by RT/deadline; work moved elsewhere): {}",
                    starved.join(",")
                );
            }
        }
        out
    }
}

/// How stats are printed: `--stats-format`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A line of counters, and a table with a row per domain.
    #[default]
    Text,
    /// One JSON object per interval, on one line (fields: --help-stats).
    Json,
}

impl Format {
    pub fn render(self, s: &Stats) -> Result<String> {
        match self {
            Format::Text => Ok(s.format()),
            Format::Json => serde_json::to_string(s).context("encoding the stats as JSON"),
        }
    }
}

/// A monitor's request to the main thread: its earlier snapshot; the
/// answer is the snapshot taken now and the stats since the earlier one.
pub type Request = Snapshot;
pub type Response = (Snapshot, Stats);

fn server_data() -> StatsServerData<Request, Response> {
    let open: Box<dyn StatsOpener<Request, Response>> = Box::new(|(req, res)| {
        // A new reader's first answer is only its starting point.
        req.send(Snapshot::default())?;
        let (mut earlier, _) = res.recv()?;
        let read: Box<dyn StatsReader<Request, Response>> = Box::new(move |_args, (req, res)| {
            req.send(earlier.clone())?;
            let (later, stats) = res.recv()?;
            earlier = later;
            stats.to_json()
        });
        Ok(read)
    });
    StatsServerData::new()
        .add_meta(DomainStats::meta())
        .add_meta(BalancerStats::meta())
        .add_meta(Stats::meta())
        .add_ops("top", StatsOps { open, close: None })
}

/// Serves the stats socket at `path` until dropped.
pub fn serve(path: &Path) -> Result<StatsServer<Request, Response>> {
    StatsServer::new(server_data())
        .set_path(path)
        .launch()
        .with_context(|| format!("starting the stats server on {}", path.display()))
}

/// `--help-stats`: every field with its meaning.
pub fn describe() -> Result<String> {
    let mut out = Vec::new();
    // Named one by one: scx_stats follows only dicts and arrays of
    // records from the top, not a record held directly (`balancer`).
    server_data().describe_meta(&mut out, Some(&["Stats", "BalancerStats", "DomainStats"]))?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use topology::{DomainSpec, Machine};

    fn snapshot(at: Instant, dispatches: u64, worker_ns: u64) -> Snapshot {
        let bpf = BpfDomainStats {
            dispatches,
            user_enqueues: dispatches + 3,
            waits: dispatches,
            wait_user_ns: dispatches * 2000,
            ..BpfDomainStats::default()
        };
        Snapshot {
            at: Some(at),
            wall: Some(SystemTime::now()),
            bpf: vec![bpf, bpf],
            user: vec![
                UserCounters {
                    queued: 2,
                    queued_weight: 2048,
                    migrated_out: dispatches / 10,
                    ..UserCounters::default()
                };
                2
            ],
            workers: vec![
                ThreadUsage {
                    cpu_ns: worker_ns,
                    faults: 5
                };
                2
            ],
            ..Snapshot::default()
        }
    }

    fn two_domains() -> Plan {
        let xml = concat!(env!("CARGO_MANIFEST_DIR"), "/topology/fixtures/numa-llc.xml");
        let machine = Machine::from_xml_file(std::path::Path::new(xml)).expect("fixture");
        topology::plan(&machine, DomainSpec::Count(2)).expect("plan")
    }

    #[test]
    fn rates_and_busy_time_cover_the_interval_between_two_snapshots() {
        let plan = two_domains();
        let t0 = Instant::now();
        let a = snapshot(t0, 1000, 0);
        let b = snapshot(t0 + Duration::from_millis(500), 1500, 250_000_000);
        let mut at_attach = snapshot(t0, 0, 0);
        at_attach.workers[0].faults = 4;
        at_attach.workers[1].faults = 0;
        let s = Stats::between(&a, &b, &plan, &at_attach);
        assert_eq!(s.interval_ms, 500);
        assert_eq!(s.domains[&0].dispatch_rate, 1000, "500 dispatches in 0.5 s");
        assert_eq!(s.dispatch_rate, 2000);
        assert_eq!(s.domains[&0].worker_busy_pct, 50.0);
        assert_eq!(s.workers_busy_pct, 100.0, "two workers half busy: one CPU");
        assert_eq!(
            s.bpf_user_enqueues,
            2 * 1503,
            "counters are totals, summed over domains"
        );
        assert_eq!(s.queued, 4);
        assert_eq!(s.faults, 1 + 5, "faults before attach are not counted");
        assert_eq!(s.domains[&0].worker_faults, 1);
        assert_eq!(s.wait_user_us, 2, "mean over the interval's waits");
        assert_eq!(s.balancer.migrations_node, 2 * 50, "migrations over the interval only");
        let cpus = topology::format_cpu_ranges(&plan.domains[0].cpus);
        assert_eq!(s.domains[&0].cpus, cpus);
        assert_eq!(s.domains[&0].load, 2048 / plan.domains[0].cpus.len() as u64);
    }

    #[test]
    fn json_round_trips_and_text_has_a_row_per_domain() {
        let plan = two_domains();
        let t0 = Instant::now();
        let s = Stats::between(
            &snapshot(t0, 0, 0),
            &snapshot(t0 + Duration::from_secs(1), 10, 0),
            &plan,
            &Snapshot::default(),
        );
        let json = Format::Json.render(&s).expect("json");
        assert!(!json.contains('\n'), "one object per line");
        let back: Stats = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, s);
        let text = Format::Text.render(&s).expect("text");
        assert!(text.starts_with("bpf enqueues: kern=0 user=26 "), "{text}");
        assert_eq!(
            text.lines()
                .filter(|l| l.trim_start().starts_with(char::is_numeric))
                .count(),
            2,
            "{text}"
        );
    }

    #[test]
    fn every_field_is_described() {
        let text = describe().expect("described");
        let json = serde_json::to_value(Stats {
            domains: BTreeMap::from([(0, DomainStats::default())]),
            ..Stats::default()
        })
        .expect("json");
        let mut fields = Vec::new();
        let mut walk = vec![json];
        while let Some(v) = walk.pop() {
            if let serde_json::Value::Object(m) = v {
                for (k, v) in m {
                    if k != "0" {
                        fields.push(k);
                    }
                    walk.push(v);
                }
            }
        }
        for f in fields {
            let line = help_line(&text, &f);
            assert!(line.contains(" : "), "{f} has no description: {line}");
        }
    }

    /// The line of `--help-stats` (`describe`) that describes `field`.
    fn help_line<'a>(text: &'a str, field: &str) -> &'a str {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(field))
            .unwrap_or_else(|| panic!("{field} missing from --help-stats:\n{text}"))
    }

    #[test]
    fn the_limits_the_descriptions_name_are_the_schedulers() {
        // A derive attribute cannot format a constant in: the figures are
        // written out, and this is what keeps them true.
        let secs = |ns: u64| format!("{} s", ns as f64 / 1e9);
        let text = describe().expect("described");
        let line = |f: &str| help_line(&text, f);
        let bpf = secs(crate::vruntime::MAX_DEBTOR_WAIT_NS);
        let user = secs(crate::vruntime::MAX_USER_DEBTOR_WAIT_NS);
        assert!(
            line("overdue").contains(&format!("waited {bpf} ")),
            "{bpf}: {}",
            line("overdue")
        );
        assert!(
            line("user_overdue").contains(&format!("waited {user} ")),
            "{user}: {}",
            line("user_overdue")
        );
    }

    #[test]
    fn the_socket_answers_each_reader_over_its_own_interval() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("stats");
        let server = serve(&path).expect("server");
        let (answer, requests) = server.channels();
        // The main thread's part: each request carries the reader's
        // earlier snapshot; answer with a later one and what it saw.
        let main = std::thread::spawn(move || {
            let mut served = 0u64;
            while let Ok(earlier) = requests.recv_timeout(Duration::from_secs(5)) {
                served += 1;
                let later = Snapshot {
                    heartbeats: served,
                    ..Snapshot::default()
                };
                let stats = Stats {
                    queued: earlier.heartbeats * 100 + served,
                    ..Stats::default()
                };
                if answer.send((later, stats)).is_err() || served == 3 {
                    break;
                }
            }
        });
        let mut client = StatsClient::new().set_path(&path).connect(Some(5000)).expect("connect");
        // Opening starts the interval (request 1), then each answer covers
        // the time since the previous one: earlier = what it last got.
        let a: Stats = client.request("stats", vec![]).expect("first");
        let b: Stats = client.request("stats", vec![]).expect("second");
        assert_eq!(a.queued, 100 + 2);
        assert_eq!(b.queued, 2 * 100 + 3);
        main.join().expect("main thread");
    }

    #[test]
    fn thread_usage_reads_this_thread() {
        let tid = nix::unistd::gettid().as_raw();
        // The kernel folds run time into schedstat at ticks and switches:
        // run through a few ticks first.
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(30) {
            std::hint::spin_loop();
        }
        let u = ThreadUsage::of(tid).expect("our own thread is readable");
        assert!(u.cpu_ns > 0);
        assert_eq!(ThreadUsage::of(0), None);
    }
}
