#!/bin/bash
# Runs several scenarios in one boot, one after the other: an emulated boot
# costs tens of seconds, and scenarios that share a topology need no fresh
# machine. Usage: group.sh SCRIPT [ARGS...] [-- SCRIPT [ARGS...]]...
# Each scenario runs in its own bash, so a FAIL ends only that one. Between
# two, a scheduler left attached by a failed one is stopped, and the kernel
# log is printed (if it failed) and cleared: each scenario checks dmesg for
# sched_ext errors of its own, not of the one before.
# Exits non-zero if any scenario did.
set -u
dir=$(dirname "$0")
echo "guest up: group of scenarios, $(nproc) CPUs, kernel $(uname -r)"
failed=()
sched=$(basename "${SCHED:?SCHED must name the scx-userland binary}")

run() {
  echo "=== scenario: $*"
  local script=$1 rc start=$SECONDS
  shift
  bash "$dir/$script" "$@"
  rc=$?
  # The time each took is how CI's budget is kept: see tests/vm.rs.
  echo "--- $script${*:+ $*}: $((SECONDS - start)) s"
  if pgrep -x "$sched" > /dev/null; then
    pkill -INT -x "$sched"
    for _ in $(seq 1 100); do pgrep -x "$sched" > /dev/null || break; sleep 0.1; done
    pkill -KILL -x "$sched"
  fi
  for _ in $(seq 1 100); do
    [ "$(cat /sys/kernel/sched_ext/state 2> /dev/null)" = enabled ] || break
    sleep 0.1
  done
  if [ "$rc" != 0 ]; then
    failed+=("$script $*")
    echo "--- kernel log after the failed scenario:"
    dmesg | grep -i sched_ext | tail -n 20
  fi
  dmesg -C
}

scenario=()
for arg in "$@"; do
  if [ "$arg" = -- ]; then
    run "${scenario[@]}"
    scenario=()
  else
    scenario+=("$arg")
  fi
done
[ ${#scenario[@]} -gt 0 ] && run "${scenario[@]}"

if [ ${#failed[@]} -gt 0 ]; then
  printf 'FAILED SCENARIO: %s\n' "${failed[@]}"
  exit 1
fi
echo "all scenarios passed in $SECONDS s"
