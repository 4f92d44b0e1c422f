/* SPDX-License-Identifier: GPL-2.0 */
/*
 * scx-userland, the BPF half: it keeps tasks flowing between the kernel and
 * the user-space domain workers, and makes no scheduling decision of its own
 * beyond what must stay in the kernel.
 *
 *            select_cpu/enqueue                      ops.dispatch (CPU in dom d)
 *  task ──▶ restricted affinity? ── yes ──▶ local DSQ of an idle CPU, or DSQ d
 *              │ no
 *              ▼
 *        to_user[d] ringbuf ──▶ worker d (user space: vruntime queue)
 *                                   │ dispatches a batch
 *                                   ▼
 *        to_kern[d] user ringbuf ──drained in ops.dispatch──▶ DSQ d ──▶ CPU
 *
 * The fast path skips the trip through user space where its decision is
 * already known, and charges and places vruntime exactly as user space
 * does (--no-fast-path turns it off): a task whose slice ended on a CPU that
 * found nothing else to run keeps it (keep_last()); a task woken, or new,
 * while its domain's worker holds nothing and has nothing on the way goes
 * to an idle CPU of the domain (direct_cpu()), or into DSQ d at the
 * vruntime the worker would give it, which it may also do while the worker
 * holds only tasks placed after it (run_direct()).
 *
 * Domain d is the domain of the CPU the task is on. ops.dispatch on a CPU of
 * domain d drains to_kern[d] into DSQ d, then takes from DSQ d, then from the
 * other domains' DSQs, nearest first (steal_order, filled by user space).
 *
 * The worker threads (one per domain) are never sent to user space. A worker
 * yields after each round; BPF then *holds* it: keeps it enqueued without
 * putting it on any DSQ, and releases it onto the head of DSQ d once it has
 * something to do: new tasks in to_user[d] (an idle CPU of d is kicked to
 * run it), or a CPU of d out of work while tasks wait in user space. No
 * syscall wakes a worker: the kernel runs it when it is needed, as in the
 * scx_userland example. Held workers are the only tasks in BPF custody, and
 * every way a held worker could be starved is closed:
 *   - a CPU of d going idle with tasks queued kicks itself (ops.update_idle),
 *   - ops.dispatch on a CPU of d releases it when none of its decisions
 *     waits for a CPU any more (decisions_waiting()),
 *   - a worker that pushed migrants into a peer's inbox sends a WAKE record
 *     for that peer, drained like a decision (the peer may be held with an
 *     empty ring: nothing else would run it before the heartbeat),
 *   - a heartbeat timer releases every held worker and kicks a CPU of every
 *     domain each HEARTBEAT_NS, so that a quiet machine never trips the
 *     sched_ext watchdog: that also drains a decision left in to_kern[d]
 *     when two CPUs raced to drain it (the loser gets -EBUSY and kicks
 *     itself to retry, but it may have gone idle meanwhile),
 *   - a domain whose every CPU a higher class holds is *starved* (see
 *     dom_starved): its worker runs on, and its work goes to, other domains.
 * In partial mode the workers are not SCHED_EXT tasks, so they cannot be
 * held: they sleep in epoll on their ringbuf instead and BPF wakes them
 * through it (sleeping_workers).
 *
 * A task sent to user space carries a sequence number, unique across all
 * tasks; a dispatch whose number is not the task's latest, or for a task that
 * the kernel dequeued meanwhile (ops.dequeue), is dropped, never inserted.
 * Nothing is lost when a ringbuf is full: the task goes to DSQ d at once and
 * the `failed` counter counts it.
 */
#include "scx_kfuncs.bpf.h"
#include "intf.h"

char _license[] SEC("license") = "GPL";

#define SCX_SLICE_DFL_NS (20ULL * 1000 * 1000)

/* Set by user space before load. */
const volatile u32 nr_domains = 1;
const volatile u32 nr_possible_cpus = 1;
/* A nice-0 slice, which tasks kept in the kernel and the workers get, and
 * the shortest slice a user-space decision may ask for. */
const volatile u64 slice_ns = SCX_SLICE_DFL_NS;
const volatile u64 min_slice_ns = SCX_SLICE_DFL_NS / 20;
/* The longest slice a user-space decision may ask for (a heavy task's). */
const volatile u64 max_slice_ns = 3 * SCX_SLICE_DFL_NS;
/* src/vruntime.rs: how far behind its domain's clock a woken task can be
 * placed, and how much further ahead a running task must be before the
 * woken one preempts it. */
const volatile u64 sleeper_credit_ns = SCX_SLICE_DFL_NS;
const volatile u64 wakeup_gran_ns = SCX_SLICE_DFL_NS / 4;
/* The least the debt bound can be (src/vruntime.rs, MIN_DEBT_NS): a task
 * further ahead than this is one user space may push back. */
const volatile u64 min_debt_ns = 2 * SCX_SLICE_DFL_NS;
/* The longest a debtor waits in its debtor DSQ before it runs out of its
 * vruntime's turn (src/vruntime.rs, MAX_DEBTOR_WAIT_NS; take_debtor()). */
const volatile u64 max_wait_ns = 5000ULL * 1000 * 1000;
const volatile bool sleeping_workers;
/* --no-fast-path clears it: every decision then goes through user space. */
const volatile bool fast_path = true;
const volatile u32 cpu_to_dom[SUL_MAX_CPUS];
/* Each CPU's last-level cache, SUL_NO_LLC where unknown (src/bpf.rs). */
const volatile u32 cpu_to_llc[SUL_MAX_CPUS];
/* steal_order[d][i]: the i-th nearest other domain of d; SUL_NO_DOMAIN ends it. */
const volatile u32 steal_order[SUL_MAX_DOMAINS][SUL_MAX_DOMAINS];

/*
 * The scheduler's own process and its workers, as the kernel numbers them
 * (sul_register(), before attach). Not the ids user space sees: inside a pid
 * namespace (a container) those are the namespace's, and a worker that BPF
 * did not recognise was sent to itself, so the kernel unloaded us.
 */
s32 sched_tgid;
volatile s32 worker_pid[SUL_MAX_DOMAINS];
/* Written by user space once loaded. */
struct sul_dom_user dom_users[SUL_MAX_DOMAINS];

/*
 * Domain d's worker as BPF sees it, on a cache line of its own: the CPUs of
 * d write it at every wakeup they send to user space, and a line shared by
 * all domains bounced between all CPUs. u32 rather than bool: they are
 * updated with atomics.
 */
struct dom_worker {
	u32 held;	/* in BPF's custody, on no DSQ (see the file comment) */
	u32 needed;	/* asked to run: it has work */
	u32 running;	/* on a CPU now (between ops.running and ops.stopping) */
} __attribute__((aligned(SUL_CACHELINE)));
struct dom_worker dom_workers[SUL_MAX_DOMAINS];
/* Tasks created while attached: the high half of each one's enqueue
 * numbers (struct sul_enqueued, seq). */
u32 task_generation;
u64 nr_heartbeats;

/*
 * Starved domains (src/rescue.rs has the whole story). Every WATCH_NS a
 * timer looks at each domain: work has waited for it (in user space, its
 * worker asked to run, or in its DSQ) at every look for starve_grace_ns,
 * and none of its CPUs ran ops.dispatch in that time (dom_served): every
 * one is held by RT, deadline or stop tasks. The timer fires whatever runs
 * on the CPUs, where a watching thread could be stuck in the very DSQ it
 * watches. Then, until a CPU of the domain runs ops.dispatch again:
 *   - tasks that may run anywhere are queued on the nearest domain that is
 *     not starved instead (home_of()),
 *   - CPUs of other domains drain the starved domain's decisions and take
 *     its DSQ's tasks before their own (rescue()),
 *   - once user space has widened the worker's affinity (it follows
 *     dom_starved), the worker runs on those CPUs and moves what it holds
 *     to its peers.
 * One domain is never declared starved: there would be nowhere to go.
 */
const volatile u64 starve_grace_ns = 70ULL * 1000 * 1000;
u32 dom_starved[SUL_MAX_DOMAINS];
u32 nr_starved;
u32 rescue_next;
u64 dom_served[SUL_MAX_DOMAINS];
u64 waiting_since[SUL_MAX_DOMAINS];
u64 starved_at[SUL_MAX_DOMAINS];
struct sul_dom_clock dom_clocks[SUL_MAX_DOMAINS];

/* What each CPU runs, for wakeup preemption; written by that CPU only. */
struct cpu_ctx {
	u64 vtime;		/* the vruntime its task started with */
	u64 started_at;		/* when it started (ops.running) */
	u32 weight;		/* its weight, which charges its runtime */
	bool preemptible;	/* a task user space ordered, not preempted yet */
} __attribute__((aligned(SUL_CACHELINE)));
struct cpu_ctx cpu_ctxs[SUL_MAX_CPUS];
/* Each domain's counters on lines of their own: its CPUs write them. */
_Static_assert(sizeof(struct sul_dom_stats) % SUL_CACHELINE == 0, "sul_dom_stats: whole cache lines");
struct sul_dom_stats dom_stats[SUL_MAX_DOMAINS] __attribute__((aligned(SUL_CACHELINE)));
struct sul_exit_info exit_info;

/* Unused: they put the record layouts and constants into BTF, so that the
 * generated Rust skeleton has them and src/bpf.rs cannot drift from intf.h. */
enum sul_consts sul_consts_layout;
struct sul_enqueued sul_enqueued_layout;
struct sul_dispatch sul_dispatch_layout;
struct sul_register_args sul_register_args_layout;
enum sul_dispatch_flags sul_dispatch_flags_layout;

struct task_ctx {
	u64 vruntime;
	u64 charged_exec_runtime;
	u64 seq;		/* its last enqueue to user space (intf.h) */
	u32 vruntime_dom;
	s32 worker_dom;		/* -1 unless this is a worker thread */
	/* The domain whose DSQ holds the user-space decision for it, not
	 * taken by a CPU yet; SUL_NO_DOMAIN when none (decision_taken()). */
	u32 awaiting_dom;
	bool in_user;		/* sent to user space, not dispatched since */
	bool force_local;	/* select_cpu found an idle CPU for it */
	bool direct;		/* ...and it goes there without user space */
	bool sync_wake;		/* its waker is about to sleep (SCX_WAKE_SYNC) */
	/* Its current run was decided in user space: its vruntime is fresh
	 * and advances its domain's clock when it starts (ops.running). */
	bool from_user;
	/* It was queued in vtime order (a DSQ's head is the domain's least
	 * vruntime), or kept with nothing of its domain waiting: when it
	 * starts, its vruntime advances the domain's clock. */
	bool moves_clock;
	u64 slice;		/* the slice user space gave it last */
	u64 sent_at;		/* when it was sent to user space, if woken */
	u64 queued_at;		/* when it was last sent to user space */
	u64 decided_at;		/* when its decision was inserted */
	s32 last_cpu;		/* where it ran last, -1 before its first run */
};

/*
 * The kernel's weights (sched_prio_to_weight, 1024 at nice 0), so that a
 * task's share is the one EEVDF would give it. p->scx.weight is the same
 * scaled to 100 and rounded, which makes nice 19 (15/1024) weigh 1/100, a
 * third less than it should, and it misses SCHED_IDLE for tasks that were
 * SCHED_IDLE before we attached.
 */
static const u32 prio_to_weight[40] = {
	88761, 71755, 56483, 46273, 36291, 29154, 23254, 18705, 14949, 11916,
	9548, 7620, 6100, 4904, 3906, 3121, 2501, 1991, 1586, 1277,
	1024, 820, 655, 526, 423, 335, 272, 215, 172, 137,
	110, 87, 70, 56, 45, 36, 29, 23, 18, 15,
};
#define SUL_SCHED_IDLE 5
#define SUL_WEIGHT_IDLEPRIO 3
#define SUL_MAX_RT_PRIO 100
/* Idle CPUs one ops.dispatch wakes at most (each woken one wakes more). */
#define SUL_MAX_KICKS 64

#define HEARTBEAT_NS (250ULL * 1000 * 1000)
/* How often the starvation watch looks (see dom_starved). */
#define WATCH_NS (10ULL * 1000 * 1000)
#define SERVED_RES_NS (1000ULL * 1000)

/* Whether the starvation watch runs: several domains, and workers in BPF's
 * custody (in partial mode they sleep in epoll and are never held). */
static __always_inline bool starvation_watched(void)
{
	return nr_domains > 1 && !sleeping_workers;
}

struct heartbeat {
	struct bpf_timer timer;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);	/* the heartbeat, the starvation watch */
	__type(key, u32);
	__type(value, struct heartbeat);
} heartbeat SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct task_ctx);
} task_ctxs SEC(".maps");

struct dom_cpumask {
	struct bpf_cpumask __kptr *mask;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SUL_MAX_DOMAINS);
	__type(key, u32);
	__type(value, struct dom_cpumask);
} dom_cpumasks SEC(".maps");

/* One ringbuf pair per domain, created and inserted by user space. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, SUL_MAX_DOMAINS);
	__type(key, u32);
	__array(values, struct {
		__uint(type, BPF_MAP_TYPE_RINGBUF);
		__uint(max_entries, 4096);
	});
} to_user SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, SUL_MAX_DOMAINS);
	__type(key, u32);
	__array(values, struct {
		__uint(type, BPF_MAP_TYPE_USER_RINGBUF);
		__uint(max_entries, 4096);
	});
} to_kern SEC(".maps");

/* Array index of a domain, provably in bounds for the verifier. */
#define DOM(d) ((d) & (SUL_MAX_DOMAINS - 1))

static __always_inline u32 dom_of_cpu(s32 cpu)
{
	if (cpu < 0 || cpu >= SUL_MAX_CPUS)
		return 0;
	/* The mask keeps the bound visible to the verifier whatever
	 * register the compiler checks it in. */
	return cpu_to_dom[cpu & (SUL_MAX_CPUS - 1)];
}

static __always_inline struct sul_dom_stats *stats_of(u32 dom)
{
	return &dom_stats[DOM(dom)];
}

static __always_inline struct task_ctx *task_ctx_of(struct task_struct *p)
{
	return bpf_task_storage_get(&task_ctxs, p, 0, 0);
}

static __always_inline u32 task_weight(struct task_struct *p)
{
	u32 i = p->static_prio - SUL_MAX_RT_PRIO;

	if (p->policy == SUL_SCHED_IDLE)
		return SUL_WEIGHT_IDLEPRIO;
	if (i >= 40)
		return 1024;
	return prio_to_weight[i];
}

/* Tasks domain @dom's worker holds, as it last said. */
static __always_inline u64 nr_queued_of(u32 dom)
{
	return *(volatile u64 *)&dom_users[DOM(dom)].nr_queued;
}

static __always_inline u64 clock_of(u32 dom)
{
	return dom_clocks[DOM(dom)].vtime_now;
}

/* The clock only moves forward; losing a race to another CPU loses nothing,
 * since that CPU moved it at least as far as a task that ran. */
static __always_inline void advance_clock(u32 dom, u64 vtime)
{
	u64 *now = &dom_clocks[DOM(dom)].vtime_now;
	u64 old = *now;

	if ((s64)(vtime - old) > 0)
		__sync_val_compare_and_swap(now, old, vtime);
}

/*
 * Where domain @dom's work goes: @dom itself, or while it is starved, the
 * nearest domain that is not (itself when every other one is starved too).
 */
static u32 home_of(u32 dom)
{
	u32 i, other;

	if (!nr_starved || !dom_starved[DOM(dom)])
		return dom;
	for (i = 0; i < SUL_MAX_DOMAINS && i < nr_domains; i++) {
		other = steal_order[DOM(dom)][i];
		if (other >= nr_domains)
			break;
		if (!dom_starved[DOM(other)])
			return other;
	}
	return dom;
}

/*
 * Kick a CPU of @dom so that it runs ops.dispatch: an idle one, or with
 * @any_cpu, any CPU of the domain when none is idle.
 */
static bool kick_cpu_in(u32 dom, bool any_cpu)
{
	struct dom_cpumask *dm;
	struct bpf_cpumask *mask;
	s32 cpu = -1;
	u32 key = dom;

	dm = bpf_map_lookup_elem(&dom_cpumasks, &key);
	if (!dm)
		return false;
	bpf_rcu_read_lock();
	mask = dm->mask;
	if (mask && any_cpu)
		cpu = scx_bpf_pick_any_cpu((const struct cpumask *)mask, 0);
	else if (mask)
		cpu = scx_bpf_pick_idle_cpu((const struct cpumask *)mask, 0);
	bpf_rcu_read_unlock();
	if (cpu < 0)
		return false;
	scx_bpf_kick_cpu(cpu, SCX_KICK_IDLE);
	return true;
}

static __always_inline bool kick_idle_cpu_in(u32 dom)
{
	return kick_cpu_in(dom, false);
}

/*
 * @p was the last task on its CPU (SCX_ENQ_LAST) and keeps it. The kernel
 * asks only after it picked the idle task (put_prev_task_scx()), and an
 * insert into the local DSQ reschedules no CPU whose current task is the
 * one being put: unkicked, the CPU goes idle with @p on its local DSQ and
 * stays so until something else interrupts it, and with NO_HZ_IDLE that
 * can be longer than the watchdog's timeout. The kick lands once the CPU
 * runs its idle task, which it then leaves for @p.
 */
static __always_inline void keep_cpu(struct task_struct *p, u64 slice, u64 enq_flags)
{
	sul_dsq_insert(p, SCX_DSQ_LOCAL, slice, enq_flags);
	scx_bpf_kick_cpu(scx_bpf_task_cpu(p), SCX_KICK_IDLE);
}

/*
 * Does @p stay in the kernel? Tasks with a restricted affinity do, as in the
 * scx_userland example, except that with several domains a task whose CPUs
 * all lie in the domain it is on is scheduled by that domain's worker. Tasks
 * pinned to one CPU and the scheduler's own threads always stay.
 */
static bool keep_in_kernel(struct task_struct *p, u32 dom)
{
	struct dom_cpumask *dm;
	struct bpf_cpumask *mask;
	bool fits = false;
	u32 key = dom;

	if (p->tgid == sched_tgid)
		return true;
	if (p->nr_cpus_allowed >= nr_possible_cpus)
		return false;
	if (nr_domains < 2 || p->nr_cpus_allowed < 2)
		return true;

	dm = bpf_map_lookup_elem(&dom_cpumasks, &key);
	if (!dm)
		return true;
	bpf_rcu_read_lock();
	mask = dm->mask;
	if (mask)
		fits = bpf_cpumask_subset(p->cpus_ptr, (const struct cpumask *)mask);
	bpf_rcu_read_unlock();
	return !fits;
}

static __always_inline u64 allowed_domains_of(struct task_struct *p, u32 dom)
{
	if (p->nr_cpus_allowed >= nr_possible_cpus)
		return nr_domains >= 64 ? ~0ULL : (1ULL << nr_domains) - 1;
	return 1ULL << (dom & 63);
}

/*
 * Where domain @dom's worker @p waits for a CPU: DSQ home_of(@dom), once
 * user space has let it run there (rescue.rs widens it), else its own.
 */
static u32 worker_dsq(struct task_struct *p, u32 dom)
{
	u32 home = home_of(dom), key = home;
	struct dom_cpumask *dm;
	bool may = false;

	if (home == dom)
		return dom;
	dm = bpf_map_lookup_elem(&dom_cpumasks, &key);
	if (!dm)
		return dom;
	bpf_rcu_read_lock();
	if (dm->mask)
		may = bpf_cpumask_intersects(p->cpus_ptr, (const struct cpumask *)dm->mask);
	bpf_rcu_read_unlock();
	return may ? home : dom;
}

static void enqueue_worker(struct task_struct *p, struct task_ctx *tctx, u64 enq_flags)
{
	u32 dom = DOM(tctx->worker_dom);

	if (enq_flags & SCX_ENQ_WAKEUP) {
		/* Woken by its ringbuf: it has work now. */
		u64 flags = tctx->force_local ? 0 : SCX_ENQ_PREEMPT;

		tctx->force_local = false;
		sul_dsq_insert(p, SCX_DSQ_LOCAL, slice_ns, enq_flags | flags);
		return;
	}
	if (!dom_workers[DOM(dom)].needed) {
		/*
		 * Hold it. need_worker() stores `needed`, then loads `held`;
		 * we store `held`, then load `needed`.
		 * Both stores are atomic exchanges, full barriers, so at least
		 * one side sees the other's store: either need_worker kicks a
		 * CPU for the held worker, or we see the need and run it now.
		 */
		__sync_lock_test_and_set(&dom_workers[DOM(dom)].held, 1);
		if (!dom_workers[DOM(dom)].needed ||
		    !__sync_val_compare_and_swap(&dom_workers[DOM(dom)].held, 1, 0))
			return;
	}
	dom_workers[DOM(dom)].needed = 0;
	/* Alone on this CPU: ops.dispatch found nothing else, keep running. */
	if (enq_flags & SCX_ENQ_LAST) {
		keep_cpu(p, slice_ns, enq_flags);
		return;
	}
	/*
	 * It yielded with more work waiting. At the domain's clock, it runs
	 * after the woken tasks it just placed ahead of the clock, which this
	 * CPU takes first, and before the tasks that ran last.
	 */
	dom = worker_dsq(p, dom);
	sul_dsq_insert_vtime(p, dom, slice_ns, clock_of(dom), enq_flags);
	kick_idle_cpu_in(dom);
}

/*
 * Preempt @cpu's task for a woken task of domain @dom whose vruntime is
 * about @vtime, if @cpu is in @dom and runs a task user space ordered
 * whose vruntime now, its runtime so far charged (as EEVDF compares with
 * the current task's vruntime, brought up to date), is more than
 * wakeup_gran_ns past @vtime. The preempted task goes to user space like
 * any other; the CPU then runs the worker, which puts the woken task first
 * in the domain's DSQ.
 *
 * Its vruntime at its start alone is not enough: the clock, which places
 * the woken task, moves on while it runs (half as fast as time at 2 tasks
 * per CPU, and in jumps when a late CPU starts a task far ahead). On
 * numa-llc a fifth of the woken cyclictest threads found the task in front
 * of them started 18 ms of vruntime behind the clock, about as far as the
 * sleeper credit places them: not preempted, they waited 16 ms on average
 * for its slice to end.
 */
static bool should_preempt(struct task_struct *p, s32 cpu, u32 dom, u64 vtime)
{
	struct cpu_ctx *c;
	u64 ran;

	if (cpu < 0 || cpu >= SUL_MAX_CPUS || dom_of_cpu(cpu) != dom || !bpf_cpumask_test_cpu(cpu, p->cpus_ptr))
		return false;
	c = &cpu_ctxs[cpu];
	if (!c->preemptible || !c->weight)
		return false;
	ran = bpf_ktime_get_ns() - c->started_at;
	return (s64)(c->vtime + ran * 1024 / c->weight - vtime) > (s64)wakeup_gran_ns;
}

static bool preempt_cpu_for(struct task_struct *p, s32 cpu, u32 dom, u64 vtime)
{
	if (!should_preempt(p, cpu, dom, vtime))
		return false;
	cpu_ctxs[cpu & (SUL_MAX_CPUS - 1)].preemptible = false;
	scx_bpf_kick_cpu(cpu, SCX_KICK_PREEMPT);
	__sync_fetch_and_add(&stats_of(dom)->preempts, 1);
	return true;
}

/* Preempt a CPU for woken @p at @vtime: the one it last ran on, whose
 * cache it may still have, else this one. */
static void preempt_for(struct task_struct *p, u32 dom, u64 vtime)
{
	if (!preempt_cpu_for(p, scx_bpf_task_cpu(p), dom, vtime))
		preempt_cpu_for(p, bpf_get_smp_processor_id(), dom, vtime);
}

/*
 * Domain @dom's worker has work: have it run soon (see the file comment).
 * When no CPU of the domain is idle and @p is a woken task that user space
 * will put ahead of what runs (a sleeper is placed no further back than
 * sleeper_credit_ns behind the clock), a CPU is preempted for it, the one it
 * last ran on first: otherwise it would wait for the next slice to end.
 */
static void need_worker(u32 dom, struct task_struct *p, struct task_ctx *tctx, u64 enq_flags)
{
	u64 vtime, floor;

	/* Partial mode: the worker is not ours to hold or run; the ring
	 * buffer's wakeup runs it (and `needed` would never be cleared,
	 * which would keep domain_quiet() false for good). */
	if (sleeping_workers)
		return;
	/* An exchange, not a plain store: see enqueue_worker(). */
	__sync_lock_test_and_set(&dom_workers[DOM(dom)].needed, 1);
	/* A starved domain's worker runs where its home domain's CPUs are. */
	if (dom_workers[DOM(dom)].held && kick_idle_cpu_in(home_of(dom)))
		return;
	/* A running worker takes the task in its next round; a held or
	 * queued one needs a CPU, as does the task after it. */
	if (dom_workers[DOM(dom)].running || !p || !tctx || !(enq_flags & SCX_ENQ_WAKEUP))
		return;
	floor = clock_of(dom) - sleeper_credit_ns;
	vtime = tctx->vruntime_dom == dom && (s64)(tctx->vruntime - floor) > 0 ? tctx->vruntime : floor;
	preempt_for(p, dom, vtime);
}

/*
 * Debtors: user-space decisions placed further ahead of their domain's clock
 * than the least debt bound (min_debt_ns). Only light tasks get there (nice
 * 19, SCHED_IDLE: one tick past a 1 ms slice charges them 0.3-3 s of
 * vruntime, which user space clamps to its debt bound; a nice-5 task now
 * and then), and new ones half a light slice ahead.
 *
 *   DSQ dom           (vtime) ◀── decisions within min_debt_ns of the clock
 *   DSQ DEBT_DSQ(dom) (vtime) ◀── debtors
 *
 *   a CPU of dom takes: the first debtor if its vruntime is not after DSQ
 *   dom's head nor the head of what dom's worker holds (its turn: the
 *   order of one vtime queue); else, at most every DEBT_SCAN_NS per
 *   domain, the first debtor that has waited max_wait_ns since it was sent
 *   to user space; else DSQ dom's head; else, once nothing of dom is in
 *   user space, the first debtor rather than idle. With several domains
 *   and only debtors in dom, another domain's task that is owed more than
 *   the first debtor comes before it (steal_before_debtors()). Only a
 *   debtor run at its turn moves the clock (move_debtor()).
 *
 * With several domains a worker keeps what its CPUs do not need yet, for
 * the balancer, and hands out a debtor that waited half of max_wait_ns
 * there whatever its budget (src/queue.rs, dispatch_overdue), so the bound
 * holds from the enqueue, not from the decision.
 *
 * In one vtime DSQ a debtor waited until the clock moved up to it, and the
 * clock's speed is a guess made when it was placed (user space's debt
 * bound): a SCHED_IDLE hog charged while the machine was quiet (the clock
 * fast) and then overtaken by 32 hogs waited 13.9 s in CI, and another
 * 20.8 s, which made the kernel's watchdog unload us; 18.6 and 19.7 s in a
 * VM run. A wait measured in wall-clock time does not depend on that
 * guess. The search for a debtor that waited too long goes through the
 * whole DSQ (up to DEBT_SCAN_MAX): one placed far ahead when the bound was
 * large sorts behind every debtor placed since (looking at the first 8
 * only, one waited 23.5 s on numa-llc in CI). It runs a few times a second
 * per domain, not at every dispatch. A debtor run at its turn (nothing else
 * of its domain waiting is its turn too) moves the clock as any task does;
 * one run before its turn, because it waited long or a CPU would idle,
 * does not: it would hand its whole lead to every waiting task.
 */
#define DEBT_DSQ(dom) ((u64)SUL_MAX_DOMAINS + (dom))
#define DEBT_SCAN_NS (100ULL * 1000 * 1000)
#define DEBT_SCAN_MAX 256

/* When each domain's debtors were last searched for one that waited too
 * long (take_debtor()); a lost race costs one search more. */
static u64 debt_scanned_at[SUL_MAX_DOMAINS];

static __always_inline bool is_debtor(u32 dom, u64 vtime)
{
	return (s64)(vtime - clock_of(dom)) > (s64)min_debt_ns;
}

/* Tasks that wait in domain @dom's DSQs. */
static __always_inline s32 dsq_depth(u32 dom)
{
	return scx_bpf_dsq_nr_queued(dom) + scx_bpf_dsq_nr_queued(DEBT_DSQ(dom));
}

/* The vtime of the head of DSQ @dsq; false if it is empty. */
static bool dsq_head_vtime(u64 dsq, u64 *vtime)
{
	struct bpf_iter_scx_dsq it;
	struct task_struct *p;
	bool found = false;

	bpf_iter_scx_dsq_new(&it, dsq, 0);
	p = bpf_iter_scx_dsq_next(&it);
	if (p) {
		*vtime = p->scx.dsq_vtime;
		found = true;
	}
	bpf_iter_scx_dsq_destroy(&it);
	return found;
}

/*
 * Moves to CPU @cpu's local DSQ the first debtor of domain @dom that may run
 * there and was sent to user space at least @waited_ns ago. It runs out of
 * its vruntime's turn, so it must not move the clock: the clock would jump
 * to its vruntime, up to the debt bound ahead, and every task of the domain
 * behind it would be floored to the new clock less the sleeper credit at
 * its next placement, losing what it was owed (their order collapses to
 * round robin, and the light task's debt is forgiven).
 */
static bool move_debtor(u32 dom, s32 cpu, u64 waited_ns)
{
	u64 now = bpf_ktime_get_ns();
	struct bpf_iter_scx_dsq it;
	struct task_struct *p;
	struct task_ctx *tctx;
	bool moved = false;
	u32 i;

	bpf_iter_scx_dsq_new(&it, DEBT_DSQ(dom), 0);
	for (i = 0; i < DEBT_SCAN_MAX; i++) {
		p = bpf_iter_scx_dsq_next(&it);
		if (!p)
			break;
		tctx = task_ctx_of(p);
		if (!tctx || now - tctx->queued_at < waited_ns || !bpf_cpumask_test_cpu(cpu, p->cpus_ptr))
			continue;
		moved = sul_dsq_move(&it, p, SCX_DSQ_LOCAL, 0);
		/* It starts on this CPU once we return, so this is in time. */
		if (moved)
			tctx->moves_clock = false;
		break;
	}
	bpf_iter_scx_dsq_destroy(&it);
	return moved;
}

/* The first debtor of domain @dom that has waited max_wait_ns since it was
 * sent to user space (with several domains, part of that in its worker's
 * queue), onto CPU @cpu; at most every DEBT_SCAN_NS per domain. */
static bool take_overdue(u32 dom, s32 cpu)
{
	u64 now = bpf_ktime_get_ns();

	if (now - debt_scanned_at[DOM(dom)] < DEBT_SCAN_NS)
		return false;
	debt_scanned_at[DOM(dom)] = now;
	if (!move_debtor(dom, cpu, max_wait_ns))
		return false;
	__sync_fetch_and_add(&stats_of(dom)->overdue, 1);
	/* Look again at the next call: more may be overdue. */
	debt_scanned_at[DOM(dom)] = 0;
	return true;
}

/*
 * Whether the first debtor of domain @dom, at @first, comes before the rest
 * of the domain's work: the head of DSQ dom, and the head of what its worker
 * holds. With several domains the worker hands out only what the CPUs need
 * now, so DSQ dom is often empty while the worker holds the tasks whose
 * turn it is; judged by the DSQ alone, a SCHED_IDLE hog ran at every such
 * moment (numa-llc, --domains llc, 2 hogs a CPU: 474-686% over its share).
 */
static bool debtor_turn(u32 dom, u64 first)
{
	u64 front;

	if (dsq_head_vtime(dom, &front) && (s64)(first - front) > 0)
		return false;
	/* The depth before the head: user space stores the head first
	 * (src/bpf.rs), so a head read after a depth is at least as new. */
	if (!nr_queued_of(dom))
		return true;
	front = *(volatile u64 *)&dom_users[DOM(dom)].head_vtime;
	return (s64)(first - front) <= 0;
}

/*
 * Moves a debtor of domain @dom to CPU @cpu's local DSQ: with @any, the
 * first that may run there, out of its turn (rather than idle); else the
 * first if its turn has come (debtor_turn()), or one that has waited
 * max_wait_ns.
 */
static bool take_debtor(u32 dom, s32 cpu, bool any)
{
	u64 first;

	if (!scx_bpf_dsq_nr_queued(DEBT_DSQ(dom)))
		return false;
	if (any)
		return move_debtor(dom, cpu, 0);
	if (dsq_head_vtime(DEBT_DSQ(dom), &first) && debtor_turn(dom, first))
		return sul_dsq_move_to_local(DEBT_DSQ(dom));
	return take_overdue(dom, cpu);
}

/* Every decision domain @dom's worker sent has been drained into its DSQ. */
static bool decisions_drained(u32 dom)
{
	struct sul_dom_stats *st = stats_of(dom);

	return *(volatile u64 *)&dom_users[DOM(dom)].nr_sent == st->dispatches + st->stale;
}

/*
 * @p's user-space decision, if one waits in a DSQ, has left it: @p starts
 * to run, or was taken off the DSQ (ops.enqueue follows), or leaves
 * sched_ext. Counting these, rather than reading the DSQ's depth, tells a
 * worker how many of its own decisions are still waiting: the DSQ also
 * holds tasks kept in the kernel, and a worker that counted those handed
 * out nothing while a stream of pinned tasks kept two in DSQ d, leaving
 * the tasks it held unscheduled (a 20 s stall under the scx CI stress).
 */
static __always_inline void decision_taken(struct task_ctx *tctx)
{
	u32 dom = tctx->awaiting_dom;

	if (dom >= nr_domains)
		return;
	tctx->awaiting_dom = SUL_NO_DOMAIN;
	__sync_fetch_and_add(&stats_of(dom)->taken, 1);
}

/* Decisions domain @dom's worker sent that wait for a CPU: in to_kern[dom]
 * or in a DSQ. */
static bool decisions_waiting(u32 dom)
{
	struct sul_dom_stats *st = stats_of(dom);

	return !decisions_drained(dom) || *(volatile u64 *)&st->taken != *(volatile u64 *)&st->dispatches;
}

/*
 * Nothing of domain @dom is on the way to user space or back, and what its
 * worker holds, as it last published, is all of it (a running worker may
 * hold tasks it has not published yet; its decisions may not be drained
 * yet).
 */
static bool user_space_settled(u32 dom)
{
	u32 key = dom;
	void *rb;

	if (dom_workers[DOM(dom)].needed || dom_workers[DOM(dom)].running || !decisions_drained(dom))
		return false;
	rb = bpf_map_lookup_elem(&to_user, &key);
	return rb && !bpf_ringbuf_query(rb, BPF_RB_AVAIL_DATA);
}

/* Nothing of domain @dom waits in user space: the worker's next decision
 * would be about whatever is enqueued now, alone. */
static bool user_space_idle(u32 dom)
{
	/* Settled first: a worker seen stopped has published what it holds. */
	return user_space_settled(dom) && !nr_queued_of(dom);
}

/*
 * Nothing of domain @dom waits in user space that its worker would hand
 * out before a task at @vtime: it holds nothing, or only tasks placed after
 * it. The worker would hand that task out first, alone (it is the least of
 * its queue), and BPF may do so itself. Under overcommit the worker always
 * holds tasks, which all wait at or past the clock, while a woken task is
 * placed up to the sleeper credit behind it.
 */
static bool user_space_behind(u32 dom, u64 vtime)
{
	if (!user_space_settled(dom))
		return false;
	return !nr_queued_of(dom) || (s64)(vtime - *(volatile u64 *)&dom_users[DOM(dom)].head_vtime) < 0;
}

/*
 * Nothing of domain @dom waits anywhere: not in user space, not in its
 * DSQ. A task that is the last one on its CPU can then keep the CPU
 * without a trip through user space, which would decide the same.
 */
static bool domain_quiet(u32 dom)
{
	return !dsq_depth(dom) && user_space_idle(dom);
}

/* @p's runtime since its last charge, as the vruntime user space charges
 * for it at weight @w (src/vruntime.rs, charge: ran * 1024 / w). */
static __always_inline u64 charge_since(struct task_struct *p, struct task_ctx *tctx, u32 w)
{
	return (p->se.sum_exec_runtime - tctx->charged_exec_runtime) * 1024 / w;
}

/* @p's vruntime plus its runtime since its last charge. */
static __always_inline u64 with_charge(struct task_struct *p, struct task_ctx *tctx)
{
	return tctx->vruntime + charge_since(p, tctx, task_weight(p));
}

/* The slice user space gives a task of weight @w (src/vruntime.rs,
 * Weight::slice_ns): SLICE * w / 1024, between the shortest and longest. */
static __always_inline u64 slice_of(u32 w)
{
	u64 slice = slice_ns * w / 1024;

	if (slice < min_slice_ns)
		return min_slice_ns;
	return slice > max_slice_ns ? max_slice_ns : slice;
}

/*
 * Where user space would place @p, woken or new, on domain @dom's clock
 * (src/vruntime.rs, place): a new task half a slice's vruntime after the
 * clock, a known one charged and no further behind than the sleeper credit.
 * Without that lower bound a task that keeps its CPU without the trip while
 * entitled to more than the CPU (a nice -5 hog among nice 0 ones) would
 * fall ever further behind the clock, and a task pinned to its CPU, queued
 * at the clock, would wait for it to catch up: under the scx CI stress, a
 * runnable task stall.
 * A task on another domain's clock (one a CPU of @dom stole, now woken
 * there) is first carried onto @dom's as the receiving worker carries it
 * (src/worker.rs, accept: renormalise, then place): its lag against its
 * old domain's clock, no more than the sleeper credit behind, becomes its
 * lag here. Without that, every stolen task's next wakeup went through
 * user space only to be carried over there: with `--domains llc` on
 * numa-llc under stress-ng's switch stressor, 3 500 trips in 5 s against
 * 150 with one domain, beside 2 100 steals.
 * False when user space might place it otherwise: its lag or its place is
 * past the least debt bound (user space's bound, which may be larger,
 * decides those).
 */
static bool direct_vtime(struct task_struct *p, struct task_ctx *tctx, u32 dom, u64 *vtime)
{
	u32 w = task_weight(p), from = tctx->vruntime_dom;
	u64 now = clock_of(dom), floor = now - sleeper_credit_ns, v;
	s64 lag;

	if (from == SUL_NO_DOMAIN) {
		*vtime = now + slice_of(w) * 1024 / w / 2;
		return true;
	}
	if (from == dom) {
		v = tctx->vruntime;
	} else {
		if (from >= nr_domains)
			return false;
		lag = (s64)(tctx->vruntime - clock_of(from));
		if (lag > (s64)min_debt_ns)
			return false;
		if (lag < -(s64)sleeper_credit_ns)
			lag = -(s64)sleeper_credit_ns;
		v = now + lag;
	}
	v += charge_since(p, tctx, w);
	*vtime = (s64)(v - floor) < 0 ? floor : v;
	return (s64)(*vtime - now) <= (s64)min_debt_ns;
}

/*
 * The fast path for a task whose slice ended on a CPU that found nothing
 * else to run (SCX_ENQ_LAST: the DSQs it may take from are empty). True if
 * it keeps the CPU, charged and placed as user space would charge and place
 * it at its next trip:
 *   - nothing of the domain waits anywhere: for another slice (`alone`);
 *   - tasks of the domain wait in user space, or on the way there, with
 *     the worker busy on another CPU: sending this one after them would
 *     leave its CPU idle for the whole round trip. It keeps the CPU for the
 *     shortest slice (`last`); by then the worker's decisions are in the
 *     DSQ, and it competes with them. With several domains this trip was
 *     most of the CPUs' idle time beside one hog per CPU.
 * Never a task charged past the least debt bound: user space may push it
 * back, and a light task renewed here ran several times its share (an
 * uncharged renewal gave a SCHED_IDLE hog three times its share at 2x).
 */
static bool keep_last(struct task_struct *p, struct task_ctx *tctx, u32 dom, u64 enq_flags)
{
	bool quiet;
	u64 v;

	if (!tctx->from_user || tctx->vruntime_dom >= nr_domains || !direct_vtime(p, tctx, tctx->vruntime_dom, &v))
		return false;
	tctx->vruntime = v;
	tctx->charged_exec_runtime = p->se.sum_exec_runtime;
	quiet = domain_quiet(dom);
	/* With tasks waiting in user space it is not the least vruntime:
	 * moving the clock to it would hand every waiter the gap, and the
	 * tasks at the debt bound (nice 19, SCHED_IDLE) would run sooner
	 * than their weight allows. */
	tctx->moves_clock = quiet;
	__sync_fetch_and_add(quiet ? &stats_of(dom)->kept_alone : &stats_of(dom)->kept_last, 1);
	keep_cpu(p, quiet ? tctx->slice : min_slice_ns, enq_flags);
	return true;
}

/*
 * Gives a task that stays in the kernel its vruntime on domain @dom's clock,
 * and returns it: charged for what it ran since its last charge, as user
 * space charges, and placed as user space places: no further behind
 * the clock than the sleeper credit if woken, not behind it otherwise, and
 * no further ahead than the least debt bound.
 *
 * Why it needs one: queued at the bare clock, as it once was, every such
 * task sorted before every task user space ordered ahead of the clock.
 * Under the scx CI stress, whose pinned stressors keep all CPUs busy, the
 * clock (which moves only as tasks that carry a vruntime start) then
 * stood still, and an unpinned kworker queued 10 ms ahead of it waited
 * behind a stream of pinned tasks until the watchdog fired.
 */
static __always_inline u64 charge_in_kernel(struct task_struct *p, struct task_ctx *tctx, u32 dom, bool woken)
{
	u64 now = clock_of(dom);
	u64 floor = now - (woken ? sleeper_credit_ns : 0);
	u64 v = tctx->vruntime_dom == dom ? with_charge(p, tctx) : floor;

	if ((s64)(v - floor) < 0)
		v = floor;
	if ((s64)(v - now) > (s64)min_debt_ns)
		v = now + min_debt_ns;
	tctx->vruntime = v;
	tctx->vruntime_dom = dom;
	tctx->charged_exec_runtime = p->se.sum_exec_runtime;
	tctx->from_user = false;
	return v;
}

/*
 * The wakeup fast path. A task woken (or new) while nothing of its domain
 * waits anywhere (domain_quiet()) would be the worker's only decision, put
 * first in DSQ @dom, where an idle CPU of the domain takes it: with an idle
 * CPU it may use, the decision is known, and the trip through user space
 * (two context switches, and the task's wait for them) buys nothing. The
 * CPU is the one it last ran on if idle, else any idle one of the domain it
 * may use; never one of another domain, whose clock it is not on (the
 * balancer and the steals move tasks between domains). Returns the CPU,
 * its idle state claimed, or -1.
 */
static s32 direct_cpu(struct task_struct *p, struct task_ctx *tctx, s32 prev_cpu, u64 wake_flags)
{
	u32 dom = dom_of_cpu(prev_cpu), key = dom;
	const struct cpumask *cpus = p->cpus_ptr;
	struct dom_cpumask *dm;
	s32 cpu = -1;
	u64 vtime;

	if (!fast_path || !(wake_flags & (SCX_WAKE_TTWU | SCX_WAKE_FORK)) || !domain_quiet(dom) ||
	    !direct_vtime(p, tctx, dom, &vtime))
		return -1;
	if (bpf_cpumask_test_cpu(prev_cpu, cpus) && scx_bpf_test_and_clear_cpu_idle(prev_cpu))
		return prev_cpu;
	/* A task allowed everywhere takes any CPU of the domain; any other
	 * one is here only if all its CPUs lie in the domain. */
	if (p->nr_cpus_allowed < nr_possible_cpus)
		return scx_bpf_pick_idle_cpu(cpus, 0);
	dm = bpf_map_lookup_elem(&dom_cpumasks, &key);
	if (!dm)
		return -1;
	bpf_rcu_read_lock();
	if (dm->mask)
		cpu = scx_bpf_pick_idle_cpu((const struct cpumask *)dm->mask, 0);
	bpf_rcu_read_unlock();
	return cpu;
}

/*
 * The wakeup fast path, carried out: @p, woken or new, placed and given its
 * slice as user space would place and size it, goes
 *   - onto the CPU direct_cpu() claimed for it (@claimed), or
 *   - with nothing in user space the worker would hand out before it
 *     (user_space_behind()), into DSQ @dom at that vruntime: the decision
 *     the worker would make about it, first of all it holds, in the order
 *     the worker would give it. As for a worker's decision, an idle
 *     CPU of the domain is woken, or a CPU preempted for it (need_worker()).
 *     A synchronous wakeup (a pipe's reader) mostly lands here: its waker's
 *     CPU is not idle yet, but is about to take it from the DSQ.
 * Like a task user space ordered, its start moves the domain's clock and it
 * may be preempted. False when user space would place it otherwise, or may
 * have something to put before it: it then goes through user space. A
 * claimed CPU is always used, even if the domain got busy since
 * select_cpu: nobody else may take a claimed idle CPU, and the kicks do not
 * see it.
 */
static bool run_direct(struct task_struct *p, struct task_ctx *tctx, u32 dom, bool claimed, u64 enq_flags)
{
	u64 vtime;

	if (!direct_vtime(p, tctx, dom, &vtime)) {
		if (!claimed)
			return false;
		vtime = charge_in_kernel(p, tctx, dom, true);
	} else if (!claimed && !user_space_behind(dom, vtime)) {
		return false;
	}
	tctx->vruntime = vtime;
	tctx->vruntime_dom = dom;
	tctx->charged_exec_runtime = p->se.sum_exec_runtime;
	tctx->from_user = true;
	tctx->moves_clock = true;
	tctx->slice = slice_of(task_weight(p));
	tctx->sent_at = 0;
	__sync_fetch_and_add(&stats_of(dom)->direct, 1);
	if (claimed) {
		sul_dsq_insert(p, SCX_DSQ_LOCAL, tctx->slice, enq_flags);
		return true;
	}
	sul_dsq_insert_vtime(p, dom, tctx->slice, vtime, enq_flags);
	/* A synchronous waker frees its CPU in a moment: preempting it would
	 * only send it through user space, and every wakeup after it. */
	if (!kick_idle_cpu_in(dom) && (enq_flags & SCX_ENQ_WAKEUP) && !tctx->sync_wake)
		preempt_for(p, dom, vtime);
	return true;
}

s32 BPF_STRUCT_OPS(sul_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	struct task_ctx *tctx = task_ctx_of(p);
	s32 cpu;

	if (!tctx)
		return prev_cpu;
	if (tctx->worker_dom < 0 && !keep_in_kernel(p, dom_of_cpu(prev_cpu))) {
		tctx->sync_wake = wake_flags & SCX_WAKE_SYNC;
		cpu = direct_cpu(p, tctx, prev_cpu, wake_flags);
		if (cpu < 0)
			return prev_cpu;
		tctx->direct = true;
		return cpu;
	}

	/* Workers and tasks kept in the kernel: an idle CPU they may use. */
	if (scx_bpf_test_and_clear_cpu_idle(prev_cpu)) {
		tctx->force_local = true;
		return prev_cpu;
	}
	cpu = scx_bpf_pick_idle_cpu(p->cpus_ptr, 0);
	if (cpu >= 0) {
		tctx->force_local = true;
		return cpu;
	}
	return prev_cpu;
}

/*
 * A task that stays in the kernel (see keep_in_kernel()). It is queued on
 * its CPU's domain among the tasks user space ordered, at its own vruntime
 * (charge_in_kernel()). An idle CPU it may use is woken for it: a CPU that
 * found DSQ @dom empty a moment ago may be going idle, and for a pinned
 * task nothing else would ever look at its DSQ again. With none idle, a
 * woken task preempts like one user space orders (need_worker()).
 */
static void enqueue_in_kernel(struct task_struct *p, struct task_ctx *tctx, s32 cpu, u32 dom, u64 enq_flags)
{
	bool woken = enq_flags & SCX_ENQ_WAKEUP;
	u64 vtime = charge_in_kernel(p, tctx, dom, woken);
	s32 idle;

	__sync_fetch_and_add(&stats_of(dom)->kernel_enqueues, 1);
	tctx->moves_clock = false;
	/* An idle CPU was found for it, or it is the last task on this CPU
	 * (SCX_OPS_ENQ_LAST: ops.dispatch found nothing else to run). */
	if (enq_flags & SCX_ENQ_LAST) {
		tctx->force_local = false;
		keep_cpu(p, slice_ns, enq_flags);
		return;
	}
	if (tctx->force_local) {
		/* A wakeup: the kernel reschedules the idle CPU itself. */
		tctx->force_local = false;
		sul_dsq_insert(p, SCX_DSQ_LOCAL, slice_ns, enq_flags);
		return;
	}
	/*
	 * Woken, pinned to a CPU whose task it preempts: straight onto that
	 * CPU, ahead of what it runs. Through DSQ dom it would wait for the
	 * worker, which the preempted task (sent to user space) has the CPU
	 * run first: the mean wakeup latency of pinned 1 ms timers was up to
	 * 1.6x EEVDF's.
	 */
	if (woken && p->nr_cpus_allowed == 1 && should_preempt(p, cpu, dom, vtime)) {
		cpu_ctxs[cpu & (SUL_MAX_CPUS - 1)].preemptible = false;
		sul_dsq_insert(p, SCX_DSQ_LOCAL_ON | cpu, slice_ns, enq_flags | SCX_ENQ_PREEMPT);
		__sync_fetch_and_add(&stats_of(dom)->preempts, 1);
		return;
	}
	tctx->moves_clock = true;
	sul_dsq_insert_vtime(p, dom, slice_ns, vtime, enq_flags);
	idle = p->nr_cpus_allowed == 1 ? (scx_bpf_test_and_clear_cpu_idle(cpu) ? cpu : -1)
				       : scx_bpf_pick_idle_cpu(p->cpus_ptr, 0);
	if (idle >= 0)
		scx_bpf_kick_cpu(idle, SCX_KICK_IDLE);
	else if (woken)
		preempt_cpu_for(p, cpu, dom, vtime);
}

void BPF_STRUCT_OPS(sul_enqueue, struct task_struct *p, u64 enq_flags)
{
	struct task_ctx *tctx = task_ctx_of(p);
	s32 cpu = scx_bpf_task_cpu(p);
	u32 dom = dom_of_cpu(cpu);
	struct sul_enqueued *e;
	u32 key;
	void *rb;

	if (!tctx) {
		sul_dsq_insert_vtime(p, dom, slice_ns, clock_of(dom), enq_flags);
		return;
	}
	decision_taken(tctx);
	if (tctx->worker_dom >= 0) {
		enqueue_worker(p, tctx, enq_flags);
		return;
	}
	if (tctx->direct) {
		tctx->direct = false;
		run_direct(p, tctx, dom, true, enq_flags);
		return;
	}

	if (keep_in_kernel(p, dom)) {
		enqueue_in_kernel(p, tctx, cpu, dom, enq_flags);
		return;
	}
	if (fast_path && ((enq_flags & SCX_ENQ_WAKEUP) || tctx->vruntime_dom == SUL_NO_DOMAIN) &&
	    home_of(dom) == dom && run_direct(p, tctx, dom, false, enq_flags))
		return;

	/* The fast path: BPF renews the slice when user space would decide
	 * the same, or when the trip would only idle the CPU. */
	if (fast_path && (enq_flags & SCX_ENQ_LAST) && tctx->slice && keep_last(p, tctx, dom, enq_flags))
		return;
	/* Its domain's CPUs are all taken: the nearest domain decides. (A
	 * task restricted to the domain was kept in the kernel above.) */
	dom = home_of(dom);

	key = dom;
	rb = bpf_map_lookup_elem(&to_user, &key);
	e = rb ? bpf_ringbuf_reserve(rb, sizeof(*e), 0) : NULL;
	if (!e) {
		/* Placed as if it stayed in the kernel: at the bare clock it
		 * would pass every task user space ordered. */
		__sync_fetch_and_add(&stats_of(dom)->failed, 1);
		tctx->moves_clock = true;
		sul_dsq_insert_vtime(p, dom, slice_ns, charge_in_kernel(p, tctx, dom, enq_flags & SCX_ENQ_WAKEUP),
				     enq_flags);
		kick_idle_cpu_in(dom);
		return;
	}

	/* The task's own counter, not a shared one: an enqueue of a task is
	 * serialised by its runqueue's lock, and a line every CPU wrote at
	 * every enqueue bounced between them all. */
	tctx->seq++;
	tctx->in_user = true;
	tctx->moves_clock = false;
	tctx->queued_at = bpf_ktime_get_ns();
	tctx->sent_at = (enq_flags & SCX_ENQ_WAKEUP) ? tctx->queued_at : 0;
	tctx->from_user = false;
	e->pid = p->pid;
	e->seq = tctx->seq;
	e->sum_exec_runtime = p->se.sum_exec_runtime;
	e->vruntime = tctx->vruntime;
	e->charged_exec_runtime = tctx->charged_exec_runtime;
	e->allowed_domains = allowed_domains_of(p, dom);
	e->weight = task_weight(p);
	e->cpu = cpu;
	e->dom = dom;
	e->vruntime_dom = tctx->vruntime_dom;
	/* Held workers are run by a kick, not woken through epoll. */
	bpf_ringbuf_submit(e, sleeping_workers ? 0 : BPF_RB_NO_WAKEUP);

	__sync_fetch_and_add(&stats_of(dom)->user_enqueues, 1);
	need_worker(dom, p, tctx, enq_flags);
}

void BPF_STRUCT_OPS(sul_dequeue, struct task_struct *p, u64 deq_flags)
{
	struct task_ctx *tctx = task_ctx_of(p);

	if (!tctx)
		return;
	/* Whatever user space decides for the old enqueue is now stale. */
	tctx->in_user = false;
	if (tctx->worker_dom >= 0)
		dom_workers[DOM(tctx->worker_dom)].held = 0;
}

struct drain_ctx {
	/* Decisions inserted by this drain: they reach the DSQ only after
	 * ops.dispatch returns, so scx_bpf_dsq_nr_queued() does not count them. */
	u32 inserted;
};

/* Insert one user-space decision, unless it is stale. */
static long drain_one(struct bpf_dynptr *dynptr, void *data)
{
	struct drain_ctx *ctx = data;
	struct sul_dispatch d;
	struct task_struct *p;
	struct task_ctx *tctx;
	u64 slice;
	u32 dom;

	if (bpf_dynptr_read(&d, sizeof(d), dynptr, 0, 0)) {
		scx_bpf_error("malformed dispatch record");
		return 1;
	}
	dom = d.dom < nr_domains ? d.dom : 0;
	if (d.flags & SUL_DISPATCH_WAKE) {
		need_worker(dom, NULL, NULL, 0);
		return 0;
	}

	p = bpf_task_from_pid(d.pid);
	if (!p) {
		__sync_fetch_and_add(&stats_of(dom)->stale, 1);
		return 0;
	}
	tctx = task_ctx_of(p);
	if (!tctx || !tctx->in_user || tctx->seq != d.seq) {
		__sync_fetch_and_add(&stats_of(dom)->stale, 1);
		bpf_task_release(p);
		return 0;
	}
	tctx->in_user = false;
	tctx->from_user = true;
	tctx->moves_clock = true;
	tctx->vruntime = d.vruntime;
	tctx->charged_exec_runtime = d.charged_exec_runtime;
	tctx->vruntime_dom = dom;
	slice = d.slice_ns < min_slice_ns ? min_slice_ns : d.slice_ns;
	slice = slice > max_slice_ns ? max_slice_ns : slice;
	tctx->slice = slice;
	tctx->decided_at = bpf_ktime_get_ns();
	if (is_debtor(dom, d.vruntime)) {
		/* Not a decision the worker waits for a CPU to take: counted
		 * as taken, so that its budget (several domains) and whether
		 * BPF runs it again do not wait on a light task's turn. */
		tctx->awaiting_dom = SUL_NO_DOMAIN;
		__sync_fetch_and_add(&stats_of(dom)->taken, 1);
		sul_dsq_insert_vtime(p, DEBT_DSQ(dom), slice, d.vruntime, 0);
		__sync_fetch_and_add(&stats_of(dom)->debtors, 1);
	} else {
		/* Before the insert, which a CPU may take from once we return. */
		tctx->awaiting_dom = dom;
		/* vtime order: the order user space decided survives the DSQ. */
		sul_dsq_insert_vtime(p, dom, slice, d.vruntime, 0);
	}
	bpf_task_release(p);
	ctx->inserted++;

	__sync_fetch_and_add(&stats_of(dom)->dispatches, 1);
	/* Keep a slot for the worker; the rest waits for the next call. */
	return scx_bpf_dispatch_nr_slots() > 1 ? 0 : 1;
}

/*
 * Releases domain @dom's held worker onto the head of DSQ @dsq (vtime 0):
 * its own, or a starved domain's worker onto the rescuing CPU's.
 * True if it did: the caller then returns without taking a task, because
 * the worker reaches DSQ dom only after this ops.dispatch returns, and the
 * kernel calls ops.dispatch again (balance_one()), whose consume takes the
 * worker first. (Putting it straight on this CPU's local DSQ would be
 * quicker, but a worker preempted inside a migrate_disable() section cannot
 * be moved there, and the kernel unloads a scheduler that tries.)
 */
static bool release_worker(u32 dom, u32 dsq)
{
	struct task_struct *p = bpf_task_from_pid(worker_pid[DOM(dom)]);
	bool released = false;

	if (!p)
		return false;
	/* Onto another domain's DSQ only once user space has widened its
	 * affinity: it would wait there for a CPU of its own. */
	if ((dsq == dom || bpf_cpumask_test_cpu(bpf_get_smp_processor_id(), p->cpus_ptr)) &&
	    __sync_val_compare_and_swap(&dom_workers[DOM(dom)].held, 1, 0)) {
		dom_workers[DOM(dom)].needed = 0;
		sul_dsq_insert_vtime(p, dsq, slice_ns, 0, 0);
		released = true;
	}
	bpf_task_release(p);
	return released;
}

/*
 * bpf_loop callback: wake one idle CPU for a task waiting in *data's DSQ: one
 * of that domain, else of the nearest domain that has one (it will steal the
 * task: a CPU must not idle beside a task it may run). Stop when none is.
 */
static long kick_one(u32 i, void *data)
{
	u32 dom = DOM(*(u32 *)data), j;

	if (kick_idle_cpu_in(dom))
		return 0;
	for (j = 0; j < SUL_MAX_DOMAINS && j < nr_domains; j++) {
		u32 other = steal_order[dom][DOM(j)];

		if (other >= nr_domains)
			break;
		if (kick_idle_cpu_in(other))
			return 0;
	}
	return 1;
}

struct steal_ctx {
	u32 dom;
	bool stolen;
};

/* Should domain @dom's held worker run: it was asked to, or tasks wait in
 * user space and none of its decisions is left for a CPU to take? */
static __always_inline bool worker_wanted(u32 dom)
{
	return dom_workers[DOM(dom)].held &&
	       (dom_workers[DOM(dom)].needed || (nr_queued_of(dom) && !decisions_waiting(dom)));
}

/* bpf_loop callback: find a starved domain, *data being where to start. */
static long rescue_pick(u32 i, void *data)
{
	u32 *at = data, s = (*at + i) % (nr_domains ? nr_domains : 1);

	if (dom_starved[DOM(s)]) {
		*at = s;
		return 1;
	}
	return 0;
}

/*
 * A CPU of domain @dom, which is not starved, asks for work while another
 * domain is: it drains that domain's decisions (and its worker's WAKE
 * records for the peers it evacuated to), runs its held worker here, or
 * takes a task from its DSQ, before its own. Its own CPUs may be held for
 * as long as the watchdog's timeout. True when it took or released
 * something: the caller returns, and the kernel calls again to take it.
 */
static bool rescue(u32 dom)
{
	struct drain_ctx dctx = {};
	u32 s = SUL_NO_DOMAIN, key;
	void *rb;

	if (!nr_starved)
		return false;
	key = __sync_fetch_and_add(&rescue_next, 1);
	bpf_loop(nr_domains < SUL_MAX_DOMAINS ? nr_domains : SUL_MAX_DOMAINS, rescue_pick, &key, 0);
	s = key;
	if (s >= nr_domains || !dom_starved[DOM(s)] || s == dom)
		return false;
	rb = bpf_map_lookup_elem(&to_kern, &key);
	if (rb)
		bpf_user_ringbuf_drain(rb, drain_one, &dctx, BPF_RB_NO_WAKEUP);
	if (worker_wanted(s) && release_worker(s, dom)) {
		__sync_fetch_and_add(&stats_of(s)->rescued, 1);
		return true;
	}
	if (sul_dsq_move_to_local(s) || take_debtor(s, bpf_get_smp_processor_id(), true)) {
		__sync_fetch_and_add(&stats_of(s)->rescued, 1);
		return true;
	}
	return dctx.inserted > 0;
}

/* bpf_loop callback: take a task from the i-th nearest other domain's DSQ. */
static long steal_one(u32 i, void *data)
{
	struct steal_ctx *sc = data;
	u32 other = steal_order[DOM(sc->dom)][DOM(i)];

	if (other >= nr_domains)
		return 1;
	/* Another domain's debtor only at its turn there, or overdue: its
	 * CPUs would run it no sooner, and a CPU that found nothing for a
	 * moment (the workers hand out only what their CPUs need) ran the
	 * light tasks out of turn, a slice each time. */
	if (!sul_dsq_move_to_local(other) && !take_debtor(other, bpf_get_smp_processor_id(), false))
		return 0;
	__sync_fetch_and_add(&stats_of(sc->dom)->steals, 1);
	sc->stolen = true;
	return 1;
}

/*
 * Only debtors of a domain wait (its DSQ is empty), and a CPU of it asks
 * for work. EEVDF counts a CPU that runs nothing but SCHED_IDLE tasks as
 * idle, and pulls work to it; here, before the first debtor, the CPU takes
 * the head of the nearest other domain's DSQ whose lag (its vruntime less
 * its domain's clock) is less than the debtor's: it would run sooner there
 * than the debtor here. After its slice it goes to this domain's worker,
 * as any task that ran here. Without this, at twice as many hogs as CPUs
 * on numa-llc (`--domains llc`, 2 CPUs a domain), a domain that drew a
 * nice -5 hog, a nice-19 and a SCHED_IDLE one gave the two light ones a
 * CPU between them, 5-20 times their share, while nice-0 hogs of the next
 * domain shared theirs with nice-5 ones. A debtor that waited max_wait_ns
 * still goes first (take_overdue()).
 */
struct ahead_ctx {
	u32 dom;
	s64 lag;
	bool stolen;
};

/* bpf_loop callback: take the head of the i-th nearest other domain's DSQ
 * if its lag is less than ctx->lag. */
static long steal_ahead_one(u32 i, void *data)
{
	struct ahead_ctx *sc = data;
	u32 other = steal_order[DOM(sc->dom)][DOM(i)];
	u64 v;

	if (other >= nr_domains)
		return 1;
	if (!scx_bpf_dsq_nr_queued(other) || !dsq_head_vtime(other, &v) || (s64)(v - clock_of(other)) >= sc->lag ||
	    !sul_dsq_move_to_local(other))
		return 0;
	__sync_fetch_and_add(&stats_of(sc->dom)->steals, 1);
	sc->stolen = true;
	return 1;
}

/* A global function: the verifier checks it once, on its own. Inlined in
 * ops.dispatch's chain of takes, it made that too complex to verify. */
__noinline bool steal_before_debtors(u32 dom, s32 cpu)
{
	struct ahead_ctx sc = { .dom = dom };
	u64 first;

	/* The counts first: they are cheap, an iterator is not. */
	if (nr_domains < 2 || scx_bpf_dsq_nr_queued(dom) || !scx_bpf_dsq_nr_queued(DEBT_DSQ(dom)) ||
	    !dsq_head_vtime(DEBT_DSQ(dom), &first))
		return false;
	if (take_overdue(dom, cpu))
		return true;
	sc.lag = (s64)(first - clock_of(dom));
	bpf_loop(nr_domains < SUL_MAX_DOMAINS ? nr_domains : SUL_MAX_DOMAINS, steal_ahead_one, &sc, 0);
	return sc.stolen;
}

void BPF_STRUCT_OPS(sul_dispatch, s32 cpu, struct task_struct *prev)
{
	u32 dom = DOM(dom_of_cpu(cpu));
	struct drain_ctx dctx = {};
	struct steal_ctx sc = { .dom = dom };
	u32 key = dom;
	s32 waiting;
	void *rb;
	u64 now;

	/* The domain is served (see dom_starved); a shared line, so written
	 * at most once a millisecond, and only where the watch runs. */
	if (starvation_watched()) {
		now = bpf_ktime_get_ns();
		if (now - dom_served[DOM(dom)] > SERVED_RES_NS)
			dom_served[DOM(dom)] = now;
	}
	rb = bpf_map_lookup_elem(&to_kern, &key);
	/*
	 * No wakeup: the worker never waits for room in to_kern (it keeps
	 * what does not fit for its next round), and with flags 0 every drain
	 * that took something queued an irq_work to wake nobody.
	 * Another CPU of the domain is draining: try again once it is done.
	 */
	if (rb && bpf_user_ringbuf_drain(rb, drain_one, &dctx, BPF_RB_NO_WAKEUP) == -EBUSY)
		scx_bpf_kick_cpu(cpu, SCX_KICK_IDLE);

	/* Tasks wait in user space and none of the worker's decisions is
	 * left for a CPU to take: the worker must hand out more. */
	if (worker_wanted(dom) && release_worker(dom, dom)) {
		waiting = dsq_depth(dom) + dctx.inserted;
		goto kick;
	}

	/*
	 * What was just inserted reaches DSQ dom only when this call returns,
	 * so taking a task now would pass over the decisions just drained,
	 * woken tasks placed ahead of everything among them. The kernel calls
	 * ops.dispatch again when a call inserted tasks but left this CPU
	 * nothing to run (balance_one()), and that call takes the lowest
	 * vruntime of them all. The other CPUs are woken now: N tasks start on
	 * N idle CPUs at once.
	 */
	if (dctx.inserted) {
		waiting = dsq_depth(dom) + dctx.inserted - 1;
		goto kick;
	}

	if (rescue(dom))
		return;

	/*
	 * Another domain's task ahead of our debtors, else a debtor whose
	 * turn has come, else the least vruntime, else any debtor rather than
	 * idle, but only once nothing of this domain is in or on its way to
	 * user space: with several domains the worker hands out only what the
	 * CPUs need, so a CPU often finds the DSQs empty while the worker,
	 * running on the domain's other CPU, is about to hand it the task
	 * whose turn it is. A debtor run then, out of turn, ran far more
	 * often than its weight allows (numa-llc, --domains llc, 2 hogs a
	 * CPU: a SCHED_IDLE hog ran 18-36 times in 20 s, about 5 runs owed).
	 * Whatever the worker hands out kicks a CPU for each task left
	 * waiting, debtors included (below), so the debtor still runs once
	 * user space is idle.
	 */
	if (steal_before_debtors(dom, cpu) || take_debtor(dom, cpu, false) || sul_dsq_move_to_local(dom) ||
	    (user_space_idle(dom) && take_debtor(dom, cpu, true))) {
		/* No CPU idles beside a task waiting here: one for each. */
		waiting = dsq_depth(dom);
		goto kick;
	}
	bpf_loop(nr_domains < SUL_MAX_DOMAINS ? nr_domains : SUL_MAX_DOMAINS, steal_one, &sc, 0);
	return;

kick:
	/* Wake an idle CPU (of dom, else of the nearest domain, which will
	 * steal) for each task left waiting in DSQ dom. This CPU, about to
	 * run something, may still be marked idle: a kick must not pick it. */
	if (waiting > 0) {
		scx_bpf_test_and_clear_cpu_idle(cpu);
		/* A copy: a variable whose address is taken loses its bounds. */
		u32 kick_dom = dom;

		bpf_loop(waiting < SUL_MAX_KICKS ? waiting : SUL_MAX_KICKS, kick_one, &kick_dom, 0);
	}
}

/* A task that last ran on @from starts on @to, in another last-level
 * cache: counted for the domain of @to (issue: fewer cross-LLC moves with
 * a domain per LLC than with one domain). */
static __always_inline void count_llc_migration(s32 from, s32 to)
{
	u32 a, b;

	if (from < 0 || from >= SUL_MAX_CPUS || from == to)
		return;
	a = cpu_to_llc[from & (SUL_MAX_CPUS - 1)];
	b = cpu_to_llc[to & (SUL_MAX_CPUS - 1)];
	if (a != b && a != SUL_NO_LLC && b != SUL_NO_LLC)
		__sync_fetch_and_add(&stats_of(dom_of_cpu(to))->llc_migrations, 1);
}

void BPF_STRUCT_OPS(sul_running, struct task_struct *p)
{
	struct task_ctx *tctx = task_ctx_of(p);
	s32 cpu = bpf_get_smp_processor_id();
	bool ordered = tctx && tctx->from_user && tctx->vruntime_dom < nr_domains;
	u64 now = bpf_ktime_get_ns();
	struct cpu_ctx *c;

	if (ordered) {
		struct sul_dom_stats *st = stats_of(tctx->vruntime_dom);

		/* Once per decision for a woken task: a task kept alone runs
		 * again undecided. */
		if (tctx->decided_at && tctx->sent_at) {
			__sync_fetch_and_add(&st->waits, 1);
			__sync_fetch_and_add(&st->wait_user_ns, tctx->decided_at - tctx->sent_at);
			__sync_fetch_and_add(&st->wait_dsq_ns, now - tctx->decided_at);
			tctx->decided_at = 0;
		}
	}
	/* The clock is where the domain's least vruntime has got to. */
	if (tctx)
		decision_taken(tctx);
	if (tctx && tctx->moves_clock && tctx->vruntime_dom < nr_domains)
		advance_clock(tctx->vruntime_dom, tctx->vruntime);
	if (tctx)
		tctx->moves_clock = false;
	if (tctx && tctx->worker_dom >= 0)
		dom_workers[DOM(tctx->worker_dom)].running = 1;
	if (cpu < 0 || cpu >= SUL_MAX_CPUS)
		return;
	if (tctx) {
		count_llc_migration(tctx->last_cpu, cpu);
		tctx->last_cpu = cpu;
	}
	c = &cpu_ctxs[cpu];
	c->vtime = ordered ? tctx->vruntime : 0;
	c->started_at = now;
	c->weight = task_weight(p);
	c->preemptible = ordered;
}

void BPF_STRUCT_OPS(sul_stopping, struct task_struct *p, bool runnable)
{
	struct task_ctx *tctx = task_ctx_of(p);

	if (tctx && tctx->worker_dom >= 0)
		dom_workers[DOM(tctx->worker_dom)].running = 0;
}

/*
 * A higher class (RT, deadline) took this CPU. What waits on its local DSQ,
 * or was preempted there, would wait behind it for as long as it runs: a
 * worker preempted on a CPU that a real-time hog then kept for 28 s stalled
 * its whole domain, though the domain's other CPU was free. Hand those
 * tasks back to ops.enqueue, which queues them where another CPU takes them
 * (a task pinned to this CPU has nowhere else to go: on 6.12 RT throttling
 * lends no time to sched_ext tasks, so it waits; the kernel's watchdog then
 * unloads any sched_ext scheduler).
 */
void BPF_STRUCT_OPS(sul_cpu_release, s32 cpu, struct scx_cpu_release_args *args)
{
	scx_bpf_reenqueue_local();
}

void BPF_STRUCT_OPS(sul_update_idle, s32 cpu, bool idle)
{
	u32 dom = DOM(dom_of_cpu(cpu));

	if (!idle)
		return;
	/* A CPU is going idle while a held worker has work to do. */
	if (dom_workers[dom].held && (nr_queued_of(dom) || dom_workers[dom].needed)) {
		dom_workers[dom].needed = 1;
		scx_bpf_kick_cpu(cpu, 0);
	}
}

/* Leaving sched_ext (another class, or exit) while its decision waited. */
void BPF_STRUCT_OPS(sul_disable, struct task_struct *p)
{
	struct task_ctx *tctx = task_ctx_of(p);

	if (tctx)
		decision_taken(tctx);
}

s32 BPF_STRUCT_OPS(sul_init_task, struct task_struct *p, struct scx_init_task_args *args)
{
	struct task_ctx *tctx;
	u32 d;

	tctx = bpf_task_storage_get(&task_ctxs, p, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!tctx)
		return -ENOMEM;
	tctx->worker_dom = -1;
	tctx->last_cpu = -1;
	/* Once per task: its enqueue numbers start above those of every
	 * task that had its pid before (while we were attached). */
	tctx->seq = (u64)__sync_add_and_fetch(&task_generation, 1) << 32;
	tctx->vruntime_dom = SUL_NO_DOMAIN;
	tctx->awaiting_dom = SUL_NO_DOMAIN;
	for (d = 0; d < SUL_MAX_DOMAINS && d < nr_domains; d++) {
		if (worker_pid[DOM(d)] && worker_pid[DOM(d)] == p->pid) {
			tctx->worker_dom = d;
			break;
		}
	}
	return 0;
}

void BPF_STRUCT_OPS(sul_enable, struct task_struct *p)
{
	struct task_ctx *tctx = task_ctx_of(p);

	/* Charge only the runtime spent under this scheduler. */
	if (tctx)
		tctx->charged_exec_runtime = p->se.sum_exec_runtime;
}

/* Releases held workers now and then: see the file comment. */
static int heartbeat_fn(void *map, int *key, struct bpf_timer *timer)
{
	u32 d;

	__sync_fetch_and_add(&nr_heartbeats, 1);
	for (d = 0; d < SUL_MAX_DOMAINS && d < nr_domains; d++) {
		if (dom_workers[DOM(d)].held)
			dom_workers[DOM(d)].needed = 1;
		kick_cpu_in(home_of(d), true);
	}
	bpf_timer_start(timer, HEARTBEAT_NS, 0);
	return 0;
}

/* bpf_loop callback of watch_fn(): one domain, *data being now. */
static long watch_one(u32 d, void *data)
{
	u64 now = *(u64 *)data, since;
	bool waiting;

	if (d >= nr_domains)
		return 1;
	waiting = nr_queued_of(d) || dom_workers[DOM(d)].needed || decisions_waiting(d) || dsq_depth(d) > 0;
	if (!waiting)
		waiting_since[DOM(d)] = 0;
	else if (!waiting_since[DOM(d)])
		waiting_since[DOM(d)] = now;
	since = waiting_since[DOM(d)];
	if (dom_starved[DOM(d)]) {
		/* A CPU of it asked for work again. */
		if ((s64)(dom_served[DOM(d)] - starved_at[DOM(d)]) > 0) {
			dom_starved[DOM(d)] = 0;
			__sync_fetch_and_sub(&nr_starved, 1);
		}
		return 0;
	}
	if (since && now - since >= starve_grace_ns && now - dom_served[DOM(d)] >= starve_grace_ns &&
	    nr_starved + 1 < nr_domains) {
		starved_at[DOM(d)] = now;
		dom_starved[DOM(d)] = 1;
		__sync_fetch_and_add(&nr_starved, 1);
		__sync_fetch_and_add(&stats_of(d)->starvations, 1);
	}
	return 0;
}

/* The starvation watch (see dom_starved). */
static int watch_fn(void *map, int *key, struct bpf_timer *timer)
{
	u64 now = bpf_ktime_get_ns();

	bpf_loop(nr_domains < SUL_MAX_DOMAINS ? nr_domains : SUL_MAX_DOMAINS, watch_one, &now, 0);
	bpf_timer_start(timer, WATCH_NS, 0);
	return 0;
}

s32 BPF_STRUCT_OPS_SLEEPABLE(sul_init)
{
	struct heartbeat *hb;
	struct bpf_cpumask *mask;
	struct dom_cpumask *dm;
	u32 d, cpu, key;
	s32 ret;

	for (d = 0; d < SUL_MAX_DOMAINS && d < nr_domains; d++) {
		ret = scx_bpf_create_dsq(d, -1);
		if (!ret)
			ret = scx_bpf_create_dsq(DEBT_DSQ(d), -1);
		if (ret)
			return ret;
		mask = bpf_cpumask_create();
		if (!mask)
			return -ENOMEM;
		key = d;
		dm = bpf_map_lookup_elem(&dom_cpumasks, &key);
		if (!dm) {
			bpf_cpumask_release(mask);
			return -ENOENT;
		}
		mask = bpf_kptr_xchg(&dm->mask, mask);
		if (mask)
			bpf_cpumask_release(mask);
	}

	bpf_rcu_read_lock();
	for (cpu = 0; cpu < SUL_MAX_CPUS && cpu < nr_possible_cpus; cpu++) {
		key = cpu_to_dom[cpu];
		dm = bpf_map_lookup_elem(&dom_cpumasks, &key);
		if (dm && dm->mask)
			bpf_cpumask_set_cpu(cpu, dm->mask);
	}
	bpf_rcu_read_unlock();

	key = 0;
	hb = bpf_map_lookup_elem(&heartbeat, &key);
	if (!hb)
		return -ENOENT;
	bpf_timer_init(&hb->timer, &heartbeat, CLOCK_MONOTONIC);
	bpf_timer_set_callback(&hb->timer, heartbeat_fn);
	ret = bpf_timer_start(&hb->timer, HEARTBEAT_NS, 0);
	if (ret || !starvation_watched())
		return ret;
	key = 1;
	hb = bpf_map_lookup_elem(&heartbeat, &key);
	if (!hb)
		return -ENOENT;
	bpf_timer_init(&hb->timer, &heartbeat, CLOCK_MONOTONIC);
	bpf_timer_set_callback(&hb->timer, watch_fn);
	return bpf_timer_start(&hb->timer, WATCH_NS, 0);
}

/*
 * Run by each of the scheduler's worker threads on itself, through
 * BPF_PROG_RUN, before attach: records the caller's kernel-wide thread and
 * process ids, whatever pid namespace it runs in.
 */
SEC("syscall")
int sul_register(struct sul_register_args *args)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 dom = args->dom;

	sched_tgid = id >> 32;
	if (dom < nr_domains)
		worker_pid[DOM(dom)] = (u32)id;
	return 0;
}

void BPF_STRUCT_OPS(sul_exit, struct scx_exit_info *ei)
{
	exit_info.exit_code = ei->exit_code;
	bpf_probe_read_kernel_str(exit_info.reason, sizeof(exit_info.reason), ei->reason);
	bpf_probe_read_kernel_str(exit_info.msg, sizeof(exit_info.msg), ei->msg);
	if (ei->dump)
		bpf_probe_read_kernel_str(exit_info.dump, sizeof(exit_info.dump), ei->dump);
	/* kind last: user space polls it and then reads the rest */
	__sync_lock_test_and_set(&exit_info.kind, ei->kind);
}

SEC(".struct_ops.link")
struct sched_ext_ops sul_ops = {
	.select_cpu = (void *)sul_select_cpu,
	.enqueue = (void *)sul_enqueue,
	.dequeue = (void *)sul_dequeue,
	.dispatch = (void *)sul_dispatch,
	.running = (void *)sul_running,
	.stopping = (void *)sul_stopping,
	.update_idle = (void *)sul_update_idle,
	.cpu_release = (void *)sul_cpu_release,
	.init_task = (void *)sul_init_task,
	.enable = (void *)sul_enable,
	.disable = (void *)sul_disable,
	.init = (void *)sul_init,
	.exit = (void *)sul_exit,
	.flags = SCX_OPS_ENQ_LAST | SCX_OPS_KEEP_BUILTIN_IDLE,
	.exit_dump_len = SUL_EXIT_DUMP_LEN,
	/* .timeout_ms is set by user space (src/vruntime.rs, WATCHDOG_TIMEOUT_MS). */
	.name = "scx_userland",
};
