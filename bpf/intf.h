/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The interface between the BPF half (main.bpf.c) and the user-space half
 * (src/bpf.rs) of scx-userland. Everything here crosses the kernel/user
 * boundary byte for byte, so it is plain C with fixed-width types; src/bpf.rs
 * gets the same layouts from the skeleton that libbpf-cargo generates.
 *
 * Two channels per domain carry tasks, neither with a syscall per task:
 *
 *   kernel ──ringbuf "to_user[dom]" (struct sul_enqueued)──▶ worker of dom
 *   kernel ◀─user ringbuf "to_kern[dom]" (struct sul_dispatch)── worker of dom
 *
 * A task's scheduling state (vruntime and the runtime it was computed from)
 * lives in BPF task storage: it travels to user space with each enqueue and
 * comes back with the dispatch. User space therefore keeps no per-pid table
 * and works for any pid up to pid_max.
 */
#ifndef __SCX_USERLAND_INTF_H
#define __SCX_USERLAND_INTF_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
typedef __u8 u8;
typedef __u32 u32;
typedef __s32 s32;
typedef __u64 u64;
typedef __s64 s64;
#endif

enum sul_consts {
	/* Domains are named by a bit in a u64 mask, hence 64. */
	SUL_MAX_DOMAINS = 64,
	SUL_MAX_CPUS = 1024,
	/* vruntime_dom of a task that never went through user space. */
	SUL_NO_DOMAIN = 0xffffffff,
	/* cpu_to_llc of a CPU whose last-level cache is not known. */
	SUL_NO_LLC = 0xffffffff,
	/* sul_exit_info string sizes */
	SUL_EXIT_REASON_LEN = 128,
	SUL_EXIT_MSG_LEN = 1024,
	/* The kernel's debug dump on an error exit (ops.exit_dump_len). */
	SUL_EXIT_DUMP_LEN = 16384,
	/* Bytes of a cache line: per-domain and per-CPU state shared between
	 * CPUs is padded to it. */
	SUL_CACHELINE = 64,
};

/* A domain's vruntime clock: the largest vruntime a task scheduled through
 * user space had when it started to run on one of the domain's CPUs
 * (ops.running). Domain DSQs are vtime-ordered, so tasks start in vruntime
 * order and the clock follows the front of the domain's runnable tasks, the
 * way CFS's min_vruntime does. User space places arrivals relative to it. */
struct sul_dom_clock {
	u64 vtime_now;
	u64 pad[SUL_CACHELINE / 8 - 1];
};

/* What a domain's worker tells BPF, on a cache line of its own (written by
 * that worker only, read by the domain's CPUs). */
struct sul_dom_user {
	u64 nr_queued;	/* tasks it holds */
	/* Decisions it has pushed into to_kern, ever. With the decisions BPF
	 * has drained (dispatches + stale in sul_dom_stats), what is still in
	 * the ring. Stored before the worker yields, so it is current while
	 * BPF holds the worker. */
	u64 nr_sent;
	/* The vruntime of the task it would hand out first (the least it
	 * holds), when nr_queued is not 0: a woken task placed before it
	 * would be handed out first, and BPF may hand it out itself. */
	u64 head_vtime;
	u64 pad[SUL_CACHELINE / 8 - 3];
};

/* A runnable task handed to user space (kernel -> user). */
struct sul_enqueued {
	s32 pid;
	/* The kernel's load weight: sched_prio_to_weight[nice + 20] (1024 at
	 * nice 0), or 3 for SCHED_IDLE, as EEVDF weighs the task. */
	u32 weight;
	/* The task's enqueue number: the task's generation (one per task the
	 * kernel created while we were attached, so that a reused pid starts
	 * above every number its previous owner had) in the high 32 bits, its
	 * enqueues to user space in the low ones. A dispatch carrying another
	 * seq was decided for an enqueue that no longer exists. */
	u64 seq;
	u64 sum_exec_runtime;
	/* The vruntime user space gave the task at its last dispatch, and the
	 * sum_exec_runtime it had been charged up to then. */
	u64 vruntime;
	u64 charged_exec_runtime;
	/* Domains whose CPUs the task may use (bit d = domain d). */
	u64 allowed_domains;
	s32 cpu;	/* the CPU it last ran on */
	u32 dom;	/* the domain it is queued to */
	u32 vruntime_dom;	/* the domain whose clock vruntime is on */
	u32 pad;
};

/* The argument of the sul_register program (user -> kernel): the domain
 * whose worker is the calling thread, or SUL_NO_DOMAIN for another thread
 * of the scheduler. */
struct sul_register_args {
	u32 dom;
};

/* A scheduling decision (user -> kernel). */
struct sul_dispatch {
	s32 pid;
	u32 dom;	/* the domain (DSQ) the task goes to */
	u64 seq;	/* the enqueue it answers (sul_enqueued.seq) */
	u64 vruntime;	/* also its place in DSQ dom, which is vtime-ordered */
	u64 charged_exec_runtime;
	u64 slice_ns;	/* how long it may run before it comes back */
	u32 flags;	/* SUL_DISPATCH_* */
	u32 pad;
};

enum sul_dispatch_flags {
	/* Not a task: run the worker of `dom`, which has migrants from the
	 * balancer in its inbox but may be held by BPF with nothing to do. */
	SUL_DISPATCH_WAKE = 1,
};

/* Why the scheduler was unloaded, copied from the kernel in ops.exit. */
struct sul_exit_info {
	s32 kind;
	u32 pad;
	s64 exit_code;
	char reason[SUL_EXIT_REASON_LEN];
	char msg[SUL_EXIT_MSG_LEN];
	/* What each CPU ran and which tasks waited where: for a stall,
	 * the task's DSQ and the state of its CPU. */
	char dump[SUL_EXIT_DUMP_LEN];
};

/* Per-domain counters, written by BPF only. Whole cache lines (24 u64s
 * now, the last padding; main.bpf.c asserts it), so that domains do not
 * share a line. */
struct sul_dom_stats {
	u64 user_enqueues;	/* tasks sent to this domain's worker */
	u64 kernel_enqueues;	/* tasks kept in the kernel on this domain */
	u64 failed;		/* to_user full: task queued in the kernel */
	u64 dispatches;		/* user-space decisions inserted into the DSQ */
	/* Of those, how many left the DSQ: started to run, or were taken off
	 * it before (an affinity or priority change re-enqueues the task).
	 * dispatches - taken is what the worker handed out that no CPU has
	 * taken yet; tasks kept in the kernel are not its to count, and
	 * debtors count as taken when inserted (main.bpf.c, take_debtor()). */
	u64 taken;
	u64 stale;		/* decisions dropped: older enqueue or gone */
	u64 steals;		/* tasks this domain's CPUs took from another DSQ */
	u64 kept_alone;		/* slices renewed in the kernel: alone, nothing waiting */
	u64 kept_last;		/* short slices renewed: nothing else here, worker busy */
	u64 direct;		/* woken or new tasks run on an idle CPU without user space */
	u64 preempts;		/* CPUs preempted for a woken task */
	/* While every CPU of this domain was held by a higher class: its
	 * worker released, or a task taken, by a CPU of another domain. */
	u64 rescued;
	u64 starvations;	/* times the domain was found starved */
	/* Of the woken tasks user space ordered that started running: how
	 * many, and their total wait from wakeup to decision (in user space)
	 * and from decision to running (in the DSQ). */
	u64 waits;
	u64 wait_user_ns;
	u64 wait_dsq_ns;
	/* Tasks that started on one of this domain's CPUs with another
	 * last-level cache than the CPU they last ran on: they left their
	 * cache lines behind. */
	u64 llc_migrations;
	/* User-space decisions placed more than the least debt bound ahead
	 * of the clock, queued in the domain's debtor DSQ (main.bpf.c,
	 * take_debtor()); and of those, how many ran before their vruntime's
	 * turn because they had waited max_wait_ns since their enqueue. */
	u64 debtors;
	u64 overdue;
	u64 pad[5];
};

#endif /* __SCX_USERLAND_INTF_H */
