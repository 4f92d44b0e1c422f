//! What user space knows of a task: the record BPF sent, decoded into types
//! that say what they are. The kernel's record layout lives in src/bpf.rs;
//! nothing else sees it.

use std::fmt;
use std::sync::OnceLock;
use std::time::Instant;

use topology::DomainId;

use crate::vruntime::{Vruntime, Weight};

/// A kernel task id (a thread's pid).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pid(pub i32);

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The enqueue a scheduling decision answers. BPF drops a dispatch whose
/// sequence number is not the task's latest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EnqueueSeq(pub u64);

impl EnqueueSeq {
    /// BPF numbers each task's enqueues from its own counter, whose high
    /// half is the task's generation (bpf/intf.h, `sul_enqueued`): a task
    /// that reuses a pid numbers above the pid's previous owner. Wrapping,
    /// as the counters do: within 2^63 of each other, the difference tells
    /// which came later.
    pub fn is_newer_than(self, other: EnqueueSeq) -> bool {
        (self.0.wrapping_sub(other.0) as i64) > 0
    }
}

/// The set of domains a task may run in, bit d for domain d.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct DomainMask(pub u64);

impl DomainMask {
    /// One bit per domain in a u64 (intf.h's SUL_MAX_DOMAINS; bpf.rs
    /// checks that they agree).
    pub const MAX_DOMAINS: usize = u64::BITS as usize;

    pub fn all(nr_domains: usize) -> DomainMask {
        if nr_domains >= Self::MAX_DOMAINS {
            DomainMask(u64::MAX)
        } else {
            DomainMask((1u64 << nr_domains) - 1)
        }
    }

    pub fn only(d: DomainId) -> DomainMask {
        DomainMask(1u64.checked_shl(d.0).unwrap_or(0))
    }

    pub fn contains(self, d: DomainId) -> bool {
        d.0 < 64 && self.0 & (1u64 << d.0) != 0
    }

    pub fn insert(&mut self, d: DomainId) {
        self.0 |= DomainMask::only(d).0;
    }

    pub fn remove(&mut self, d: DomainId) {
        self.0 &= !DomainMask::only(d).0;
    }

    /// The lowest-numbered domain in the set.
    pub fn first(self) -> Option<DomainId> {
        (self.0 != 0).then(|| DomainId(self.0.trailing_zeros()))
    }
}

/// A point in time: nanoseconds since the process first asked, the same
/// on every thread (so a stamp survives a migration between workers).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Monotonic(pub u64);

impl Monotonic {
    /// CLOCK_MONOTONIC through the vDSO, no syscall: the workers read it
    /// once per loop, not per task.
    pub fn now() -> Monotonic {
        static BASE: OnceLock<Instant> = OnceLock::new();
        let since = BASE.get_or_init(Instant::now).elapsed();
        Monotonic(u64::try_from(since.as_nanos()).unwrap_or(u64::MAX))
    }

    /// `self` less `ns`, never before 0.
    pub fn before(self, ns: u64) -> Monotonic {
        Monotonic(self.0.saturating_sub(ns))
    }
}

/// A runnable task the kernel handed to user space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arrival {
    pub pid: Pid,
    pub seq: EnqueueSeq,
    pub sum_exec_runtime: u64,
    /// The vruntime given at the task's last dispatch and the runtime it had
    /// been charged up to then (0 and "now" for a task new to us).
    pub vruntime: Vruntime,
    pub charged_exec_runtime: u64,
    /// Whose clock `vruntime` is on; None for a task never dispatched.
    pub vruntime_dom: Option<DomainId>,
    pub weight: Weight,
    pub allowed: DomainMask,
    pub cpu: i32,
}

/// A task waiting in a domain's run queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueuedTask {
    pub pid: Pid,
    pub seq: EnqueueSeq,
    pub vruntime: Vruntime,
    /// Runtime charged into `vruntime` (the arrival's sum_exec_runtime).
    pub charged_exec_runtime: u64,
    pub weight: Weight,
    pub allowed: DomainMask,
    /// When a worker first queued it for this enqueue (migrations keep it).
    pub queued_at: Monotonic,
}

/// A decision going back to the kernel: run `pid` from domain `dom`'s DSQ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dispatch {
    pub pid: Pid,
    pub seq: EnqueueSeq,
    pub vruntime: Vruntime,
    pub charged_exec_runtime: u64,
    /// How long it may run (`Weight::slice_ns`).
    pub slice_ns: u64,
    pub dom: DomainId,
}

impl QueuedTask {
    pub fn dispatch_from(&self, dom: DomainId) -> Dispatch {
        Dispatch {
            pid: self.pid,
            seq: self.seq,
            vruntime: self.vruntime,
            charged_exec_runtime: self.charged_exec_runtime,
            slice_ns: self.weight.slice_ns(),
            dom,
        }
    }
}
