//! Native cost of the user-space hot path, in nanoseconds per task: the run
//! queue (enqueue + dispatch) at several depths, and a whole worker loop
//! iteration over an in-memory channel. No VM, no BPF: this is what user
//! space adds per task on top of the kernel's ring buffers. Then scaling:
//! 1, 2, 4 and 8 domain workers at once, each on its own thread with its
//! own producer, in decisions per second.
//!
//!     cargo run --release --example native-bench

use std::collections::VecDeque;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use scx_userland::queue::RunQueue;
use scx_userland::task::{Arrival, Dispatch, DomainMask, EnqueueSeq, Pid};
use scx_userland::vruntime::{Vruntime, Weight};
use scx_userland::worker::DomainChannel;
use scx_userland::worker::{DomainState, Links, Worker};
use topology::DomainId;

fn arrival(i: u64) -> Arrival {
    Arrival {
        pid: Pid((i % 4_194_304) as i32 + 1),
        seq: EnqueueSeq(i),
        sum_exec_runtime: (i * 7_919) % 20_000_000,
        vruntime: Vruntime(0),
        charged_exec_runtime: 0,
        vruntime_dom: None,
        weight: Weight::new(((i % 40) * 250 + 1) as u32),
        allowed: DomainMask::all(1),
        cpu: 0,
    }
}

/// Steady state at `depth` queued tasks: one enqueue and one dispatch per task.
fn queue_ns_per_task(depth: u64, tasks: u64) -> f64 {
    let mut q = RunQueue::with_capacity(depth as usize * 2);
    for i in 0..depth {
        q.enqueue(&arrival(i), Some(Vruntime(0)));
    }
    let start = Instant::now();
    for i in depth..depth + tasks {
        q.enqueue(&arrival(i), Some(Vruntime(0)));
        q.dispatch_batch(1, |t| {
            black_box(t);
            true
        });
    }
    start.elapsed().as_nanos() as f64 / tasks as f64
}

struct MemChannel {
    incoming: VecDeque<Arrival>,
    next: u64,
    per_step: usize,
    sent: u64,
}

impl DomainChannel for MemChannel {
    fn receive(&mut self, sink: &mut dyn FnMut(&Arrival)) -> usize {
        for _ in 0..self.per_step {
            self.incoming.push_back(arrival(self.next));
            self.next += 1;
        }
        let n = self.incoming.len();
        for a in self.incoming.drain(..) {
            sink(&a);
        }
        n
    }
    fn wait(&mut self, _t: Duration, sink: &mut dyn FnMut(&Arrival)) -> usize {
        self.receive(sink)
    }
    fn send(&mut self, d: &Dispatch) -> bool {
        black_box(d);
        self.sent += 1;
        true
    }
    fn wake_peer(&mut self, peer: DomainId) -> bool {
        black_box(peer);
        true
    }
    fn publish_queued(&mut self, n: u64, head: Vruntime) {
        black_box((n, head));
    }
    fn yield_cpu(&mut self) {}
    fn kernel_backlog(&self) -> u64 {
        0
    }
    fn clock(&self) -> Vruntime {
        // The front moves as tasks run: 100 ns of vruntime per task seen.
        Vruntime(self.next * 100)
    }
    fn malformed(&self) -> u64 {
        0
    }
}

/// A worker loop that receives `batch` tasks and dispatches `batch` per step.
fn worker_ns_per_task(batch: usize, tasks: u64) -> f64 {
    let states: Arc<[DomainState]> = (0..1).map(|_| DomainState::default()).collect();
    let (tx, rx) = crossbeam_channel::bounded(16);
    let (_rtx, rrx) = crossbeam_channel::bounded(1);
    let links = Links {
        states,
        inboxes: vec![tx],
        inbox: rx,
        requests: rrx,
        nearest: Vec::new(),
        stop: Arc::new(AtomicBool::new(false)),
    };
    let chan = MemChannel {
        incoming: VecDeque::with_capacity(batch),
        next: 0,
        per_step: batch,
        sent: 0,
    };
    let mut w = Worker::new(DomainId(0), batch, None, 8192, chan, links);
    let start = Instant::now();
    let steps = tasks / batch as u64;
    for _ in 0..steps {
        w.step();
    }
    start.elapsed().as_nanos() as f64 / (steps * batch as u64) as f64
}

/// `domains` workers, each on its own thread fed by its own in-memory
/// producer, for `run`: decisions per second over all of them.
fn domains_decisions_per_sec(domains: usize, batch: usize, run: Duration) -> f64 {
    let states: Arc<[DomainState]> = (0..domains).map(|_| DomainState::default()).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let (inbox_tx, inbox_rx): (Vec<_>, Vec<_>) = (0..domains).map(|_| crossbeam_channel::bounded(16)).unzip();
    let threads: Vec<_> = inbox_rx
        .into_iter()
        .enumerate()
        .map(|(d, inbox)| {
            let (_rtx, requests) = crossbeam_channel::bounded(1);
            let links = Links {
                states: states.clone(),
                inboxes: inbox_tx.clone(),
                inbox,
                requests,
                nearest: Vec::new(),
                stop: stop.clone(),
            };
            std::thread::spawn(move || {
                let chan = MemChannel {
                    incoming: VecDeque::with_capacity(batch),
                    next: d as u64 * 1_000_000_000,
                    per_step: batch,
                    sent: 0,
                };
                Worker::new(DomainId(d as u32), batch, None, 8192, chan, links).run();
            })
        })
        .collect();
    let start = Instant::now();
    std::thread::sleep(run);
    stop.store(true, Ordering::Release);
    for t in threads {
        let _ = t.join();
    }
    let decisions: u64 = states.iter().map(|s| s.dispatched.load(Ordering::Relaxed)).sum();
    decisions as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let tasks = 2_000_000;
    println!("run queue, enqueue + dispatch (ns per task):");
    for depth in [16, 256, 4096, 65_536] {
        println!("  depth {depth:>6}: {:>7.1}", queue_ns_per_task(depth, tasks));
    }
    println!("worker loop step, in-memory channel (ns per task):");
    for batch in [1, 8, 64] {
        println!("  batch {batch:>4}: {:>7.1}", worker_ns_per_task(batch, tasks));
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("domain workers at once, batch 8, own producer each ({cores} CPUs here):");
    let one = domains_decisions_per_sec(1, 8, Duration::from_secs(2));
    for domains in [1, 2, 4, 8] {
        let rate = if domains == 1 {
            one
        } else {
            domains_decisions_per_sec(domains, 8, Duration::from_secs(2))
        };
        println!(
            "  {domains} domain{}: {:>6.1} M decisions/s ({:.2}x one domain)",
            if domains == 1 { " " } else { "s" },
            rate / 1e6,
            rate / one
        );
    }
}
