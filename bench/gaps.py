#!/usr/bin/env python3
"""Longest waits between runs (inside the VM), for the bounded-wait check.

Starts --per-cpu CPU hogs per CPU at nice -5, 0, 5, 19 and SCHED_IDLE
(cycled), as bench/fairness.py does, and polls each one's run time
(/proc/PID/schedstat) every 50 ms for --secs. A task's gap is the longest
stretch in which its run time did not grow: how long the scheduler left it
waiting. The kernel's watchdog unloads a sched_ext scheduler that leaves a
runnable task waiting ops.timeout_ms (20 s here), so the lightest tasks'
gaps are what to watch: a scheduler that gives them exactly their weight
share at high overcommit makes them wait that long (EEVDF, which has no
such watchdog, does in the emulator).

The poller itself runs SCHED_FIFO, above sched_ext and EEVDF alike, so that
the scheduler it measures does not decide when it looks. A gap is seen only
between two polls: as a nice-0 task beside 64 hogs on the numa-llc VM the
poller reported 0.00 s for every level under --domains llc and numa (CI and
2026-11-30), where as SCHED_FIFO it saw 2.5-3.7 s in the same boot. The
longest time between two polls is printed too (max_poll_s, 0.75-0.97 s on
numa-llc: the host's 2 cores share out the 8 vCPUs): no gap much shorter
than it can be seen.

Prints one line:

    GAPS secs=S per_cpu=N max_gap_s=G gap_s=-5:g,0:g,5:g,19:g,idle:g runs=-5:r,... max_poll_s=P

where g is the longest gap of any task of that level and r its mean number
of runs (schedstat timeslices) in the window.
"""

import argparse
import os
import time

LEVELS = ["-5", "0", "5", "19", "idle"]


def hog(level):
    if level == "idle":
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    else:
        os.nice(int(level))
    while True:
        pass


def schedstat(pid):
    with open(f"/proc/{pid}/schedstat") as f:
        fields = f.read().split()
    return int(fields[0]), int(fields[2])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-cpu", type=int, default=8)
    ap.add_argument("--secs", type=float, default=20)
    ap.add_argument("--warmup", type=float, default=2)
    args = ap.parse_args()

    tasks = []
    for i in range(args.per_cpu * os.cpu_count()):
        level = LEVELS[i % len(LEVELS)]
        pid = os.fork()
        if pid == 0:
            hog(level)
        tasks.append((pid, level))
    # After the fork: the hogs keep their own policies.
    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(50))
    poll = 0.0
    try:
        time.sleep(args.warmup)
        start = {pid: schedstat(pid) for pid, _ in tasks}
        last = {pid: (start[pid][0], time.monotonic()) for pid, _ in tasks}
        gap = {pid: 0.0 for pid, _ in tasks}
        end = time.monotonic() + args.secs
        polled = time.monotonic()
        while polled < end:
            time.sleep(0.05)
            now = time.monotonic()
            poll, polled = max(poll, now - polled), now
            for pid, _ in tasks:
                ran = schedstat(pid)[0]
                if ran != last[pid][0]:
                    last[pid] = (ran, now)
                gap[pid] = max(gap[pid], now - last[pid][1])
        stop = {pid: schedstat(pid) for pid, _ in tasks}
    finally:
        for pid, _ in tasks:
            os.kill(pid, 9)
            os.waitpid(pid, 0)

    gaps, runs = {}, {}
    for pid, level in tasks:
        gaps[level] = max(gaps.get(level, 0.0), gap[pid])
        runs.setdefault(level, []).append(stop[pid][1] - start[pid][1])
    print(
        f"GAPS secs={args.secs:g} per_cpu={args.per_cpu} max_gap_s={max(gaps.values()):.2f} "
        + "gap_s=" + ",".join(f"{lv}:{gaps[lv]:.2f}" for lv in LEVELS if lv in gaps)
        + " runs=" + ",".join(f"{lv}:{sum(runs[lv]) / len(runs[lv]):.0f}" for lv in LEVELS if lv in runs)
        + f" max_poll_s={poll:.2f}"
    )


if __name__ == "__main__":
    main()
