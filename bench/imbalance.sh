#!/bin/bash
# Inside the VM; see bench/vm-imbalance. Arguments: the runs to make, each a
# balancer mode and a round number (on#1, off#1, on#2, ...). EEVDF runs the
# same load first, as the boot's baseline. Each run's scheduler output is kept
# in $OUT/sched-RUN.log.
# One line per mode in $OUT/results (see bench/lib.sh):
#   boot  mode  hog-bogo-ops/s  dispatches-per-domain  spread  migrations  status
set -u
source "$(dirname "$0")/guest.sh"
dom0=$("$SCHED" --show-domains --domains llc | awk '$2 == 0 {print $4}')
ndom=$("$SCHED" --show-domains --domains llc | awk '$1 == "domain" && $2 ~ /^[0-9]+$/' | wc -l)
# The newest stats object (--stats-format json), and fields of it.
newest() { grep '^{' /tmp/imb.log | tail -n 1; }
dom_disp() { newest | jq -er ".domains[\"$1\"].dispatches"; }

hogs() { # start 8 hogs on domain 0's CPUs, widen them to every CPU after 2 s; sets $ops
  taskset -c "$dom0" stress-ng --temp-path /tmp --cpu 8 --metrics-brief -t "$SECS" > /tmp/imb-stress.log 2>&1 &
  local hogs=$!
  sleep 2
  for p in $(pgrep -P $hogs); do taskset -a -p -c 0-$(($(nproc) - 1)) "$p" > /dev/null; done
  sleep 1.2
  for d in $(seq 0 $((ndom - 1))); do before[$d]=$(dom_disp "$d"); done
  wait $hogs
  sleep 1.2
  ops=$(awk '/metrc:/ && $4 == "cpu" {print $9}' /tmp/imb-stress.log)
}

declare -A before
: > /tmp/imb.log
echo "boot $BOOT, measuring: EEVDF" >&2
hogs
printf '%s\tEEVDF\t%s\t-\t-\t-\t-\n' "$BOOT" "$ops" >> "$OUT/results"
for run in "$@"; do
  flags=(--domains llc); [ "${run%%#*}" = off ] && flags+=(--no-balance)
  echo "boot $BOOT, measuring: balancer $run" >&2
  attach /tmp/imb.log --stats-format json "${flags[@]}"
  hogs
  disp="" min=999999999 max=0
  for d in $(seq 0 $((ndom - 1))); do
    n=$(( $(dom_disp "$d") - ${before[$d]} )); disp+="$n "
    [ $n -lt $min ] && min=$n; [ $n -gt $max ] && max=$n
  done
  spread=$(awk -v a=$max -v b=$min 'BEGIN{ if (b>0) printf "%.2f", a/b; else print "inf" }')
  moved=$(newest | jq -er '[.domains[].migrated_out] | add')
  detach
  cp /tmp/imb.log "$OUT/sched-$run.log"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$BOOT" "$run" "$ops" "${disp% }" "$spread" "$moved" \
    "$sched_status" >> "$OUT/results"
  sync
done
