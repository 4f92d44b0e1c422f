#!/bin/bash
# Inside the VM: measure the workloads under EEVDF, then under each
# scx-userland configuration given as an argument, appending one line per
# scheduler to $OUT/results (see bench/lib.sh). bench/vm-bench prints them.
# The cpu workload is twice as many hogs as CPUs (overcommit), as in ../shared/README.md.
set -u
names=(cpu switch futex fork hackbench)

stress() { # stress-ng bogo-ops/s (real time) of one stressor
  stress-ng --temp-path /tmp --metrics-brief -t "$SECS" "$@" 2>&1 | awk '/metrc:/ && $5 ~ /^[0-9]+$/ {print $9; exit}'
}
hb() { hackbench -g 4 -l 100 2>&1 | awk '/^Time:/ {print $2}'; }

figures=()
measure() { # label
  echo "boot $BOOT, measuring: $1" >&2
  figures=("$(stress --cpu $((2 * $(nproc))) --cpu-method matrixprod)" "$(stress --switch 4)" "$(stress --futex 4)" \
    "$(stress --fork 4)" "$(hb)")
  local i line="  "
  for i in "${!names[@]}"; do line+="${names[$i]} ${figures[$i]:-?} "; done
  echo "$line" >&2
}
record() { # label status
  local IFS=$'\t'
  echo "$BOOT	$1	${figures[*]}	$2" >> "$OUT/results"
  sync
}

measure EEVDF
record EEVDF -
for cfg in "$@"; do
  # shellcheck disable=SC2086
  "$SCHED" --stats-interval 0 $cfg > /tmp/bench-sched.log 2>&1 &
  pid=$!
  for _ in $(seq 1 900); do [ "$(cat /sys/kernel/sched_ext/state)" = enabled ] && break; sleep 0.1; done
  if [ "$(cat /sys/kernel/sched_ext/state)" != enabled ]; then echo "could not attach: $cfg"; cat /tmp/bench-sched.log; exit 1; fi
  measure "$cfg"
  alive=yes; kill -0 $pid 2>/dev/null || alive="NO (killed?)"
  kill -INT $pid; wait $pid; rc=$?
  record "$cfg" "attached to the end: $alive, exit $rc"
done
dmesg | grep -E "sched_ext: .*(error|stall)" && echo "sched_ext errors above" || true
