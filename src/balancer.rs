//! Load balancing between domains: the pure algorithm, no threads or I/O.
//!
//! The balancer thread calls [`plan_transfers`] every `--balance-interval-ms`
//! with a snapshot of every domain's queue; each resulting [`Transfer`] is
//! served by the source domain's worker with [`select_migrants`] and
//! [`take_migrants`], and the tasks go to the destination's inbox, where they
//! are `RunQueue::insert`ed. This module decides; it moves nothing itself.
//!
//! # Load
//!
//! A domain's load is the weight waiting in its queue per CPU,
//! `queued_weight * 1024 / nr_cpus`, in integers (the 1024 keeps a fraction
//! of a weight unit per CPU). Weight, not task count: a nice -20 task
//! (weight 8668) is worth ~87 nice-0 tasks to the CPUs that must serve
//! it. Per CPU, because an 8-CPU LLC drains a queue four times as fast as a
//! 2-CPU one. The average is the same quantity for the whole machine,
//! `sum(queued_weight) * 1024 / sum(nr_cpus)`: the load every domain would
//! have if the waiting weight were spread perfectly. A domain with no CPUs
//! can run nothing, so it neither counts towards the average nor sends or
//! receives load.
//!
//! # Who pushes, to whom, how much
//!
//! ```text
//!   load/CPU
//!     │  ██
//!     │  ██                 ── numa threshold: avg × (100+numa_imbalance_pct)%
//!     │  ██  ██             ── local threshold: avg × (100+imbalance_pct)%
//!  avg├──██──██──────██───────────────── surplus = weight above avg  (pusher)
//!     │  ██  ██  ██  ██  ██               deficit = weight below avg (receiver)
//!     │  ██  ██  ██  ██  ██  ██
//!     └──d0──d1──d2──d3──d4──d5──
//!        node 0      │ node 1
//! ```
//!
//! - A domain pushes only when its load exceeds the average by more than
//!   `imbalance_pct` (strictly). Below that the difference is noise: the
//!   snapshot is already stale by the time the move lands, and a migration
//!   costs the task its cache.
//! - A domain receives only while it is below the average. A pusher sends its
//!   *surplus* (the weight above the average, but no more than its
//!   `movable_weight`: the head task never moves, so a domain with one
//!   queued task plans nothing) and no receiver is planned past
//!   its *deficit* (the weight below the average), so a plan, executed
//!   exactly, leaves nobody on the other side of the average. Deficits are
//!   shared: two pushers never fill the same hole twice.
//! - Pushers are served most loaded first. Each fills receivers on its own
//!   NUMA node first, least loaded first, and only then, if its load also
//!   exceeds the average by `numa_imbalance_pct`, receivers on other nodes.
//!   Two domains are on different nodes only when both know their node and
//!   the nodes differ: a machine without NUMA information, or a domain that
//!   spans nodes, pays no NUMA premium, since we cannot tell it would help.
//! - A round plans at most `max_moves_per_round` transfers (each moves at
//!   least one task or nothing) and splits that budget between them
//!   (`Transfer::max_tasks`: one each, the rest in proportion to weight).
//!   The caller passes it to `select_migrants`, so a round moves at most
//!   `max_moves_per_round` tasks in total without any shared counter
//!   between the workers serving the transfers.
//!
//! Known limit: the plan knows loads, not tasks. A pusher's surplus is
//! handed to receivers in preference order as if every transfer succeeded;
//! if the first receiver can take none of its tasks (all pinned elsewhere,
//! or all too heavy to help), that surplus is not offered to the next one,
//! and the same snapshot gives the same plan next round. Knowing which
//! domains a pusher's queued tasks may go to (the union of their masks)
//! would let the plan skip such receivers.
//!
//! Why a higher threshold across nodes: a task moved inside a node loses its
//! LLC contents, which it refills in microseconds. A task moved across nodes
//! also leaves its memory behind; every access is remote (roughly 1.5-2x the
//! latency) until the kernel's NUMA balancing migrates its pages, which takes
//! seconds. Only a larger imbalance, and thus a longer wait avoided, pays
//! for that.
//!
//! # Which tasks move
//!
//! [`select_migrants`] walks the source queue from the back of the vruntime
//! order (the tasks that would be dispatched last here) towards the front:
//!
//! ```text
//!   front (next to run)                          back (runs last)
//!   [ head | t1 | t2 | t3 | t4 | t5 | t6 ]
//!     never    ◀───────── scanned in this direction ─────────
//!     moved
//! ```
//!
//! - The back is the wait we save the most of: those tasks would wait behind
//!   every other queued task. Cache warmth is not observable from a queued
//!   task (there is no last-ran timestamp), but a task at the back would find
//!   its LLC lines evicted by everything that ran ahead of it anyway, so it
//!   loses the least by moving. The front task is about to be dispatched by
//!   the source worker, so picking it also races with that dispatch.
//! - The head (the lowest vruntime) is never moved, so the source always
//!   keeps work for the CPU that frees up next: its wait here is at most one
//!   slice, and no transfer can starve the domain it is relieving. A domain
//!   with one queued task therefore never pushes it.
//! - Only tasks whose `allowed` mask contains the destination.
//! - A task is taken only if its weight is less than twice the weight still
//!   to move, i.e. if taking it brings the pair closer to balance than
//!   leaving it (|remaining - w| < remaining). Lighter tasks further forward
//!   are still considered when a heavy one is skipped. Selection stops once
//!   the budget is met, so only the last task can overshoot, and by less
//!   than the budget it had left: a transfer never flips the pair into a
//!   worse imbalance the other way, which is what would make loads
//!   ping-pong between rounds.
//! - At most `max_tasks` tasks.
//!
//! # Vruntime
//!
//! Each domain's vruntimes are on its own clock (the front of its runnable
//! tasks, see vruntime.rs). [`take_migrants`] carries each task's lag
//! (vruntime minus the source's clock, of either sign, within the sleeper
//! credit and debt bounds) to the destination clock with
//! `Vruntime::renormalise`: a task 3 ms behind its turn in the source is 3 ms
//! behind its turn in the destination. It gains no credit by moving (it
//! cannot jump ahead of tasks that waited there) and loses none (it is not
//! sent to the back of a long queue).
//!
//! # Defaults
//!
//! - `imbalance_pct = 25`: on a 4-CPU LLC one extra nice-0 task is exactly
//!   25%; a one-task difference is not worth a cache refill, two are.
//! - `numa_imbalance_pct = 50`: twice the local threshold, for the remote
//!   memory cost above; a node must carry half again the average before its
//!   tasks are sent away from their memory.
//! - `max_moves_per_round = 32`: bounds how long a worker spends serving one
//!   request and how much cache one round can throw away when the snapshot
//!   was a transient spike; at the default 20 ms interval it still allows
//!   1600 migrations per second, enough to drain a burst in a few rounds.
//!
//! # Invariants
//!
//! - A task is in exactly one queue, or in flight to exactly one worker:
//!   `take_migrants` removes each task from the source before returning it,
//!   returns each pid at most once, and skips pids no longer queued (already
//!   dispatched). `select_migrants` picks each pid at most once.
//! - No task moves to a domain outside its `allowed` mask.
//! - The tasks that stay keep their relative vruntime order: only removals
//!   happen in the source, and insertions in the destination keep their
//!   keys, so the order of the tasks already there is unchanged too.
//! - A migrant's lag against the destination clock equals its lag against
//!   the source clock (up to saturation at `u64::MAX`).
//! - A round moves at most `max_moves_per_round` tasks.
//! - Integer math only, nothing data-dependent can panic: loads are computed
//!   in u128 with saturating arithmetic, and a domain with 0 CPUs is ignored.

use topology::DomainId;

use crate::queue::RunQueue;
use crate::task::{Pid, QueuedTask};
use crate::vruntime::Vruntime;

/// Fixed-point scale of a load: queued weight per CPU, times this.
const LOAD_SCALE: u128 = 1024;

/// Tunables of the balancer; see the module doc for the defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BalanceConfig {
    /// A domain pushes to a same-node domain when its load exceeds the
    /// average by more than this percentage.
    pub imbalance_pct: u32,
    /// The same, to a domain on another NUMA node.
    pub numa_imbalance_pct: u32,
    /// Tasks moved per round, over all transfers.
    pub max_moves_per_round: usize,
}

impl Default for BalanceConfig {
    fn default() -> BalanceConfig {
        BalanceConfig {
            imbalance_pct: 25,
            numa_imbalance_pct: 50,
            max_moves_per_round: 32,
        }
    }
}

/// One domain as the balancer sees it at the start of a round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DomainLoad {
    pub id: DomainId,
    /// None if the domain spans nodes or the machine has no NUMA information.
    pub numa_node: Option<u32>,
    pub nr_cpus: u32,
    pub queued_weight: u64,
    /// The part of `queued_weight` that may leave: all but the head task's
    /// (see "Which tasks move").
    pub movable_weight: u64,
}

/// "Move about `weight` of queued load from `from` to `to`."
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transfer {
    pub from: DomainId,
    pub to: DomainId,
    pub weight: u64,
    pub cross_numa: bool,
    /// This transfer's share of `max_moves_per_round`, for
    /// `select_migrants`: the shares of a plan sum to at most the cap.
    pub max_tasks: usize,
}

/// How far the most loaded domain is above the average load, in percent
/// (0 when nothing is queued): the figure the thresholds are compared to.
pub fn imbalance_pct(loads: &[DomainLoad]) -> u64 {
    let usable = || loads.iter().filter(|d| d.nr_cpus > 0);
    let total_weight: u128 = usable().map(|d| u128::from(d.queued_weight)).sum();
    let total_cpus: u128 = usable().map(|d| u128::from(d.nr_cpus)).sum();
    let avg = total_weight.saturating_mul(LOAD_SCALE) / total_cpus.max(1);
    let max = usable()
        .map(|d| u128::from(d.queued_weight).saturating_mul(LOAD_SCALE) / u128::from(d.nr_cpus))
        .max()
        .unwrap_or(0);
    if avg == 0 {
        return 0;
    }
    u64::try_from(max.saturating_sub(avg).saturating_mul(100) / avg).unwrap_or(u64::MAX)
}

/// The loads a plan would leave if every transfer moved exactly its weight.
pub fn loads_after(loads: &[DomainLoad], plan: &[Transfer]) -> Vec<DomainLoad> {
    let mut after = loads.to_vec();
    for t in plan {
        if let Some(d) = after.iter_mut().find(|d| d.id == t.from) {
            d.queued_weight = d.queued_weight.saturating_sub(t.weight);
        }
        if let Some(d) = after.iter_mut().find(|d| d.id == t.to) {
            d.queued_weight = d.queued_weight.saturating_add(t.weight);
        }
    }
    after
}

/// Whether a move between the two nodes leaves the task's memory behind.
fn crosses_numa(a: Option<u32>, b: Option<u32>) -> bool {
    matches!((a, b), (Some(a), Some(b)) if a != b)
}

/// Whether `load` exceeds `avg` by more than `pct` percent.
fn above(load: u128, avg: u128, pct: u32) -> bool {
    load.saturating_mul(100) > avg.saturating_mul(100 + u128::from(pct))
}

struct Side {
    id: DomainId,
    node: Option<u32>,
    load: u128,
    /// Weight above (pusher) or below (receiver) the average, scaled.
    room: u128,
}

/// Plans this round's transfers; see the module doc for the rules. Returns at
/// most `cfg.max_moves_per_round` transfers, each with `from != to` and a
/// weight of at least 1.
pub fn plan_transfers(loads: &[DomainLoad], cfg: &BalanceConfig) -> Vec<Transfer> {
    let mut plan = Vec::new();
    let usable = || loads.iter().filter(|d| d.nr_cpus > 0);
    if cfg.max_moves_per_round == 0 || usable().count() < 2 {
        return plan;
    }
    let total_weight: u128 = usable().map(|d| u128::from(d.queued_weight)).sum();
    let total_cpus: u128 = usable().map(|d| u128::from(d.nr_cpus)).sum();
    let avg = total_weight.saturating_mul(LOAD_SCALE) / total_cpus.max(1);

    let mut pushers = Vec::new();
    let mut receivers = Vec::new();
    for d in usable() {
        let cpus = u128::from(d.nr_cpus);
        let have = u128::from(d.queued_weight).saturating_mul(LOAD_SCALE);
        let fair = avg.saturating_mul(cpus);
        let side = |room| Side {
            id: d.id,
            node: d.numa_node,
            load: have / cpus,
            room,
        };
        if above(have / cpus, avg, cfg.imbalance_pct) {
            let movable = u128::from(d.movable_weight.min(d.queued_weight)).saturating_mul(LOAD_SCALE);
            let surplus = have.saturating_sub(fair).min(movable);
            if surplus >= LOAD_SCALE {
                pushers.push(side(surplus));
            }
        } else if have < fair {
            receivers.push(side(fair - have));
        }
    }
    // Ties broken by id so that the same snapshot always gives the same plan.
    pushers.sort_by(|a, b| b.load.cmp(&a.load).then(a.id.cmp(&b.id)));
    receivers.sort_by(|a, b| a.load.cmp(&b.load).then(a.id.cmp(&b.id)));

    for p in &mut pushers {
        let may_cross = above(p.load, avg, cfg.numa_imbalance_pct);
        for cross in [false, true] {
            if cross && !may_cross {
                break;
            }
            for r in receivers.iter_mut().filter(|r| crosses_numa(p.node, r.node) == cross) {
                let weight = p.room.min(r.room) / LOAD_SCALE;
                if weight == 0 {
                    continue;
                }
                p.room -= weight * LOAD_SCALE;
                r.room -= weight * LOAD_SCALE;
                plan.push(Transfer {
                    from: p.id,
                    to: r.id,
                    weight: u64::try_from(weight).unwrap_or(u64::MAX),
                    cross_numa: cross,
                    max_tasks: 1,
                });
                if plan.len() >= cfg.max_moves_per_round {
                    share_moves(&mut plan, cfg.max_moves_per_round);
                    return plan;
                }
                if p.room < LOAD_SCALE {
                    break;
                }
            }
        }
    }
    share_moves(&mut plan, cfg.max_moves_per_round);
    plan
}

/// Splits the round's task budget between transfers: one task each (the
/// plan never has more transfers than the budget), the rest in proportion to
/// weight, since a heavier transfer needs more tasks. Workers serve their
/// requests concurrently, so a running total cannot be kept; fixed shares
/// keep the round within the cap without one.
fn share_moves(plan: &mut [Transfer], max_moves: usize) {
    let spare = u128::try_from(max_moves.saturating_sub(plan.len())).unwrap_or(u128::MAX);
    let total: u128 = plan.iter().map(|t| u128::from(t.weight)).sum();
    for t in plan.iter_mut() {
        let extra = spare.saturating_mul(u128::from(t.weight)) / total.max(1);
        t.max_tasks = usize::try_from(extra).unwrap_or(usize::MAX).saturating_add(1);
    }
}

/// Picks the queued tasks of `queue` to move to `to` for a transfer of
/// `weight`: from the back of the vruntime order, never the head, only tasks
/// allowed in `to`, each lighter than twice the weight still to move, at
/// most `max_tasks`. Clears `out` and writes the pids there, back first; no
/// allocation once `out` has grown to `max_tasks`.
pub fn select_migrants(queue: &RunQueue, to: DomainId, weight: u64, max_tasks: usize, out: &mut Vec<Pid>) {
    out.clear();
    let mut left = weight;
    let not_head = queue.len().saturating_sub(1);
    for t in queue.iter().rev().take(not_head) {
        if left == 0 || out.len() >= max_tasks {
            break;
        }
        let w = u64::from(t.weight.get());
        if !t.allowed.contains(to) || w >= left.saturating_mul(2) {
            continue;
        }
        out.push(t.pid);
        left = left.saturating_sub(w);
    }
}

/// Removes `pids` from `src` and returns them in `out` (cleared first), each
/// vruntime carried from `src`'s clock to `dst_clock` with its lag kept,
/// ready for `RunQueue::insert` on the destination. Pids no longer queued
/// (dispatched since selection) are skipped.
pub fn take_migrants(src: &mut RunQueue, pids: &[Pid], dst_clock: Vruntime, out: &mut Vec<QueuedTask>) {
    out.clear();
    let src_clock = src.clock();
    for &pid in pids {
        if let Some(t) = src.remove(pid) {
            out.push(QueuedTask {
                vruntime: t.vruntime.renormalise(src_clock, dst_clock, src.max_debt()),
                ..t
            });
        }
    }
}

#[cfg(test)]
mod imbalance_tests {
    use super::*;

    fn load(id: u32, cpus: u32, weight: u64) -> DomainLoad {
        DomainLoad {
            id: DomainId(id),
            numa_node: Some(0),
            nr_cpus: cpus,
            queued_weight: weight,
            movable_weight: weight,
        }
    }

    #[test]
    fn imbalance_is_the_peak_above_the_average() {
        assert_eq!(imbalance_pct(&[load(0, 2, 0), load(1, 2, 0)]), 0);
        assert_eq!(imbalance_pct(&[load(0, 2, 400), load(1, 2, 0)]), 100);
        assert_eq!(imbalance_pct(&[load(0, 2, 300), load(1, 2, 100)]), 50);
        assert_eq!(imbalance_pct(&[load(0, 4, 400), load(1, 1, 100)]), 0, "per CPU");
    }

    #[test]
    fn a_plan_executed_exactly_reduces_the_imbalance() {
        let loads = [load(0, 2, 800), load(1, 2, 0), load(2, 2, 100), load(3, 2, 100)];
        let plan = plan_transfers(&loads, &BalanceConfig::default());
        assert!(!plan.is_empty());
        let after = loads_after(&loads, &plan);
        assert!(imbalance_pct(&after) < imbalance_pct(&loads));
        let total = |l: &[DomainLoad]| l.iter().map(|d| d.queued_weight).sum::<u64>();
        assert_eq!(total(&after), total(&loads));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::{DomainMask, EnqueueSeq, Monotonic};
    use crate::vruntime::Weight;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn task(pid: i32, vruntime: u64, weight: u32, allowed: DomainMask) -> QueuedTask {
        QueuedTask {
            pid: Pid(pid),
            seq: EnqueueSeq(pid as u64),
            vruntime: Vruntime(vruntime),
            charged_exec_runtime: 0,
            weight: Weight::new(weight),
            allowed,
            queued_at: Monotonic::default(),
        }
    }

    fn dom(id: u32, node: Option<u32>, nr_cpus: u32, queued_weight: u64) -> DomainLoad {
        DomainLoad {
            id: DomainId(id),
            numa_node: node,
            nr_cpus,
            queued_weight,
            movable_weight: queued_weight,
        }
    }

    /// An empty queue whose clock is at `clock`.
    fn queue_at(clock: u64) -> RunQueue {
        let mut q = RunQueue::with_capacity(64);
        q.advance_clock(Vruntime(clock));
        q
    }

    fn pids(q: &RunQueue) -> Vec<i32> {
        q.iter().map(|t| t.pid.0).collect()
    }

    fn load_of(d: &DomainLoad) -> u128 {
        u128::from(d.queued_weight) * LOAD_SCALE / u128::from(d.nr_cpus)
    }

    fn average(loads: &[DomainLoad]) -> u128 {
        let w: u128 = loads.iter().map(|d| u128::from(d.queued_weight)).sum();
        let c: u128 = loads.iter().map(|d| u128::from(d.nr_cpus)).sum();
        w * LOAD_SCALE / c
    }

    // ---- plan_transfers -------------------------------------------------

    #[test]
    fn one_domain_plans_nothing() {
        let cfg = BalanceConfig::default();
        assert!(plan_transfers(&[dom(0, Some(0), 4, 1_000_000)], &cfg).is_empty());
        assert!(plan_transfers(&[], &cfg).is_empty());
    }

    #[test]
    fn balanced_load_plans_nothing() {
        let cfg = BalanceConfig::default();
        let loads = [
            dom(0, Some(0), 2, 200),
            dom(1, Some(0), 8, 800),
            dom(2, Some(1), 4, 400),
        ];
        assert!(plan_transfers(&loads, &cfg).is_empty());
        // 25% above average exactly is still within the threshold.
        let loads = [dom(0, Some(0), 4, 500), dom(1, Some(0), 4, 300)];
        assert!(plan_transfers(&loads, &cfg).is_empty());
    }

    #[test]
    fn pushes_surplus_to_the_average() {
        let cfg = BalanceConfig::default();
        let loads = [dom(0, Some(0), 4, 1_000), dom(1, Some(0), 4, 0)];
        assert_eq!(
            plan_transfers(&loads, &cfg),
            [Transfer {
                from: DomainId(0),
                to: DomainId(1),
                weight: 500,
                cross_numa: false,
                max_tasks: 32,
            }]
        );
    }

    #[test]
    fn load_is_per_cpu() {
        let cfg = BalanceConfig::default();
        // Same weight, but domain 1 has four times the CPUs: average per CPU
        // is 200, domain 0 is at 800, domain 1 at 50.
        let loads = [dom(0, None, 1, 800), dom(1, None, 4, 200)];
        let plan = plan_transfers(&loads, &cfg);
        assert_eq!(plan.len(), 1);
        assert_eq!(plan[0].weight, 600);
        assert_eq!(plan[0].to, DomainId(1));
    }

    #[test]
    fn prefers_same_node_receivers() {
        let cfg = BalanceConfig::default();
        // Domain 2 (other node) is emptier, but domain 1 shares the node.
        let loads = [
            dom(0, Some(0), 4, 4_000),
            dom(1, Some(0), 4, 1_000),
            dom(2, Some(1), 4, 0),
        ];
        let plan = plan_transfers(&loads, &cfg);
        assert_eq!(plan[0].to, DomainId(1));
        assert!(!plan[0].cross_numa);
        assert!(plan[1..].iter().all(|t| t.to == DomainId(2) && t.cross_numa));
    }

    #[test]
    fn crossing_nodes_needs_the_numa_threshold() {
        let cfg = BalanceConfig::default();
        // Average 500: domain 0 is 40% above, past 25% but not 50%.
        let loads = [dom(0, Some(0), 4, 2_800), dom(1, Some(1), 4, 1_200)];
        assert!(plan_transfers(&loads, &cfg).is_empty());
        // Without NUMA information the local threshold applies.
        let loads = [dom(0, None, 4, 2_800), dom(1, Some(1), 4, 1_200)];
        assert_eq!(plan_transfers(&loads, &cfg).len(), 1);
        // 60% above crosses.
        let loads = [dom(0, Some(0), 4, 3_200), dom(1, Some(1), 4, 800)];
        let plan = plan_transfers(&loads, &cfg);
        assert_eq!(plan.len(), 1);
        assert!(plan[0].cross_numa);
        assert_eq!(plan[0].weight, 1_200);
    }

    #[test]
    fn receivers_are_not_filled_twice() {
        let cfg = BalanceConfig::default();
        // Two pushers 1000 above average, one hole of 1000 and one of 1000.
        let loads = [
            dom(0, None, 1, 2_000),
            dom(1, None, 1, 2_000),
            dom(2, None, 1, 0),
            dom(3, None, 1, 0),
        ];
        let plan = plan_transfers(&loads, &cfg);
        let mut into = BTreeMap::new();
        for t in &plan {
            *into.entry(t.to).or_insert(0) += t.weight;
        }
        assert_eq!(into.get(&DomainId(2)), Some(&1_000));
        assert_eq!(into.get(&DomainId(3)), Some(&1_000));
    }

    #[test]
    fn zero_cpu_domains_are_ignored() {
        let cfg = BalanceConfig::default();
        let loads = [dom(0, None, 0, 5_000), dom(1, None, 2, 100)];
        assert!(plan_transfers(&loads, &cfg).is_empty());
        let loads = [dom(0, None, 0, 0), dom(1, None, 2, 1_000), dom(2, None, 2, 0)];
        let plan = plan_transfers(&loads, &cfg);
        assert!(plan.iter().all(|t| t.from != DomainId(0) && t.to != DomainId(0)));
        assert_eq!(plan.len(), 1);
    }

    #[test]
    fn extreme_values_do_not_panic() {
        let cfg = BalanceConfig {
            imbalance_pct: u32::MAX,
            numa_imbalance_pct: 0,
            max_moves_per_round: usize::MAX,
        };
        let loads = [
            dom(0, Some(0), u32::MAX, u64::MAX),
            dom(1, Some(1), 1, u64::MAX),
            dom(2, Some(2), 1, 0),
        ];
        let _ = plan_transfers(&loads, &cfg);
        let cfg = BalanceConfig {
            imbalance_pct: 0,
            ..cfg
        };
        assert!(!plan_transfers(&loads, &cfg).is_empty());
    }

    #[test]
    fn a_pusher_plans_no_more_than_it_can_move() {
        let cfg = BalanceConfig::default();
        // One queued task, its head: nothing can leave, however idle the rest.
        let mut loads = vec![
            DomainLoad {
                movable_weight: 0,
                ..dom(0, None, 2, 100)
            },
            dom(1, None, 2, 0),
            dom(2, None, 2, 0),
        ];
        assert!(plan_transfers(&loads, &cfg).is_empty());
        // Three tasks: the two behind the head, not the full surplus of 200.
        loads[0].queued_weight = 300;
        loads[0].movable_weight = 200;
        loads[0].nr_cpus = 1;
        let plan = plan_transfers(&loads, &cfg);
        assert_eq!(plan.iter().map(|t| t.weight).sum::<u64>(), 200);
        loads[0].movable_weight = 150;
        let plan = plan_transfers(&loads, &cfg);
        assert_eq!(plan.iter().map(|t| t.weight).sum::<u64>(), 150);
    }

    #[test]
    fn plan_respects_max_moves() {
        let cfg = BalanceConfig {
            max_moves_per_round: 2,
            ..BalanceConfig::default()
        };
        let mut loads = vec![dom(0, None, 1, 100_000)];
        loads.extend((1..6).map(|i| dom(i, None, 1, 0)));
        let plan = plan_transfers(&loads, &cfg);
        assert_eq!(plan.len(), 2);
        assert!(plan.iter().all(|t| t.max_tasks == 1));
        let cfg = BalanceConfig {
            max_moves_per_round: 0,
            ..cfg
        };
        assert!(plan_transfers(&loads, &cfg).is_empty());
    }

    // ---- select_migrants / take_migrants --------------------------------

    #[test]
    fn selects_from_the_back_and_keeps_the_head() {
        let mut q = RunQueue::with_capacity(8);
        for pid in 1..=4 {
            q.insert(task(pid, pid as u64 * 10, 100, DomainMask::all(2)));
        }
        let mut out = Vec::new();
        select_migrants(&q, DomainId(1), 10_000, 10, &mut out);
        assert_eq!(out, [Pid(4), Pid(3), Pid(2)], "the head (pid 1) stays");
        select_migrants(&q, DomainId(1), 160, 10, &mut out);
        assert_eq!(out, [Pid(4), Pid(3)], "overshoots by one task at most");
        select_migrants(&q, DomainId(1), 150, 10, &mut out);
        assert_eq!(out, [Pid(4)], "100 more would leave 50 the other way: no better");
        select_migrants(&q, DomainId(1), 10_000, 1, &mut out);
        assert_eq!(out, [Pid(4)], "max_tasks");
    }

    #[test]
    fn a_single_task_is_never_selected() {
        let mut q = RunQueue::with_capacity(8);
        q.insert(task(1, 0, 100, DomainMask::all(2)));
        let mut out = vec![Pid(99)];
        select_migrants(&q, DomainId(1), 1_000, 10, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn respects_affinity_and_skips_tasks_too_heavy_to_help() {
        let mut q = RunQueue::with_capacity(8);
        q.insert(task(1, 0, 100, DomainMask::all(3)));
        q.insert(task(2, 10, 100, DomainMask::all(3)));
        q.insert(task(3, 20, 5_000, DomainMask::all(3)));
        q.insert(task(4, 30, 100, DomainMask::only(DomainId(0))));
        let mut out = Vec::new();
        // 5000 >= 2 * 300: moving it would leave the pair worse off.
        select_migrants(&q, DomainId(2), 300, 10, &mut out);
        assert_eq!(out, [Pid(2)]);
        select_migrants(&q, DomainId(2), 3_000, 10, &mut out);
        assert_eq!(out, [Pid(3)], "an improving overshoot is allowed, then stop");
        select_migrants(&q, DomainId(0), 300, 10, &mut out);
        assert_eq!(out, [Pid(4), Pid(2)], "pinned pid 4 may go to its own domain");
    }

    #[test]
    fn take_renormalises_and_skips_missing() {
        let mut src = queue_at(1_000);
        src.insert(task(1, 1_000, 100, DomainMask::all(2)));
        src.insert(task(2, 1_300, 100, DomainMask::all(2)));
        src.insert(task(3, 1_700, 100, DomainMask::all(2)));
        let mut out = Vec::new();
        take_migrants(&mut src, &[Pid(3), Pid(42), Pid(2)], Vruntime(50), &mut out);
        assert_eq!(
            out.iter().map(|t| (t.pid.0, t.vruntime.0)).collect::<Vec<_>>(),
            [(3, 750), (2, 350)]
        );
        assert_eq!(pids(&src), [1]);
        assert_eq!(src.queued_weight(), 100);
        // Taking again finds nothing: a task is handed out once.
        take_migrants(&mut src, &[Pid(3)], Vruntime(50), &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn migrants_slot_in_by_lag_at_the_destination() {
        let mut src = queue_at(10_000);
        let mut dst = queue_at(500);
        for (pid, v) in [(1, 10_000), (2, 10_200), (3, 10_900)] {
            src.insert(task(pid, v, 100, DomainMask::all(2)));
        }
        for (pid, v) in [(11, 600), (12, 1_000)] {
            dst.insert(task(pid, v, 100, DomainMask::all(2)));
        }
        let mut picked = Vec::new();
        let mut moving = Vec::new();
        select_migrants(&src, DomainId(1), 200, 10, &mut picked);
        take_migrants(&mut src, &picked, dst.clock(), &mut moving);
        for t in moving.drain(..) {
            dst.insert(t);
        }
        // pids 3 and 2 had lags 900 and 200: 1400 and 700 on the new clock.
        assert_eq!(pids(&dst), [11, 2, 12, 3]);
        assert_eq!(pids(&src), [1]);
    }

    // ---- simulation -----------------------------------------------------

    #[derive(Debug)]
    struct World {
        cpus: Vec<u32>,
        nodes: Vec<Option<u32>>,
        queues: Vec<RunQueue>,
    }

    #[derive(Debug, Clone)]
    struct Spec {
        domains: Vec<(u32, Option<u32>, u64)>,
        /// (weight, home, mask kind, mask bits, lag)
        tasks: Vec<(u32, usize, u8, u64, u64)>,
    }

    fn spec() -> impl Strategy<Value = Spec> {
        let domain = (1u32..=16, prop::option::weighted(0.8, 0u32..3), 0u64..1_000_000_000);
        let task = (1u32..=10_000, any::<usize>(), 0u8..3, any::<u64>(), 0u64..10_000_000);
        (prop::collection::vec(domain, 1..=8), prop::collection::vec(task, 0..48))
            .prop_map(|(domains, tasks)| Spec { domains, tasks })
    }

    fn build(s: &Spec) -> World {
        let n = s.domains.len();
        let mut w = World {
            cpus: s.domains.iter().map(|d| d.0).collect(),
            nodes: s.domains.iter().map(|d| d.1).collect(),
            queues: s.domains.iter().map(|d| queue_at(d.2)).collect(),
        };
        for (i, &(weight, home, kind, bits, lag)) in s.tasks.iter().enumerate() {
            let home = home % n;
            let home_id = DomainId(home as u32);
            let allowed = match kind {
                0 => DomainMask::only(home_id),
                1 => DomainMask::all(n),
                _ => DomainMask((bits & DomainMask::all(n).0) | DomainMask::only(home_id).0),
            };
            let clock = w.queues[home].clock().0;
            w.queues[home].insert(task(i as i32 + 1, clock + lag, weight, allowed));
        }
        w
    }

    fn loads(w: &World) -> Vec<DomainLoad> {
        (0..w.queues.len())
            .map(|i| dom(i as u32, w.nodes[i], w.cpus[i], w.queues[i].queued_weight()))
            .collect()
    }

    fn all_pids(w: &World) -> Vec<i32> {
        let mut all: Vec<i32> = w.queues.iter().flat_map(pids).collect();
        all.sort_unstable();
        all
    }

    /// Tasks `select_migrants` may take for transfer `t` (ignoring the
    /// count): the definition of a legal move.
    fn movable(w: &World, t: &Transfer) -> Vec<Pid> {
        let q = &w.queues[t.from.0 as usize];
        q.iter()
            .skip(1)
            .filter(|x| x.allowed.contains(t.to) && u64::from(x.weight.get()) < t.weight.saturating_mul(2))
            .map(|x| x.pid)
            .collect()
    }

    /// Runs one round the way the balancer thread and the workers do, and
    /// checks every per-move invariant. Returns how many tasks moved.
    fn round(w: &mut World, cfg: &BalanceConfig) -> Result<usize, TestCaseError> {
        let plan = plan_transfers(&loads(w), cfg);
        prop_assert!(plan.len() <= cfg.max_moves_per_round);
        let before: Vec<Vec<i32>> = w.queues.iter().map(pids).collect();
        let mut budget = cfg.max_moves_per_round;
        let mut picked = Vec::new();
        let mut moving = Vec::new();
        for t in &plan {
            prop_assert_ne!(t.from, t.to);
            prop_assert!(t.weight > 0);
            let (src, dst) = (t.from.0 as usize, t.to.0 as usize);
            prop_assert_eq!(t.cross_numa, crosses_numa(w.nodes[src], w.nodes[dst]));
            prop_assert!(t.max_tasks >= 1);
            select_migrants(&w.queues[src], t.to, t.weight, t.max_tasks, &mut picked);
            prop_assert!(picked.len() <= t.max_tasks);
            prop_assert!(picked.len() <= budget, "round over its cap");

            // Overshoot by one task at most, and by less than what was left.
            let weights: Vec<u64> = picked
                .iter()
                .map(|p| {
                    w.queues[src]
                        .iter()
                        .find(|x| x.pid == *p)
                        .map_or(0, |x| u64::from(x.weight.get()))
                })
                .collect();
            let total: u64 = weights.iter().sum();
            if let Some(last) = weights.last() {
                let before_last = total - last;
                prop_assert!(before_last < t.weight);
                prop_assert!(*last < 2 * (t.weight - before_last));
            }

            let src_clock = w.queues[src].clock();
            let dst_clock = w.queues[dst].clock();
            let lags: BTreeMap<Pid, i64> = w.queues[src]
                .iter()
                .filter(|x| picked.contains(&x.pid))
                .map(|x| (x.pid, x.vruntime.lag(src_clock)))
                .collect();
            take_migrants(&mut w.queues[src], &picked, dst_clock, &mut moving);
            prop_assert_eq!(moving.len(), picked.len());
            for m in moving.drain(..) {
                prop_assert!(m.allowed.contains(t.to), "pid {} moved outside its mask", m.pid);
                prop_assert_eq!(Some(&m.vruntime.lag(dst_clock)), lags.get(&m.pid));
                w.queues[dst].insert(m);
            }
            budget -= picked.len();
        }

        // Whoever stayed (in the source or the destination) kept its order.
        for (q, old) in w.queues.iter().zip(&before) {
            let now = pids(q);
            let stayed: Vec<i32> = old.iter().copied().filter(|p| now.contains(p)).collect();
            let kept: Vec<i32> = now.iter().copied().filter(|p| old.contains(p)).collect();
            prop_assert_eq!(stayed, kept);
        }
        Ok(cfg.max_moves_per_round - budget)
    }

    fn check_world(w: &World, start: &[i32]) -> Result<(), TestCaseError> {
        prop_assert_eq!(all_pids(w), start, "tasks lost or duplicated");
        for (d, q) in w.queues.iter().enumerate() {
            for t in q.iter() {
                prop_assert!(t.allowed.contains(DomainId(d as u32)), "pid {} in domain {}", t.pid, d);
            }
        }
        Ok(())
    }

    fn within_threshold(l: &[DomainLoad], cfg: &BalanceConfig) -> bool {
        let avg = average(l);
        l.iter().all(|d| !above(load_of(d), avg, cfg.imbalance_pct))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// Within 2 * domains + 2 rounds every domain is within the
        /// threshold of the average, or no legal move remains: for every
        /// transfer the planner proposes, the source holds no task other
        /// than its head that is allowed in the destination and lighter than
        /// twice the transfer (so another round would move nothing).
        #[test]
        fn converges_conserving_tasks(s in spec()) {
            let cfg = BalanceConfig { max_moves_per_round: 1_000, ..BalanceConfig::default() };
            let mut w = build(&s);
            let start = all_pids(&w);
            check_world(&w, &start)?;
            for _ in 0..2 * w.queues.len() + 2 {
                round(&mut w, &cfg)?;
                check_world(&w, &start)?;
            }
            let l = loads(&w);
            if !within_threshold(&l, &cfg) {
                for t in plan_transfers(&l, &cfg) {
                    prop_assert!(movable(&w, &t).is_empty(), "legal move left: {:?} {:?}", t, movable(&w, &t));
                }
                prop_assert_eq!(round(&mut w, &cfg)?, 0);
            }
        }

        /// The default per-round cap holds, and small caps too.
        #[test]
        fn a_round_moves_at_most_the_cap(s in spec(), cap in 0usize..6) {
            let cfg = BalanceConfig { max_moves_per_round: cap, ..BalanceConfig::default() };
            let mut w = build(&s);
            let start = all_pids(&w);
            for _ in 0..4 {
                prop_assert!(round(&mut w, &cfg)? <= cap);
                check_world(&w, &start)?;
            }
            let mut w = build(&s);
            prop_assert!(round(&mut w, &BalanceConfig::default())? <= BalanceConfig::default().max_moves_per_round);
        }

        /// Only domains past their threshold push, only domains below the
        /// average receive, and nobody is planned past the average.
        #[test]
        fn plans_stay_within_surplus_and_deficit(
            ds in prop::collection::vec((0u32..=64, prop::option::of(0u32..3), 0u64..1_000_000), 0..=8),
        ) {
            let cfg = BalanceConfig::default();
            let l: Vec<DomainLoad> = ds.iter().enumerate().map(|(i, d)| dom(i as u32, d.1, d.0, d.2)).collect();
            let usable: Vec<DomainLoad> = l.iter().copied().filter(|d| d.nr_cpus > 0).collect();
            let plan = plan_transfers(&l, &cfg);
            if usable.len() < 2 {
                prop_assert!(plan.is_empty());
                return Ok(());
            }
            let avg = average(&usable);
            let mut out = BTreeMap::new();
            let mut into = BTreeMap::new();
            for t in &plan {
                let from = l[t.from.0 as usize];
                let to = l[t.to.0 as usize];
                prop_assert!(from.nr_cpus > 0 && to.nr_cpus > 0);
                let pct = if t.cross_numa { cfg.numa_imbalance_pct } else { cfg.imbalance_pct };
                prop_assert!(above(load_of(&from), avg, pct));
                prop_assert!(load_of(&to) < avg);
                *out.entry(t.from).or_insert(0u128) += u128::from(t.weight);
                *into.entry(t.to).or_insert(0u128) += u128::from(t.weight);
            }
            for (id, sent) in out {
                let d = l[id.0 as usize];
                prop_assert!(sent * LOAD_SCALE <= u128::from(d.queued_weight) * LOAD_SCALE - avg * u128::from(d.nr_cpus));
            }
            for (id, got) in into {
                let d = l[id.0 as usize];
                prop_assert!(got * LOAD_SCALE <= avg * u128::from(d.nr_cpus) - u128::from(d.queued_weight) * LOAD_SCALE);
            }
            if within_threshold(&usable, &cfg) {
                prop_assert!(plan.is_empty());
            }
        }

        /// Equal load per CPU everywhere: nothing to do.
        #[test]
        fn balanced_plans_nothing(
            per_cpu in 0u64..100_000,
            ds in prop::collection::vec((1u32..=64, prop::option::of(0u32..3)), 1..=8),
        ) {
            let l: Vec<DomainLoad> = ds
                .iter()
                .enumerate()
                .map(|(i, d)| dom(i as u32, d.1, d.0, per_cpu * u64::from(d.0)))
                .collect();
            prop_assert!(plan_transfers(&l, &BalanceConfig::default()).is_empty());
            let zero = BalanceConfig { imbalance_pct: 0, numa_imbalance_pct: 0, ..BalanceConfig::default() };
            prop_assert!(plan_transfers(&l, &zero).is_empty());
        }
    }
}
