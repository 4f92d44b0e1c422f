#!/bin/bash
# Inside the VM: wakeup latency (bench/measure.sh `latency`) under EEVDF,
# then under each argument (scx-userland flags, optionally " #N"). One line
# per item is appended to $OUT/results (see bench/lib.sh):
#   boot item avg_us p999_us max_us status
set -u
source "$(dirname "$0")/guest.sh"
source "$(dirname "$0")/measure.sh"

latency "$SECS"
echo "boot $BOOT, EEVDF: avg/p99.9/max us $lat" >&2
echo "$BOOT	EEVDF	${lat// /	}	-" >> "$OUT/results"
for item in "$@"; do
  # shellcheck disable=SC2086
  attach /tmp/bench-sched.log --stats-interval 0 ${item% #*}
  latency "$SECS"
  detach
  echo "boot $BOOT, $item: avg/p99.9/max us $lat" >&2
  echo "$BOOT	$item	${lat// /	}	$sched_status" >> "$OUT/results"
  sync
done
