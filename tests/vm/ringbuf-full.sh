#!/bin/bash
# Hardening: ring buffers far too small for the load. Tasks that do not fit
# must be scheduled by the kernel directly (counted as failed), none lost:
# the workload completes and the scheduler stays attached.
. "$(dirname "$0")/lib.sh"

start_sched --ringbuf-kib 4
hackbench -g 8 -l 100 > /tmp/hb.log 2>&1 || fail "hackbench failed"
run_stress "fork 4 x 5s" --fork 4 -t 5
wait_stats
failed=$(last_stat bpf_failed_enqueues); user=$(last_stat bpf_user_enqueues)
echo "with 4 KiB ring buffers: failed=$failed user=$user"
[ "${failed:-0}" -gt 0 ] || fail "the ring buffer never filled: the test proves nothing"
[ "${user:-0}" -gt 0 ] || fail "nothing went through user space"
finish ringbuf-full
