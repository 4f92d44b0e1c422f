//! scx-userland: a sched_ext scheduler whose decisions are made in user space.
//!
//! ```text
//!  kernel (BPF, bpf/main.bpf.c)            user space (this crate)
//!  ───────────────────────────            ─────────────────────────────────
//!  enqueue ──ringbuf per domain──────────▶ worker d: RunQueue (vruntime)
//!  dispatch ◀─user ringbuf per domain──── worker d: batch of decisions
//!                                          balancer: moves queued tasks
//! ```
//!
//! Modules: `bpf` (the only one that touches BPF or `unsafe`), `queue`,
//! `vruntime`, `task`, `worker`, `balancer`, `scheduler` (threads and the run),
//! `stats` (every figure, its text and JSON forms, the stats socket),
//! `monitor` (--monitor), `preflight`, `cli`. The topology is the `topology` crate.

#![deny(unsafe_code)]

pub mod balancer;
pub mod bpf;
pub mod cli;
pub mod monitor;
pub mod preflight;
pub mod queue;
pub mod rescue;
pub mod scheduler;
pub mod stats;
pub mod task;
pub mod vruntime;
pub mod worker;
