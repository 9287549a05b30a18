#!/usr/bin/env bash
# tests/interop/test_examples.sh - the programs in examples/ work as
# documented: example_echo_server (cleartext and TLS) against
# example_client (HTTP/1.1, h2c, wss) and against `h2ws client`;
# example_client against `h2ws serve --cleartext`; example_engine_pump.
# Usage: test_examples.sh PATH/TO/h2ws   (examples sit next to it)
set -u
H2WS=${1:?usage: $0 PATH/TO/h2ws}
BIN=$(cd "$(dirname "$H2WS")" && pwd)
H2WS=$BIN/$(basename "$H2WS")
EX_SERVER=$BIN/example_echo_server
EX_CLIENT=$BIN/example_client
EX_PUMP=$BIN/example_engine_pump
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

# wait_port NAME SED_EXPR: waits for the listening line in $TMP/NAME.out and
# sets PORT (empty on timeout).
wait_port() {
  PORT=
  for _ in $(seq 1 100); do
    PORT=$(sed -n "$2" "$TMP/$1.out" 2>/dev/null)
    [ -n "$PORT" ] && return 0
    sleep 0.05
  done
  return 1
}

# start_example NAME ARGS...: example_echo_server ARGS 0 in the background.
start_example() {
  local name=$1
  shift
  "$EX_SERVER" "$@" 0 >"$TMP/$name.out" 2>"$TMP/$name.err" &
  SPID=$!
  PIDS+=("$SPID")
  wait_port "$name" 's/^listening on \([0-9][0-9]*\)$/\1/p' ||
    { bad "start $name" "$(head -c 300 "$TMP/$name.err")"; return 1; }
}

# start_h2ws NAME ARGS...: `h2ws serve --listen 127.0.0.1:0 ARGS`.
start_h2ws() {
  local name=$1
  shift
  "$H2WS" serve --listen 127.0.0.1:0 "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" &
  SPID=$!
  PIDS+=("$SPID")
  wait_port "$name" 's/^h2ws: listening on [a-z]*:\/\/127\.0\.0\.1:\([0-9]*\)\/ .*/\1/p' ||
    { bad "start $name" "$(head -c 300 "$TMP/$name.err")"; return 1; }
}

MSGS=("hello" "websocket over http/2" "été ☃" "last")
printf '%s\n' "${MSGS[@]}" >"$TMP/expect"

# ex_client CASE EXPECT_TRANSPORT ARGS...: example_client ARGS MSGS must
# exit 0, print the messages back in order and report the transport.
ex_client() {
  local name=$1 transport=$2
  shift 2
  timeout 20 "$EX_CLIENT" "$@" "${MSGS[@]}" >"$TMP/$name.cout" 2>"$TMP/$name.cerr"
  local rc=$?
  if [ "$rc" -ne 0 ]; then
    bad "$name" "exit $rc: $(head -c 300 "$TMP/$name.cerr")"
  elif ! cmp -s "$TMP/expect" "$TMP/$name.cout"; then
    bad "$name" "echo differs: $(head -c 300 "$TMP/$name.cout")"
  elif ! grep -qF "open ($transport)" "$TMP/$name.cerr" ||
       ! grep -q '^closed: 1000' "$TMP/$name.cerr"; then
    bad "$name" "stderr: $(head -c 300 "$TMP/$name.cerr")"
  else
    ok "$name"
  fi
}

# h2ws_client CASE URL ARGS...: `h2ws client` with the messages on stdin.
h2ws_client() {
  local name=$1 url=$2
  shift 2
  timeout 20 "$H2WS" client "$url" "$@" <"$TMP/expect" >"$TMP/$name.cout" 2>"$TMP/$name.cerr"
  local rc=$?
  if [ "$rc" -ne 0 ]; then
    bad "$name" "exit $rc: $(head -c 300 "$TMP/$name.cerr")"
  elif ! cmp -s "$TMP/expect" "$TMP/$name.cout"; then
    bad "$name" "echo differs: $(head -c 300 "$TMP/$name.cout")"
  else
    ok "$name"
  fi
}

# stop NAME PID: SIGTERM (graceful shutdown) must end the server with 0.
stop() {
  kill -TERM "$2" 2>/dev/null
  local rc=124
  for _ in $(seq 1 100); do
    if ! kill -0 "$2" 2>/dev/null; then wait "$2"; rc=$?; break; fi
    sleep 0.05
  done
  if [ "$rc" -eq 0 ]; then ok "$1-sigterm-exit-0"; else bad "$1-sigterm-exit-0" "rc $rc"; fi
}

# ---- the engine alone -------------------------------------------------------
out=$(timeout 10 "$EX_PUMP" "pumped message" 2>&1)
rc=$?
if [ "$rc" -eq 0 ] && grep -qx 'client got text: pumped message' <<<"$out" &&
   grep -q 'recv paused after' <<<"$out" &&
   grep -qx 'server: on_close 1000 "done"' <<<"$out" &&
   grep -qx 'done: client 1, server 1' <<<"$out"; then
  ok "engine-pump"
else
  bad "engine-pump" "rc $rc: $out"
fi

# ---- example server, cleartext ----------------------------------------------
if start_example ex-clear; then
  P=$PORT
  ex_client "ex-client-h1" "HTTP/1.1" "ws://127.0.0.1:$P/echo"
  ex_client "ex-client-h2c" "HTTP/2" --h2 "ws://127.0.0.1:$P/echo"
  h2ws_client "h2ws-client-h1-to-ex" "ws://127.0.0.1:$P/echo" --h1
  h2ws_client "h2ws-client-h2c-to-ex" "ws://127.0.0.1:$P/echo" --h2 -v
  if grep -qF "connected via h2" "$TMP/h2ws-client-h2c-to-ex.cerr"; then
    ok "h2ws-client-h2c-to-ex-transport"
  else
    bad "h2ws-client-h2c-to-ex-transport" "$(head -c 300 "$TMP/h2ws-client-h2c-to-ex.cerr")"
  fi
  # GET / answers the text page (HTTP/1.1, plain bash: no curl needed).
  page=$(exec 3<>"/dev/tcp/127.0.0.1/$P" &&
         printf 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >&3 &&
         timeout 5 cat <&3)
  if grep -q '^HTTP/1.1 200' <<<"$page" && grep -q 'WebSocket at /echo' <<<"$page"; then
    ok "ex-get-page"
  else
    bad "ex-get-page" "$(head -c 300 <<<"$page")"
  fi
  # A route that does not exist: refused, exit 1.
  timeout 20 "$EX_CLIENT" "ws://127.0.0.1:$P/nope" x >/dev/null 2>"$TMP/refused.cerr"
  rc=$?
  if [ "$rc" -eq 1 ] && grep -q 'HTTP 404' "$TMP/refused.cerr"; then
    ok "ex-client-refused-404"
  else
    bad "ex-client-refused-404" "rc $rc: $(head -c 300 "$TMP/refused.cerr")"
  fi
  stop ex-clear "$SPID"
fi

# ---- example server, TLS ----------------------------------------------------
if start_example ex-tls --tls; then
  P=$PORT
  ex_client "ex-client-wss-h2" "HTTP/2" --insecure "wss://127.0.0.1:$P/echo"
  h2ws_client "h2ws-client-wss-to-ex" "wss://127.0.0.1:$P/echo" --insecure
  # Certificate verification stays on by default: exit 1, say why.
  timeout 20 "$EX_CLIENT" "wss://127.0.0.1:$P/echo" x >/dev/null 2>"$TMP/verify.cerr"
  rc=$?
  if [ "$rc" -eq 1 ] && grep -q 'certificate verif' "$TMP/verify.cerr"; then
    ok "ex-client-tls-verify"
  else
    bad "ex-client-tls-verify" "rc $rc: $(head -c 300 "$TMP/verify.cerr")"
  fi
  stop ex-tls "$SPID"
fi

# ---- example client against h2ws serve --------------------------------------
if start_h2ws serve-clear --cleartext; then
  ex_client "ex-client-h1-to-serve" "HTTP/1.1" "ws://127.0.0.1:$PORT/echo"
  ex_client "ex-client-h2c-to-serve" "HTTP/2" --h2 "ws://127.0.0.1:$PORT/echo"
  stop serve-clear "$SPID"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
