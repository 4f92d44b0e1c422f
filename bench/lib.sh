# Host side of the VM benchmarks; sourced by bench/vm-bench, bench/vm-imbalance,
# bench/vm-fairness and bench/vm-latency.
#
# A benchmark is a script that runs inside the VM and measures "items" (EEVDF,
# then scheduler configurations). For each item it finishes, it appends one
# tab-separated line to $OUT/results:
#
#     boot  item  figure...  status
#
# EEVDF is measured first in every boot, so a ratio always divides two figures
# from the same boot of the same emulated machine.
#
# Why boots: the emulated VM sometimes dies, and vm/run then exits 125
# without the command's status. Seen on numa-llc (8 emulated CPUs on 2 host
# cores) far more than on flat, in two ways:
# - the guest console (vng --verbose) shows "Oops: int3" in sched_tick or
#   __schedule a few milliseconds after "BPF scheduler enabled". Enabling
#   sched_ext flips static keys, which the kernel patches in place through
#   an int3 breakpoint while the other CPUs run; an emulated CPU (TCG) can
#   still execute the breakpoint after the patch is complete, which hardware
#   cannot;
# - the same "Oops: int3" during boot (seen in sched_clock_cpu at 3.9 s),
#   before the command printed anything and with no scheduler loaded: the
#   kernel patches static keys at boot too.
# In a trial on numa-llc, two VMs with single-threaded TCG (-accel
# tcg,thread=single, which ../shared/vm/run does not offer) survived all 12
# attach/detach cycles; of two stock VMs, one died at boot. That is a fix for
# ../shared to consider, not for this project.
# vm_boots then boots a new VM for the items that have no line yet.

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/.." && pwd)
runner="$top/../shared/vm/run"
max_boots=4

# bench_prepare NAME: check for the VM, build (bench-report too, so that
# a build failure shows before the VM runs, not after), and make $out with
# an empty results file and its own copy of the scheduler, so that a
# rebuild during the benchmark cannot change what it measures.
bench_prepare() {
  [ -x "$runner" ] || { echo "$1: $runner not found: the benchmark needs the sched_ext VM from ../shared" >&2; exit 2; }
  (cd "$top" && cargo build --release -q && cargo build --release -q -p bench-report)
  [ -z "${report_dir:-}" ] || mkdir -p "$report_dir"
  out=$(mktemp -d /tmp/scx-bench.XXXXXX)
  : > "$out/results"
  cp "$top/target/release/scx-userland" "$out/"
  (cd "$top" && git describe --always --dirty) > "$out/version" 2>/dev/null || true
}

# vm_boots TOPO TIMEOUT SCRIPT ITEM...: run SCRIPT (with $secs seconds per
# measurement) in VMs until every ITEM has a results line, or $max_boots VMs
# were used. Fails when a VM ends with a status other than 0 or 125.
vm_boots() {
  local topo=$1 tmo=$2 script=$3
  shift 3
  local boot todo item rc
  for boot in $(seq 1 "$max_boots"); do
    todo=()
    for item in "$@"; do
      awk -F'\t' -v b="$item" '$2 == b {found = 1} END {exit !found}' "$out/results" || todo+=("$item")
    done
    [ ${#todo[@]} -eq 0 ] && return 0
    [ "$boot" -gt 1 ] && echo "bench: the VM died without a status (see bench/lib.sh); boot $boot for: ${todo[*]}" >&2
    set +e
    (cd "$top" && "$runner" --topo "$topo" --mem 4G --timeout "$tmo" --rwdir "$out" -- \
      env SCHED="$out/scx-userland" OUT="$out" BOOT="$boot" SECS="$secs" WORKLOADS="${workloads:-}" PER_CPU="${PER_CPU:-2 8}" bash "$script" "${todo[@]}")
    rc=$?
    set -e
    [ $rc -eq 0 ] || [ $rc -eq 125 ] || { echo "bench: the VM run failed (exit $rc)" >&2; return $rc; }
  done
  echo "bench: $max_boots VMs died; the table below lacks what they did not finish" >&2
}

# bench_report KIND TITLE: after the printed tables, write results.csv,
# chart.svg and summary.md for $out/results into $out (bench/report, KIND
# as in bench/vm-KIND); with --report DIR ($report_dir), copy them there
# with the raw results (results.tsv), e.g. to commit under docs/bench/.
bench_report() {
  (cd "$top" && cargo run --release -q -p bench-report -- --title "$2" "$1" "$out/results" "$out") > /dev/null ||
    { echo "bench: bench-report failed; the tables above and $out/results stand" >&2; return 1; }
  echo "report: $out/summary.md, chart.svg, results.csv"
  if [ -n "${report_dir:-}" ]; then
    mkdir -p "$report_dir"
    cp "$out/results.csv" "$out/chart.svg" "$out/summary.md" "$report_dir/"
    cp "$out/results" "$report_dir/results.tsv"
    echo "report copied to $report_dir"
  fi
}
