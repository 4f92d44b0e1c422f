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
//! arrival order and no two keys collide. `min_vruntime` is the vruntime of
//! the task dispatched last (the example's rule); arrivals are raised to it.
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

use crate::task::{Arrival, Pid, QueuedTask};
use crate::vruntime::{self, Vruntime};

type Key = (Vruntime, u64);

#[derive(Debug)]
pub struct RunQueue {
    tasks: BTreeMap<Key, QueuedTask>,
    by_pid: HashMap<Pid, Key>,
    min_vruntime: Vruntime,
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
    pub fn with_capacity(tasks: usize) -> RunQueue {
        RunQueue {
            tasks: BTreeMap::new(),
            by_pid: HashMap::with_capacity(tasks),
            min_vruntime: Vruntime(0),
            next_arrival: 0,
            queued_weight: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    pub fn min_vruntime(&self) -> Vruntime {
        self.min_vruntime
    }

    pub fn queued_weight(&self) -> u64 {
        self.queued_weight
    }

    /// Queues a task the kernel sent. `vruntime` must already be on this
    /// queue's clock (see `Arrival::vruntime_on`).
    pub fn enqueue(&mut self, a: &Arrival, vruntime_here: Vruntime) -> Enqueued {
        let vruntime = vruntime::update(
            vruntime_here,
            a.charged_exec_runtime,
            a.sum_exec_runtime,
            a.weight,
            self.min_vruntime,
        );
        let replaced = self.remove(a.pid).is_some();
        self.insert(QueuedTask {
            pid: a.pid,
            seq: a.seq,
            vruntime,
            charged_exec_runtime: a.sum_exec_runtime.max(a.charged_exec_runtime),
            weight: a.weight,
            allowed: a.allowed,
        });
        if replaced {
            Enqueued::ReplacedStale
        } else {
            Enqueued::New
        }
    }

    /// Queues a task whose vruntime is final (a migrant from another domain,
    /// renormalised to this clock, or a task the kernel could not take yet).
    pub fn insert(&mut self, t: QueuedTask) {
        if let Some(key) = self.by_pid.get(&t.pid) {
            // The same pid is queued already: keep the newer enqueue, drop
            // the other (a decision for it would be stale).
            let queued_seq = self.tasks.get(key).map(|q| q.seq);
            if queued_seq.is_some_and(|q| !t.seq.is_newer_than(q)) {
                return;
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
    }

    pub fn remove(&mut self, pid: Pid) -> Option<QueuedTask> {
        let key = self.by_pid.remove(&pid)?;
        let t = self.tasks.remove(&key)?;
        self.queued_weight -= u64::from(t.weight.get());
        Some(t)
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
            self.by_pid.remove(&t.pid);
            self.queued_weight -= u64::from(t.weight.get());
            self.min_vruntime = self.min_vruntime.max(t.vruntime);
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

    fn arrival(pid: i32, seq: u32, ran_ns: u64, weight: u32) -> Arrival {
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
        q.enqueue(&arrival(1, 1, 3_000, 100), Vruntime(0));
        q.enqueue(&arrival(2, 2, 1_000, 100), Vruntime(0));
        q.enqueue(&arrival(3, 3, 2_000, 100), Vruntime(0));
        let pids: Vec<i32> = drain(&mut q).iter().map(|t| t.pid.0).collect();
        assert_eq!(pids, [2, 3, 1]);
    }

    #[test]
    fn ties_leave_in_arrival_order() {
        let mut q = RunQueue::with_capacity(8);
        for pid in [30, 10, 20] {
            q.enqueue(&arrival(pid, pid as u32, 500, 100), Vruntime(0));
        }
        let pids: Vec<i32> = drain(&mut q).iter().map(|t| t.pid.0).collect();
        assert_eq!(pids, [30, 10, 20]);
    }

    #[test]
    fn heavier_tasks_are_charged_less() {
        let mut q = RunQueue::with_capacity(8);
        q.enqueue(&arrival(1, 1, 1_000_000, 100), Vruntime(0));
        q.enqueue(&arrival(2, 2, 1_000_000, 1_000), Vruntime(0));
        assert_eq!(drain(&mut q)[0].pid, Pid(2));
    }

    #[test]
    fn min_vruntime_follows_dispatches_and_clamps_arrivals() {
        let mut q = RunQueue::with_capacity(8);
        q.enqueue(&arrival(1, 1, 5_000, 100), Vruntime(0));
        drain(&mut q);
        assert_eq!(q.min_vruntime(), Vruntime(5_000));
        q.enqueue(&arrival(2, 2, 10, 100), Vruntime(0));
        assert_eq!(q.iter().next().map(|t| t.vruntime), Some(Vruntime(5_000)));
    }

    #[test]
    fn pids_up_to_pid_max() {
        let mut q = RunQueue::with_capacity(8);
        let pids = [1, 8_191, 8_192, 32_768, 4_194_303, 4_194_304];
        for (i, &pid) in pids.iter().enumerate() {
            q.enqueue(&arrival(pid, i as u32, 100 * (i as u64 + 1), 100), Vruntime(0));
        }
        let out: Vec<i32> = drain(&mut q).iter().map(|t| t.pid.0).collect();
        assert_eq!(out, pids);
    }

    #[test]
    fn a_newer_enqueue_replaces_the_stale_one() {
        let mut q = RunQueue::with_capacity(8);
        assert_eq!(q.enqueue(&arrival(7, 1, 100, 100), Vruntime(0)), Enqueued::New);
        assert_eq!(
            q.enqueue(&arrival(7, 2, 900, 100), Vruntime(0)),
            Enqueued::ReplacedStale
        );
        assert_eq!(q.len(), 1);
        assert_eq!(q.queued_weight(), 100);
        let out = drain(&mut q);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].seq, EnqueueSeq(2), "only the latest enqueue is dispatched");
    }

    #[test]
    fn an_insert_keeps_the_newer_enqueue_of_a_pid() {
        let mut q = RunQueue::with_capacity(8);
        q.enqueue(&arrival(5, 10, 100, 100), Vruntime(0));
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
        // Sequence numbers wrap: u32::MAX is older than 2.
        let mut q = RunQueue::with_capacity(8);
        q.insert(QueuedTask {
            seq: EnqueueSeq(u32::MAX),
            ..older
        });
        q.insert(QueuedTask {
            seq: EnqueueSeq(2),
            ..older
        });
        assert_eq!(q.iter().map(|t| t.seq).collect::<Vec<_>>(), [EnqueueSeq(2)]);
    }

    #[test]
    fn full_channel_keeps_tasks_queued() {
        let mut q = RunQueue::with_capacity(8);
        for pid in 1..=5 {
            q.enqueue(&arrival(pid, pid as u32, pid as u64, 100), Vruntime(0));
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
        let mut a = arrival(1, 1, 10_000, 100);
        a.vruntime = Vruntime(2_000);
        a.charged_exec_runtime = 9_000;
        q.enqueue(&a, a.vruntime);
        let t = drain(&mut q)[0];
        assert_eq!(t.vruntime, Vruntime(3_000));
        assert_eq!(t.charged_exec_runtime, 10_000);
    }
}
