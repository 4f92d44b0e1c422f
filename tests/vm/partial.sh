#!/bin/bash
# Issue 2, -p: only SCHED_EXT tasks are scheduled by us.
. "$(dirname "$0")/lib.sh"

start_sched --domains 1 --partial
# A normal CPU hog: must not reach us.
stress-ng --temp-path /tmp --cpu 2 -t 4 > /tmp/normal.log 2>&1 || fail "normal stress-ng failed: $(cat /tmp/normal.log)"
wait_stats
before=$(last_stat bpf_user_enqueues)
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
after=$(last_stat bpf_user_enqueues)
echo "user-space enqueues: ${before} while only normal tasks ran, ${after} after the SCHED_EXT task"
[ "${before:-0}" -lt 50 ] || fail "normal tasks reached the scheduler in partial mode ($before enqueues)"
[ "$((after - before))" -gt 100 ] || fail "the SCHED_EXT task was not scheduled through user space"
finish partial
