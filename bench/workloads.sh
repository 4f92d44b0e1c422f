#!/bin/bash
# Inside the VM: run the same workloads under EEVDF and under each
# scx-userland configuration given as an argument; print a table of figures
# and ratios to EEVDF. See bench/vm-bench.
set -u
SECS=${SECS:-5}
names=(cpu switch futex fork hackbench)
declare -A res

stress() { # stress-ng bogo-ops/s (real time) of one stressor
  stress-ng --temp-path /tmp --metrics-brief -t "$SECS" "$@" 2>&1 | awk '/metrc:/ && $5 ~ /^[0-9]+$/ {print $9; exit}'
}
hb() { hackbench -g 4 -l 100 2>&1 | awk '/^Time:/ {print $2}'; }

measure() { # label
  echo "measuring: $1" >&2
  res[$1,cpu]=$(stress --cpu 8 --cpu-method matrixprod)
  res[$1,switch]=$(stress --switch 4)
  res[$1,futex]=$(stress --futex 4)
  res[$1,fork]=$(stress --fork 4)
  res[$1,hackbench]=$(hb)
  echo "  cpu ${res[$1,cpu]} switch ${res[$1,switch]} futex ${res[$1,futex]} fork ${res[$1,fork]} hackbench ${res[$1,hackbench]}" >&2
}

labels=(EEVDF)
measure EEVDF
for cfg in "$@"; do
  # shellcheck disable=SC2086
  "$SCHED" --stats-interval 0 $cfg > /tmp/bench-sched.log 2>&1 &
  pid=$!
  for _ in $(seq 1 900); do [ "$(cat /sys/kernel/sched_ext/state)" = enabled ] && break; sleep 0.1; done
  if [ "$(cat /sys/kernel/sched_ext/state)" != enabled ]; then echo "could not attach: $cfg"; cat /tmp/bench-sched.log; exit 1; fi
  measure "$cfg"
  alive=yes; kill -0 $pid 2>/dev/null || alive="NO (killed?)"
  kill -INT $pid; wait $pid; rc=$?
  labels+=("$cfg")
  res[$cfg,status]="attached to the end: $alive, exit $rc"
done

printf '\n%-32s' "scheduler"; for n in "${names[@]}"; do printf '%14s' "$n"; done; echo
printf '%-32s' "(units)"; printf '%14s' "bogo-ops/s" "bogo-ops/s" "bogo-ops/s" "bogo-ops/s" "seconds"; echo
for l in "${labels[@]}"; do
  printf '%-32s' "$l"; for n in "${names[@]}"; do printf '%14s' "${res[$l,$n]:-?}"; done; echo
done
echo; echo "ratio to EEVDF (higher is better)"
for l in "${labels[@]:1}"; do
  printf '%-32s' "$l"
  for n in "${names[@]}"; do
    a=${res[EEVDF,$n]:-0}; b=${res[$l,$n]:-0}
    if [ "$n" = hackbench ]; then r=$(awk -v a="$a" -v b="$b" 'BEGIN{ if (b>0) printf "%.2f", a/b; else print "?" }')
    else r=$(awk -v a="$a" -v b="$b" 'BEGIN{ if (a>0) printf "%.2f", b/a; else print "?" }'); fi
    printf '%14s' "$r"
  done
  echo "   ${res[$l,status]}"
done
dmesg | grep -E "sched_ext: .*(error|stall)" && echo "sched_ext errors above" || true
