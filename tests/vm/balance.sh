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
# The hogs are born in a cpuset cgroup and widened by one write to it. A
# taskset per hog, as before, once widened none of them in 50 rounds in CI:
# on a loaded host a process started beside 8 hogs takes seconds in the
# emulator (bench/imbalance.sh measured the same).
cg=/sys/fs/cgroup/balance
{ echo +cpuset > /sys/fs/cgroup/cgroup.subtree_control && mkdir -p "$cg"; } || fail "no cpuset cgroup to start the hogs in"
echo "$dom0" > "$cg/cpuset.cpus" || fail "cannot restrict $cg to CPUs $dom0"
(echo "$BASHPID" > "$cg/cgroup.procs" && exec stress-ng --temp-path /tmp --cpu 8 -t 14) > /dev/null 2>&1 &
hogs=$!
sleep 3
# stress-ng and its 8 workers.
for _ in $(seq 1 100); do
  mapfile -t pids < "$cg/cgroup.procs"
  [ ${#pids[@]} -ge 9 ] && break
  sleep 0.1
done
[ ${#pids[@]} -ge 9 ] || fail "the 8 stress-ng workers did not start (in $cg: ${pids[*]})"
all="0-$(($(nproc) - 1))"
echo "$all" > "$cg/cpuset.cpus" || fail "widening $cg to CPUs $all failed"
widened=0
for p in "${pids[@]}"; do
  while read -r key val; do
    [ "$key" = Cpus_allowed_list: ] && [ "$val" = "$all" ] && widened=$((widened + 1))
  done < "/proc/$p/status"
done
[ "$widened" -ge 9 ] || fail "only $widened of stress-ng and its workers took CPUs $all"
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
rmdir "$cg"
echo "migrations: $moved"
if [ "$mode" = on ]; then
  [ "$moved" -gt 0 ] || fail "the balancer moved nothing"
else
  [ "$moved" = 0 ] || fail "--no-balance still migrated $moved tasks"
fi
finish balance $mode
