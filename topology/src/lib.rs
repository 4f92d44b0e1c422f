//! Turns an hwloc topology into a *domain plan* for scx-userland.
//!
//! A domain is a set of CPUs served by one user-space run queue. The
//! scheduler wants domains whose CPUs share as much hardware as possible
//! (an LLC, a NUMA node) so that migrating a task inside a domain is cheap,
//! and it wants to know which other domains are "near" so that an idle
//! domain steals from its neighbours before crossing a NUMA boundary. This
//! crate computes that and knows nothing about BPF.
//!
//! The pipeline has two steps, kept apart so each can be tested alone:
//!
//! 1. [`Machine`] (`machine.rs`) flattens hwloc into one record per CPU:
//!    core, LLC, NUMA node, package and whether the CPU is *usable*
//!    (online and in the allowed cpuset; the process's own affinity plays no
//!    part, see [`Machine::live`]). Only this step talks to hwloc, so fixtures saved as
//!    XML and the live machine go through identical planning code.
//! 2. [`plan`] (`plan.rs`, `split.rs`) groups usable CPUs according to a
//!    [`DomainSpec`].
//!
//! Invariants of every [`Plan`], relied upon by the scheduler:
//!
//! - every usable CPU is in exactly one domain, unusable CPUs in none: a
//!   task can only run where the kernel lets it, and a domain made only of
//!   offline CPUs would be a queue nobody drains, so empty domains are
//!   dropped;
//! - ids are dense (`0..n`) and ordered by each domain's lowest CPU, so they
//!   can index BPF arrays and stay stable for a given topology;
//! - SMT siblings are never split across domains: they share a core's
//!   execution units and caches, and separate queues would fight over it;
//! - a domain's `numa_node` / `llc` is `Some` only when *all* its CPUs agree,
//!   so the scheduler can trust it for memory placement.
//!
//! Distances are deliberately coarse (0 same domain, 1 sharing a NUMA node or
//! LLC, 2 otherwise): hwloc's NUMA distance matrices are often missing or
//! made up by firmware, and a three-level order is all work stealing needs.
//! All arithmetic is on integers; nothing here depends on floating point
//! rounding.

mod cpus;
mod error;
mod machine;
mod plan;
mod spec;
mod split;

pub use cpus::format_cpu_ranges;
pub use error::TopologyError;
pub use machine::{Cpu, LlcSource, Machine};
pub use plan::{plan, Domain, DomainId, Plan};
pub use spec::DomainSpec;
