#!/bin/bash
# Hardening: a CPU goes offline and comes back while the scheduler runs, the
# first time while the balancer is moving tasks between domains. The kernel
# unloads a sched_ext scheduler on hotplug and asks it to restart; we must
# re-read the topology, attach again, and keep scheduling, losing no task
# (the hogs in flight finish their run).
. "$(dirname "$0")/lib.sh"

cpu=/sys/devices/system/cpu/cpu3/online
[ -w "$cpu" ] || fail "CPU 3 cannot be taken offline in this VM"
start_sched --domains llc
wait_for_restart() { # N: wait until the log shows N restarts and we are attached again
  for _ in $(seq 1 900); do
    [ "$(grep -c 'asked for a restart' "$LOG")" -ge "$1" ] && [ "$(state)" = enabled ] && return
    kill -0 "$SCHED_PID" 2>/dev/null || fail "scheduler exited instead of restarting"
    sleep 0.1
  done
  fail "no restart after hotplug (state $(state))"
}
# Hogs born on domain 0's CPUs, then allowed everywhere: the balancer moves
# them out. The CPU goes offline once it has moved some.
dom0=$("$SCHED" --show-domains --domains llc | awk '$2 == 0 {print $4}')
taskset -c "$dom0" stress-ng --temp-path /tmp --cpu 8 -t 15 > /tmp/hp-stress.log 2>&1 &
hogs=$!
sleep 1.5
for p in $(pgrep -P "$hogs"); do taskset -a -p -c 0-$(($(nproc) - 1)) "$p" > /dev/null 2>&1; done
moved=0
for _ in $(seq 1 10); do
  wait_stats
  moved=$(stats_line | jq -er '[.domains[] | .migrated_out - .evacuated] | add') || moved=0
  [ "$moved" -gt 0 ] && break
done
[ "$moved" -gt 0 ] || fail "the balancer moved nothing; the hotplug would not meet it at work"
echo "the balancer has moved $moved tasks; CPU 3 goes offline"
echo 0 > "$cpu"
wait_for_restart 1
wait "$hogs" || { cat /tmp/hp-stress.log; fail "the hogs the balancer was moving did not finish"; }
echo "the 8 hogs in flight finished: $(grep -o 'successful run completed.*' /tmp/hp-stress.log)"
echo "CPU 3 offline: restarted, $(grep -c '^domain' <("$SCHED" --show-domains --domains llc)) llc domains now"
run_stress "cpu 4 x 4s" --cpu 4 -t 4
echo 1 > "$cpu"
wait_for_restart 2
echo "CPU 3 online again: restarted"
run_stress "cpu 4 x 4s" --cpu 4 -t 4
finish hotplug
