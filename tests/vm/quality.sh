#!/bin/bash
# Issue 8: scheduling quality, each figure against EEVDF's in the same boot.
# Usage: quality.sh [VAR=VALUE...] CONFIG...   (each CONFIG a quoted set of
# scheduler flags; VAR is QUALITY_SECS, FAIR_PCT, FAIR_PCT_8X, FAIR_ABS_PCT,
# IDLE_PCT, LAT_X, LAT_SECS, LAT_MODES, GAP_S or
# FAIRNESS=report|off, LATENCY=report|off, LAT_MEAN=report,
# WIDEN=assert|report|off)
# For each config:
#   - work conservation: a hog pinned to one CPU keeps it >= 98% busy, and
#     with one hog per CPU the CPUs are idle < $IDLE_PCT% of the time (as
#     SCHED_EXT tasks with --partial, the only ones partial mode schedules);
#   - weighted fairness (not with --partial): hogs at nice -5, 0, 5, 19 and
#     SCHED_IDLE, 2x and 8x as many as CPUs: every task expected to get at
#     least 0.1 CPU gets within $FAIR_PCT% of its weight's part of the CPU
#     time the hogs got at 2x, $FAIR_PCT_8X% at 8x, and within
#     $FAIR_ABS_PCT% of its weight share of the machine (or EEVDF's error
#     in the same boot, where EEVDF misses that in the emulator), every task
#     ran, and at 2x the tiny shares are within twice EEVDF's error in this
#     boot plus 25 points, or within 100%, whichever is looser; a miss
#     gets a second run of EEVDF and ours, and both runs together decide;
#   - wakeup latency (not with --partial): 1 ms timer threads (cyclictest,
#     pinned one per CPU as it does by default, and free on every CPU:
#     $LAT_MODES) for $LAT_SECS s (default QUALITY_SECS)
#     beside 2 hogs per CPU see a mean and a worst latency no worse than
#     EEVDF's x $LAT_X; the worst is the 99.9th percentile of all wakeups
#     (a single sample's max swings by half between EEVDF runs in the
#     emulator: bench/measure.sh), the max is printed beside it; a miss
#     gets a second run of EEVDF and ours, and both runs together decide;
#   - a task pinned for 10 s beside 2 hogs per CPU, then widened, gets
#     between half and twice the others' mean share over the next 5 s
#     ($WIDEN, by default as LATENCY).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../../bench/measure.sh"

# Leading VAR=VALUE arguments set the bars below.
while [[ ${1:-} == [A-Z_]*=* ]]; do export "${1?}"; shift; done
SECS=${QUALITY_SECS:-10}
# The issue's bar: CPU time in proportion to weight, every task within 5%
# of its weight share, EEVDF's class. Proportion: each task's part of the
# CPU time all the hogs got (bench/fairness.py, prop_err_pct), since the
# workers' own CPU time, which no hog gets, lowers every share alike (flat,
# one hog per CPU: the hogs got 3.82-3.9 CPUs of 4). The share of the whole
# machine is held to FAIR_ABS_PCT, 10%, as before. At 8x EEVDF itself
# misses 5% in the emulator, by a varying amount: flat, 20 s, four boots
# (2026-11-29/30) 4.5%, 8.8%, 9.4% and 11.6%, ours 2.4-6.6% in six runs.
# The bar at 8x is the middle of EEVDF's spread, or EEVDF's own figure in
# the same boot when larger.
FAIR_PCT=${FAIR_PCT:-5}
FAIR_PCT_8X=${FAIR_PCT_8X:-8}
FAIR_ABS_PCT=${FAIR_ABS_PCT:-10}
IDLE_PCT=${IDLE_PCT:-1}
# FAIRNESS=report / LATENCY=report / WIDEN=report print those figures
# without asserting them; =off does not measure them, for CI where
# bench/vm-fairness and bench/vm-latency report them instead.
FAIRNESS=${FAIRNESS:-assert}
LATENCY=${LATENCY:-assert}
WIDEN=${WIDEN:-$LATENCY}
LAT_SECS=${LAT_SECS:-$SECS}
LAT_MODES=${LAT_MODES:-pinned free}
# LAT_MEAN=report prints the mean wakeup latency without asserting it (the
# worst, at the 99.9th percentile, is still asserted): README, Known gaps.
LAT_MEAN=${LAT_MEAN:-assert}
LAT_X=${LAT_X:-1.5}
GAP_S=${GAP_S:-8}
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }'; }
larger() { awk -v a="$1" -v b="$2" 'BEGIN { print (a + 0 > b + 0) ? a : b }'; }
# lat_miss "AVG P999 MAX" "EEVDF's": prints which figure misses EEVDF's x
# $LAT_X and succeeds, or fails if none does (the mean not with
# LAT_MEAN=report).
lat_miss() {
  local avg p999 e_avg e_p999
  read -r avg p999 _ <<< "$1"
  read -r e_avg e_p999 _ <<< "$2"
  if [ "$LAT_MEAN" != report ] && ! ge "$(awk -v e="$e_avg" -v x="$LAT_X" 'BEGIN { print e * x }')" "$avg"; then
    echo "mean $avg us, EEVDF $e_avg us (bar x $LAT_X)"
  elif ! ge "$(awk -v e="$e_p999" -v x="$LAT_X" 'BEGIN { print e * x }')" "$p999"; then
    echo "worst (99.9th percentile) $p999 us, EEVDF $e_p999 us (bar x $LAT_X)"
  else
    return 1
  fi
}

# fairness_miss LOAD OURS EEVDF: prints the first fairness bar the summary
# OURS misses at LOAD per CPU, beside EEVDF's summary of the same load, and
# succeeds, or fails if it meets them all. Each bar is FAIR_PCT
# (FAIR_PCT_8X past 2x) or FAIR_ABS_PCT, or EEVDF's own error in this boot
# where it misses it.
fairness_miss() {
  local bar got worst_small eevdf_small
  bar=$FAIR_PCT
  [ "$1" -gt 2 ] && bar=$FAIR_PCT_8X
  got=$(field "$2" worst_big_prop_err_pct)
  bar=$(larger "$bar" "$(field "$3" worst_big_prop_err_pct)")
  ge "$bar" "$got" || { echo "a task got ${got}% off its weight's part of the hogs' CPU time (bar ${bar}%)"; return; }
  got=$(field "$2" worst_big_err_pct)
  bar=$(larger "$FAIR_ABS_PCT" "$(field "$3" worst_big_err_pct)")
  ge "$bar" "$got" || { echo "a task is ${got}% off its weight share of the machine (bar ${bar}%)"; return; }
  # At 8x a SCHED_IDLE task's weight share is about 4 ms in 10 s, less
  # than one of its runs, so whether it ran in the window is chance (under
  # EEVDF too), and the debt bound (src/vruntime.rs) deliberately trades
  # its exact share for a bounded wait: at 8x only the big shares are
  # checked; the benchmark reports the rest.
  [ "$1" -gt 2 ] && return 1
  [ "$(field "$2" min_runs)" -gt 0 ] || { echo "a task never ran"; return; }
  # The tiny shares (nice 19, SCHED_IDLE: 20 ms or less of CPU in 10 s)
  # are a handful of runs here, each a tick or more late under the
  # emulator, so one run more or less is tens of percent: the bar is twice
  # EEVDF's error plus 25 points, or at most double the share, whichever is
  # looser. (Before weights were honoured they got 40 to 200 times it.)
  worst_small=$(field "$2" worst_err_pct)
  eevdf_small=$(field "$3" worst_err_pct)
  ge "$(awk -v e="$eevdf_small" 'BEGIN { b = e * 2 + 25; print (b > 100) ? b : 100 }')" "$worst_small" ||
    { echo "the tiny shares are ${worst_small}% off; EEVDF's were ${eevdf_small}%"; return; }
  return 1
}

# check_fairness CFG LOAD: the hogs at LOAD per CPU under CFG, against
# EEVDF's run of the same load at the start of the boot
# (/tmp/fair-eevdf-LOADx.log).
check_fairness() {
  local miss eevdf
  eevdf=$(grep '^SUMMARY' "/tmp/fair-eevdf-${2}x.log")
  fairness --per-cpu "$2" --secs "$SECS"
  echo "$1, ${2}x: $fair"
  [ "$FAIRNESS" = report ] && return
  miss=$(fairness_miss "$2" "$fair" "$eevdf") || return 0
  # In the emulator the same code has both passed and missed a bar at 2x
  # over 20 s, in one boot each (the hogs got 3.71 CPUs of 4 in the CI
  # run of fb3b7da, 3.83-3.86 in the others; a SCHED_IDLE hog's share is
  # a handful of runs). So a miss is not yet a verdict: one more run each,
  # EEVDF and then ours back to back, and both runs of each, taken
  # together as one run twice as long (bench/fairness.py --combine), are
  # judged by the same bars.
  echo "$1, ${2}x: $miss; a second run of EEVDF and of $1, judged together with the first"
  cp /tmp/fairness.log "/tmp/fair-ours-${2}x.log"
  stop_sched
  fairness --per-cpu "$2" --secs "$SECS"
  cp /tmp/fairness.log "/tmp/fair-eevdf-${2}x-2.log"
  echo "EEVDF, ${2}x, run 2: $fair"
  # shellcheck disable=SC2086
  start_sched $1
  fairness --per-cpu "$2" --secs "$SECS"
  cp /tmp/fairness.log "/tmp/fair-ours-${2}x-2.log"
  echo "$1, ${2}x, run 2: $fair"
  fairness --combine "/tmp/fair-eevdf-${2}x.log" "/tmp/fair-eevdf-${2}x-2.log"
  eevdf=$fair
  fairness --combine "/tmp/fair-ours-${2}x.log" "/tmp/fair-ours-${2}x-2.log"
  echo "$1, ${2}x, both runs: $fair (EEVDF $eevdf)"
  if miss=$(fairness_miss "$2" "$fair" "$eevdf"); then
    cat /tmp/fairness.log
    fail "$1, ${2}x: $miss, over two runs"
  fi
}

fairness --mix 0 --per-cpu 1 --secs 5 --warmup 1; eevdf_1x=$fair
echo "EEVDF, $(nproc) hogs: $fair"
if [ "$FAIRNESS" != off ]; then
  for load in 2 8; do
    fairness --per-cpu $load --secs "$SECS"
    cp /tmp/fairness.log "/tmp/fair-eevdf-${load}x.log"
    echo "EEVDF, ${load}x: $fair"
  done
fi
if [ "$LATENCY" != off ]; then
  for mode in $LAT_MODES; do
    latency "$LAT_SECS" $mode; eval "eevdf_lat_$mode=\$lat"
    cp /tmp/cyclictest.log "/tmp/lat-eevdf-$mode.log"
    echo "EEVDF: latency ($mode) avg/p99.9/max us $lat"
  done
fi
[ "$WIDEN" = off ] || echo "EEVDF: pinned 10 s, then widened: $(python3 "$measure_dir/widen.py")"
# Bounded waits: the longest a hog went without running at 8x (bench/gaps.py).
eevdf_gaps=$(python3 "$measure_dir/gaps.py" --per-cpu 8 --secs "$SECS")
echo "EEVDF, 8x: $eevdf_gaps"

for cfg in "$@"; do
  ext=
  case " $cfg " in *" --partial "* | *" -p "*) ext=--ext ;; esac
  # shellcheck disable=SC2086
  start_sched $cfg

  # The issue's words: the hog keeps its CPU at least 98% busy. The CPU's
  # own idle time (/proc/stat, over wall-clock time: bench/fairness.py) is
  # checked; the hog's share is printed.
  taskset -c 1 python3 "$measure_dir/fairness.py" --mix 0 --per-cpu 1 --secs 5 --warmup 1 $ext > /tmp/pinned.log
  pinned=$(grep ^SUMMARY /tmp/pinned.log)
  idle=$(field "$pinned" idle_cpus)
  echo "$cfg: a hog pinned to CPU 1 ran $(field "$pinned" busy_cpus) of it; CPU 1 was idle $idle"
  ge 0.02 "$idle" || fail "$cfg: CPU 1 was idle $idle beside the hog pinned to it"

  fairness --mix 0 --per-cpu 1 --secs 5 --warmup 1 $ext
  idle=$(field "$fair" idle_cpus)
  echo "$cfg: $(nproc) hogs on $(nproc) CPUs: the hogs ran $(field "$fair" busy_cpus) CPUs, the CPUs were idle $idle CPUs"
  ge "$(awk -v n="$(nproc)" -v p="$IDLE_PCT" 'BEGIN { print p / 100 * n }')" "$idle" ||
    fail "$cfg: $idle CPUs idle beside $(nproc) hogs (bar ${IDLE_PCT}% of $(nproc); EEVDF $(field "$eevdf_1x" idle_cpus))"

  if [ -z "$ext" ]; then
    if [ "$FAIRNESS" != off ]; then
      check_fairness "$cfg" 2
      check_fairness "$cfg" 8
    fi
    # No task comes near the watchdog (20 s): the longest gap between two
    # runs of any hog at 8x, SCHED_IDLE ones included, must stay under
    # $GAP_S s, two fifths of it. BPF runs a debtor that waited 5 s
    # (bpf/main.bpf.c, take_debtor); measured 2.4-3.2 s since (README,
    # "Bounded waits"), 7.6-19.7 s before, and 13.9 s and a watchdog exit
    # in CI. EEVDF, which has no watchdog, is printed beside it: in the
    # emulator its SCHED_IDLE hogs wait about 19 s.
    gaps=$(python3 "$measure_dir/gaps.py" --per-cpu 8 --secs "$SECS")
    echo "$cfg, 8x: $gaps (EEVDF: $(field "$eevdf_gaps" gap_s))"
    ge "$GAP_S" "$(field "$gaps" max_gap_s)" || fail "$cfg: a hog waited $(field "$gaps" max_gap_s) s between runs at 8x"
    for mode in $LAT_MODES; do
      [ "$LATENCY" = off ] && break
      latency "$LAT_SECS" $mode
      cp /tmp/cyclictest.log "/tmp/lat-ours-$mode.log"
      eval "eevdf_lat=\$eevdf_lat_$mode"
      echo "$cfg: latency ($mode) avg/p99.9/max us $lat (EEVDF $eevdf_lat)"
      case "$lat $eevdf_lat" in *'?'*) grep "^#" /tmp/cyclictest.log; fail "$cfg: cyclictest printed no latency" ;; esac
      [ "$LATENCY" = report ] && continue
      miss=$(lat_miss "$lat" "$eevdf_lat") || continue
      # One run's 99.9th percentile is the tenth-odd worst of some 10 000
      # wakeups in the emulator, where a stall of the host delays every
      # thread at once: EEVDF's own pinned and free figures of one boot
      # were 64 and 44 ms (CI, 2026-11-30), its mean 4.2 and 5.8 ms in two
      # boots. So a miss is not yet a verdict: one more run each, EEVDF
      # and then ours back to back, and the verdict is on both runs of
      # each taken together (bench/measure.sh, latency_of).
      echo "$cfg: latency ($mode) $miss; a second run of EEVDF and of $cfg, judged together with the first"
      stop_sched
      latency "$LAT_SECS" $mode
      cp /tmp/cyclictest.log "/tmp/lat-eevdf-$mode-2.log"
      echo "EEVDF: latency ($mode), run 2: avg/p99.9/max us $lat"
      # shellcheck disable=SC2086
      start_sched $cfg
      latency "$LAT_SECS" $mode
      echo "$cfg: latency ($mode), run 2: avg/p99.9/max us $lat"
      lat=$(latency_of "/tmp/lat-ours-$mode.log" /tmp/cyclictest.log)
      eevdf_lat=$(latency_of "/tmp/lat-eevdf-$mode.log" "/tmp/lat-eevdf-$mode-2.log")
      echo "$cfg: latency ($mode), both runs: avg/p99.9/max us $lat (EEVDF $eevdf_lat)"
      if miss=$(lat_miss "$lat" "$eevdf_lat"); then fail "$cfg: latency ($mode) $miss over two runs"; fi
    done
    if [ "$WIDEN" != off ]; then
      widen=$(python3 "$measure_dir/widen.py")
      echo "$cfg: pinned 10 s, then widened: $widen"
      ratio=$(field "$widen" ratio)
      [ "$WIDEN" = report ] || { ge "$ratio" 0.5 && ge 2 "$ratio"; } || fail "$cfg: the widened task got $ratio of the others' mean share"
    fi
  fi
  attached_or_fail
  stop_sched
  no_sched_ext_errors
done
echo "PASS quality $*"
