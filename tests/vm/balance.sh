#!/bin/bash
# Issue 4 on numa-llc with --domains llc: 8 CPU hogs start pinned to domain
# 0's CPUs, then their affinity is widened to every CPU. With the balancer
# on, queued tasks migrate and every domain dispatches; with --no-balance,
# nothing migrates. Usage: balance.sh on|off
. "$(dirname "$0")/lib.sh"

mode=$1
flags=(--domains llc)
[ "$mode" = off ] && flags+=(--no-balance)
dom0=$("$SCHED" --show-domains --domains llc | awk '$2 == 0 {print $4}')
start_sched "${flags[@]}"
taskset -c "$dom0" stress-ng --temp-path /tmp --cpu 8 -t 14 > /dev/null 2>&1 &
hogs=$!
sleep 3
for _ in $(seq 1 100); do
  pids=$(pgrep -P "$hogs" || true)
  [ "$(echo "$pids" | wc -w)" -ge 8 ] && break
  sleep 0.1
done
[ "$(echo "$pids" | wc -w)" -ge 8 ] || fail "the 8 stress-ng workers did not start (found: $pids)"
# A child can exit between pgrep and taskset (CI once saw one, early in
# stress-ng's start): only a process that still exists must take the wider
# mask, and the workers are listed again until 8 have it.
widened=" "
for _ in $(seq 1 50); do
  for p in $(pgrep -P "$hogs" || true); do
    case "$widened" in *" $p "*) continue ;; esac
    if taskset -a -p -c 0-"$(($(nproc) - 1))" "$p" > /dev/null 2>&1; then
      widened="$widened$p "
    elif kill -0 "$p" 2> /dev/null; then
      fail "taskset $p"
    else
      echo "pid $p exited before its affinity was widened"
    fi
  done
  [ "$(echo $widened | wc -w)" -ge 8 ] && break
  sleep 0.1
done
[ "$(echo $widened | wc -w)" -ge 8 ] || fail "only these stress-ng workers took the wider affinity:$widened"
wait_stats
for d in 0 1 2 3; do eval "d0_$d=\$(dom_stat $d dispatches)"; done
sleep 6
wait_stats
moved=0
for d in 0 1 2 3; do
  # A domain found starved (src/rescue.rs; in the emulator a vCPU the host
  # does not run can look so) evacuates tasks: counted in migrated_out too,
  # but not the balancer's doing.
  out=$(dom_stat $d migrated_out); evac=$(dom_stat $d evacuated); disp=$(dom_stat $d dispatches); eval "was=\$d0_$d"
  echo "domain $d: migrated out=$out (evacuated while starved: $evac), dispatches +$((disp - was)) since the widening"
  moved=$((moved + out - evac))
  [ "$mode" = on ] && { [ "$((disp - was))" -gt 0 ] || fail "domain $d dispatched nothing after the widening"; }
done
wait "$hogs" || fail "stress-ng failed"
echo "migrations: $moved"
if [ "$mode" = on ]; then
  [ "$moved" -gt 0 ] || fail "the balancer moved nothing"
else
  [ "$moved" = 0 ] || fail "--no-balance still migrated $moved tasks"
fi
finish balance $mode
