//! The statistics line printed every --stats-interval: the scx_userland
//! example's counters (BPF enqueues kern/user/failed/total, user-space
//! enqueues/dispatches, tasks queued now) plus, with several domains, one
//! line per domain. Counters are totals since attach, like the example's.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use topology::Plan;

use crate::bpf::{BpfDomainStats, Shared};
use crate::worker::DomainState;

/// One sample of every counter.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub bpf: Vec<BpfDomainStats>,
    pub user: Vec<UserDomainStats>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UserDomainStats {
    pub queued: u64,
    pub queued_weight: u64,
    pub received: u64,
    pub dispatched: u64,
    pub replaced_stale: u64,
    pub channel_full: u64,
    pub migrated_in: u64,
    pub migrated_out: u64,
    pub migrated_out_numa: u64,
}

impl Snapshot {
    pub fn take(shared: &Shared, states: &[DomainState], plan: &Plan) -> Snapshot {
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
                    migrated_in: rd(&s.migrated_in),
                    migrated_out: rd(&s.migrated_out),
                    migrated_out_numa: rd(&s.migrated_out_numa),
                }
            })
            .collect();
        Snapshot { bpf, user }
    }

    pub fn bpf_total(&self) -> BpfDomainStats {
        self.bpf.iter().fold(BpfDomainStats::default(), |a, b| BpfDomainStats {
            user_enqueues: a.user_enqueues + b.user_enqueues,
            kernel_enqueues: a.kernel_enqueues + b.kernel_enqueues,
            failed: a.failed + b.failed,
            dispatches: a.dispatches + b.dispatches,
            stale: a.stale + b.stale,
            steals: a.steals + b.steals,
            worker_runs: a.worker_runs + b.worker_runs,
        })
    }

    pub fn user_total(&self) -> UserDomainStats {
        self.user
            .iter()
            .fold(UserDomainStats::default(), |a, b| UserDomainStats {
                queued: a.queued + b.queued,
                queued_weight: a.queued_weight + b.queued_weight,
                received: a.received + b.received,
                dispatched: a.dispatched + b.dispatched,
                replaced_stale: a.replaced_stale + b.replaced_stale,
                channel_full: a.channel_full + b.channel_full,
                migrated_in: a.migrated_in + b.migrated_in,
                migrated_out: a.migrated_out + b.migrated_out,
                migrated_out_numa: a.migrated_out_numa + b.migrated_out_numa,
            })
    }

    /// The lines to print; `prev` turns migration totals into per-interval
    /// figures.
    pub fn render(&self, prev: &Snapshot, plan: &Plan) -> String {
        let (k, u, pu) = (self.bpf_total(), self.user_total(), prev.user_total());
        let mut out = String::new();
        let _ = write!(
            out,
            "bpf enqueues: kern={} user={} failed={} total={} | user space: enqueues={} dispatches={} \
             stale={} queued={} | steals={}",
            k.kernel_enqueues,
            k.user_enqueues,
            k.failed,
            k.kernel_enqueues + k.user_enqueues + k.failed,
            u.received,
            u.dispatched,
            k.stale + u.replaced_stale,
            u.queued,
            k.steals,
        );
        if plan.domains.len() > 1 {
            let moved = u.migrated_out - pu.migrated_out;
            let numa = u.migrated_out_numa - pu.migrated_out_numa;
            let _ = write!(out, " | migrations: node={} cross-node={}", moved - numa, numa);
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
