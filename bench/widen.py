#!/usr/bin/env python3
"""A task pinned for a while, then widened, under heavy load (inside the VM).

Starts 2 CPU hogs per CPU, plus one more hog pinned to CPU 0 for --pinned
seconds; then widens that one to every CPU and measures, over --secs, the
CPU time it gets against the mean of the others (/proc/PID/schedstat).
While pinned, its runtime is not ordered in user space (it stays in the
kernel); when it comes back it must neither starve (wait for the runtime it
had while pinned) nor starve the others (bring credit from then).

Prints: WIDEN ratio=R  (its share / the mean share of the others; 1.0 fair)
"""

import argparse
import os
import signal
import time

from fairness import schedstat


def hog(cpus):
    if cpus is not None:
        os.sched_setaffinity(0, cpus)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    x = 0
    while True:
        x += 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pinned", type=float, default=10)
    ap.add_argument("--secs", type=float, default=5)
    args = ap.parse_args()
    everywhere = os.sched_getaffinity(0)
    pids = []
    for cpus in [{min(everywhere)}] + [None] * (2 * len(everywhere)):
        pid = os.fork()
        if pid == 0:
            hog(cpus)
        pids.append(pid)
    try:
        time.sleep(args.pinned)
        os.sched_setaffinity(pids[0], everywhere)
        start = [schedstat(p)[0] for p in pids]
        time.sleep(args.secs)
        end = [schedstat(p)[0] for p in pids]
    finally:
        for p in pids:
            os.kill(p, signal.SIGTERM)
        for p in pids:
            os.waitpid(p, 0)
    got = [e - s for s, e in zip(start, end)]
    others = sum(got[1:]) / len(got[1:])
    print(f"WIDEN ratio={got[0] / max(others, 1):.2f} widened_ms={got[0] / 1e6:.0f} others_mean_ms={others / 1e6:.0f}")


if __name__ == "__main__":
    main()
