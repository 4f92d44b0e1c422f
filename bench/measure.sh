# Scheduling-quality measurements, run inside the VM under whatever scheduler
# is attached (sourced by bench/fairness.sh, bench/latency.sh and
# tests/vm/quality.sh). Each prints figures, never a verdict: the callers
# compare them with EEVDF's in the same boot.
measure_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# fairness ARGS...: bench/fairness.py ARGS; sets $fair to its SUMMARY line
# (fields worst_err_pct, worst_big_err_pct, jain, busy_cpus, nice) and
# keeps the per-task lines in /tmp/fairness.log.
fairness() {
  python3 "$measure_dir/fairness.py" "$@" > /tmp/fairness.log 2>&1
  fair=$(grep '^SUMMARY' /tmp/fairness.log)
  [ -n "$fair" ] || { cat /tmp/fairness.log; fair="SUMMARY failed"; }
}

# field LINE KEY: the value of KEY=V in LINE.
field() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

# latency SECS [pinned|free]: wakeup latency of one 1 ms-timer thread per CPU
# (cyclictest, SCHED_OTHER like any interactive task) beside twice as many
# CPU hogs as CPUs; sets $lat to "AVG_US MAX_US": the mean of the threads'
# averages and the worst single wakeup. cyclictest pins thread N to CPU N
# (pinned, the default); free lets every thread use every CPU.
latency() {
  local secs=$1 n hogs affinity=()
  n=$(nproc)
  [ "${2:-pinned}" = free ] && affinity=(-a "0-$((n - 1))")
  stress-ng --temp-path /tmp --cpu $((2 * n)) --cpu-method matrixprod -t $((secs + 6)) > /dev/null 2>&1 &
  hogs=$!
  sleep 2
  cyclictest -q -m -t "$n" "${affinity[@]}" -i 1000 -D "$secs" > /tmp/cyclictest.log 2>&1
  wait "$hogs"
  # cyclictest writes "Avg:   30" or, for wide numbers, "Avg:22755".
  lat=$(awk 'function num(key,   t) { t = $0; sub(".*" key ": *", "", t); return t + 0 }
             /Avg:/ { s += num("Avg"); k++; if (num("Max") > m) m = num("Max") }
             END { if (k) printf "%d %d", s / k, m; else print "? ?" }' /tmp/cyclictest.log)
}
