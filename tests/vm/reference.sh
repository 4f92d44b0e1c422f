#!/bin/bash
# Issue 2 on the flat VM: the reference scheduler (--domains 1) attaches,
# schedules real work through user space, survives, and detaches cleanly.
. "$(dirname "$0")/lib.sh"

start_sched --domains 1
# A second instance must refuse, name the attached scheduler, and leave the
# first one running.
if "$SCHED" --stats-interval 0 > /tmp/second.log 2>&1; then fail "a second instance attached"; fi
grep -q "already attached: scx_userland" /tmp/second.log || fail "second instance said: $(cat /tmp/second.log)"
echo "second instance refused: $(cat /tmp/second.log)"
attached_or_fail
run_stress "cpu 8 x 10s" --cpu 8 --cpu-method matrixprod -t 10
run_stress "switch 4 x 10s" --switch 4 -t 10
run_stress "fork 4 x 10s" --fork 4 -t 10
hackbench -g 4 -l 200 > /tmp/hb.log 2>&1 || fail "hackbench failed"
echo "hackbench: $(grep Time /tmp/hb.log)"
attached_or_fail
wait_stats
user=$(last_stat user); disp=$(last_stat dispatches); enq=$(last_stat enqueues)
echo "bpf user enqueues=$user, user-space enqueues=$enq dispatches=$disp"
[ "${user:-0}" -gt 1000 ] || fail "too few tasks went to user space ($user)"
[ "${disp:-0}" -gt 1000 ] || fail "too few user-space dispatches ($disp)"
finish reference
