#!/bin/bash
# The scx project's CI stress test: affinity churn and aggressive mode for
# 30 s while the scheduler runs. Pass: still attached, exit 0 on SIGINT.
# Usage: scx-ci-stress.sh [scheduler flags...]
. "$(dirname "$0")/lib.sh"

start_sched "$@"
stress-ng --temp-path /tmp -t 30 --aggressive -M -c 4 -f 4 --affinity 1 --affinity-delay 1 --affinity-pin \
  > /tmp/stress.log 2>&1 || { tail -5 /tmp/stress.log; fail "stress-ng failed"; }
attached_or_fail
echo "still attached after 30 s of stress: $(grep '^bpf enqueues' "$LOG" | tail -n 1)"
finish scx-ci-stress $*
