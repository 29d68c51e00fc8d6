#!/usr/bin/env bash
# peer-bench's standard run (the configuration of shared/peer-bench/run.sh: every upstream
# indexer, then ours, one event thread, both corpora), pinned to two CPUs, ROUNDS times; then,
# per corpus and phase, the median of ours, of upstream's best indexer in the same run, and of
# the per-run ratio.
#
#   benches/peer-bench/standard.sh PEER_BENCH CORPUS_DIR [ROUNDS=3]
#
# CORPUS_DIR holds conv_b16_w32.pbc and conv_b128_w32.pbc (setup.sh makes both). Logs go to
# $OUT (default a fresh temporary folder), one per run. A round takes about two minutes, most
# of it upstream's positional indexer.
set -euo pipefail
BIN=$1 DIR=$2 ROUNDS=${3:-3}
OUT=${OUT:-$(mktemp -d)}
INDEXERS=positional,crtc,radix,ours
for round in $(seq 1 "$ROUNDS"); do
  taskset -c 0,1 "$BIN" --corpus "$DIR/conv_b16_w32.pbc" --indexers "$INDEXERS" \
      --phases events,consistent,mixed,timed,deep --windows-ms 8000,2000,1000 \
      --event-threads 1 --jump-size 8 >"$OUT/b16-$round.log" 2>&1
  taskset -c 0,1 "$BIN" --corpus "$DIR/conv_b128_w32.pbc" --indexers "$INDEXERS" \
      --phases events,consistent,mixed,deep --event-threads 1 --jump-size 8 \
      >"$OUT/b128-$round.log" 2>&1
done
echo "logs: $OUT"
python3 - "$OUT" <<'PY'
import collections, pathlib, re, statistics, sys

figures = collections.defaultdict(list)  # (corpus, phase) -> [(ours, best upstream, its name)]
for log in sorted(pathlib.Path(sys.argv[1]).glob("*.log")):
    corpus = log.name.split("-")[0]
    name, runs = None, collections.defaultdict(dict)
    for line in log.read_text().splitlines():
        if line.startswith("== "):
            name = line.split()[1]
        m = re.match(r"  (events|mixed|consistent)\s*:.* ([0-9.]+)([MK]?) (?:event-)?block-ops/s", line)
        if m and name:
            scale = {"M": 1.0, "K": 1e-3, "": 1e-6}[m.group(3)]
            runs[m.group(1)][name] = float(m.group(2)) * scale  # M block-ops/s
    for phase, by_name in runs.items():
        ours = [v for n, v in by_name.items() if n.startswith("stator")]
        peers = {n: v for n, v in by_name.items() if not n.startswith("stator")}
        if ours and peers:
            best = max(peers, key=peers.get)
            figures[(corpus, phase)].append((ours[0], peers[best], best.split("(")[0]))

print("| corpus | phase | runs | ours (median) | upstream's best (median, which) | ratio (median, range) |")
print("|---|---|---|---|---|---|")
for (corpus, phase), rows in sorted(figures.items()):
    ratios = [o / p for o, p, _ in rows]
    names = sorted({n for _, _, n in rows})
    print(f"| {corpus} | {phase} | {len(rows)} | {statistics.median(o for o, _, _ in rows):.2f} "
          f"| {statistics.median(p for _, p, _ in rows):.2f} ({', '.join(names)}) "
          f"| {statistics.median(ratios):.2f} ({min(ratios):.2f}–{max(ratios):.2f}) |")
PY
