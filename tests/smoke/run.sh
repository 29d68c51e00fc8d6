#!/usr/bin/env bash
# Starts the frontend (the debug build that `cargo test --workspace` leaves behind; built here
# if absent) in embedded mode (in-process mocker workers) on a free port, runs the openai-SDK
# smoke script against it, and stops it. Needs `pip install openai`.
# Usage: tests/smoke/run.sh [extra frontend flags...]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"
# `cargo test --workspace` (run just before in CI) already built the debug frontend; building it
# again with `-p frontend` alone would recompile dependencies under other feature sets.
[ -x "$target/debug/frontend" ] || cargo build -p frontend
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
log="$(mktemp)"
"$target/debug/frontend" --http-host 127.0.0.1 --http-port "$port" \
    --mocker-workers 2 --speedup-ratio 100 "$@" >"$log" 2>&1 &
pid=$!
cleanup() {
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -f "$log"
}
trap cleanup EXIT
for _ in $(seq 1 300); do
    if curl -fsS "http://127.0.0.1:$port/v1/models" 2>/dev/null | grep -q '"id"'; then
        break
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
        cat "$log"
        echo "frontend exited before serving" >&2
        exit 1
    fi
    sleep 0.2
done
python3 "$root/tests/smoke/openai_smoke.py" "http://127.0.0.1:$port/v1"
