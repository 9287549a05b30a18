#!/usr/bin/env bash
# tests/interop/test_load.sh - smoke test of `h2ws load` against
# `h2ws serve` (both real processes, 127.0.0.1 only, < 20 s): h2c, TLS h2
# and HTTP/1.1 runs in closed loop, fixed rate and count modes; every run
# must open every WebSocket, count received == sent, report zero errors
# and exit 0; a refused path and a dead port must exit non-zero.
# Usage: test_load.sh PATH/TO/h2ws
set -u
H2WS=${1:?usage: $0 PATH/TO/h2ws}
H2WS=$(cd "$(dirname "$H2WS")" && pwd)/$(basename "$H2WS")
TMP=$(mktemp -d)
PIDS=()
passed=0
failed=0

cleanup() {
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT

ok() { passed=$((passed + 1)); echo "ok   $1"; }
bad() { failed=$((failed + 1)); echo "FAIL $1${2:+: $2}"; }

# start_server NAME ARGS... : sets PORT (and SPID) from the listening line.
start_server() {
  local name=$1
  shift
  "$H2WS" serve --listen 127.0.0.1:0 "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" &
  SPID=$!
  PIDS+=("$SPID")
  PORT=
  for _ in $(seq 1 100); do
    PORT=$(sed -n 's/^h2ws: listening on [a-z]*:\/\/127\.0\.0\.1:\([0-9]*\)\/ .*/\1/p' "$TMP/$name.out" 2>/dev/null)
    [ -n "$PORT" ] && break
    sleep 0.05
  done
  [ -n "$PORT" ] || bad "server $name started" "$(cat "$TMP/$name.err")"
}

# json_field FILE NAME : a number from the --json line (flat keys only).
json_field() {
  sed -n "s/.*\"$2\":\([0-9.]*\).*/\1/p" "$1"
}

# load_case NAME EXPECT_MSGS ARGS... : runs `h2ws load ARGS --json` and
# checks exit 0, all WebSockets opened, received == sent (== EXPECT_MSGS
# unless "-"), no error of any kind, latency samples == received.
load_case() {
  local name=$1 expect=$2
  shift 2
  timeout 15 "$H2WS" load "$@" --json >"$TMP/l.out" 2>"$TMP/l.err"
  local rc=$?
  local f="$TMP/l.out"
  local req opened sent recv lost samples errs
  req=$(json_field "$f" ws_requested)
  opened=$(json_field "$f" ws_opened)
  sent=$(json_field "$f" messages_sent)
  recv=$(json_field "$f" messages_received)
  lost=$(json_field "$f" messages_lost)
  samples=$(json_field "$f" samples)
  errs=$(sed -n 's/.*"errors":{\([^}]*\)}.*/\1/p' "$f" | tr ',' '\n' | grep -cv ':0$')
  local detail="rc=$rc $(cat "$f") $(tail -c 400 "$TMP/l.err")"
  [ "$rc" = 0 ] && ok "$name: exit 0" || bad "$name: exit 0" "$detail"
  [ -n "$req" ] && [ "$opened" = "$req" ] && ok "$name: all $req WebSockets opened" \
    || bad "$name: all WebSockets opened" "$detail"
  if [ -n "$sent" ] && [ "$sent" = "$recv" ] && [ "$lost" = 0 ] && [ "$sent" -gt 0 ] \
    && { [ "$expect" = - ] || [ "$sent" = "$expect" ]; }; then
    ok "$name: messages counted == sent ($recv)"
  else
    bad "$name: messages counted == sent" "$detail"
  fi
  [ "$errs" = 0 ] && ok "$name: zero errors" || bad "$name: zero errors" "$detail"
  [ -n "$samples" ] && [ "$samples" = "$recv" ] && ok "$name: one latency sample per echo" \
    || bad "$name: one latency sample per echo" "$detail"
}

start_server h2c --cleartext
if [ -n "$PORT" ]; then
  U=ws://127.0.0.1:$PORT/echo
  load_case "h2c 1x1 count" 500 "$U" --messages 500
  load_case "h2c 2x10 inflight 4 binary" 4000 "$U" --connections 2 --streams-per-conn 10 \
    --inflight 4 --binary --messages 200
  load_case "h2c 1x5 duration" - "$U" --streams-per-conn 5 --duration 1
  load_case "h2c 1x4 rate 200/s" 800 "$U" --streams-per-conn 4 --rate 200 --messages 200
  load_case "h2c 1x2 1 MiB" 20 "$U" --streams-per-conn 2 --size 1048576 --binary --messages 10
  load_case "h1 3x2 count" 600 "$U" --h1 --connections 3 --streams-per-conn 2 --messages 100
  # a refused path: every WebSocket fails, exit 3 (handshake)
  timeout 15 "$H2WS" load ws://127.0.0.1:$PORT/nope --messages 1 >"$TMP/r.out" 2>"$TMP/r.err"
  rc=$?
  [ "$rc" != 0 ] && grep -q 'handshake=1' "$TMP/r.out" && ok "refused path: exit $rc, handshake error counted" \
    || bad "refused path: non-zero exit" "rc=$rc $(cat "$TMP/r.out" "$TMP/r.err")"
  kill -TERM "$SPID" 2>/dev/null
fi

start_server tls
if [ -n "$PORT" ]; then
  load_case "h2 TLS 1x10 count" 1000 wss://127.0.0.1:$PORT/echo --insecure \
    --streams-per-conn 10 --messages 100
  kill -TERM "$SPID" 2>/dev/null
fi

# nothing listens: connect failure, exit 2
DEAD=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
timeout 15 "$H2WS" load ws://127.0.0.1:$DEAD/echo --messages 1 >"$TMP/d.out" 2>"$TMP/d.err"
rc=$?
[ "$rc" = 2 ] && ok "dead port: exit 2" || bad "dead port: exit 2" "rc=$rc $(cat "$TMP/d.err")"
# other hosts are refused (usage); a literal, so that no DNS lookup is
# involved (names are resolved and must give loopback addresses only)
timeout 5 "$H2WS" load ws://192.0.2.1/echo --messages 1 >/dev/null 2>&1
rc=$?
[ "$rc" = 1 ] && ok "non-loopback URL refused: exit 1" || bad "non-loopback URL refused" "rc=$rc"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
