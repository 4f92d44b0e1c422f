//! Starved domains: a domain whose CPUs are all taken by a higher
//! scheduling class, and how its work gets out. BPF finds them; this module
//! holds the rule's constants, follows BPF's verdicts ([`Follower`], run by
//! `scheduler.rs` every [`TICK`]) and picks what a starved domain's worker
//! sends away ([`select_evacuees`]).
//!
//! # The problem
//!
//! A domain's worker is pinned to the domain's CPUs. When real-time (or
//! deadline) tasks hold every one of them, sched_ext runs nothing there: not
//! the worker, so nothing decides for the tasks queued in the domain, and not
//! the tasks in its DSQ, which the other domains' CPUs take only when they
//! have nothing else. On 6.12 RT throttling lends sched_ext no time, so they
//! would wait as long as the RT tasks run, and the kernel's watchdog would
//! unload us after `WATCHDOG_TIMEOUT_MS`.
//!
//! # Detection (BPF, `watch_fn` in bpf/main.bpf.c)
//!
//! A CPU that runs our tasks asks for work (ops.dispatch) at least once
//! per slice, and an idle one is kicked when work arrives for it. BPF notes
//! when each domain was last asked (`dom_served`), and a timer looks every
//! 10 ms:
//!
//! ```text
//!   work waits for domain d, at every look ──────────────────────────▶ now
//!   no CPU of d asked for work ──────────────────────────────────────▶
//!                        │◀────────────── GRACE_NS ──────────────▶│ starved
//! ```
//!
//! A domain is *starved* when work has waited for it (tasks in its
//! user-space queue, its worker asked to run, or tasks in its DSQ) for
//! `GRACE_NS` and none of its CPUs asked for work in that time. `GRACE_NS`
//! is the longest slice a decision can carry (`MAX_SLICE_NS`, 60 ms) plus
//! half a default slice. A timer, not a thread: the first version watched
//! from a thread, which is itself a task kept in the kernel, and in one run
//! of two it was queued in the starved domain's DSQ, so nothing was found
//! starved for the whole 6 s. A false alarm costs little: the domain's
//! queued tasks move to a neighbour, as the balancer might have moved them.
//! One domain is never declared starved (there would be nowhere to go).
//!
//! # While starved
//!
//! - BPF queues new tasks that may run anywhere on the nearest domain that
//!   is not starved, and the other domains' CPUs drain the starved domain's
//!   decisions and take its DSQ's tasks before their own;
//! - the watch thread sees the flag and widens the worker's affinity to
//!   every planned CPU; BPF then runs the worker on a CPU of another domain
//!   (never before: it would wait there for a CPU of its own);
//! - the worker, on its next round, sends every queued task it may to its
//!   nearest peers that are not starved ([`select_evacuees`]), head
//!   included: nothing here will run soon. Tasks allowed only here stay;
//! - the balancer counts the domain as having no CPUs.
//!
//! It ends when a CPU of the domain asks for work again: BPF clears the
//! flag, and the watch thread pins the worker back.
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

/// How long work may wait for a domain none of whose CPUs asks for it
/// before the domain is starved: see the module doc.
pub const GRACE_NS: u64 = MAX_SLICE_NS + SLICE_NS / 2;

/// How often the watch thread follows BPF's verdicts: half a default slice.
/// It costs a wakeup and a load per domain per tick, whatever the load.
pub const TICK: Duration = Duration::from_millis(10);

/// A change for the caller to carry out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Starve(DomainId),
    Recover(DomainId),
}

/// Follows BPF's `dom_starved` flags, turning them into changes.
#[derive(Debug)]
pub struct Follower {
    starved: Vec<bool>,
}

impl Follower {
    pub fn new(nr_domains: usize) -> Follower {
        Follower {
            starved: vec![false; nr_domains],
        }
    }

    /// Appends to `out` (cleared first) each domain whose flag changed
    /// since the last call.
    pub fn follow(&mut self, flags: impl IntoIterator<Item = bool>, out: &mut Vec<Change>) {
        out.clear();
        for (i, (was, now)) in self.starved.iter_mut().zip(flags).enumerate() {
            if *was != now {
                *was = now;
                let d = DomainId(i as u32);
                out.push(if now { Change::Starve(d) } else { Change::Recover(d) });
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

    #[test]
    fn each_change_of_a_flag_is_reported_once() {
        let mut f = Follower::new(3);
        let mut out = Vec::new();
        f.follow([false, false, false], &mut out);
        assert!(out.is_empty());
        f.follow([false, true, false], &mut out);
        assert_eq!(out, [Change::Starve(DomainId(1))]);
        f.follow([false, true, false], &mut out);
        assert!(out.is_empty());
        f.follow([true, false, false], &mut out);
        assert_eq!(out, [Change::Starve(DomainId(0)), Change::Recover(DomainId(1))]);
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
                seq: EnqueueSeq(pid as u64),
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
