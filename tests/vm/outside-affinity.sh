#!/bin/bash
# Issue 10: started under `taskset -c 0-1` on 4 CPUs, the scheduler still
# plans and schedules CPUs 2-3: sched_ext schedules every CPU, whatever CPUs
# the scheduler's own threads started on. With --domains 2 both domains
# exist (0-1 and 2-3; once, the plan was two domains of one CPU each, and
# CPUs 2-3 took work from domain 0 without being counted), domain 1's worker
# runs on CPUs 2-3, and hogs confined to CPUs 2-3 go through it and keep
# both of those CPUs busy.
. "$(dirname "$0")/lib.sh"

[ "$(nproc)" -ge 4 ] || fail "needs 4 CPUs, has $(nproc)"
ticks=$(getconf CLK_TCK)
SCHED_WRAP="taskset -c 0-1" start_sched --domains 2
echo "the scheduler's own affinity: $(awk '/Cpus_allowed_list/ {print $2}' /proc/"$SCHED_PID"/status)"
wait_stats
cpus=$(stats_line | jq -er '[.domains[].cpus] | join(" ")') || fail "no domains in the stats"
echo "domains' CPUs: $cpus"
[ "$cpus" = "0-1 2-3" ] || fail "the plan under taskset -c 0-1 is '$cpus', expected '0-1 2-3'"
tid=$(grep -l "^sul-worker-1\$" /proc/"$SCHED_PID"/task/*/comm | head -n 1 | cut -d/ -f5)
allowed=$(awk '/Cpus_allowed_list/ {print $2}' /proc/"$SCHED_PID"/task/"$tid"/status)
echo "worker of domain 1: Cpus_allowed_list $allowed"
[ "$allowed" = 2-3 ] || fail "domain 1's worker may run on '$allowed', not 2-3"

before=$(dom_stat 1 dispatches)
pids=()
for _ in 1 2 3 4; do taskset -c 2-3 bash -c 'while :; do :; done' & pids+=($!); done
sleep 1
ticks_of() { local t=0 p; for p in "${pids[@]}"; do t=$((t + $(awk '{print $14 + $15}' /proc/$p/stat))); done; echo $t; }
# Elapsed time measured, not assumed: the emulated machine can oversleep.
s0=$(date +%s.%N); t0=$(ticks_of)
sleep 5
s1=$(date +%s.%N); t1=$(ticks_of)
kill "${pids[@]}"; wait "${pids[@]}" 2> /dev/null
wait_stats
after=$(dom_stat 1 dispatches)
busy=$(awk -v d=$((t1 - t0)) -v hz="$ticks" -v a="$s0" -v b="$s1" 'BEGIN { printf "%.2f", d / hz / (b - a) }')
echo "4 hogs on CPUs 2-3: $busy CPUs of 2; domain 1 dispatched $((after - before)) meanwhile"
[ $((after - before)) -gt 0 ] || fail "domain 1's worker dispatched nothing for the hogs on its CPUs"
awk -v b="$busy" 'BEGIN { exit !(b >= 1.6) }' || fail "the hogs got $busy of CPUs 2-3"
finish outside-affinity
