#!/usr/bin/env python3
"""Weighted fairness of whatever scheduler is running (inside the VM).

Starts CPU-bound hogs at a mix of nice levels (and SCHED_IDLE), lets them run
for --secs, and compares the CPU time each got (/proc/PID/schedstat: run time
in ns), and how idle the CPUs it may use were meanwhile (/proc/stat idle time over
wall-clock time), with its weight share:

    expected_i = water-filling of nr_cpus over the tasks by kernel weight,
                 no task above one CPU (a task cannot use two)

The weights are the kernel's own (sched_prio_to_weight, 1024 at nice 0, and
3 for SCHED_IDLE), so the expectation is what EEVDF aims for.

Prints one line per task and a summary line:

    SUMMARY tasks=N worst_err_pct=E worst_big_err_pct=B jain=J nice=-5:e0,0:e1,...

err_pct is |actual - expected| / expected, in percent. prop_err_pct is the
same for each task's part of the CPU time all the hogs got against its part
of their weight shares: proportion to weight, which is blind to CPU time
the hogs did not get at all (a user-space scheduler's own threads take
some; busy_cpus and idle_cpus show it). "big" is every task
whose expected share is at least --big of a CPU: the tiny shares of nice 19
and SCHED_IDLE (a few ms of CPU over the run) are measured at the emulator's
resolution, so their bar is EEVDF's figure in the same boot (see README).
Jain's index is over actual/expected (1.0 = every task got exactly its share).

--combine LOG... measures nothing: it reads the logs of earlier runs of the
same mix and reports them as one run as long as all of them together (a
second run judged with the first: tests/vm/quality.sh).
"""

import argparse
import os
import re
import signal
import sys
import time

PRIO_TO_WEIGHT = [
    88761, 71755, 56483, 46273, 36291, 29154, 23254, 18705, 14949, 11916,
    9548, 7620, 6100, 4904, 3906, 3121, 2501, 1991, 1586, 1277,
    1024, 820, 655, 526, 423, 335, 272, 215, 172, 137,
    110, 87, 70, 56, 45, 36, 29, 23, 18, 15,
]
WEIGHT_IDLEPRIO = 3


def weight_of(level):
    if level == "idle":
        return WEIGHT_IDLEPRIO
    return PRIO_TO_WEIGHT[int(level) + 20]


def expected_shares(weights, cpus):
    """Max-min fair shares by weight with each task capped at one CPU."""
    share = [0.0] * len(weights)
    left = set(range(len(weights)))
    capacity = float(cpus)
    while left:
        total = sum(weights[i] for i in left)
        capped = [i for i in left if capacity * weights[i] / total >= 1.0]
        if not capped:
            for i in left:
                share[i] = capacity * weights[i] / total
            break
        for i in capped:
            share[i] = 1.0
            capacity -= 1.0
            left.discard(i)
    return share


SCHED_EXT = 7


def hog(level, ext):
    if ext:
        # For --partial mode: only SCHED_EXT tasks reach the scheduler.
        os.sched_setscheduler(0, SCHED_EXT, os.sched_param(0))
    if level == "idle":
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    else:
        os.setpriority(os.PRIO_PROCESS, 0, int(level))
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    x = 0
    while True:
        x += 1


def idle_ticks(cpus):
    """{cpu: idle jiffies} for `cpus` from /proc/stat, and when they were read."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            name, *ticks = line.split()
            if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
                out[int(name[3:])] = int(ticks[3]) + int(ticks[4])
    return out, time.monotonic()


def idle_fractions(before, after):
    """{cpu: fraction of the wall-clock interval it was idle}.

    The interval is wall-clock time, not the sum of /proc/stat's fields: with
    NO_HZ_IDLE a CPU's idle time is measured exactly, but its busy time is
    counted one tick per timer interrupt, and under the emulator (TCG) a vCPU
    takes about one tick in eight (the fields of a busy CPU added up to
    0.11-0.15 of the wall time in the numa-llc VM), so idle over the fields'
    sum read about eight times the true idle time.
    """
    (idle0, t0), (idle1, t1) = before, after
    wall = max((t1 - t0) * os.sysconf("SC_CLK_TCK"), 1e-9)
    return {c: min((idle1[c] - idle0[c]) / wall, 1.0) for c in sorted(idle1) if c in idle0}


def schedstat(pid):
    """(run time ns, times it was switched in)."""
    with open(f"/proc/{pid}/schedstat") as f:
        run, _wait, runs = f.read().split()[:3]
        return int(run), int(runs)


def measure(args):
    """Runs the hogs; returns (levels, actual CPUs, runs, {cpu: idle}, wall s)."""
    allowed = os.sched_getaffinity(0)
    mix = args.mix.split(",")
    levels = [mix[i % len(mix)] for i in range(args.per_cpu * len(allowed))]
    pids = []
    for level in levels:
        pid = os.fork()
        if pid == 0:
            hog(level, args.ext)
        pids.append(pid)
    try:
        time.sleep(args.warmup)
        start = [schedstat(p) for p in pids]
        idle0 = idle_ticks(allowed)
        t0 = time.monotonic()
        time.sleep(args.secs)
        end = [schedstat(p) for p in pids]
        idle1 = idle_ticks(allowed)
        wall = time.monotonic() - t0
    finally:
        for p in pids:
            os.kill(p, signal.SIGTERM)
        for p in pids:
            os.waitpid(p, 0)
    actual = [(e[0] - s[0]) / 1e9 / wall for s, e in zip(start, end)]
    runs = [e[1] - s[1] for s, e in zip(start, end)]
    return levels, actual, runs, idle_fractions(idle0, idle1), wall


TASK_LINE = re.compile(r"^task nice=\s*(\S+) weight=\s*\d+ expected=\S+ actual=(\S+) err=\S+ runs=(\d+)")


def combine(logs):
    """The runs logged by earlier invocations, as one run as long as all of them.

    Each log must be of the same mix on the same CPUs (the task lines in the
    same order). A task's share over the whole is the wall-time-weighted mean
    of its shares, so two 10 s runs judge like one 20 s run, the issue's length.
    """
    levels, cpu_s, runs, idle_s, wall = None, None, None, {}, 0.0
    for log in logs:
        try:
            with open(log) as f:
                lines = f.read().splitlines()
        except OSError as e:
            sys.exit(f"{log}: {e.strerror}")
        tasks = [TASK_LINE.match(l) for l in lines if l.startswith("task ")]
        summary = [l for l in lines if l.startswith("SUMMARY ")]
        idle = [l for l in lines if l.startswith("IDLE ")]
        if not summary or not idle or None in tasks:
            sys.exit(f"{log}: not a complete fairness.py log")
        secs = float(dict(kv.split("=", 1) for kv in summary[0].split()[1:])["wall_s"])
        these = [m.group(1) for m in tasks]
        if levels is None:
            levels, cpu_s, runs = these, [0.0] * len(these), [0] * len(these)
        elif these != levels:
            sys.exit(f"{log}: another mix of tasks than {logs[0]}")
        for i, m in enumerate(tasks):
            cpu_s[i] += float(m.group(2)) * secs
            runs[i] += int(m.group(3))
        for kv in idle[0].split()[1:]:
            cpu, frac = kv.split("=")
            idle_s[int(cpu[3:])] = idle_s.get(int(cpu[3:]), 0.0) + float(frac) * secs
        wall += secs
    return levels, [c / wall for c in cpu_s], runs, {c: t / wall for c, t in idle_s.items()}, wall


def report(levels, actual, runs, idle, wall, big_share):
    weights = [weight_of(l) for l in levels]
    expected = expected_shares(weights, len(idle))
    errs = [abs(a - x) / x * 100 for a, x in zip(actual, expected)]
    got, due = max(sum(actual), 1e-12), sum(expected)
    prop_errs = [abs(a / got - x / due) / (x / due) * 100 for a, x in zip(actual, expected)]
    ratios = [a / x for a, x in zip(actual, expected)]
    jain = sum(ratios) ** 2 / (len(ratios) * sum(r * r for r in ratios))
    worst_by_level = {}
    for level, err, a, x, n in zip(levels, errs, actual, expected, runs):
        # Six decimals: a SCHED_IDLE task's share at 2x is about 0.0013 CPU,
        # and --combine reads these lines back.
        print(
            f"task nice={level:>4} weight={weight_of(level):>5} expected={x:.6f} actual={a:.6f} err={err:.1f}% "
            f"runs={n} avg_run_us={a * wall * 1e6 / max(n, 1):.0f}"
        )
        worst_by_level[level] = max(worst_by_level.get(level, 0.0), err)
    big = [e for e, x in zip(errs, expected) if x >= big_share]
    big_prop = [e for e, x in zip(prop_errs, expected) if x >= big_share]
    print("IDLE " + " ".join(f"cpu{c}={f:.4f}" for c, f in idle.items()))
    print(
        f"SUMMARY tasks={len(levels)} cpus={len(idle)} worst_err_pct={max(errs):.1f} "
        f"worst_big_err_pct={max(big) if big else 0:.1f} "
        f"worst_big_prop_err_pct={max(big_prop) if big_prop else 0:.1f} jain={jain:.4f} "
        f"min_runs={min(runs)} busy_cpus={sum(actual):.2f} idle_cpus={sum(idle.values()):.3f} "
        f"wall_s={wall:.3f} "
        "nice=" + ",".join(f"{l}:{v:.1f}" for l, v in worst_by_level.items())
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mix", default="-5,0,5,19,idle", help="nice levels (or idle), cycled")
    ap.add_argument("--per-cpu", type=int, default=2, help="tasks per CPU (2: 2x overcommit)")
    ap.add_argument("--secs", type=float, default=20)
    ap.add_argument("--warmup", type=float, default=2)
    ap.add_argument("--ext", action="store_true", help="run the hogs as SCHED_EXT (for --partial)")
    ap.add_argument("--big", type=float, default=0.1, help="share (CPUs) that counts as big")
    ap.add_argument(
        "--combine", nargs="+", metavar="LOG", help="measure nothing: report these earlier logs as one run"
    )
    args = ap.parse_args()
    measured = combine(args.combine) if args.combine else measure(args)
    report(*measured, args.big)


if __name__ == "__main__":
    sys.exit(main())
