//! A domain worker: the user-space thread that schedules one domain.
//!
//! ```text
//!            ┌───────────── one loop iteration, no syscall per task ─────────────┐
//!  kernel ──▶ receive all arrivals ─▶ take migrants from other workers (inbox)  │
//!            │ serve balancer requests (push tasks to a peer's inbox, wake it)  │
//!            │ dispatch up to `batch` tasks, lowest vruntime first ──▶ kernel    │
//!            │ publish queue depth/head vruntime/weight/clock                   │
//!            └─ sched_yield (BPF holds us until there is work) ─────────────────┘
//! ```
//!
//! This is the scx_userland example's loop (drain, dispatch a batch, yield).
//! BPF keeps a yielded worker off the CPUs until it has work (see
//! bpf/main.bpf.c), so yielding with nothing to do costs nothing. In partial
//! mode the worker is not a SCHED_EXT task and BPF cannot hold it: it then
//! sleeps in epoll when its queue is empty, and BPF's ring buffer wakes it.
//! Workers talk to each other and to the balancer only through crossbeam
//! channels polled with `try_recv`, so no lock is ever held on this path.
//!
//! Invariants:
//! - a task is in this queue, in flight in exactly one peer's inbox, or sent
//!   to the kernel; a migrant that finds its peer's inbox full comes back.
//! - each domain's vruntimes are on its own clock, which BPF advances as
//!   tasks start to run; the worker reads it before it places arrivals. A
//!   task arriving with a vruntime from another domain's clock is
//!   renormalised: its lag against that clock is carried to ours.
//! - the worker publishes its queue depth before it yields, so BPF (which
//!   holds a yielded worker) knows to run it again when a CPU runs dry; and
//!   the vruntime of the task it would hand out first, so that BPF may hand
//!   out a woken task placed before it without the trip through us (it
//!   would be our next decision).
//! - a peer that was sent migrants is woken through BPF (a WAKE record in
//!   our channel to the kernel, retried while the channel is full): an idle
//!   domain's worker is held with an empty ring buffer and would otherwise
//!   leave the migrants in its inbox until the heartbeat, up to 250 ms.
//!   In partial mode a sleeping worker finds them within `IDLE_WAIT`.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use topology::DomainId;

use crate::balancer;
use crate::queue::{Enqueued, RunQueue};
use crate::task::{Arrival, Dispatch, DomainMask, Monotonic, Pid, QueuedTask};
use crate::vruntime::{ClockSpeed, Vruntime, IN_FLIGHT, MAX_USER_DEBTOR_WAIT_NS};

/// How long an idle worker sleeps before re-checking the stop flag.
const IDLE_WAIT: Duration = Duration::from_millis(100);
/// In partial mode, how long a worker whose domain's CPUs have all the
/// decisions they need sleeps before it looks again whether they took
/// them. Arrivals wake it sooner. Nothing in the kernel tells it when a CPU
/// takes a decision, and `sched_yield` from a task that is not SCHED_EXT
/// returns at once: yielding would spin a CPU per domain. One millisecond
/// is a twentieth of a slice: the CPUs' next need is that far off at worst.
const BACKLOG_WAIT: Duration = Duration::from_millis(1);
/// How often a worker that holds tasks back (several domains) looks for
/// debtors that waited MAX_USER_DEBTOR_WAIT_NS in its queue: a small part
/// of that wait, and rare enough that the walk costs nothing per task.
const OVERDUE_SCAN_NS: u64 = 100_000_000;

/// What a domain worker needs from the kernel side; a trait so that the
/// worker's logic can be tested without BPF.
pub trait DomainChannel {
    /// Passes every task the kernel has sent to `sink`; no syscall.
    fn receive(&mut self, sink: &mut dyn FnMut(&Arrival)) -> usize;
    /// Sleeps until the kernel sends tasks or `timeout` passes, then
    /// receives like `receive`.
    fn wait(&mut self, timeout: Duration, sink: &mut dyn FnMut(&Arrival)) -> usize;
    /// Queues a decision for the kernel; false when the channel is full.
    fn send(&mut self, d: &Dispatch) -> bool;
    /// Asks BPF to run `peer`'s worker, which has migrants in its inbox;
    /// false when the channel is full.
    fn wake_peer(&mut self, peer: DomainId) -> bool;
    /// Tells BPF how many tasks this domain holds in user space and the
    /// vruntime of the first it would hand out (`head`, meaningless when
    /// `n` is 0), and how many decisions it has sent, which the fast path
    /// compares with what BPF drained.
    fn publish_queued(&mut self, n: u64, head: Vruntime);
    /// Lets the CPU run what was just dispatched.
    fn yield_cpu(&mut self);
    /// Decisions handed to the kernel that no CPU has taken yet: still in
    /// the channel, or waiting in a DSQ (tasks kept in the kernel are not
    /// counted, nor light tasks BPF holds apart: bpf/main.bpf.c,
    /// take_debtor).
    fn kernel_backlog(&self) -> u64;
    /// The domain's vruntime clock, as the kernel last advanced it.
    fn clock(&self) -> Vruntime;
    /// Records from the kernel that could not be decoded (too short: the
    /// BPF object and this binary disagree on the layout), dropped so far.
    fn malformed(&self) -> u64;
}

/// What a domain publishes to the balancer, the stats thread and its peers.
/// Written only by the domain's worker.
#[derive(Debug, Default)]
pub struct DomainState {
    pub queued: AtomicU64,
    pub queued_weight: AtomicU64,
    /// What the balancer may take: the queued weight behind the head task.
    pub movable_weight: AtomicU64,
    /// The domain's vruntime clock, as its worker last read it.
    pub clock: AtomicU64,
    pub received: AtomicU64,
    pub dispatched: AtomicU64,
    pub replaced_stale: AtomicU64,
    pub channel_full: AtomicU64,
    /// Undecodable records from the kernel (`DomainChannel::malformed`).
    pub malformed: AtomicU64,
    pub migrated_in: AtomicU64,
    pub migrated_out: AtomicU64,
    pub migrated_out_numa: AtomicU64,
    /// The worker thread's id, for its CPU time and faults (0: not yet).
    pub tid: AtomicI32,
    /// BPF found every CPU of the domain held by a higher class
    /// (rescue.rs); written by the watch thread once it widened the worker.
    pub starved: AtomicBool,
    /// Tasks sent to peers while starved.
    pub evacuated: AtomicU64,
    /// Debtors handed to the kernel out of turn because they had waited
    /// MAX_USER_DEBTOR_WAIT_NS in our queue (several domains only).
    pub user_overdue: AtomicU64,
}

/// The balancer asks a worker to push about `weight` of load to `to`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MoveRequest {
    pub to: DomainId,
    pub weight: u64,
    pub max_tasks: usize,
    pub cross_numa: bool,
}

/// A worker's links to everyone else.
pub struct Links {
    pub states: Arc<[DomainState]>,
    /// inboxes[d]: migrants for domain d, their vruntime being their lag.
    pub inboxes: Vec<Sender<QueuedTask>>,
    pub inbox: Receiver<QueuedTask>,
    pub requests: Receiver<MoveRequest>,
    /// The other domains, nearest first: where a starved domain's tasks go.
    pub nearest: Vec<DomainId>,
    pub stop: Arc<AtomicBool>,
}

pub struct Worker<C: DomainChannel> {
    dom: DomainId,
    batch: usize,
    /// With several domains, hand the kernel no more than this many tasks
    /// ahead of its CPUs (see `step`); None: a full batch every time.
    backlog_limit: Option<u64>,
    /// Sleep in epoll when idle (partial mode) instead of yielding.
    sleep_when_idle: bool,
    queue: RunQueue,
    chan: C,
    links: Links,
    picked: Vec<Pid>,
    moving: Vec<QueuedTask>,
    /// Peers that were sent migrants but not yet woken, because our channel
    /// to the kernel was full.
    unwoken_peers: DomainMask,
    /// How fast our clock moves, for the debt bound (vruntime.rs).
    speed: ClockSpeed,
    /// When to look next for debtors that waited too long (`step`).
    next_overdue_scan: Monotonic,
}

impl<C: DomainChannel> Worker<C> {
    pub fn new(
        dom: DomainId,
        batch: usize,
        backlog_limit: Option<u64>,
        capacity: usize,
        chan: C,
        links: Links,
    ) -> Worker<C> {
        Worker {
            dom,
            batch,
            backlog_limit,
            sleep_when_idle: false,
            queue: RunQueue::with_capacity(capacity),
            chan,
            links,
            picked: Vec::with_capacity(capacity.min(4096)),
            moving: Vec::with_capacity(capacity.min(4096)),
            unwoken_peers: DomainMask::default(),
            speed: ClockSpeed::default(),
            next_overdue_scan: Monotonic::default(),
        }
    }

    /// Sleep in epoll when the queue is empty instead of yielding to BPF.
    pub fn sleep_when_idle(mut self, yes: bool) -> Self {
        self.sleep_when_idle = yes;
        self
    }

    fn state(&self) -> &DomainState {
        &self.links.states[self.dom.0 as usize]
    }

    pub fn run(&mut self) {
        self.state()
            .tid
            .store(nix::unistd::gettid().as_raw(), Ordering::Relaxed);
        while !self.links.stop.load(Ordering::Acquire) {
            self.step();
        }
    }

    /// One iteration of the loop in the module doc.
    pub fn step(&mut self) {
        let dom = self.dom;
        self.queue.advance_clock(self.chan.clock());
        let now = Monotonic::now();
        self.speed.sample(now.0, self.queue.clock());
        self.queue.set_max_debt(self.speed.max_debt());
        self.queue.set_now(now);
        {
            let (queue, states) = (&mut self.queue, &*self.links.states);
            let mut sink = |a: &Arrival| accept(queue, states, dom, a);
            self.chan.receive(&mut sink);
        }

        while let Ok(t) = self.links.inbox.try_recv() {
            // Migrants travel on the IN_FLIGHT clock (see `push`): put them
            // on our clock as it is now, not as it was when they left.
            let here = t
                .vruntime
                .renormalise(IN_FLIGHT, self.queue.clock(), self.queue.max_debt());
            self.state().migrated_in.fetch_add(1, Ordering::Relaxed);
            if !self.queue.insert(QueuedTask { vruntime: here, ..t }) {
                self.state().replaced_stale.fetch_add(1, Ordering::Relaxed);
            }
        }
        while let Ok(req) = self.links.requests.try_recv() {
            self.push(req);
        }
        if self.state().starved.load(Ordering::Acquire) {
            self.evacuate();
        }
        self.wake_peers();

        // With one domain this is the example: a full batch whenever we run.
        // With several, tasks the kernel already holds can no longer be
        // balanced, so hand out only what the domain's CPUs are about to
        // need and keep the rest here, where the balancer can move them.
        let budget = match self.backlog_limit {
            None => self.batch,
            Some(limit) => (limit.saturating_sub(self.chan.kernel_backlog()) as usize).min(self.batch),
        };
        let held_back = budget < self.batch;
        // What we keep back may wait behind the clock's turn, and a light
        // task placed far ahead waits for everything placed before it: one
        // that waited MAX_USER_DEBTOR_WAIT_NS goes now, whatever the
        // budget (it does not count against it: bpf/main.bpf.c,
        // take_debtor), so that BPF can run it within MAX_DEBTOR_WAIT_NS.
        let scan_overdue = self.backlog_limit.is_some() && now >= self.next_overdue_scan;
        let chan = &mut self.chan;
        let mut full = false;
        let mut send = |t: &QueuedTask| {
            let ok = chan.send(&t.dispatch_from(dom));
            full = !ok;
            ok
        };
        let mut sent = 0;
        if scan_overdue {
            self.next_overdue_scan = Monotonic(now.0.saturating_add(OVERDUE_SCAN_NS));
            let overdue = self
                .queue
                .dispatch_overdue(now.before(MAX_USER_DEBTOR_WAIT_NS), &mut send);
            self.links.states[dom.0 as usize]
                .user_overdue
                .fetch_add(overdue as u64, Ordering::Relaxed);
            sent += overdue;
        }
        sent += self.queue.dispatch_batch(budget, &mut send);
        self.publish(sent as u64, full);

        // Partial mode: BPF cannot hold us, so wait for arrivals instead of
        // yielding when there is nothing to hand out now: an empty queue,
        // or CPUs that hold all they need (see BACKLOG_WAIT).
        if self.sleep_when_idle && (self.queue.is_empty() || held_back || full) {
            let timeout = if self.queue.is_empty() { IDLE_WAIT } else { BACKLOG_WAIT };
            let (queue, states) = (&mut self.queue, &*self.links.states);
            let mut sink = |a: &Arrival| accept(queue, states, dom, a);
            self.chan.wait(timeout, &mut sink);
            self.publish_head();
        } else {
            self.chan.yield_cpu();
        }
    }

    /// Tells BPF what we hold: how many tasks, and the vruntime of the one
    /// we would hand out first, which a woken task placed before it may
    /// pass without the trip through us (the wakeup fast path).
    fn publish_head(&mut self) -> u64 {
        let n = self.queue.len() as u64;
        let head = self.queue.iter().next().map_or(Vruntime(0), |t| t.vruntime);
        self.chan.publish_queued(n, head);
        n
    }

    fn publish(&mut self, sent: u64, full: bool) {
        let n = self.publish_head();
        let s = &self.links.states[self.dom.0 as usize];
        s.queued.store(n, Ordering::Relaxed);
        let weight = self.queue.queued_weight();
        let head = self.queue.iter().next().map_or(0, |t| u64::from(t.weight.get()));
        s.queued_weight.store(weight, Ordering::Relaxed);
        s.movable_weight.store(weight.saturating_sub(head), Ordering::Relaxed);
        s.clock.store(self.queue.clock().0, Ordering::Relaxed);
        s.malformed.store(self.chan.malformed(), Ordering::Relaxed);
        s.dispatched.fetch_add(sent, Ordering::Relaxed);
        if full {
            s.channel_full.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Serves a balancer request: moves tasks to `req.to`'s inbox.
    fn push(&mut self, req: MoveRequest) {
        balancer::select_migrants(&self.queue, req.to, req.weight, req.max_tasks, &mut self.picked);
        let moved = self.send_picked(req.to);
        if req.cross_numa {
            self.state().migrated_out_numa.fetch_add(moved, Ordering::Relaxed);
        }
    }

    /// Our domain is starved (rescue.rs): sends every task that may go
    /// elsewhere to the nearest peers that are not, as much as their
    /// inboxes take.
    fn evacuate(&mut self) {
        for i in 0..self.links.nearest.len() {
            if self.queue.is_empty() {
                return;
            }
            let to = self.links.nearest[i];
            if self.links.states[to.0 as usize].starved.load(Ordering::Acquire) {
                continue;
            }
            crate::rescue::select_evacuees(&self.queue, to, usize::MAX, &mut self.picked);
            let moved = self.send_picked(to);
            self.state().evacuated.fetch_add(moved, Ordering::Relaxed);
        }
    }

    /// Moves the tasks in `self.picked` to `to`'s inbox; returns how many
    /// went (those that found it full stay here).
    fn send_picked(&mut self, to: DomainId) -> u64 {
        let Some(inbox) = self.links.inboxes.get(to.0 as usize) else {
            return 0;
        };
        // In flight, a migrant's vruntime is on the IN_FLIGHT clock; the
        // receiver moves it to its own clock when it takes it in.
        let dst_clock = IN_FLIGHT;
        balancer::take_migrants(&mut self.queue, &self.picked, dst_clock, &mut self.moving);
        let mut moved = 0;
        for t in self.moving.drain(..) {
            match inbox.try_send(t) {
                Ok(()) => moved += 1,
                Err(TrySendError::Full(t) | TrySendError::Disconnected(t)) => {
                    // Back on our clock: the lag it had is kept.
                    let back = QueuedTask {
                        vruntime: t
                            .vruntime
                            .renormalise(dst_clock, self.queue.clock(), self.queue.max_debt()),
                        ..t
                    };
                    if !self.queue.insert(back) {
                        self.links.states[self.dom.0 as usize]
                            .replaced_stale
                            .fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
        self.state().migrated_out.fetch_add(moved, Ordering::Relaxed);
        if moved > 0 {
            self.unwoken_peers.insert(to);
        }
        moved
    }

    /// Has BPF run the workers we sent migrants to: an idle domain's worker
    /// is held by BPF and nothing else would run it before the heartbeat.
    fn wake_peers(&mut self) {
        while let Some(peer) = self.unwoken_peers.first() {
            if !self.chan.wake_peer(peer) {
                return;
            }
            self.unwoken_peers.remove(peer);
        }
    }
}

/// Queues an arrival on `dom`, first moving its vruntime onto this domain's
/// clock if it was last scheduled by another domain.
fn accept(queue: &mut RunQueue, states: &[DomainState], dom: DomainId, a: &Arrival) {
    let prior = match a.vruntime_dom {
        None => None,
        Some(src) if src == dom => Some(a.vruntime),
        Some(src) => states.get(src.0 as usize).map(|s| {
            a.vruntime.renormalise(
                Vruntime(s.clock.load(Ordering::Relaxed)),
                queue.clock(),
                queue.max_debt(),
            )
        }),
    };
    let s = &states[dom.0 as usize];
    s.received.fetch_add(1, Ordering::Relaxed);
    if queue.enqueue(a, prior) == Enqueued::ReplacedStale {
        s.replaced_stale.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::{DomainMask, EnqueueSeq, Monotonic};
    use crate::vruntime::Weight;
    use std::collections::VecDeque;

    #[derive(Default)]
    struct FakeChannel {
        incoming: VecDeque<Arrival>,
        sent: Vec<Dispatch>,
        room: usize,
        published: u64,
        published_head: Vruntime,
        yields: usize,
        waits: usize,
        wait_timeouts: Vec<Duration>,
        backlog: u64,
        woken: Vec<DomainId>,
        clock: Vruntime,
    }

    impl DomainChannel for FakeChannel {
        fn receive(&mut self, sink: &mut dyn FnMut(&Arrival)) -> usize {
            let n = self.incoming.len();
            for a in self.incoming.drain(..) {
                sink(&a);
            }
            n
        }
        fn wait(&mut self, timeout: Duration, sink: &mut dyn FnMut(&Arrival)) -> usize {
            self.waits += 1;
            self.wait_timeouts.push(timeout);
            self.receive(sink)
        }
        fn send(&mut self, d: &Dispatch) -> bool {
            if self.room == 0 {
                return false;
            }
            self.room -= 1;
            self.sent.push(*d);
            true
        }
        fn wake_peer(&mut self, peer: DomainId) -> bool {
            if self.room == 0 {
                return false;
            }
            self.room -= 1;
            self.woken.push(peer);
            true
        }
        fn publish_queued(&mut self, n: u64, head: Vruntime) {
            self.published = n;
            self.published_head = head;
        }
        fn yield_cpu(&mut self) {
            self.yields += 1;
        }
        fn kernel_backlog(&self) -> u64 {
            self.backlog
        }
        fn clock(&self) -> Vruntime {
            self.clock
        }
        fn malformed(&self) -> u64 {
            0
        }
    }

    fn arrival(pid: i32, ran: u64, vruntime_dom: Option<DomainId>, vruntime: u64) -> Arrival {
        Arrival {
            pid: Pid(pid),
            seq: EnqueueSeq(pid as u64),
            sum_exec_runtime: ran,
            vruntime: Vruntime(vruntime),
            charged_exec_runtime: 0,
            vruntime_dom,
            weight: Weight::NICE_0,
            allowed: DomainMask::all(2),
            cpu: 0,
        }
    }

    fn worker_with(
        dom: u32,
        chan: FakeChannel,
        batch: usize,
        limit: Option<u64>,
    ) -> (Worker<FakeChannel>, Arc<[DomainState]>) {
        let states: Arc<[DomainState]> = (0..2).map(|_| DomainState::default()).collect();
        let (tx0, rx0) = crossbeam_channel::bounded(16);
        let (tx1, rx1) = crossbeam_channel::bounded(16);
        let (_req_tx, req_rx) = crossbeam_channel::bounded(4);
        let inbox = if dom == 0 { rx0 } else { rx1 };
        let links = Links {
            states: states.clone(),
            inboxes: vec![tx0, tx1],
            inbox,
            requests: req_rx,
            nearest: vec![DomainId(1 - dom)],
            stop: Arc::new(AtomicBool::new(false)),
        };
        (Worker::new(DomainId(dom), batch, limit, 64, chan, links), states)
    }

    fn worker(dom: u32, chan: FakeChannel, batch: usize) -> (Worker<FakeChannel>, Arc<[DomainState]>) {
        worker_with(dom, chan, batch, None)
    }

    #[test]
    fn with_several_domains_only_what_the_cpus_need_is_handed_out() {
        let mut chan = FakeChannel {
            room: 100,
            backlog: 1,
            ..Default::default()
        };
        for pid in 1..=6 {
            chan.incoming.push_back(arrival(pid, pid as u64, None, 0));
        }
        let (mut w, states) = worker_with(0, chan, 8, Some(3));
        w.step();
        assert_eq!(w.chan.sent.len(), 2, "3 CPUs' worth minus the 1 already waiting");
        assert_eq!(
            states[0].queued.load(Ordering::Relaxed),
            4,
            "the rest stays balanceable"
        );
        w.chan.backlog = 3;
        w.step();
        assert_eq!(w.chan.sent.len(), 2, "nothing more while the kernel has enough");
        w.chan.backlog = 0;
        w.step();
        assert_eq!(w.chan.sent.len(), 5);
    }

    #[test]
    fn with_several_domains_a_debtor_that_waited_long_goes_whatever_the_budget() {
        let mut chan = FakeChannel {
            room: 100,
            backlog: 5,
            ..Default::default()
        };
        // A SCHED_IDLE task new to us (half its 341 ms vslice ahead of the
        // clock: a debtor) and a nice-0 one; the kernel holds more than the
        // domain's CPUs need.
        chan.incoming.push_back(Arrival {
            weight: Weight::new(3),
            ..arrival(1, 0, None, 0)
        });
        chan.incoming.push_back(arrival(2, 0, None, 0));
        let (mut w, states) = worker_with(0, chan, 8, Some(2));
        // Both as if queued at time 0, through the inbox: migrants keep
        // their stamp, arrivals get the time of the step.
        std::thread::sleep(Duration::from_millis(1));
        let old = |pid: i32, vruntime: u64, weight: u32| QueuedTask {
            pid: Pid(pid),
            seq: EnqueueSeq(pid as u64),
            vruntime: Vruntime(IN_FLIGHT.0 + vruntime),
            charged_exec_runtime: 0,
            weight: Weight::new(weight),
            allowed: DomainMask::all(2),
            queued_at: Monotonic(0),
        };
        w.links.inboxes[0].send(old(3, 500_000_000, 3)).expect("inbox has room");
        w.links.inboxes[0].send(old(4, 0, 1024)).expect("inbox has room");
        // The scan finds what waited since the process began, which is
        // less than MAX_USER_DEBTOR_WAIT_NS: only stamp 0 is that old.
        w.step();
        assert_eq!(
            w.chan.sent.iter().map(|d| d.pid.0).collect::<Vec<_>>(),
            [3],
            "the old debtor only: not the old nice-0 task, nor the new debtor"
        );
        assert_eq!(states[0].user_overdue.load(Ordering::Relaxed), 1);
        assert_eq!(states[0].queued.load(Ordering::Relaxed), 3);
        // At most one scan per OVERDUE_SCAN_NS.
        w.links.inboxes[0].send(old(5, 500_000_000, 3)).expect("inbox has room");
        w.step();
        assert_eq!(w.chan.sent.len(), 1);
        // One domain: full batches, no scan needed.
        w.backlog_limit = None;
        w.next_overdue_scan = Monotonic(0);
        w.step();
        assert_eq!(states[0].user_overdue.load(Ordering::Relaxed), 1);
        assert_eq!(w.chan.sent.len(), 5);
    }

    #[test]
    fn dispatches_a_batch_then_yields_while_tasks_remain() {
        let mut chan = FakeChannel {
            room: 100,
            ..Default::default()
        };
        for pid in 1..=5 {
            chan.incoming.push_back(arrival(pid, 10 * pid as u64, None, 0));
        }
        let (w, states) = worker(0, chan, 2);
        let mut w = w.sleep_when_idle(true);
        w.step();
        assert_eq!(w.chan.sent.iter().map(|d| d.pid.0).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(w.chan.published, 3);
        assert_eq!(w.chan.yields, 1);
        assert_eq!(states[0].queued.load(Ordering::Relaxed), 3);
        // The head BPF is told of is the next decision: a woken task placed
        // before it may be handed out without us (the wakeup fast path).
        let head = w.chan.published_head;
        w.step();
        assert_eq!(w.chan.sent[2].pid.0, 3);
        assert_eq!(w.chan.sent[2].vruntime, head);
        w.step();
        assert_eq!(w.chan.sent.len(), 5);
        assert_eq!(w.chan.waits, 1, "sleeps once the queue is empty");
        w.sleep_when_idle = false;
        w.step();
        assert_eq!(
            (w.chan.waits, w.chan.yields),
            (1, 3),
            "or yields to BPF when BPF can hold it"
        );
        assert!(w.chan.sent.iter().all(|d| d.dom == DomainId(0)));
    }

    #[test]
    fn in_partial_mode_a_worker_held_back_by_its_cpus_sleeps_instead_of_spinning() {
        let mut chan = FakeChannel {
            room: 100,
            backlog: 2,
            ..Default::default()
        };
        for pid in 1..=5 {
            chan.incoming.push_back(arrival(pid, 10 * pid as u64, None, 0));
        }
        // Two domains: at most 2 decisions ahead of this domain's 2 CPUs,
        // and the kernel holds 2 already.
        let (w, _) = worker_with(0, chan, 8, Some(2));
        let mut w = w.sleep_when_idle(true);
        w.step();
        assert!(w.chan.sent.is_empty());
        assert_eq!((w.chan.yields, w.chan.wait_timeouts.clone()), (0, vec![BACKLOG_WAIT]));
        // The CPUs took one: one more goes, and it waits again.
        w.chan.backlog = 1;
        w.step();
        assert_eq!(w.chan.sent.len(), 1);
        assert_eq!(w.chan.wait_timeouts.last(), Some(&BACKLOG_WAIT));
        // Not held back: a full batch goes and, tasks remaining, no wait.
        w.backlog_limit = None;
        w.batch = 2;
        w.step();
        assert_eq!(w.chan.sent.len(), 3);
        assert_eq!((w.chan.yields, w.chan.waits), (1, 2));
        // Empty: the long idle wait.
        w.step();
        w.step();
        assert_eq!(w.chan.wait_timeouts.last(), Some(&IDLE_WAIT));
        assert_eq!(w.chan.sent.len(), 5);
    }

    #[test]
    fn a_full_kernel_channel_loses_nothing() {
        let mut chan = FakeChannel {
            room: 1,
            ..Default::default()
        };
        for pid in 1..=3 {
            chan.incoming.push_back(arrival(pid, pid as u64, None, 0));
        }
        let (mut w, states) = worker(0, chan, 8);
        w.step();
        assert_eq!(w.chan.sent.len(), 1);
        assert_eq!(states[0].channel_full.load(Ordering::Relaxed), 1);
        w.chan.room = 10;
        w.step();
        assert_eq!(w.chan.sent.iter().map(|d| d.pid.0).collect::<Vec<_>>(), [1, 2, 3]);
    }

    #[test]
    fn arrivals_from_another_domain_keep_their_lag() {
        let chan = FakeChannel {
            room: 100,
            ..Default::default()
        };
        let (mut w, states) = worker(1, chan, 8);
        states[0].clock.store(1_000_000, Ordering::Relaxed);
        w.chan.clock = Vruntime(7_000_000);
        // The task was 5000 ahead of domain 0's clock, and another 4000
        // behind it: each keeps its lag on our clock.
        w.chan.incoming.push_back(arrival(9, 0, Some(DomainId(0)), 1_005_000));
        w.chan.incoming.push_back(arrival(8, 0, Some(DomainId(0)), 996_000));
        w.step();
        let got: Vec<(i32, u64)> = w.chan.sent.iter().map(|d| (d.pid.0, d.vruntime.0)).collect();
        assert_eq!(got, [(8, 6_996_000), (9, 7_005_000)]);
    }

    #[test]
    fn a_peer_sent_migrants_is_woken_once_even_when_the_channel_was_full() {
        let chan = FakeChannel::default();
        let (mut w, states) = worker(0, chan, 8);
        for pid in 1..=4 {
            w.chan.incoming.push_back(arrival(pid, pid as u64, None, 0));
        }
        let (req_tx, req_rx) = crossbeam_channel::bounded(4);
        w.links.requests = req_rx;
        let (peer_tx, peer_inbox) = crossbeam_channel::bounded(16);
        w.links.inboxes[1] = peer_tx;
        let req = MoveRequest {
            to: DomainId(1),
            weight: 2 * u64::from(Weight::NICE_0.get()),
            max_tasks: 2,
            cross_numa: false,
        };
        req_tx.send(req).expect("request queue has room");
        w.step();
        assert_eq!(states[0].migrated_out.load(Ordering::Relaxed), 2);
        assert_eq!(peer_inbox.len(), 2, "the migrants wait in the peer's inbox");
        assert!(w.chan.woken.is_empty(), "no room in the channel yet");
        w.chan.room = 1;
        w.step();
        assert_eq!(w.chan.woken, [DomainId(1)], "the wake is retried, before any task");
        assert!(w.chan.sent.is_empty());
        w.chan.room = 10;
        w.step();
        assert_eq!(w.chan.woken, [DomainId(1)], "and sent once");
        assert_eq!(w.chan.sent.len(), 2, "the tasks that stayed are dispatched");
    }

    #[test]
    fn a_migrant_older_than_the_queued_enqueue_is_dropped_and_counted() {
        let chan = FakeChannel {
            room: 100,
            ..Default::default()
        };
        let (mut w, states) = worker(1, chan, 8);
        // The kernel re-enqueued pid 44 (seq 44) on our domain while its
        // older enqueue (seq 3) was on its way here from a peer.
        w.chan.incoming.push_back(arrival(44, 0, None, 0));
        let old = QueuedTask {
            pid: Pid(44),
            seq: EnqueueSeq(3),
            vruntime: IN_FLIGHT,
            charged_exec_runtime: 0,
            weight: Weight::NICE_0,
            allowed: DomainMask::all(2),
            queued_at: Monotonic::default(),
        };
        w.links.inboxes[1].send(old).expect("inbox has room");
        w.step();
        assert_eq!(w.chan.sent.len(), 1);
        assert_eq!(w.chan.sent[0].seq, EnqueueSeq(44), "the newer enqueue is answered");
        assert_eq!(states[1].replaced_stale.load(Ordering::Relaxed), 1);
        assert_eq!(states[1].migrated_in.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_starved_worker_sends_what_may_leave_to_its_peer_and_dispatches_the_rest() {
        let run = |peer_starved: bool| {
            let states: Arc<[DomainState]> = (0..2).map(|_| DomainState::default()).collect();
            let (tx0, rx0) = crossbeam_channel::bounded(16);
            let (tx1, rx1) = crossbeam_channel::bounded(16);
            let (_req_tx, req_rx) = crossbeam_channel::bounded(4);
            let links = Links {
                states: states.clone(),
                inboxes: vec![tx0, tx1],
                inbox: rx0,
                requests: req_rx,
                nearest: vec![DomainId(1)],
                stop: Arc::new(AtomicBool::new(false)),
            };
            let mut chan = FakeChannel {
                room: 64,
                ..FakeChannel::default()
            };
            chan.incoming.extend((1..=4).map(|pid| arrival(pid, 0, None, 0)));
            let pinned = Arrival {
                allowed: DomainMask::only(DomainId(0)),
                ..arrival(5, 0, None, 0)
            };
            chan.incoming.push_back(pinned);
            let mut w = Worker::new(DomainId(0), 8, None, 64, chan, links);
            states[0].starved.store(true, Ordering::Relaxed);
            states[1].starved.store(peer_starved, Ordering::Relaxed);
            w.step();
            let sent: Vec<Pid> = w.chan.sent.iter().map(|d| d.pid).collect();
            let arrived: Vec<Pid> = rx1.try_iter().map(|t| t.pid).collect();
            (states[0].evacuated.load(Ordering::Relaxed), sent, arrived)
        };
        let (evacuated, sent, mut arrived) = run(false);
        assert_eq!(evacuated, 4, "the head too");
        assert_eq!(sent, [Pid(5)], "only the task allowed nowhere else stays");
        arrived.sort();
        assert_eq!(arrived, [Pid(1), Pid(2), Pid(3), Pid(4)]);
        // A starved peer is sent nothing.
        let (evacuated, sent, arrived) = run(true);
        assert_eq!((evacuated, arrived.len(), sent.len()), (0, 0, 5));
    }

    #[test]
    fn migrants_from_the_inbox_are_dispatched_here() {
        let chan = FakeChannel {
            room: 100,
            ..Default::default()
        };
        let (mut w, states) = worker(1, chan, 8);
        let t = QueuedTask {
            pid: Pid(44),
            seq: EnqueueSeq(3),
            vruntime: Vruntime(IN_FLIGHT.0 - 12),
            charged_exec_runtime: 0,
            weight: Weight::NICE_0,
            allowed: DomainMask::all(2),
            queued_at: Monotonic::default(),
        };
        w.links.inboxes[1].send(t).expect("inbox has room");
        w.step();
        assert_eq!(w.chan.sent.len(), 1);
        assert_eq!(w.chan.sent[0].dom, DomainId(1));
        assert_eq!(w.chan.sent[0].seq, EnqueueSeq(3), "the enqueue it answers is unchanged");
        assert_eq!(w.chan.sent[0].vruntime, Vruntime(0), "12 ns behind a clock at 0");
        assert_eq!(states[1].migrated_in.load(Ordering::Relaxed), 1);
    }
}
