#!/usr/bin/env bash
# bench/peers/run.sh - issue 12.4, "Peers side by side" in BENCHMARKS.md:
# builds h2ws and bench/peers/echo_backend.c (RelWithDebInfo,
# build-bench-peers/) and runs bench/load/run.py --only peers: `h2ws load`
# against h2ws serve, nghttpx and HAProxy in front of echo_backend (a C
# epoll HTTP/1.1 echo), Node 20's http2 (enableConnectProtocol,
# terminating) and echo_backend alone over cleartext HTTP/1.1 (the
# ceiling); TLS 1.3 + h2, one connection, 127.0.0.1 only, servers pinned to
# CPU 0 and the load generator to CPU 1.  Three scenarios x ROUNDS x
# DURATION per server (defaults 3 x 3 s), then each server's RSS with 1,000
# idle WebSockets: about 3 minutes; bounded by
# timeout(1); every process it starts is killed at the end.  Markdown on
# stdout, progress on stderr, raw JSON lines in bench/peers/results.jsonl.
# Usage: bench/peers/run.sh [--rounds N] [--duration S]
#        [--peers nghttpx,haproxy,node,bare]
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${H2WS_BUILD:-$ROOT/build-bench-peers}
if [ -z "${H2WS_BIN:-}" ]; then
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$BUILD" -j2 --target h2ws echo_backend >/dev/null
  H2WS_BIN=$BUILD/h2ws
fi
ECHO=${H2WS_ECHO_BACKEND:-$(dirname "$H2WS_BIN")/echo_backend}
exec timeout 900 /usr/bin/python3 "$ROOT/bench/load/run.py" "$H2WS_BIN" --only peers \
  --echo-backend "$ECHO" --out "${H2WS_BENCH_OUT:-$ROOT/bench/peers/results.jsonl}" "$@"
