#!/bin/bash
# Inside the VM: weighted fairness (bench/fairness.py) under EEVDF, then
# under each argument (a set of scx-userland flags, optionally " #N"), at
# $PER_CPU tasks per CPU (default "2 8": 2x and 8x overcommit). One line per
# item and load is appended to $OUT/results (see bench/lib.sh):
#   boot item load worst_big_err_pct worst_err_pct jain busy_cpus per-nice status
set -u
source "$(dirname "$0")/guest.sh"
source "$(dirname "$0")/measure.sh"

lines=()
measure() { # label
  local per
  lines=()
  for per in ${PER_CPU:-2 8}; do
    fairness --per-cpu "$per" --secs "$SECS"
    echo "boot $BOOT, $1, ${per}x: $fair" >&2
    lines+=("$BOOT	$1	${per}x	$(field "$fair" worst_big_err_pct)	$(field "$fair" worst_err_pct)	$(field "$fair" jain)	$(field "$fair" busy_cpus)	$(field "$fair" nice)")
  done
}
record() { # status
  local l
  for l in "${lines[@]}"; do echo "$l	$1" >> "$OUT/results"; done
  sync
}

measure EEVDF
record -
for item in "$@"; do
  # shellcheck disable=SC2086
  attach /tmp/bench-sched.log --stats-interval 0 ${item% #*}
  measure "$item"
  detach
  record "$sched_status"
done
