#!/bin/bash
# Inside the VM; see bench/vm-imbalance. Arguments: the runs to make, each a
# balancer mode and a round number (on#1, off#1, on#2, ...). EEVDF runs the
# same load first, as the boot's baseline. Each run's scheduler output is kept
# in $OUT/sched-RUN.log.
# One line per mode in $OUT/results (see bench/lib.sh):
#   boot  mode  hog-bogo-ops/s  dispatches-per-domain  spread  migrations
#   least-busy-CPU  status
set -u
source "$(dirname "$0")/guest.sh"
dom0=$("$SCHED" --show-domains --domains llc | awk '$2 == 0 {print $4}')
ndom=$("$SCHED" --show-domains --domains llc | awk '$1 == "domain" && $2 ~ /^[0-9]+$/' | wc -l)
# While the hogs run, nothing here starts a process: inside the emulated VM
# an exec beside CPU hogs takes seconds (the host's 2 cores run the 8 vCPUs
# and QEMU's file server too). A taskset per hog once took 6 s of a 12 s run
# to widen them, and `sleep` 5 s to start. So the hogs are born in a cpuset
# cgroup and widened by one write to it, naps are `read -t` on a FIFO, and
# /proc/stat and the stats log are read by bash itself.
cg=/sys/fs/cgroup/imbalance
ncpu=$(nproc)
{ echo +cpuset > /sys/fs/cgroup/cgroup.subtree_control && mkdir -p "$cg"; } ||
  { echo "vm-imbalance: no cpuset cgroup to start the hogs in" >&2; exit 1; }
rm -f /tmp/imb-nap && mkfifo /tmp/imb-nap
exec {napfd}<> /tmp/imb-nap
nap() { read -rt "$1" -u "$napfd" || :; }
# last_json: sets $json to the newest stats object (--stats-format json)
# of /tmp/imb.log.
last_json() { local l; json=; while IFS= read -r l; do [[ $l == '{'* ]] && json=$l; done < /tmp/imb.log; }
# least_busy: of two copies of /proc/stat on stdin, the smallest
# fraction of the time between them that any CPU was busy (not idle or
# iowait), 2 decimals. This is the guest's own figure: the hogs' throughput
# also depends on how the host's cores share out the vCPUs (idle vCPUs give
# the busy ones host time).
least_busy() {
  awk '
    $1 !~ /^cpu[0-9]/ { next }
    { t = 0; for (i = 2; i <= 9; i++) t += $i; idle = $5 + $6 }
    $1 in tot { dt = t - tot[$1]; if (dt > 0) { b = 1 - (idle - idl[$1]) / dt; if (min == "" || b < min) min = b }; next }
    { tot[$1] = t; idl[$1] = idle }
    END { printf "%.2f", min }'
}

hogs() { # start 8 hogs on domain 0's CPUs, widen them to every CPU after 2 s; sets $ops, $least, $widened (the stats then)
  local start=${EPOCHREALTIME/./} stat0 stat1 left naptime
  echo "$dom0" > "$cg/cpuset.cpus"
  (echo "$BASHPID" > "$cg/cgroup.procs" && exec stress-ng --temp-path /tmp --cpu 8 --metrics-brief -t "$SECS") > /tmp/imb-stress.log 2>&1 &
  local hogs=$!
  nap 2
  echo "0-$((ncpu - 1))" > "$cg/cpuset.cpus"
  mapfile -t stat0 < /proc/stat
  nap 1.2
  last_json; widened=$json
  # The CPUs' busy time from the widening to half a second before the end.
  left=$(( (start + SECS * 1000000 - 500000 - ${EPOCHREALTIME/./}) / 1000 ))
  printf -v naptime '%d.%03d' $((left / 1000)) $((left % 1000))
  [ "$left" -gt 0 ] && nap "$naptime"
  mapfile -t stat1 < /proc/stat
  wait $hogs
  least=$(printf '%s\n' "${stat0[@]}" "${stat1[@]}" | least_busy)
  nap 1.2
  ops=$(awk '/metrc:/ && $4 == "cpu" {print $9}' /tmp/imb-stress.log)
}

: > /tmp/imb.log
echo "boot $BOOT, measuring: EEVDF" >&2
hogs
printf '%s\tEEVDF\t%s\t-\t-\t-\t%s\t-\n' "$BOOT" "$ops" "$least" >> "$OUT/results"
for run in "$@"; do
  flags=(--domains llc); [ "${run%%#*}" = off ] && flags+=(--no-balance)
  echo "boot $BOOT, measuring: balancer $run" >&2
  attach /tmp/imb.log --stats-format json "${flags[@]}"
  hogs
  disp="" min=999999999 max=0
  last_json
  for d in $(seq 0 $((ndom - 1))); do
    q=".domains[\"$d\"].dispatches"
    n=$(( $(jq -er "$q" <<< "$json") - $(jq -er "$q" <<< "$widened") )); disp+="$n "
    [ $n -lt $min ] && min=$n; [ $n -gt $max ] && max=$n
  done
  spread=$(awk -v a=$max -v b=$min 'BEGIN{ if (b>0) printf "%.2f", a/b; else print "inf" }')
  moved=$(jq -er '[.domains[] | .migrated_out - .evacuated] | add' <<< "$json")
  detach
  cp /tmp/imb.log "$OUT/sched-$run.log"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$BOOT" "$run" "$ops" "${disp% }" "$spread" "$moved" \
    "$least" "$sched_status" >> "$OUT/results"
  sync
done
