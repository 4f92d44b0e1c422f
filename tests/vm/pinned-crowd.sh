#!/bin/bash
# A task that may run anywhere is not starved by tasks pinned to single CPUs
# (which stay in the kernel and wait in the domains' DSQs). 3 hogs pinned to
# every CPU keep each DSQ full; one unpinned hog must still get a share of
# the CPUs near its weight's: 1/(3 x CPUs + 1) of the machine. A worker that
# counted the pinned tasks as its own backlog once handed out nothing, and
# the unpinned hog waited in user space until the watchdog fired.
# EEVDF runs the same load first, in the same boot, for reference.
# Usage: pinned-crowd.sh [scheduler flags...]
. "$(dirname "$0")/lib.sh"

SECS=6
ncpu=$(nproc)
ticks=$(getconf CLK_TCK)
spin='while :; do :; done'
# cpu_ticks PID: its user + system time so far, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# crowd: start the pinned hogs and the free one; print the free one's CPUs
# (its CPU time over SECS seconds divided by SECS).
crowd() {
  local pids=() c i free t0 t1
  for c in $(seq 0 $((ncpu - 1))); do
    for i in 1 2 3; do taskset -c "$c" bash -c "$spin" & pids+=($!); done
  done
  bash -c "$spin" & free=$!
  sleep 1
  t0=$(cpu_ticks "$free")
  sleep "$SECS"
  t1=$(cpu_ticks "$free")
  kill "${pids[@]}" "$free"
  wait "${pids[@]}" "$free" 2> /dev/null
  awk -v d=$((t1 - t0)) -v hz="$ticks" -v s="$SECS" 'BEGIN { printf "%.3f", d / hz / s }'
}

fair=$(awk -v n="$ncpu" 'BEGIN { printf "%.3f", n / (3 * n + 1) }')
eevdf=$(crowd)
echo "EEVDF: the unpinned hog among $((3 * ncpu)) pinned ones got $eevdf CPUs (its weight's share: $fair)"
start_sched "$@"
ours=$(crowd)
attached_or_fail
echo "scx-userland $*: the unpinned hog got $ours CPUs (its weight's share: $fair)"
# Half its share, or half EEVDF's figure where EEVDF itself gets less.
bar=$(awk -v f="$fair" -v e="$eevdf" 'BEGIN { b = (e < f ? e : f) / 2; printf "%.3f", b }')
awk -v o="$ours" -v b="$bar" 'BEGIN { exit !(o >= b) }' || fail "the unpinned hog got $ours CPUs, under $bar"
finish pinned-crowd "$*"
