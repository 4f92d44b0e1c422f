#!/bin/bash
# Inside the VM; see bench/vm-imbalance.
set -u
SECS=${SECS:-12}
dom0=$("$SCHED" --show-domains --domains llc | awk '$2 == 0 {print $4}')
dom_disp() { grep "^  dom $1 " /tmp/imb.log | tail -n 1 | grep -o " dispatches=[0-9]*" | cut -d= -f2; }
declare -A res
for mode in on off; do
  flags=(--domains llc); [ $mode = off ] && flags+=(--no-balance)
  "$SCHED" "${flags[@]}" > /tmp/imb.log 2>&1 &
  pid=$!
  for _ in $(seq 1 900); do [ "$(cat /sys/kernel/sched_ext/state)" = enabled ] && break; sleep 0.1; done
  taskset -c "$dom0" stress-ng --temp-path /tmp --cpu 8 --metrics-brief -t "$SECS" > /tmp/imb-stress.log 2>&1 &
  hogs=$!
  sleep 2
  for p in $(pgrep -P $hogs); do taskset -a -p -c 0-$(($(nproc) - 1)) "$p" > /dev/null; done
  sleep 1.2
  declare -A before
  for d in 0 1 2 3; do before[$d]=$(dom_disp $d); done
  wait $hogs
  sleep 1.2
  ops=$(awk '/metrc:/ && $4 == "cpu" {print $9}' /tmp/imb-stress.log)
  line="balancer $mode: hogs $ops bogo-ops/s; dispatches per domain after widening:"
  min=999999999; max=0
  for d in 0 1 2 3; do
    n=$(( $(dom_disp $d) - ${before[$d]} )); line+=" $n"
    [ $n -lt $min ] && min=$n; [ $n -gt $max ] && max=$n
  done
  moved=$(grep "^  dom" /tmp/imb.log | tail -n 4 | grep -o " out=[0-9]*" | cut -d= -f2 | awk '{s += $1} END {print s + 0}')
  echo "$line; spread max/min $(awk -v a=$max -v b=$min 'BEGIN{ if (b>0) printf "%.2f", a/b; else print "inf" }'); migrations $moved"
  res[$mode]=$ops
  kill -INT $pid; wait $pid
done
echo "throughput on/off: $(awk -v a="${res[on]}" -v b="${res[off]}" 'BEGIN{ if (b>0) printf "%.2f", a/b; else print "?" }')"
