#!/bin/bash
# Inside the VM: measure the workloads under EEVDF, then for each argument:
# "EEVDF #N" measures EEVDF again, anything else is a set of scx-userland
# flags, optionally followed by " #N" (the round). One line per item is
# appended to $OUT/results (see bench/lib.sh); bench/vm-bench prints them.
# The cpu workload is twice as many hogs as CPUs (overcommit), as in
# ../shared/README.md. $WORKLOADS (comma-separated) limits what is measured.
set -u
source "$(dirname "$0")/guest.sh"
names=(cpu switch futex fork hackbench)
wanted=",${WORKLOADS:-cpu,switch,futex,fork,hackbench},"

stress() { # stress-ng bogo-ops/s (real time) of one stressor
  stress-ng --temp-path /tmp --metrics-brief -t "$SECS" "$@" 2>&1 | awk '/metrc:/ && $5 ~ /^[0-9]+$/ {print $9; exit}'
}
one() { # workload name -> its figure, or nothing when not wanted
  [[ $wanted == *",$1,"* ]] || return 0
  case $1 in
    cpu) stress --cpu $((2 * $(nproc))) --cpu-method matrixprod ;;
    switch | futex | fork) stress --"$1" 4 ;;
    hackbench) hackbench -g 4 -l 100 2>&1 | awk '/^Time:/ {print $2}' ;;
  esac
}

figures=()
measure() { # label
  echo "boot $BOOT, measuring: $1" >&2
  local i line="  "
  figures=()
  for i in "${names[@]}"; do figures+=("$(one "$i")"); done
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
for item in "$@"; do
  if [[ $item == EEVDF* ]]; then
    measure "$item"
    record "$item" -
    continue
  fi
  cfg=${item% #*}
  # shellcheck disable=SC2086
  attach /tmp/bench-sched.log --stats-interval 0 $cfg
  measure "$item"
  detach
  record "$item" "$sched_status"
done
dmesg | grep -E "sched_ext: .*(error|stall)" && echo "sched_ext errors above" || true
