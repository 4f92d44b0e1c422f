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
 *   - ops.dispatch on a CPU of d with an empty DSQ d releases it,
 *   - a worker that pushed migrants into a peer's inbox sends a WAKE record
 *     for that peer, drained like a decision (the peer may be held with an
 *     empty ring: nothing else would run it before the heartbeat),
 *   - a heartbeat timer releases every held worker and kicks a CPU of every
 *     domain each HEARTBEAT_NS, so that a quiet machine never trips the
 *     sched_ext watchdog: that also drains a decision left in to_kern[d]
 *     when two CPUs raced to drain it (the loser gets -EBUSY and kicks
 *     itself to retry, but it may have gone idle meanwhile).
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
const volatile s32 sched_tgid;
const volatile u64 slice_ns = SCX_SLICE_DFL_NS;
const volatile bool sleeping_workers;
const volatile u32 cpu_to_dom[SUL_MAX_CPUS];
/* steal_order[d][i]: the i-th nearest other domain of d; SUL_NO_DOMAIN ends it. */
const volatile u32 steal_order[SUL_MAX_DOMAINS][SUL_MAX_DOMAINS];

/* Written by user space once loaded (worker_pid before attach). */
volatile s32 worker_pid[SUL_MAX_DOMAINS];
volatile u64 nr_queued[SUL_MAX_DOMAINS];

/* Owned by BPF. u32 rather than bool: they are updated with atomics. */
u32 worker_held[SUL_MAX_DOMAINS];
u32 worker_needed[SUL_MAX_DOMAINS];
u32 enqueue_seq;
/* Tasks waiting in each domain's DSQ, as last seen by ops.dispatch: with
 * the decisions still in to_kern, what a worker has handed out but no CPU
 * has taken yet. */
u64 dsq_depth[SUL_MAX_DOMAINS];
u64 nr_heartbeats;
struct sul_dom_stats dom_stats[SUL_MAX_DOMAINS];
struct sul_exit_info exit_info;

/* Unused: they put the record layouts into BTF, so that the generated Rust
 * skeleton has them and src/bpf.rs cannot drift from intf.h. */
struct sul_enqueued sul_enqueued_layout;
struct sul_dispatch sul_dispatch_layout;
enum sul_dispatch_flags sul_dispatch_flags_layout;

struct task_ctx {
	u64 vruntime;
	u64 charged_exec_runtime;
	u32 seq;
	u32 vruntime_dom;
	s32 worker_dom;		/* -1 unless this is a worker thread */
	bool in_user;		/* sent to user space, not dispatched since */
	bool force_local;	/* select_cpu found an idle CPU for it */
};

#define HEARTBEAT_NS (250ULL * 1000 * 1000)

struct heartbeat {
	struct bpf_timer timer;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
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
	return cpu_to_dom[cpu];
}

static __always_inline struct sul_dom_stats *stats_of(u32 dom)
{
	return &dom_stats[DOM(dom)];
}

static __always_inline struct task_ctx *task_ctx_of(struct task_struct *p)
{
	return bpf_task_storage_get(&task_ctxs, p, 0, 0);
}

/*
 * Kick a CPU of @dom so that it runs ops.dispatch: an idle one, or with
 * @any_cpu, any CPU of the domain when none is idle.
 */
static void kick_cpu_in(u32 dom, bool any_cpu)
{
	struct dom_cpumask *dm;
	struct bpf_cpumask *mask;
	s32 cpu = -1;
	u32 key = dom;

	dm = bpf_map_lookup_elem(&dom_cpumasks, &key);
	if (!dm)
		return;
	bpf_rcu_read_lock();
	mask = dm->mask;
	if (mask && any_cpu)
		cpu = scx_bpf_pick_any_cpu((const struct cpumask *)mask, 0);
	else if (mask)
		cpu = scx_bpf_pick_idle_cpu((const struct cpumask *)mask, 0);
	bpf_rcu_read_unlock();
	if (cpu >= 0)
		scx_bpf_kick_cpu(cpu, SCX_KICK_IDLE);
}

static __always_inline void kick_idle_cpu_in(u32 dom)
{
	kick_cpu_in(dom, false);
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

s32 BPF_STRUCT_OPS(sul_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	struct task_ctx *tctx = task_ctx_of(p);
	s32 cpu;

	if (!tctx)
		return prev_cpu;
	if (tctx->worker_dom < 0 && !keep_in_kernel(p, dom_of_cpu(prev_cpu)))
		return prev_cpu;

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
	if (!worker_needed[DOM(dom)]) {
		__sync_lock_test_and_set(&worker_held[DOM(dom)], 1);
		/* A task sent meanwhile saw the worker not held yet: kick for it. */
		if (worker_needed[DOM(dom)])
			kick_idle_cpu_in(dom);
		return;
	}
	worker_needed[DOM(dom)] = 0;
	sul_dsq_insert(p, dom, slice_ns, enq_flags | SCX_ENQ_HEAD);
}

/* Domain @dom's worker has work: have it run soon (see the file comment). */
static void need_worker(u32 dom)
{
	worker_needed[DOM(dom)] = 1;
	if (worker_held[DOM(dom)])
		kick_idle_cpu_in(dom);
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
		sul_dsq_insert(p, dom, slice_ns, enq_flags);
		return;
	}
	if (tctx->worker_dom >= 0) {
		enqueue_worker(p, tctx, enq_flags);
		return;
	}

	if (keep_in_kernel(p, dom)) {
		__sync_fetch_and_add(&stats_of(dom)->kernel_enqueues, 1);
		if (tctx->force_local) {
			tctx->force_local = false;
			sul_dsq_insert(p, SCX_DSQ_LOCAL, slice_ns, enq_flags);
		} else {
			sul_dsq_insert(p, dom, slice_ns, enq_flags);
		}
		return;
	}

	key = dom;
	rb = bpf_map_lookup_elem(&to_user, &key);
	e = rb ? bpf_ringbuf_reserve(rb, sizeof(*e), 0) : NULL;
	if (!e) {
		__sync_fetch_and_add(&stats_of(dom)->failed, 1);
		sul_dsq_insert(p, dom, slice_ns, enq_flags);
		return;
	}

	tctx->seq = __sync_add_and_fetch(&enqueue_seq, 1);
	tctx->in_user = true;
	e->pid = p->pid;
	e->seq = tctx->seq;
	e->sum_exec_runtime = p->se.sum_exec_runtime;
	e->vruntime = tctx->vruntime;
	e->charged_exec_runtime = tctx->charged_exec_runtime;
	e->allowed_domains = allowed_domains_of(p, dom);
	e->weight = p->scx.weight;
	e->cpu = cpu;
	e->dom = dom;
	e->vruntime_dom = tctx->vruntime_dom;
	/* Held workers are run by a kick, not woken through epoll. */
	bpf_ringbuf_submit(e, sleeping_workers ? 0 : BPF_RB_NO_WAKEUP);

	__sync_fetch_and_add(&stats_of(dom)->user_enqueues, 1);
	need_worker(dom);
}

void BPF_STRUCT_OPS(sul_dequeue, struct task_struct *p, u64 deq_flags)
{
	struct task_ctx *tctx = task_ctx_of(p);

	if (!tctx)
		return;
	/* Whatever user space decides for the old enqueue is now stale. */
	tctx->in_user = false;
	if (tctx->worker_dom >= 0)
		worker_held[DOM(tctx->worker_dom)] = 0;
}

/* Insert one user-space decision, unless it is stale. */
static long drain_one(struct bpf_dynptr *dynptr, void *data)
{
	struct sul_dispatch d;
	struct task_struct *p;
	struct task_ctx *tctx;
	u32 dom;

	if (bpf_dynptr_read(&d, sizeof(d), dynptr, 0, 0)) {
		scx_bpf_error("malformed dispatch record");
		return 1;
	}
	dom = d.dom < nr_domains ? d.dom : 0;
	if (d.flags & SUL_DISPATCH_WAKE) {
		need_worker(dom);
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
	tctx->vruntime = d.vruntime;
	tctx->charged_exec_runtime = d.charged_exec_runtime;
	tctx->vruntime_dom = dom;
	sul_dsq_insert(p, dom, slice_ns, 0);
	bpf_task_release(p);

	__sync_fetch_and_add(&stats_of(dom)->dispatches, 1);
	/* Keep a slot for the worker; the rest waits for the next call. */
	return scx_bpf_dispatch_nr_slots() > 1 ? 0 : 1;
}

static void release_worker(u32 dom)
{
	struct task_struct *p;

	if (!__sync_val_compare_and_swap(&worker_held[DOM(dom)], 1, 0))
		return;
	worker_needed[DOM(dom)] = 0;
	p = bpf_task_from_pid(worker_pid[DOM(dom)]);
	if (!p)
		return;
	sul_dsq_insert(p, dom, slice_ns, SCX_ENQ_HEAD);
	bpf_task_release(p);
	__sync_fetch_and_add(&stats_of(dom)->worker_runs, 1);
}

void BPF_STRUCT_OPS(sul_dispatch, s32 cpu, struct task_struct *prev)
{
	u32 dom = DOM(dom_of_cpu(cpu));
	u32 key = dom;
	s32 queued;
	void *rb;
	u32 i;

	rb = bpf_map_lookup_elem(&to_kern, &key);
	/* Another CPU of the domain is draining: try again once it is done. */
	if (rb && bpf_user_ringbuf_drain(rb, drain_one, NULL, 0) == -EBUSY)
		scx_bpf_kick_cpu(cpu, SCX_KICK_IDLE);
	/*
	 * This CPU takes one task; wake idle CPUs of the domain for the others
	 * (a few at a time: each woken CPU kicks more when it dispatches).
	 */
	queued = scx_bpf_dsq_nr_queued(dom);
	for (i = 1; i < queued && i < 4; i++)
		kick_idle_cpu_in(dom);

	if (worker_held[DOM(dom)] &&
	    (worker_needed[DOM(dom)] || (nr_queued[DOM(dom)] && !scx_bpf_dsq_nr_queued(dom))))
		release_worker(dom);

	if (sul_dsq_move_to_local(dom)) {
		dsq_depth[dom] = scx_bpf_dsq_nr_queued(dom);
		return;
	}
	dsq_depth[dom] = 0;

	for (i = 0; i < SUL_MAX_DOMAINS && i < nr_domains; i++) {
		u32 other = steal_order[DOM(dom)][DOM(i)];

		if (other >= nr_domains)
			break;
		if (sul_dsq_move_to_local(other)) {
			dsq_depth[DOM(other)] = scx_bpf_dsq_nr_queued(other);
			__sync_fetch_and_add(&stats_of(dom)->steals, 1);
			return;
		}
	}
}

void BPF_STRUCT_OPS(sul_update_idle, s32 cpu, bool idle)
{
	u32 dom = DOM(dom_of_cpu(cpu));

	if (!idle)
		return;
	/* A CPU is going idle while a held worker has work to do. */
	if (worker_held[dom] && (nr_queued[dom] || worker_needed[dom])) {
		worker_needed[dom] = 1;
		scx_bpf_kick_cpu(cpu, 0);
	}
}

s32 BPF_STRUCT_OPS(sul_init_task, struct task_struct *p, struct scx_init_task_args *args)
{
	struct task_ctx *tctx;
	u32 d;

	tctx = bpf_task_storage_get(&task_ctxs, p, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!tctx)
		return -ENOMEM;
	tctx->worker_dom = -1;
	tctx->vruntime_dom = SUL_NO_DOMAIN;
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
		if (worker_held[DOM(d)])
			worker_needed[DOM(d)] = 1;
		kick_cpu_in(d, true);
	}
	bpf_timer_start(timer, HEARTBEAT_NS, 0);
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
	return bpf_timer_start(&hb->timer, HEARTBEAT_NS, 0);
}

void BPF_STRUCT_OPS(sul_exit, struct scx_exit_info *ei)
{
	exit_info.exit_code = ei->exit_code;
	bpf_probe_read_kernel_str(exit_info.reason, sizeof(exit_info.reason), ei->reason);
	bpf_probe_read_kernel_str(exit_info.msg, sizeof(exit_info.msg), ei->msg);
	/* kind last: user space polls it and then reads the rest */
	__sync_lock_test_and_set(&exit_info.kind, ei->kind);
}

SEC(".struct_ops.link")
struct sched_ext_ops sul_ops = {
	.select_cpu = (void *)sul_select_cpu,
	.enqueue = (void *)sul_enqueue,
	.dequeue = (void *)sul_dequeue,
	.dispatch = (void *)sul_dispatch,
	.update_idle = (void *)sul_update_idle,
	.init_task = (void *)sul_init_task,
	.enable = (void *)sul_enable,
	.init = (void *)sul_init,
	.exit = (void *)sul_exit,
	.flags = SCX_OPS_ENQ_LAST | SCX_OPS_KEEP_BUILTIN_IDLE,
	.name = "scx_userland",
};
