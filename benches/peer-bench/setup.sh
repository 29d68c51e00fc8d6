#!/usr/bin/env bash
# Build peer-bench (Dynamo 1.6.1's indexers from crates.io) with Stator's `ours` adapter, in a
# scratch copy, and generate the two corpora of its standard run (engine block sizes 16 and
# 128). Nothing is written into the shared peer-bench folder or into this checkout.
#
#   benches/peer-bench/setup.sh [PEER_BENCH_DIR]   # default ../shared/peer-bench
#
# Environment: WORK (scratch copy, default /tmp/stator-peer-bench), CARGO_TARGET_DIR (default
# $WORK-target). Prints the paths of the binary and the corpora.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SRC=$(cd "${1:-$ROOT/../shared/peer-bench}" && pwd)
WORK=${WORK:-/tmp/stator-peer-bench}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$WORK-target}

# Only ever delete a folder this script made (it leaves a marker file in it).
if [ -e "$WORK" ] && [ ! -e "$WORK/.stator-peer-bench" ]; then
  echo "$WORK exists and is not a scratch copy made by this script; set WORK elsewhere" >&2
  exit 1
fi
rm -rf "$WORK"
mkdir -p "$WORK"
touch "$WORK/.stator-peer-bench"
(cd "$SRC" && tar --exclude=./target --exclude=./corpus --exclude=./results -cf - .) | tar -xf - -C "$WORK"
cp "$HERE/ours.rs" "$WORK/src/adapters/ours.rs"

python3 - "$WORK" "$ROOT" <<'PY'
import pathlib, re, sys
work, root = pathlib.Path(sys.argv[1]), sys.argv[2]
cargo = work / "Cargo.toml"
text = cargo.read_text()
text = re.sub(r"(?m)^\[features\]\n", '[features]\nours = ["dep:stator-kv-router", "dep:stator-tokens"]\n', text, count=1)
text = re.sub(
    r"(?m)^\[dependencies\]\n",
    "[dependencies]\n"
    f'stator-kv-router = {{ path = "{root}/lib/kv-router", optional = true }}\n'
    f'stator-tokens = {{ path = "{root}/lib/tokens", optional = true }}\n',
    text,
    count=1,
)
cargo.write_text(text)
adapters = work / "src/adapters/mod.rs"
text = adapters.read_text()
text = text.replace("pub mod upstream;", '#[cfg(feature = "ours")]\npub mod ours;\npub mod upstream;', 1)
arms = "".join(
    f'        #[cfg(feature = "ours")]\n        "{name}" => {call},\n'
    for name, call in [
        ("ours", "v.visit_sync(&move || ours::Ours::pool(c.event_threads, 64))"),
        ("ours-flash", "v.visit(&|| ours::Ours::flash(64))"),
        ("ours-radix", "v.visit(&ours::Ours::radix)"),
    ]
)
anchor = '        "crtc" =>'
assert anchor in text, "peer-bench's adapter registry changed: register `ours` by hand"
text = text.replace(anchor, arms + anchor, 1)
adapters.write_text(text)
PY

(cd "$WORK" && cargo build --release --features mocker,ours --bin peer-bench --bin gen-corpus 2>&1 | tail -1)
mkdir -p "$WORK/corpus"
# The two corpora of peer-bench's standard run: engine block size 16 (long sequences) and 128
# (upstream mooncake_bench's default).
for BS in 16 128; do
  "$CARGO_TARGET_DIR/release/gen-corpus" --trace "$ROOT/lib/kv-router/benches/data/mooncake_fast25_conversation_trace.jsonl" \
      --out "$WORK/corpus/conv_b${BS}_w32.pbc" --workers 32 --block-size "$BS" >/dev/null
done
echo "peer-bench: $CARGO_TARGET_DIR/release/peer-bench"
echo "corpora:    $WORK/corpus/conv_b16_w32.pbc $WORK/corpus/conv_b128_w32.pbc"
