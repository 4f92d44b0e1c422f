#!/bin/bash
# Issue 3 on a multi-domain VM topology.
# Usage: domains.sh SPEC:COUNT...   e.g. domains.sh llc:2 numa:1
# For each spec: the plan seen live equals the plan from lstopo's XML and has
# COUNT domains; attached with it, stress-ng and hackbench run, every domain
# dispatches, each worker is pinned to exactly its domain's CPUs, a task
# moved between two LLCs is counted as starting in another LLC (`xllc`) at
# each move, and the scheduler detaches cleanly.
. "$(dirname "$0")/lib.sh"

lstopo-no-graphics --of xml > /tmp/topo.xml || fail "lstopo failed"
# The first CPU of the first two LLCs (these topologies have at least two;
# numa-llc has four, whose other first CPUs `_` takes: without it, cpu_b
# was "2 4 6", every taskset below failed, and the check passed on other
# tasks' cross-LLC starts alone).
read -r cpu_a cpu_b _ < <("$SCHED" --show-domains --domains llc |
  awk '/^domain/ { split($4, c, /[-,]/); printf "%s ", c[1] } END { print "" }')
[ -n "$cpu_b" ] || fail "fewer than two LLCs: $("$SCHED" --show-domains --domains llc)"
for arg in "$@"; do
  spec=${arg%%:*}; want=${arg##*:}
  live=$("$SCHED" --show-domains --domains "$spec") || fail "--show-domains --domains $spec failed"
  xml=$("$SCHED" --show-domains --domains "$spec" --topology-xml /tmp/topo.xml) || fail "--topology-xml failed"
  echo "--domains $spec:"; echo "$live"
  [ "$live" = "$xml" ] || fail "live plan differs from lstopo's: $xml"
  [ "$(echo "$live" | grep -c '^domain')" = "$want" ] || fail "expected $want domains for $spec"

  start_sched --domains "$spec"
  run_stress "cpu 8 x 5s" --cpu 8 -t 5
  run_stress "switch 4 x 3s" --switch 4 -t 3
  t0=$SECONDS
  hackbench -g 2 -l 50 > /dev/null 2>&1 || fail "hackbench failed"
  echo "hackbench -g 2 -l 50: ok in $((SECONDS - t0)) s"
  wait_stats
  # 10 round trips of a spinner between CPU $cpu_a and CPU $cpu_b: 20 starts
  # in the other LLC, whatever the domains (other tasks add their own).
  before=$(last_stat llc_migrations)
  taskset -c "$cpu_a" sh -c 'while :; do :; done' &
  spin=$!
  for _ in $(seq 1 10); do
    taskset -pc "$cpu_b" "$spin" > /dev/null || fail "taskset -pc $cpu_b failed"; sleep 0.1
    taskset -pc "$cpu_a" "$spin" > /dev/null || fail "taskset -pc $cpu_a failed"; sleep 0.1
  done
  kill "$spin"; wait "$spin" 2> /dev/null
  wait_stats; wait_stats
  after=$(last_stat llc_migrations)
  echo "cross-LLC starts: $before before the spinner's 20 moves, $after after ($((SECONDS - t0)) s since hackbench started)"
  [ $((after - before)) -ge 20 ] || fail "20 moves between CPUs $cpu_a and $cpu_b counted $((after - before)) cross-LLC starts"
  # The text form a user watches: a row per domain under a header.
  timeout --preserve-status -s INT 2.5 "$SCHED" --monitor 1 > /tmp/mon.txt 2>&1 || fail "--monitor failed: $(cat /tmp/mon.txt)"
  sed -n '/^bpf enqueues/,$p' /tmp/mon.txt | head -n $((want + 3))
  rows=$(grep -cE '^ +[0-9]+ +[0-9]' /tmp/mon.txt); samples=$(grep -c '^bpf enqueues' /tmp/mon.txt)
  per=$want; [ "$want" -gt 1 ] || per=0  # one domain: no table
  [ "$samples" -ge 1 ] && [ "$rows" = $((samples * per)) ] || fail "--monitor: $samples samples, $rows domain rows, want $per each"
  echo "$live" | while read -r _ id _ cpus _; do
    d=$(dom_stat "$id" dispatches)
    echo "domain $id (cpus $cpus): dispatches=$d"
    [ "${d:-0}" -gt 0 ] || fail "domain $id dispatched nothing"
    tid=$(grep -l "^sul-worker-$id\$" /proc/"$SCHED_PID"/task/*/comm | head -n 1 | cut -d/ -f5)
    [ -n "$tid" ] || fail "no worker thread for domain $id"
    allowed=$(awk '/Cpus_allowed_list/ {print $2}' /proc/"$SCHED_PID"/task/"$tid"/status)
    echo "worker $tid of domain $id: Cpus_allowed_list $allowed"
    [ "$allowed" = "$cpus" ] || fail "worker of domain $id may run on $allowed, not $cpus"
  done || exit 1
  stop_sched
done
no_sched_ext_errors
echo "PASS domains $*"
