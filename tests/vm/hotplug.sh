#!/bin/bash
# Hardening: a CPU goes offline and comes back while the scheduler runs. The
# kernel unloads a sched_ext scheduler on hotplug and asks it to restart; we
# must re-read the topology, attach again, and keep scheduling.
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
echo 0 > "$cpu"
wait_for_restart 1
echo "CPU 3 offline: restarted, $(grep -c '^domain' <("$SCHED" --show-domains --domains llc)) llc domains now"
run_stress "cpu 4 x 4s" --cpu 4 -t 4
echo 1 > "$cpu"
wait_for_restart 2
echo "CPU 3 online again: restarted"
run_stress "cpu 4 x 4s" --cpu 4 -t 4
finish hotplug
