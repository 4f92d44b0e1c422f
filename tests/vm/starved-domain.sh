#!/bin/bash
# Real-time hogs take every CPU of domain 0 for RT_SECS while 3 CPU hogs
# per CPU run everywhere. Domain 0's worker, pinned there, cannot run:
# without the rescue (src/rescue.rs) the hogs queued in domain 0 (in user
# space, or in its DSQ, which the other domains, busy, never steal from)
# wait until the RT hogs end, and get nothing for RT_SECS.
# With it, the domain is found starved within 80 ms, its worker runs
# elsewhere and sends its tasks to other domains; when the RT hogs end, the
# domain is recovered. EEVDF runs the same load first, in the same boot.
# Checks: the least-served hog's share of a CPU over the RT window is at
# least half of EEVDF's (and of its fair share), the scheduler stays
# attached, the stats count the starvation, the rescue and its end.
# Usage: starved-domain.sh [scheduler flags...] (several domains)
. "$(dirname "$0")/lib.sh"

RT_SECS=${RT_SECS:-6}
PER_CPU=3
ncpu=$(nproc)

# squeeze CPUS: PER_CPU CPU hogs per CPU; after 1 s a SCHED_FIFO hog on each of
# CPUS for RT_SECS. Prints: min_share mean_share max_gap_ms (over the RT
# window, of the CPU hogs, from /proc/PID/schedstat polled every 20 ms).
squeeze() {
  python3 - "$1" "$((ncpu * PER_CPU))" "$RT_SECS" << 'EOF'
import os, signal, sys, time

cpus_spec, nhogs, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
rt_cpus = []
for part in cpus_spec.split(","):
    lo, _, hi = part.partition("-")
    rt_cpus += range(int(lo), int(hi or lo) + 1)

def spawn(setup):
    pid = os.fork()
    if pid == 0:
        setup()
        while True:
            pass
    return pid

def run_ns(pid):
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0])

def fifo_on(cpu):
    def setup():
        os.sched_setaffinity(0, {cpu})
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(50))
    return setup

hogs = [spawn(lambda: None) for _ in range(nhogs)]
time.sleep(1)
rts = [spawn(fifo_on(c)) for c in rt_cpus]
t0 = time.monotonic()
start = {p: run_ns(p) for p in hogs}
last = dict(start)
last_t = {p: t0 for p in hogs}
gap = {p: 0.0 for p in hogs}
while (now := time.monotonic()) - t0 < secs:
    for p in hogs:
        r = run_ns(p)
        if r != last[p]:
            last[p], last_t[p] = r, now
        gap[p] = max(gap[p], now - last_t[p])
    time.sleep(0.02)
window = time.monotonic() - t0
shares = [(run_ns(p) - start[p]) / 1e9 / window for p in hogs]
for p in rts + hogs:
    os.kill(p, signal.SIGKILL)
for p in rts + hogs:
    os.waitpid(p, 0)
print(f"{min(shares):.3f} {sum(shares) / len(shares):.3f} {max(gap.values()) * 1000:.0f}")
EOF
}

start_sched "$@"
wait_stats
rt_cpus=$(dom_stat 0 cpus) || fail "no per-domain stats (one domain?)"
nr_rt=$(python3 -c "import sys; print(sum(int(b or a) - int(a) + 1 for a, _, b in (p.partition('-') for p in sys.argv[1].split(','))))" "$rt_cpus")
fair=$(awk -v n="$ncpu" -v r="$nr_rt" -v k="$PER_CPU" 'BEGIN { printf "%.3f", (n - r) / n / k }')
stop_sched

read -r e_min e_mean e_gap <<< "$(squeeze "$rt_cpus")"
echo "EEVDF: RT hogs on CPUs $rt_cpus for ${RT_SECS}s: CPU hogs got min $e_min mean $e_mean of a CPU (fair: $fair), longest gap ${e_gap} ms"

start_sched "$@"
read -r o_min o_mean o_gap <<< "$(squeeze "$rt_cpus")"
attached_or_fail
wait_stats
wait_stats
starvations=$(dom_stat 0 starvations)
evacuated=$(dom_stat 0 evacuated)
rescued=$(dom_stat 0 rescued)
starved=$(dom_stat 0 starved)
echo "scx-userland $*: CPU hogs got min $o_min mean $o_mean of a CPU, longest gap ${o_gap} ms"
echo "domain 0: starvations=$starvations evacuated=$evacuated rescued=$rescued starved now=$starved"
grep "^scx-userland: domain" "$LOG" | head -n 6

[ "${starvations:-0}" -ge 1 ] || fail "domain 0 was never found starved"
[ "$((${evacuated:-0} + ${rescued:-0}))" -ge 1 ] || fail "nothing was moved out of domain 0 or rescued"
[ "$starved" = 0 ] || fail "domain 0 still starved after the RT hogs ended"
grep -q "^scx-userland: domain 0: its CPUs run sched_ext tasks again" "$LOG" || fail "no recovery printed"
bar=$(awk -v f="$fair" -v e="$e_min" 'BEGIN { b = (e < f ? e : f) / 2; printf "%.3f", b }')
awk -v o="$o_min" -v b="$bar" 'BEGIN { exit !(o >= b) }' ||
  fail "the least-served hog got $o_min of a CPU, under $bar (half of min(EEVDF $e_min, fair $fair))"
finish starved-domain "$*"
