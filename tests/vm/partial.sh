#!/bin/bash
# -p: only SCHED_EXT tasks are scheduled by us; the workers, which are then
# ordinary tasks that BPF cannot hold, must not spin.
# Usage: partial.sh [FLAGS...]   (default: --domains 1)
. "$(dirname "$0")/lib.sh"

flags=("$@"); [ ${#flags[@]} -gt 0 ] || flags=(--domains 1)
start_sched "${flags[@]}" --partial
# A normal CPU hog: must not reach us.
stress-ng --temp-path /tmp --cpu 2 -t 4 > /tmp/normal.log 2>&1 || fail "normal stress-ng failed: $(cat /tmp/normal.log)"
# What this scheduler decided: sent to user space, or placed by BPF's
# wakeup fast path (direct=), which makes the decision user space would.
ours() { echo $(($(last_stat bpf_user_enqueues) + $(last_stat direct))); }
wait_stats
before=$(ours)
# A task that switches itself to SCHED_EXT (policy 7), then spins and sleeps.
python3 - <<'PY' > /tmp/ext.log 2>&1 || fail "SCHED_EXT task failed: $(cat /tmp/ext.log)"
import os, time
os.sched_setscheduler(0, 7, os.sched_param(0))
policy = open("/proc/self/sched").read().split("policy")[1].split()[1]
print("policy", policy)
assert policy == "7", policy
end = time.time() + 3
while time.time() < end:
    sum(range(20000)); time.sleep(0.001)
PY
cat /tmp/ext.log
wait_stats; wait_stats
after=$(ours)
echo "enqueues decided by us (user space + direct): ${before} while only normal tasks ran, ${after} after the SCHED_EXT task ($(last_stat bpf_user_enqueues) through user space)"
[ "${before:-0}" -lt 50 ] || fail "normal tasks reached the scheduler in partial mode ($before enqueues)"
[ "$((after - before))" -gt 100 ] || fail "the SCHED_EXT task was not scheduled by us"

# Four SCHED_EXT hogs per CPU: with several domains, tasks wait in user
# space while every CPU holds what it needs (a decision running and one
# waiting per CPU). A worker that yielded in a loop then (a normal task's
# sched_yield returns at once) would keep a CPU busy, away from the hogs,
# for the whole run: about 100% per domain. The bar is half that: flat,
# one domain, the worker was busy 12.4% with a release build and 30.3%
# with the debug build `cargo test` runs (2026-11-30), each decision being
# several times dearer unoptimised.
python3 -c 'import os, sys; os.sched_setscheduler(0, 7, os.sched_param(0)); os.execvp(sys.argv[1], sys.argv[1:])' \
  stress-ng --temp-path /tmp --cpu $((4 * $(nproc))) -t 8 > /tmp/ext-hogs.log 2>&1 &
hogs=$!
sleep 4
wait_stats; wait_stats
busy=$(last_stat workers_busy_pct); ndom=$(stats_line | jq -er '.domains | length')
wait "$hogs" || fail "SCHED_EXT hogs failed: $(cat /tmp/ext-hogs.log)"
echo "SCHED_EXT hogs, 4 per CPU: the $ndom worker(s) were busy ${busy}% of one CPU in all"
awk -v b="$busy" -v n="$ndom" 'BEGIN { exit !(b < 50 * n) }' ||
  fail "the workers were busy ${busy}% of a CPU for $ndom domain(s): spinning?"
finish partial "${flags[*]}"
