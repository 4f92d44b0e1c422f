#!/bin/bash
# Issue 10: started in a new pid namespace (as in a container), the scheduler
# knows its own threads by the kernel's ids, not the namespace's: it
# attaches, schedules stress-ng and hackbench through its workers, and
# detaches cleanly on SIGINT. (It once recognised none of its workers there,
# queued them to themselves, and the kernel unloaded it within seconds.)
# Usage: pidns.sh [scheduler flags...]
. "$(dirname "$0")/lib.sh"

: > "$LOG"
unshare --pid --fork --mount-proc "$SCHED" --stats-interval 1 --stats-format json "$@" > "$LOG" 2>&1 &
outer=$!
wait_enabled "$outer"
# unshare forks the scheduler and waits for it; signals go to the scheduler,
# by the pid this (outer) namespace gives it.
SCHED_PID=$(pgrep -P "$outer") || fail "no scheduler process under unshare"
inner=$(awk '/^NSpid:/ {print $NF}' "/proc/$SCHED_PID/status")
echo "attached from a pid namespace: pid $SCHED_PID here, $inner inside (state $(state), ops $(ops))"
[ "$inner" = 1 ] || fail "the scheduler is pid $inner in its namespace, expected 1"

run_stress "cpu 8 x 5s" --cpu 8 -t 5
run_stress "switch 4 x 5s" --switch 4 -t 5
hackbench -g 2 -l 100 > /dev/null 2>&1 || fail "hackbench failed"
attached_or_fail
wait_stats
disp=$(last_stat user_dispatches)
echo "user-space dispatches: $disp"
[ "${disp:-0}" -gt 1000 ] || fail "too few user-space dispatches ($disp)"

kill -INT "$SCHED_PID"
wait "$outer"
rc=$?
[ "$rc" = 0 ] || fail "scheduler exited $rc on SIGINT"
[ "$(state)" = disabled ] || fail "state is '$(state)' after detach"
grep -q "unregistered from user space" "$LOG" || fail "no clean exit reason printed"
echo "detached cleanly: exit 0, state $(state)"
no_sched_ext_errors
echo "PASS pidns $*"
