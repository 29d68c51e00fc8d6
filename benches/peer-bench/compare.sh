#!/usr/bin/env bash
# Side-by-side runs of Stator's thread-pool flash indexer (`ours`) and Dynamo 1.6.1's best
# indexer here (`crtc`), in the same process (or back to back, see FRESH), pinned to two CPUs;
# ROUNDS rounds per event-thread count, alternating, then the median of each figure and of the
# same-run ratios.
#
#   benches/peer-bench/compare.sh PEER_BENCH CORPUS [ROUNDS=6] [EVENT_THREADS="1 2"]
#
# Shared hosts swing by a third within an hour, so a single run proves little: compare medians
# of same-run ratios, never figures from different runs. ORDER=crtc,ours runs Dynamo's indexer
# first: the indexer that runs second finds the process heap already grown (no page faults,
# warm free lists), which has been worth a tenth to one or the other, so report both orders.
# FRESH=1 runs each indexer in a process of its own instead (one right after the other, in
# ORDER), so that neither inherits the other's heap.
set -euo pipefail
BIN=$1 CORPUS=$2 ROUNDS=${3:-6} THREADS=${4:-"1 2"} ORDER=${ORDER:-ours,crtc} FRESH=${FRESH:-0}
run() {
  taskset -c 0,1 "$BIN" --corpus "$CORPUS" --indexers "$1" --phases events,mixed \
      --event-threads "$2" --jump-size 8 2>&1
}
for round in $(seq 1 "$ROUNDS"); do
  for t in $THREADS; do
    if [ "$FRESH" = 1 ]; then
      for name in ${ORDER//,/ }; do run "$name" "$t"; done
    else
      run "$ORDER" "$t"
    fi |
      awk -v t="$t" -v r="$round" '
        /^== / { name = $2 }
        /^  events/ { events[name] = $(NF - 1) + 0 }
        /^  mixed/ { mixed[name] = $(NF - 1) + 0 }
        END {
          for (n in events) if (n ~ /stator/) ours = n; else peer = n
          printf "%s %s %.2f %.2f %.2f %.2f\n", t, r, events[ours], events[peer], mixed[ours], mixed[peer]
        }'
  done
done | python3 -c '
import collections, statistics, sys
rows = collections.defaultdict(list)
print("| event threads | round | events: ours / crtc | ratio | mixed: ours / crtc | ratio |")
print("|---|---|---|---|---|---|")
for line in sys.stdin:
    t, r, eo, ep, mo, mp = line.split()
    eo, ep, mo, mp = map(float, (eo, ep, mo, mp))
    rows[t].append((eo, ep, eo / ep, mo, mp, mo / mp))
    print(f"| {t} | {r} | {eo:.1f} / {ep:.1f} | {eo / ep:.2f} | {mo:.1f} / {mp:.1f} | {mo / mp:.2f} |")
print()
print("| event threads | runs | events: ours / crtc (median) | ratio (median) | mixed: ours / crtc (median) | ratio (median) |")
print("|---|---|---|---|---|---|")
for t, v in rows.items():
    m = [statistics.median(c) for c in zip(*v)]
    print(f"| {t} | {len(v)} | {m[0]:.1f} / {m[1]:.1f} | {m[2]:.2f} | {m[3]:.1f} / {m[4]:.1f} | {m[5]:.2f} |")
'
