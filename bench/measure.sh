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
# CPU hogs as CPUs; sets $lat to "AVG_US P999_US MAX_US": the mean of the
# threads' averages, the 99.9th percentile of all their wakeups, and the
# worst single wakeup. The single worst is one sample: between two EEVDF
# runs of the same boot it swung from 41 to 80 ms in the emulator, so the
# tail is compared at the 99.9th percentile (tens of samples) and the max
# is reported. cyclictest pins thread N to CPU N (pinned, the default);
# free lets every thread use every CPU.
#
# The first cyclictest run of a boot is not comparable with the later ones:
# in the emulator its timer interrupts come on time, and from the second
# run on, whatever the scheduler, they come late (numa-llc, EEVDF, one boot,
# 6 s traced: 30 537 timer wakeups of the 8 threads fired, 0.7 ms after
# their expiry on average; in the next run 3 641, 8.3 ms late; mean latency
# 0.9 ms, then 12.3 ms). Even a 1 s run of one thread without load is
# enough to switch it, and --laptop (no /dev/cpu_dma_latency) does not
# prevent it; the cause is outside the guest. EEVDF, measured first, had
# that run alone: on numa-llc it looked 5-7 times better than any
# scheduler measured after it. So every boot spends that run on a warm-up
# (/tmp/.cyclictest-warm marks it done) before measuring anything.
LAT_HIST_US=100000
latency() {
  local secs=$1 n hogs affinity=()
  n=$(nproc)
  if [ ! -e /tmp/.cyclictest-warm ]; then
    cyclictest -q -m -t "$n" -i 1000 -D 1 > /dev/null 2>&1
    touch /tmp/.cyclictest-warm
  fi
  [ "${2:-pinned}" = free ] && affinity=(-a "0-$((n - 1))")
  stress-ng --temp-path /tmp --cpu $((2 * n)) --cpu-method matrixprod -t $((secs + 6)) > /dev/null 2>&1 &
  hogs=$!
  sleep 2
  cyclictest -q -m -t "$n" "${affinity[@]}" -i 1000 -D "$secs" -h "$LAT_HIST_US" > /tmp/cyclictest.log 2>&1
  wait "$hogs"
  lat=$(latency_of /tmp/cyclictest.log)
}

# latency_of LOG...: "AVG_US P999_US MAX_US" of cyclictest runs of equal
# length taken together: the mean of their means, the 99.9th percentile of
# all their wakeups, the worst. The histogram: a line per microsecond, a
# count per thread; wakeups past its end are "Histogram Overflows" (counted
# at its end for the percentile; the max line is exact).
latency_of() {
  awk -v h="$LAT_HIST_US" '
    function sum(from,   i, t) { t = 0; for (i = from; i <= NF; i++) t += $i; return t }
    /^[0-9]+ / { c[$1 + 0] += sum(2); total += sum(2); next }
    /^# Avg Latencies:/ { avg += sum(4) / (NF - 3); runs++ }
    /^# Max Latencies:/ { for (i = 4; i <= NF; i++) if ($i + 0 > max) max = $i + 0 }
    /^# Histogram Overflows:/ { over += sum(4) }
    END {
      all = total + over
      if (!runs || !all) { print "? ? ?"; exit }
      want = all * 0.999; run = 0; p = h
      for (b = 0; b < h; b++) { run += c[b]; if (run >= want) { p = b; break } }
      printf "%d %d %d", avg / runs, p, max
    }' "$@"
}
