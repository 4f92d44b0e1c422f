# Helpers for the benchmark scripts that run inside the VM (sourced by
# bench/workloads.sh, bench/imbalance.sh, bench/fairness.sh and bench/latency.sh).

# attach LOG FLAGS...: start $SCHED with FLAGS, its output in LOG, and wait
# until the kernel says sched_ext is enabled; exit 1 with the log if it never does.
attach() {
  local log=$1
  shift
  "$SCHED" "$@" > "$log" 2>&1 &
  sched_pid=$!
  for _ in $(seq 1 900); do [ "$(cat /sys/kernel/sched_ext/state)" = enabled ] && break; sleep 0.1; done
  if [ "$(cat /sys/kernel/sched_ext/state)" != enabled ]; then echo "could not attach: $*"; cat "$log"; exit 1; fi
}

# detach: stop the scheduler with SIGINT; $sched_status says whether it was
# still attached (the kernel did not kill it) and how it exited.
detach() {
  local alive=yes rc
  kill -0 "$sched_pid" 2>/dev/null || alive="NO (killed?)"
  kill -INT "$sched_pid"
  wait "$sched_pid"
  rc=$?
  sched_status="attached to the end: $alive, exit $rc"
}
