//! Starved domains: finding a domain whose CPUs are all taken by a higher
//! scheduling class, and getting its work out. The pure part: no threads,
//! no BPF; `scheduler.rs` runs [`Watch`] every [`TICK`] and carries out what
//! it decides.
//!
//! # The problem
//!
//! A domain's worker is pinned to the domain's CPUs. When real-time (or
//! deadline) tasks hold every one of them, sched_ext runs nothing there: not
//! the worker, so nothing decides for the tasks queued in the domain, and not
//! the tasks in its DSQ. On 6.12 RT throttling lends sched_ext no time, so
//! they would wait as long as the RT tasks run, and the kernel's watchdog
//! would unload us after `WATCHDOG_TIMEOUT_MS`.
//!
//! # Detection
//!
//! BPF stamps the moment a held worker becomes *needed* (tasks arrived, a
//! CPU ran dry, the heartbeat). A CPU of the domain that asks for work
//! releases it, and the worker then completes a round. So:
//!
//! ```text
//!   needed since t ──────────────── no round of the worker ──────────▶ now
//!                  │◀──────────────── GRACE_NS ─────────────────▶│ starved
//! ```
//!
//! A domain is *starved* when its worker has been needed for `GRACE_NS` and
//! has not completed a round in that time. `GRACE_NS` is the longest slice
//! a decision can carry (`MAX_SLICE_NS`, 60 ms) plus half a default slice:
//! a domain whose CPUs all run our tasks asks for work at least once a
//! slice, so only a domain that no CPU serves waits that long. A false
//! alarm costs little: the domain's queued tasks move to a neighbour, as
//! the balancer might have moved them, and the state ends at the next
//! ops.dispatch on one of its CPUs.
//!
//! Every domain but one may be starved; the last is never declared starved
//! (there would be nowhere to send its work).
//!
//! # What starved changes (carried out by the caller, in this order)
//!
//! 1. the worker's affinity widens to every planned CPU, then
//! 2. BPF's `dom_starved[d]` is set: BPF queues new tasks that may run
//!    anywhere on the nearest domain that is not starved, runs the held
//!    worker on a CPU of another domain that asks for work, and lets those
//!    CPUs take the domain's DSQ before their own;
//! 3. the worker, on its next round, sends every queued task it may to its
//!    nearest peers that are not starved ([`select_evacuees`]), head
//!    included: nothing here will run soon. Tasks allowed only here stay.
//!
//! It ends when a CPU of the domain runs ops.dispatch again (BPF's
//! `dom_back[d]`): the flag is cleared first, then the worker is pinned
//! back, so BPF never queues the worker on a CPU it may not use.
//!
//! Invariants: a domain is starved only after GRACE_NS of evidence; at
//! least one domain is never starved; evacuation moves a task only to a
//! domain in its `allowed` mask, and every task stays in exactly one queue
//! or inbox (it reuses the balancer's `take_migrants`).

use std::time::Duration;

use topology::DomainId;

use crate::queue::RunQueue;
use crate::task::Pid;
use crate::vruntime::{MAX_SLICE_NS, SLICE_NS};

/// How long a worker may be needed without a round before its domain is
/// starved: see the module doc.
pub const GRACE_NS: u64 = MAX_SLICE_NS + SLICE_NS / 2;

/// How often the watch looks: half a default slice, so a starved domain
/// is found within GRACE_NS + TICK = 80 ms. It costs a wakeup and a few
/// loads per tick, whatever the load.
pub const TICK: Duration = Duration::from_millis(10);

/// What the watch sees of one domain at one instant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Observation {
    /// Since when (BPF's monotonic clock, ns) the worker has been needed
    /// and not released; None when it is not needed.
    pub needed_since: Option<u64>,
    /// Rounds the worker has completed, ever.
    pub rounds: u64,
    /// A CPU of the domain has asked for work since the last look.
    pub back: bool,
}

/// A change for the caller to carry out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Starve(DomainId),
    Recover(DomainId),
}

#[derive(Clone, Copy, Debug, Default)]
struct DomainWatch {
    starved: bool,
    rounds: u64,
    /// When `rounds` was last seen to change (or the watch started).
    round_at: u64,
}

/// Tracks which domains are starved.
#[derive(Debug)]
pub struct Watch {
    doms: Vec<DomainWatch>,
}

impl Watch {
    pub fn new(nr_domains: usize, now: u64) -> Watch {
        Watch {
            doms: vec![
                DomainWatch {
                    round_at: now,
                    ..DomainWatch::default()
                };
                nr_domains
            ],
        }
    }

    pub fn is_starved(&self, d: DomainId) -> bool {
        self.doms.get(d.0 as usize).is_some_and(|w| w.starved)
    }

    /// Looks at every domain at `now` (ns, BPF's clock) and appends what
    /// changed to `out` (cleared first).
    pub fn observe(&mut self, now: u64, seen: &[Observation], out: &mut Vec<Change>) {
        out.clear();
        for (i, (w, o)) in self.doms.iter_mut().zip(seen).enumerate() {
            let d = DomainId(i as u32);
            if o.rounds != w.rounds {
                w.rounds = o.rounds;
                w.round_at = now;
            }
            if w.starved && o.back {
                w.starved = false;
                out.push(Change::Recover(d));
            }
        }
        for (i, o) in seen.iter().enumerate().take(self.doms.len()) {
            let w = self.doms[i];
            let stuck =
                |since: u64| now.saturating_sub(since) >= GRACE_NS && now.saturating_sub(w.round_at) >= GRACE_NS;
            let others_served = self.doms.iter().enumerate().any(|(j, o)| j != i && !o.starved);
            if !w.starved && !o.back && o.needed_since.is_some_and(stuck) && others_served {
                self.doms[i].starved = true;
                out.push(Change::Starve(DomainId(i as u32)));
            }
        }
    }
}

/// Every task of `queue` allowed in `to`, at most `max_tasks`, back to
/// front: the head too, since nothing in a starved domain runs soon.
pub fn select_evacuees(queue: &RunQueue, to: DomainId, max_tasks: usize, out: &mut Vec<Pid>) {
    out.clear();
    out.extend(
        queue
            .iter()
            .rev()
            .filter(|t| t.allowed.contains(to))
            .take(max_tasks)
            .map(|t| t.pid),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn needed(since: u64, rounds: u64) -> Observation {
        Observation {
            needed_since: Some(since),
            rounds,
            back: false,
        }
    }

    fn idle(rounds: u64) -> Observation {
        Observation {
            rounds,
            ..Observation::default()
        }
    }

    #[test]
    fn a_worker_needed_for_a_whole_slice_without_a_round_is_starved() {
        let mut w = Watch::new(2, 0);
        let mut out = Vec::new();
        w.observe(10 * MS, &[needed(10 * MS, 5), idle(7)], &mut out);
        assert!(out.is_empty());
        w.observe(10 * MS + GRACE_NS - 1, &[needed(10 * MS, 5), idle(7)], &mut out);
        assert!(out.is_empty(), "not before GRACE_NS: {out:?}");
        w.observe(10 * MS + GRACE_NS, &[needed(10 * MS, 5), idle(7)], &mut out);
        assert_eq!(out, [Change::Starve(DomainId(0))]);
        assert!(w.is_starved(DomainId(0)));
        w.observe(10 * MS + GRACE_NS + MS, &[needed(10 * MS, 5), idle(7)], &mut out);
        assert!(out.is_empty(), "reported once");
    }

    #[test]
    fn a_worker_that_keeps_making_rounds_is_not_starved() {
        // Needed all along (a busy domain: arrivals keep coming) but it runs.
        let mut w = Watch::new(2, 0);
        let mut out = Vec::new();
        for step in 1..100u64 {
            w.observe(step * 10 * MS, &[needed(0, step), idle(0)], &mut out);
            assert!(out.is_empty(), "step {step}: {out:?}");
        }
    }

    #[test]
    fn a_held_worker_nobody_needs_is_not_starved() {
        let mut w = Watch::new(2, 0);
        let mut out = Vec::new();
        w.observe(10 * GRACE_NS, &[idle(3), idle(3)], &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn it_ends_when_a_cpu_of_the_domain_asks_for_work_again() {
        let mut w = Watch::new(2, 0);
        let mut out = Vec::new();
        w.observe(GRACE_NS, &[needed(0, 0), idle(0)], &mut out);
        assert_eq!(out, [Change::Starve(DomainId(0))]);
        // Running elsewhere now, it makes rounds: still starved.
        w.observe(GRACE_NS + MS, &[idle(4), idle(0)], &mut out);
        assert!(out.is_empty());
        let back = Observation { back: true, ..idle(9) };
        w.observe(GRACE_NS + 2 * MS, &[back, idle(0)], &mut out);
        assert_eq!(out, [Change::Recover(DomainId(0))]);
        assert!(!w.is_starved(DomainId(0)));
    }

    #[test]
    fn the_last_domain_served_is_never_declared_starved() {
        let mut w = Watch::new(2, 0);
        let mut out = Vec::new();
        w.observe(GRACE_NS, &[needed(0, 0), needed(0, 0)], &mut out);
        assert_eq!(out, [Change::Starve(DomainId(0))], "one of the two, not both");
        w.observe(2 * GRACE_NS, &[needed(0, 0), needed(0, 0)], &mut out);
        assert!(out.is_empty());
        let mut one = Watch::new(1, 0);
        one.observe(GRACE_NS, &[needed(0, 0)], &mut out);
        assert!(out.is_empty(), "one domain has nowhere to send its work");
    }

    #[test]
    fn evacuees_are_every_task_allowed_there_head_included() {
        use crate::task::{Arrival, DomainMask, EnqueueSeq};
        use crate::vruntime::{Vruntime, Weight};
        let mut q = RunQueue::with_capacity(8);
        let only0 = DomainMask::only(DomainId(0));
        for (pid, allowed) in [(1, DomainMask::all(2)), (2, only0), (3, DomainMask::all(2))] {
            let a = Arrival {
                pid: Pid(pid),
                seq: EnqueueSeq(pid as u32),
                sum_exec_runtime: 0,
                vruntime: Vruntime(0),
                charged_exec_runtime: 0,
                vruntime_dom: None,
                weight: Weight::NICE_0,
                allowed,
                cpu: 0,
            };
            q.enqueue(&a, None);
        }
        let mut out = Vec::new();
        select_evacuees(&q, DomainId(1), 10, &mut out);
        out.sort();
        assert_eq!(out, [Pid(1), Pid(3)]);
        select_evacuees(&q, DomainId(1), 1, &mut out);
        assert_eq!(out.len(), 1);
    }
}
