//! The statistics line printed every --stats-interval: the scx_userland
//! example's counters (BPF enqueues kern/user/failed/total, user-space
//! enqueues/dispatches, tasks queued now) plus, with several domains, one
//! line per domain. Counters are totals since attach, like the example's.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use topology::Plan;

use crate::bpf::{BpfDomainStats, Shared};
use crate::worker::DomainState;

/// Field-wise sums, for totals over domains.
macro_rules! impl_add {
    ($t:ty { $($f:ident),* }) => {
        impl std::ops::Add for $t {
            type Output = $t;
            fn add(self, o: $t) -> $t {
                Self { $($f: self.$f + o.$f),* }
            }
        }
    };
}

impl_add!(BpfDomainStats {
    user_enqueues,
    kernel_enqueues,
    failed,
    dispatches,
    taken,
    stale,
    steals,
    kept_alone,
    kept_last,
    preempts,
    waits,
    wait_user_ns,
    wait_dsq_ns
});
impl_add!(UserDomainStats {
    queued,
    queued_weight,
    received,
    dispatched,
    replaced_stale,
    channel_full,
    malformed,
    migrated_in,
    migrated_out,
    migrated_out_numa
});

/// The mean wait in microseconds of `waits` waits that took `ns` in all.
fn per_wait_us(ns: u64, waits: u64) -> u64 {
    ns / waits.max(1) / 1000
}

/// What the balancer did, for the stats line.
#[derive(Debug, Default)]
pub struct BalanceStats {
    /// Rounds that planned at least one transfer.
    pub active_rounds: AtomicU64,
    /// Of the last active round: the imbalance it saw, and what its plan
    /// would leave if every transfer moved exactly its weight (percent).
    pub imbalance_before_pct: AtomicU64,
    pub imbalance_after_pct: AtomicU64,
}

/// One sample of every counter.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub bpf: Vec<BpfDomainStats>,
    pub user: Vec<UserDomainStats>,
    /// Balancer: active rounds so far, imbalance before and planned after
    /// (percent) of the last active round.
    pub balance: (u64, u64, u64),
    pub heartbeats: u64,
    /// Page faults of the scheduler's threads since attach (expected: 0).
    pub faults: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UserDomainStats {
    pub queued: u64,
    pub queued_weight: u64,
    pub received: u64,
    pub dispatched: u64,
    pub replaced_stale: u64,
    pub channel_full: u64,
    pub malformed: u64,
    pub migrated_in: u64,
    pub migrated_out: u64,
    pub migrated_out_numa: u64,
}

impl Snapshot {
    pub fn take(shared: &Shared, states: &[DomainState], balance: &BalanceStats, plan: &Plan) -> Snapshot {
        let bpf = plan.domains.iter().map(|d| shared.domain_stats(d.id)).collect();
        let user = states
            .iter()
            .map(|s| {
                let rd = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
                UserDomainStats {
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
                }
            })
            .collect();
        let balance = (
            balance.active_rounds.load(Ordering::Relaxed),
            balance.imbalance_before_pct.load(Ordering::Relaxed),
            balance.imbalance_after_pct.load(Ordering::Relaxed),
        );
        Snapshot {
            bpf,
            user,
            balance,
            heartbeats: shared.heartbeats(),
            faults: 0,
        }
    }

    pub fn bpf_total(&self) -> BpfDomainStats {
        self.bpf.iter().fold(BpfDomainStats::default(), |a, b| a + *b)
    }

    pub fn user_total(&self) -> UserDomainStats {
        self.user.iter().fold(UserDomainStats::default(), |a, b| a + *b)
    }

    /// The lines to print; `prev` turns migration totals into per-interval
    /// figures.
    pub fn render(&self, prev: &Snapshot, plan: &Plan) -> String {
        let (k, u, pu) = (self.bpf_total(), self.user_total(), prev.user_total());
        let pk = prev.bpf_total();
        let mut out = String::new();
        let _ = write!(
            out,
            "bpf enqueues: kern={} user={} failed={} total={} alone={} last={} | user space: enqueues={} dispatches={} \
             stale={} queued={} | steals={} preempts={} heartbeats={} faults={} | wait us: user={} dsq={}",
            k.kernel_enqueues,
            k.user_enqueues,
            k.failed,
            k.kernel_enqueues + k.user_enqueues + k.failed,
            k.kept_alone,
            k.kept_last,
            u.received,
            u.dispatched,
            k.stale + u.replaced_stale,
            u.queued,
            k.steals,
            k.preempts,
            self.heartbeats,
            self.faults,
            per_wait_us(k.wait_user_ns - pk.wait_user_ns, k.waits - pk.waits),
            per_wait_us(k.wait_dsq_ns - pk.wait_dsq_ns, k.waits - pk.waits),
        );
        // Never expected: a BPF object built from another intf.h.
        if u.malformed > 0 {
            let _ = write!(out, " | malformed records={}", u.malformed);
        }
        if plan.domains.len() > 1 {
            let moved = u.migrated_out - pu.migrated_out;
            let numa = u.migrated_out_numa - pu.migrated_out_numa;
            let _ = write!(
                out,
                " | migrations: node={} cross-node={}",
                moved.saturating_sub(numa),
                numa
            );
            if self.balance.0 > prev.balance.0 {
                let _ = write!(out, " imbalance: before={}% after={}%", self.balance.1, self.balance.2);
            }
            for (i, d) in plan.domains.iter().enumerate() {
                let (b, s) = (
                    self.bpf.get(i).copied().unwrap_or_default(),
                    self.user.get(i).copied().unwrap_or_default(),
                );
                let load = s.queued_weight / d.cpus.len().max(1) as u64;
                let _ = write!(
                    out,
                    "\n  dom {} cpus {}: queued={} load={} enqueues={} dispatches={} steals={} kern={} in={} out={}",
                    d.id,
                    topology::format_cpu_ranges(&d.cpus),
                    s.queued,
                    load,
                    b.user_enqueues,
                    b.dispatches,
                    b.steals,
                    b.kernel_enqueues,
                    s.migrated_in,
                    s.migrated_out,
                );
            }
        }
        out
    }
}
