# Helpers for the scenario scripts run inside the sched_ext VM (sourced).
# Each scenario prints what it checks and ends with "PASS <name>"; any
# failed check prints "FAIL: <why>" and exits non-zero.
set -u

SCHED=${SCHED:?SCHED must name the scx-userland binary}
# The first line tells the host-side harness that the guest booted.
echo "guest up: $(basename "$0") $*, $(nproc) CPUs, kernel $(uname -r)"
SYSFS=/sys/kernel/sched_ext
LOG=/tmp/sched.log
SCHED_PID=

# On a kernel-side exit the log ends with the kernel's dump (which task
# waited on which DSQ, what each CPU ran): print all of it, not a tail.
fail() {
  echo "FAIL: $*"
  [ -f "$LOG" ] || exit 1
  echo "--- scheduler log (tail)"
  if grep -q "^scx-userland: exit kind" "$LOG"; then
    grep -B 8 -A 400 -m 1 "^scx-userland: exit kind" "$LOG"
  else
    tail -n 30 "$LOG"
  fi
  exit 1
}
state() { cat "$SYSFS/state" 2>/dev/null; }
ops() { cat "$SYSFS/root/ops" 2>/dev/null; }

# wait_enabled PID: wait until the kernel says enabled, while PID (the
# scheduler, or what started it) lives.
wait_enabled() {
  for _ in $(seq 1 900); do
    [ "$(state)" = enabled ] && break
    kill -0 "$1" 2>/dev/null || fail "scheduler exited before attaching"
    sleep 0.1
  done
  [ "$(state)" = enabled ] || fail "not enabled after 90 s (state: $(state))"
  [ "$(ops)" = scx_userland ] || fail "root/ops is '$(ops)', expected scx_userland"
}

# start_sched ARGS...: start the scheduler, wait until the kernel says enabled.
# $SCHED_WRAP, if set, is a command that execs it (e.g. "taskset -c 0-1").
start_sched() {
  local t0=$SECONDS
  : > "$LOG"
  ${SCHED_WRAP:-} "$SCHED" --stats-interval 1 --stats-format json "$@" > "$LOG" 2>&1 &
  SCHED_PID=$!
  wait_enabled "$SCHED_PID"
  echo "attached: $* (state $(state), ops $(ops)) in $((SECONDS - t0)) s"
}

# stop_sched: SIGINT, expect exit 0 and sched_ext disabled.
stop_sched() {
  attached_or_fail
  kill -INT "$SCHED_PID"
  wait "$SCHED_PID"; local rc=$?
  [ "$rc" = 0 ] || fail "scheduler exited $rc on SIGINT"
  [ "$(state)" = disabled ] || fail "state is '$(state)' after detach"
  grep -q "unregistered from user space" "$LOG" || fail "no clean exit reason printed"
  echo "detached cleanly: exit 0, state $(state)"
}

attached_or_fail() {
  kill -0 "$SCHED_PID" 2>/dev/null || fail "scheduler is gone (killed by the kernel?)"
  [ "$(state)" = enabled ] || fail "state is '$(state)' while the scheduler should run"
}

# The scheduler prints its stats as one JSON object per line
# (--stats-format json; `scx-userland --help-stats` names every field).
# stats_line: the newest one.
stats_line() { grep '^{' "$LOG" | tail -n 1; }
# last_stat FIELD: a field of the newest stats object; empty if absent.
last_stat() { stats_line | jq -er ".$1" 2> /dev/null; }
# dom_stat DOM FIELD: a field of domain DOM in the newest stats object.
dom_stat() { stats_line | jq -er ".domains[\"$1\"].$2" 2> /dev/null; }
# wait_stats: let one more stats object arrive.
wait_stats() { local n; n=$(grep -c '^{' "$LOG"); for _ in $(seq 1 50); do [ "$(grep -c '^{' "$LOG")" -gt "$n" ] && return; sleep 0.1; done; }

# only_counter_race LOG: true if stress-ng's run in LOG failed for nothing
# but the race in its own --resched stressor. stress-ng 0.15 (bookworm's)
# counts that stressor's operations in one shared counter, with a hash of
# it, that its 20 forked children (one per nice level) update without a
# lock, and it SIGKILLs them at the end: a child preempted or killed
# between the two stores leaves them apart ("resched instance 0 corrupted
# bogo-ops counter, 747 vs 746") and the run "unsuccessful", under any
# scheduler: under EEVDF, 2 of 8 runs of churn.sh's stress-ng line in the
# flat VM. Every other failure line still fails the run.
only_counter_race() {
  grep -q "corrupted bogo-ops counter" "$1" || return 1
  ! grep -E "(fail|error): " "$1" |
    grep -vqE "resched instance [0-9]+ (corrupted bogo-ops counter|hash error in bogo-ops counter and run flag)|metrics-check: stressor metrics corrupted"
}

# run_stress DESC ARGS...: stress-ng with a time limit; must succeed.
run_stress() {
  local desc=$1 t0=$SECONDS; shift
  stress-ng --temp-path /tmp "$@" > /tmp/stress.log 2>&1 || { cat /tmp/stress.log; fail "stress-ng $desc failed"; }
  echo "stress-ng $desc: ok in $((SECONDS - t0)) s"
  attached_or_fail
}

no_sched_ext_errors() {
  if dmesg | grep -E "sched_ext: .*(error|stall|runnable task stall)" ; then fail "sched_ext error in dmesg"; fi
}

# finish NAME...: detach cleanly, check dmesg, declare the scenario passed.
finish() {
  stop_sched
  no_sched_ext_errors
  echo "PASS $*"
}
