//! A domain's run queue: runnable tasks ordered by vruntime.
//!
//! ```text
//!   BTreeMap<(vruntime, arrival#), QueuedTask>       HashMap<Pid, key>
//!   ┌──────────────┬──────────────┬─────┐            (where each pid is)
//!   │ (100, 7) p42 │ (100, 9) p17 │ ... │  ──▶ dispatch from the front
//!   └──────────────┴──────────────┴─────┘
//! ```
//!
//! The key's second half is an arrival counter, so equal vruntimes leave in
//! arrival order and no two keys collide. Arrivals are placed on the
//! domain's `clock` by the rules of `vruntime::place`. The clock is the
//! front of the domain's runnable tasks, which BPF advances as they start
//! to run; it is not moved by dispatching. (The C example raised its clock to
//! every task it dispatched, so a batch moved it to the batch's largest
//! vruntime and the clamp then erased what weights had made different.)
//!
//! Invariants:
//! - a pid is in the queue at most once. When the kernel re-enqueues a task
//!   that is still queued here (it was dequeued for an affinity or priority
//!   change and came back), the newer enqueue replaces the older: a decision
//!   for the old one would be stale and BPF would drop it anyway.
//! - `queued_weight` is the sum of the weights of the queued tasks, the load
//!   the balancer reads.
//! - the queue does not allocate per task once warm: the pid index is sized
//!   up front; the BTreeMap allocates a node per few inserts, from the
//!   thread's malloc arena, never with a syscall (see the note in README).

use std::collections::btree_map::Entry as BEntry;
use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

use crate::task::{Arrival, Monotonic, Pid, QueuedTask};
use crate::vruntime::{self, Vruntime};

type Key = (Vruntime, u64);

#[derive(Debug)]
pub struct RunQueue {
    tasks: BTreeMap<Key, QueuedTask>,
    by_pid: HashMap<Pid, Key>,
    clock: Vruntime,
    /// The debt bound (`vruntime::ClockSpeed::max_debt`), set by the worker.
    max_debt: u64,
    /// What arrivals are stamped with (`QueuedTask::queued_at`), set by
    /// the worker once per loop.
    now: Monotonic,
    next_arrival: u64,
    queued_weight: u64,
}

/// What `enqueue` did with an arrival.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Enqueued {
    New,
    /// The pid was already queued for an older enqueue, now replaced.
    ReplacedStale,
}

impl RunQueue {
    /// A queue for about `tasks` tasks. Call it on the thread that will
    /// use the queue, before attach: see `warm`.
    pub fn with_capacity(tasks: usize) -> RunQueue {
        let mut q = RunQueue {
            tasks: BTreeMap::new(),
            by_pid: HashMap::with_capacity(tasks),
            clock: Vruntime(0),
            max_debt: vruntime::ClockSpeed::default().max_debt(),
            now: Monotonic::default(),
            next_arrival: 0,
            queued_weight: 0,
        };
        q.warm(tasks);
        q
    }

    /// Grows the calling thread's allocator to hold `n` queued tasks, then
    /// frees them again, before the scheduler locks its memory. A
    /// `BTreeMap` cannot reserve: it allocates a node every few inserts,
    /// and a queue deeper than any before took a page fault every few
    /// nodes even with memory locked (20 000 inserts into a fresh map in a
    /// new thread, after mlockall: 453 faults; warmed up first: 0). The
    /// pages the warm-up touched are locked and kept: glibc cannot give
    /// locked pages back, so its allocator hands them out again.
    fn warm(&mut self, n: usize) {
        let filler = |i: usize| QueuedTask {
            pid: Pid(i as i32),
            seq: crate::task::EnqueueSeq(0),
            vruntime: Vruntime(i as u64),
            charged_exec_runtime: 0,
            weight: vruntime::Weight::NICE_0,
            allowed: crate::task::DomainMask::default(),
            queued_at: Monotonic::default(),
        };
        for i in 0..n {
            self.tasks.insert((Vruntime(i as u64), i as u64), filler(i));
        }
        self.tasks.clear();
    }

    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// The vruntime of the front of the domain's runnable tasks.
    pub fn clock(&self) -> Vruntime {
        self.clock
    }

    /// Moves the clock forward to `to` (it never goes back).
    pub fn advance_clock(&mut self, to: Vruntime) {
        self.clock = self.clock.max(to);
    }

    /// How far ahead of the clock an arrival may be placed.
    pub fn max_debt(&self) -> u64 {
        self.max_debt
    }

    pub fn set_max_debt(&mut self, max_debt: u64) {
        self.max_debt = max_debt;
    }

    /// The time from now on, for stamping arrivals.
    pub fn set_now(&mut self, now: Monotonic) {
        self.now = now;
    }

    pub fn queued_weight(&self) -> u64 {
        self.queued_weight
    }

    /// Queues a task the kernel sent. `prior` is its vruntime already
    /// carried to this queue's clock, None for a task new to us.
    pub fn enqueue(&mut self, a: &Arrival, prior: Option<Vruntime>) -> Enqueued {
        let ran = a.sum_exec_runtime.saturating_sub(a.charged_exec_runtime);
        let vruntime = vruntime::place(prior, ran, a.weight, self.clock, self.max_debt);
        let replaced = self.remove(a.pid).is_some();
        let queued = self.insert(QueuedTask {
            pid: a.pid,
            seq: a.seq,
            vruntime,
            charged_exec_runtime: a.sum_exec_runtime.max(a.charged_exec_runtime),
            weight: a.weight,
            allowed: a.allowed,
            queued_at: self.now,
        });
        debug_assert!(queued, "the pid was just removed");
        if replaced {
            Enqueued::ReplacedStale
        } else {
            Enqueued::New
        }
    }

    /// Queues a task whose vruntime is final (a migrant from another domain,
    /// renormalised to this clock, or a task the kernel could not take yet).
    /// False if `t` was dropped: an enqueue of the same pid at least as new
    /// is queued already (a decision for `t` would be stale).
    pub fn insert(&mut self, t: QueuedTask) -> bool {
        if let Some(key) = self.by_pid.get(&t.pid) {
            let queued_seq = self.tasks.get(key).map(|q| q.seq);
            if queued_seq.is_some_and(|q| !t.seq.is_newer_than(q)) {
                return false;
            }
            self.remove(t.pid);
        }
        let key = (t.vruntime, self.next_arrival);
        self.next_arrival += 1;
        self.queued_weight += u64::from(t.weight.get());
        self.by_pid.insert(t.pid, key);
        if let BEntry::Vacant(v) = self.tasks.entry(key) {
            v.insert(t);
        }
        true
    }

    pub fn remove(&mut self, pid: Pid) -> Option<QueuedTask> {
        let key = *self.by_pid.get(&pid)?;
        let t = self.tasks.remove(&key)?;
        self.forget(&t);
        Some(t)
    }

    /// Drops what the queue knows of `t`, just taken out of `tasks`.
    fn forget(&mut self, t: &QueuedTask) {
        self.by_pid.remove(&t.pid);
        self.queued_weight -= u64::from(t.weight.get());
    }

    /// Hands out up to `max` tasks in vruntime order. `send` returns false
    /// when the channel to the kernel is full: that task stays at the front.
    pub fn dispatch_batch(&mut self, max: usize, mut send: impl FnMut(&QueuedTask) -> bool) -> usize {
        let mut sent = 0;
        while sent < max {
            let Some(entry) = self.tasks.first_entry() else { break };
            if !send(entry.get()) {
                break;
            }
            let t = entry.remove();
            self.forget(&t);
            sent += 1;
        }
        sent
    }

    /// Hands out, lowest vruntime first, every debtor (placed further ahead
    /// of the clock than the least debt bound: nice 19, SCHED_IDLE) queued
    /// at or before `queued_by`, whatever the budget. With several domains
    /// a debtor otherwise waits here until everything placed before it has
    /// left, however slowly the clock moves meanwhile; BPF bounds its wait
    /// in wall-clock time only once it has it. `send` returns false when
    /// the channel is full. It looks at debtors only, which sort last: a
    /// walk from the debt bound, no allocation.
    pub fn dispatch_overdue(&mut self, queued_by: Monotonic, mut send: impl FnMut(&QueuedTask) -> bool) -> usize {
        let mut from = Bound::Excluded((Vruntime(self.clock.0.saturating_add(vruntime::MIN_DEBT_NS)), u64::MAX));
        let mut sent = 0;
        while let Some((&key, t)) = self
            .tasks
            .range((from, Bound::Unbounded))
            .find(|(_, t)| t.queued_at <= queued_by)
        {
            if !send(t) {
                break;
            }
            if let Some(t) = self.tasks.remove(&key) {
                self.forget(&t);
            }
            from = Bound::Excluded(key);
            sent += 1;
        }
        sent
    }

    /// Queued tasks, lowest vruntime first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &QueuedTask> {
        self.tasks.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::{DomainMask, EnqueueSeq};
    use crate::vruntime::Weight;

    fn arrival(pid: i32, seq: u64, ran_ns: u64, weight: u32) -> Arrival {
        Arrival {
            pid: Pid(pid),
            seq: EnqueueSeq(seq),
            sum_exec_runtime: ran_ns,
            vruntime: Vruntime(0),
            charged_exec_runtime: 0,
            vruntime_dom: None,
            weight: Weight::new(weight),
            allowed: DomainMask::all(1),
            cpu: 0,
        }
    }

    fn drain(q: &mut RunQueue) -> Vec<QueuedTask> {
        let mut out = Vec::new();
        q.dispatch_batch(usize::MAX, |t| {
            out.push(*t);
            true
        });
        out
    }

    #[test]
    fn dispatches_in_vruntime_order() {
        let mut q = RunQueue::with_capacity(8);
        q.enqueue(&arrival(1, 1, 3_000, 1024), Some(Vruntime(0)));
        q.enqueue(&arrival(2, 2, 1_000, 1024), Some(Vruntime(0)));
        q.enqueue(&arrival(3, 3, 2_000, 1024), Some(Vruntime(0)));
        let pids: Vec<i32> = drain(&mut q).iter().map(|t| t.pid.0).collect();
        assert_eq!(pids, [2, 3, 1]);
    }

    #[test]
    fn ties_leave_in_arrival_order() {
        let mut q = RunQueue::with_capacity(8);
        for pid in [30, 10, 20] {
            q.enqueue(&arrival(pid, pid as u64, 500, 1024), Some(Vruntime(0)));
        }
        let pids: Vec<i32> = drain(&mut q).iter().map(|t| t.pid.0).collect();
        assert_eq!(pids, [30, 10, 20]);
    }

    #[test]
    fn heavier_tasks_are_charged_less() {
        let mut q = RunQueue::with_capacity(8);
        q.enqueue(&arrival(1, 1, 1_000_000, 1024), Some(Vruntime(0)));
        q.enqueue(&arrival(2, 2, 1_000_000, 10_240), Some(Vruntime(0)));
        assert_eq!(drain(&mut q)[0].pid, Pid(2));
    }

    #[test]
    fn dispatching_a_batch_does_not_move_the_clock() {
        // The C example's clock jumped to the largest vruntime of each
        // batch, and the clamp then made every task equal again.
        let mut q = RunQueue::with_capacity(8);
        q.enqueue(&arrival(1, 1, 20_000_000, 1024), Some(Vruntime(0)));
        q.enqueue(&arrival(2, 2, 20_000_000, 3121), Some(Vruntime(0)));
        let sent = drain(&mut q);
        assert_eq!(q.clock(), Vruntime(0));
        let (light, heavy) = (sent[1].vruntime, sent[0].vruntime);
        assert_eq!(sent[0].pid, Pid(2), "the heavier task is charged less");
        assert!(light > heavy);
        // Both come back after another slice: the difference is kept.
        let mut again = arrival(1, 3, 40_000_000, 1024);
        again.charged_exec_runtime = 20_000_000;
        q.enqueue(&again, Some(light));
        let mut again = arrival(2, 4, 40_000_000, 3121);
        again.charged_exec_runtime = 20_000_000;
        q.enqueue(&again, Some(heavy));
        let v: Vec<u64> = q.iter().map(|t| t.vruntime.0).collect();
        assert_eq!(v, [2 * 20_000_000 * 1024 / 3121, 40_000_000]);
    }

    #[test]
    fn the_clock_bounds_arrivals_and_only_moves_forward() {
        let mut q = RunQueue::with_capacity(8);
        q.advance_clock(Vruntime(100_000_000));
        q.advance_clock(Vruntime(5));
        assert_eq!(q.clock(), Vruntime(100_000_000));
        // A long sleeper gets one slice of credit, a new task starts half a
        // slice behind the front.
        q.enqueue(&arrival(1, 1, 0, 1024), Some(Vruntime(0)));
        q.enqueue(&arrival(2, 2, 0, 1024), None);
        let v: Vec<(i32, u64)> = q.iter().map(|t| (t.pid.0, t.vruntime.0)).collect();
        assert_eq!(v, [(1, 80_000_000), (2, 110_000_000)]);
    }

    #[test]
    fn debtors_that_waited_long_leave_whatever_their_turn() {
        const S: u64 = 1_000_000_000;
        let mut q = RunQueue::with_capacity(8);
        q.advance_clock(Vruntime(S));
        q.set_max_debt(2 * S);
        // At 10 s: a SCHED_IDLE task that ran 4 ms (charged 1.4 s, a
        // debtor) and a nice-0 one that ran a slice (20 ms ahead).
        q.set_now(Monotonic(10 * S));
        q.enqueue(&arrival(1, 1, 4_000_000, 3), Some(q.clock()));
        q.enqueue(&arrival(2, 2, 20_000_000, 1024), Some(q.clock()));
        // At 11 s: another light one, charged less (before pid 1 in
        // vruntime), and a nice-0 task exactly at the least debt bound,
        // 40 ms ahead, which is not a debt.
        q.set_now(Monotonic(11 * S));
        q.enqueue(&arrival(3, 3, 1_000_000, 3), Some(q.clock()));
        q.enqueue(&arrival(4, 4, 40_000_000, 1024), Some(q.clock()));
        let mut out = Vec::new();
        let mut send = |t: &QueuedTask| {
            out.push(t.pid.0);
            true
        };
        assert_eq!(
            q.dispatch_overdue(Monotonic(10 * S - 1), &mut send),
            0,
            "none queued by then"
        );
        assert_eq!(q.dispatch_overdue(Monotonic(10 * S), &mut send), 1);
        assert_eq!(out, [1], "the debtor queued by then, not the nice-0 task");
        assert_eq!((q.len(), q.queued_weight()), (3, 3 + 2048));
        out.clear();
        assert_eq!(
            q.dispatch_overdue(Monotonic(20 * S), |t| {
                out.push(t.pid.0);
                true
            }),
            1
        );
        assert_eq!(out, [3], "debts only, however old the others are");
        // A full channel keeps the debtor queued.
        q.set_now(Monotonic(12 * S));
        q.enqueue(&arrival(5, 5, 4_000_000, 3), Some(q.clock()));
        assert_eq!(q.dispatch_overdue(Monotonic(20 * S), |_| false), 0);
        assert_eq!(q.iter().map(|t| t.pid.0).collect::<Vec<_>>(), [2, 4, 5]);
        // A migrant keeps its stamp (balancer::take_migrants copies it).
        let migrant = q.remove(Pid(5)).expect("queued");
        q.set_now(Monotonic(30 * S));
        q.insert(migrant);
        assert_eq!(q.dispatch_overdue(Monotonic(12 * S), |_| true), 1);
    }

    #[test]
    fn pids_up_to_pid_max() {
        let mut q = RunQueue::with_capacity(8);
        let pids = [1, 8_191, 8_192, 32_768, 4_194_303, 4_194_304];
        for (i, &pid) in pids.iter().enumerate() {
            q.enqueue(&arrival(pid, i as u64, 100 * (i as u64 + 1), 1024), Some(Vruntime(0)));
        }
        let out: Vec<i32> = drain(&mut q).iter().map(|t| t.pid.0).collect();
        assert_eq!(out, pids);
    }

    #[test]
    fn a_newer_enqueue_replaces_the_stale_one() {
        let mut q = RunQueue::with_capacity(8);
        assert_eq!(q.enqueue(&arrival(7, 1, 100, 1024), Some(Vruntime(0))), Enqueued::New);
        assert_eq!(
            q.enqueue(&arrival(7, 2, 900, 1024), Some(Vruntime(0))),
            Enqueued::ReplacedStale
        );
        assert_eq!(q.len(), 1);
        assert_eq!(q.queued_weight(), 1024);
        let out = drain(&mut q);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].seq, EnqueueSeq(2), "only the latest enqueue is dispatched");
    }

    #[test]
    fn an_insert_keeps_the_newer_enqueue_of_a_pid() {
        let mut q = RunQueue::with_capacity(8);
        q.enqueue(&arrival(5, 10, 100, 1024), Some(Vruntime(0)));
        let older = QueuedTask {
            seq: EnqueueSeq(9),
            ..*q.iter().next().expect("queued")
        };
        let newer = QueuedTask {
            seq: EnqueueSeq(11),
            ..older
        };
        q.insert(older);
        assert_eq!(
            q.iter().map(|t| t.seq).collect::<Vec<_>>(),
            [EnqueueSeq(10)],
            "an older migrant is dropped"
        );
        q.insert(newer);
        assert_eq!(
            q.iter().map(|t| t.seq).collect::<Vec<_>>(),
            [EnqueueSeq(11)],
            "a newer one replaces"
        );
        assert_eq!(q.len(), 1);
        // Sequence numbers wrap: u64::MAX is older than 2.
        let mut q = RunQueue::with_capacity(8);
        q.insert(QueuedTask {
            seq: EnqueueSeq(u64::MAX),
            ..older
        });
        q.insert(QueuedTask {
            seq: EnqueueSeq(2),
            ..older
        });
        assert_eq!(q.iter().map(|t| t.seq).collect::<Vec<_>>(), [EnqueueSeq(2)]);
        // A task that reuses a pid numbers from its own generation (the
        // high half), above its previous owner's however many enqueues
        // that one had: the new task's first enqueue replaces the old one.
        let mut q = RunQueue::with_capacity(8);
        let previous_owner = EnqueueSeq(41 << 32 | 0xffff_fff0);
        let reuser = EnqueueSeq(42 << 32 | 1);
        q.insert(QueuedTask {
            seq: previous_owner,
            ..older
        });
        q.insert(QueuedTask { seq: reuser, ..older });
        assert_eq!(q.iter().map(|t| t.seq).collect::<Vec<_>>(), [reuser]);
    }

    #[test]
    fn full_channel_keeps_tasks_queued() {
        let mut q = RunQueue::with_capacity(8);
        for pid in 1..=5 {
            q.enqueue(&arrival(pid, pid as u64, pid as u64, 1024), Some(Vruntime(0)));
        }
        let mut room = 2;
        let sent = q.dispatch_batch(8, |_| {
            if room == 0 {
                return false;
            }
            room -= 1;
            true
        });
        assert_eq!(sent, 2);
        assert_eq!(q.len(), 3);
        let rest: Vec<i32> = drain(&mut q).iter().map(|t| t.pid.0).collect();
        assert_eq!(rest, [3, 4, 5], "nothing lost, order kept");
    }

    #[test]
    fn charges_only_new_runtime() {
        let mut q = RunQueue::with_capacity(8);
        let mut a = arrival(1, 1, 10_000, 1024);
        a.vruntime = Vruntime(2_000);
        a.charged_exec_runtime = 9_000;
        q.enqueue(&a, Some(a.vruntime));
        let t = drain(&mut q)[0];
        assert_eq!(t.vruntime, Vruntime(3_000));
        assert_eq!(t.charged_exec_runtime, 10_000);
    }
}
