#!/usr/bin/env bash
# bench/load/run.sh - builds h2ws (RelWithDebInfo, build-bench-load/) and runs
# the load scenarios of BENCHMARKS.md ("Load: h2ws serve vs peers", "Memory
# per WebSocket"): bench/load/run.py against h2ws serve, nghttpx, HAProxy
# and Hypercorn on 127.0.0.1, servers pinned to CPU 0 and the load
# generator to CPU 1.  Markdown tables on stdout, progress on stderr, raw
# JSON lines in bench/load/results.jsonl.  Bounded (about 20 minutes at the
# defaults); every process it starts is killed at the end.
# Usage: bench/load/run.sh [run.py options: --only compare|fixedrate|large|memory|peers,
#        --rounds N, --duration S, --quick, --peers nghttpx,haproxy,hypercorn]
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${H2WS_BUILD:-$ROOT/build-bench-load}
if [ -z "${H2WS_BIN:-}" ]; then
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$BUILD" -j2 --target h2ws >/dev/null
  H2WS_BIN=$BUILD/h2ws
fi
# the memory scenario holds up to 100000 WebSockets (1000 connections)
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec timeout 3600 /usr/bin/python3 "$ROOT/bench/load/run.py" "$H2WS_BIN" \
  --out "${H2WS_BENCH_OUT:-$ROOT/bench/load/results.jsonl}" "$@"
