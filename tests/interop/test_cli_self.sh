#!/usr/bin/env bash
# tests/interop/test_cli_self.sh - `h2ws client` against `h2ws serve` as
# real processes: echo over HTTP/1.1 (cleartext and TLS), HTTP/2 over TLS
# (ALPN h2, RFC 8441) and h2c prior knowledge, with and without
# permessage-deflate; -v transport lines; refusal (exit 3); RFC 8441
# fallback and the forced-h2 failure; connect and TLS verification errors
# (exit 2); --cacert with --write-cert; graceful shutdown on SIGTERM.
# Usage: test_cli_self.sh PATH/TO/h2ws
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

# start_server NAME ARGS... : starts `h2ws serve --listen 127.0.0.1:0 ARGS`,
# waits for its "listening" line and sets PORT and SPID.
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
  if [ -z "$PORT" ]; then
    bad "server $name started" "$(cat "$TMP/$name.err")"
    return 1
  fi
}

# run_client NAME INPUTFILE ARGS... : runs the client with a time limit;
# sets RC; stdout in $TMP/NAME.cout, stderr in $TMP/NAME.cerr.
run_client() {
  local name=$1 input=$2
  shift 2
  timeout 30 "$H2WS" client "$@" <"$input" >"$TMP/$name.cout" 2>"$TMP/$name.cerr"
  RC=$?
}

# Inputs: a few lines, and a few lines plus one line of 100 KiB.
printf 'hello\nwebsocket over http/2\n\n\xc3\xa9t\xc3\xa9\nlast line\n' >"$TMP/small.in"
{
  cat "$TMP/small.in"
  head -c 76800 /dev/urandom | base64 -w 0 | head -c 102400
  printf '\nafter the big one\n'
} >"$TMP/big.in"

# Bulk: 24 lines of 1 MiB (more than the client keeps queued, so both
# directions are flow-controlled at once: a regression test for a
# deadlock where both ends stopped reading).
for _ in $(seq 1 24); do
  head -c 786432 /dev/urandom | base64 -w 0
  echo
done >"$TMP/bulk.in"

# echo_case NAME EXPECT_V INPUT URL ARGS... : the output must equal the input
# line for line, exit 0, and -v must say EXPECT_V.
echo_case() {
  local name=$1 expect=$2 input=$3 url=$4
  shift 4
  run_client "$name" "$input" "$url" -v "$@"
  if [ "$RC" -ne 0 ]; then
    bad "$name" "exit $RC: $(head -c 300 "$TMP/$name.cerr")"
  elif ! cmp -s "$input" "$TMP/$name.cout"; then
    bad "$name" "echo differs from the input"
  elif ! grep -qF "h2ws: connected via $expect" "$TMP/$name.cerr"; then
    bad "$name" "-v said: $(head -c 300 "$TMP/$name.cerr")"
  else
    ok "$name"
  fi
}

# ---- TLS server (ALPN h2 + http/1.1, generated certificate) ---------------
if start_server tls --write-cert "$TMP/cert.pem"; then
  TLSPORT=$PORT
  TLSPID=$SPID
  U="wss://127.0.0.1:$TLSPORT/echo"
  for comp in --compress --no-compress; do
    for in in small big; do
      echo_case "h2-tls$comp-$in" "h2 (TLS, ALPN h2), stream 1" \
        "$TMP/$in.in" "$U" --insecure $comp
      echo_case "h2-forced-tls$comp-$in" "h2 (TLS, ALPN h2), stream 1" \
        "$TMP/$in.in" "$U" --insecure --h2 $comp
      echo_case "h1-tls$comp-$in" "http/1.1 (TLS)" \
        "$TMP/$in.in" "$U" --insecure --h1 $comp
    done
  done

  echo_case "h2-tls-bulk" "h2 (TLS, ALPN h2), stream 1" "$TMP/bulk.in" \
    "$U" --insecure --no-compress
  echo_case "h1-tls-bulk" "http/1.1 (TLS)" "$TMP/bulk.in" \
    "$U" --insecure --h1 --no-compress

  # Certificate verification: on by default, --cacert trusts the file.
  run_client verify "$TMP/small.in" "$U"
  if [ "$RC" -eq 2 ] && grep -q "certificate verif" "$TMP/verify.cerr"; then
    ok "tls-verify-failure-exit-2"
  else
    bad "tls-verify-failure-exit-2" "exit $RC: $(cat "$TMP/verify.cerr")"
  fi
  echo_case "tls-cacert" "h2 (TLS, ALPN h2), stream 1" "$TMP/small.in" \
    "$U" --cacert "$TMP/cert.pem"

  # Refusal: no route.
  for pol in --h2 --h1; do
    run_client "refused$pol" "$TMP/small.in" "wss://127.0.0.1:$TLSPORT/nope" \
      --insecure $pol
    if [ "$RC" -eq 3 ] && grep -qx "h2ws: handshake refused: HTTP 404" \
      "$TMP/refused$pol.cerr"; then
      ok "refused-404$pol-exit-3"
    else
      bad "refused-404$pol-exit-3" "exit $RC: $(cat "$TMP/refused$pol.cerr")"
    fi
  done

  # Plain HTTP: the page over h2 and over http/1.1, 404 elsewhere.
  if command -v curl >/dev/null; then
    if curl --noproxy '*' -sk --http2 "https://127.0.0.1:$TLSPORT/" |
      grep -q "new WebSocket"; then
      ok "page-over-h2"
    else
      bad "page-over-h2"
    fi
    code=$(curl --noproxy '*' -sk --http1.1 -o /dev/null -w '%{http_code}' \
      "https://127.0.0.1:$TLSPORT/missing")
    [ "$code" = 404 ] && ok "http1-404" || bad "http1-404" "got $code"
  fi

  # A DNS name: SNI and host verification against DNS:localhost.
  echo_case "tls-cacert-localhost" "h2 (TLS, ALPN h2), stream 1" \
    "$TMP/small.in" "wss://localhost:$TLSPORT/echo" --cacert "$TMP/cert.pem"

  # Graceful shutdown: SIGTERM while clients are connected over h2 and
  # over http/1.1: both get close 1001, the server exits 0.
  HOLD=()
  for pol in auto --h1; do
    mkfifo "$TMP/hold$pol"
    args=(--insecure)
    [ "$pol" = auto ] || args+=("$pol")
    timeout 30 "$H2WS" client "$U" "${args[@]}" <"$TMP/hold$pol" \
      >"$TMP/hold$pol.cout" 2>"$TMP/hold$pol.cerr" &
    HOLD+=($!)
    PIDS+=($!)
  done
  exec 8>"$TMP/holdauto" 9>"$TMP/hold--h1"
  echo "ping" >&8
  echo "ping" >&9
  for _ in $(seq 1 100); do
    grep -q ping "$TMP/holdauto.cout" 2>/dev/null &&
      grep -q ping "$TMP/hold--h1.cout" 2>/dev/null && break
    sleep 0.05
  done
  kill -TERM "$TLSPID"
  wait "$TLSPID"
  src=$?
  for p in "${HOLD[@]}"; do wait "$p"; done
  exec 8>&- 9>&-
  for pol in auto --h1; do
    if [ "$src" -eq 0 ] && grep -q "1001" "$TMP/hold$pol.cerr"; then
      ok "sigterm-graceful-1001-$pol"
    else
      bad "sigterm-graceful-1001-$pol" "server exit $src: $(cat "$TMP/hold$pol.cerr")"
    fi
  done
fi

# ---- cleartext server: h2c prior knowledge + HTTP/1.1 on one port -----------
if start_server clear --cleartext --protocol chat --protocol other; then
  U="ws://127.0.0.1:$PORT/echo"
  for comp in --compress --no-compress; do
    for in in small big; do
      echo_case "h1-clear$comp-$in" "http/1.1 (cleartext)" "$TMP/$in.in" \
        "$U" $comp
      echo_case "h2c$comp-$in" "h2c prior knowledge, stream 1" \
        "$TMP/$in.in" "$U" --h2 $comp
    done
  done
  echo_case "h2c-bulk" "h2c prior knowledge, stream 1" "$TMP/bulk.in" \
    "$U" --h2 --no-compress
  echo_case "h1-clear-bulk" "http/1.1 (cleartext)" "$TMP/bulk.in" \
    "$U" --no-compress
  for pol in --h2 --h1; do
    run_client "proto$pol" "$TMP/small.in" "$U" -v $pol --protocol nope \
      --protocol chat
    if [ "$RC" -eq 0 ] && grep -qx "h2ws: subprotocol chat" "$TMP/proto$pol.cerr"; then
      ok "W9-subprotocol$pol"
    else
      bad "W9-subprotocol$pol" "exit $RC: $(cat "$TMP/proto$pol.cerr")"
    fi
  done
  run_client "refused-h2c" "$TMP/small.in" "ws://127.0.0.1:$PORT/nope" --h2
  if [ "$RC" -eq 3 ] && grep -qx "h2ws: handshake refused: HTTP 404" \
    "$TMP/refused-h2c.cerr"; then
    ok "refused-404-h2c-exit-3"
  else
    bad "refused-404-h2c-exit-3" "exit $RC: $(cat "$TMP/refused-h2c.cerr")"
  fi
  kill -TERM "$SPID"
  wait "$SPID" && ok "cleartext-server-exit-0" || bad "cleartext-server-exit-0"
fi

# ---- a server without RFC 8441: fallback (auto) or failure (--h2) ----------
if start_server no8441 --no-h2-websockets; then
  U="wss://127.0.0.1:$PORT/echo"
  echo_case "fallback-auto" "http/1.1 (TLS)" "$TMP/small.in" "$U" --insecure
  if grep -q "falling back to HTTP/1.1" "$TMP/fallback-auto.cerr"; then
    ok "fallback-auto-says-why"
  else
    bad "fallback-auto-says-why" "$(cat "$TMP/fallback-auto.cerr")"
  fi
  run_client forced "$TMP/small.in" "$U" --insecure --h2
  if [ "$RC" -eq 3 ] && grep -qx \
    "h2ws: server does not support WebSockets over HTTP/2 (RFC 8441)" \
    "$TMP/forced.cerr"; then
    ok "forced-h2-no-8441-exit-3"
  else
    bad "forced-h2-no-8441-exit-3" "exit $RC: $(cat "$TMP/forced.cerr")"
  fi
  kill -TERM "$SPID"
  wait "$SPID"
fi

# ---- an HTTP/1.1-only server: ALPN picks http/1.1 ---------------------------
if start_server h1only --no-h2; then
  U="wss://127.0.0.1:$PORT/echo"
  echo_case "alpn-h1-only-auto" "http/1.1 (TLS)" "$TMP/small.in" "$U" --insecure
  run_client h1only-forced "$TMP/small.in" "$U" --insecure --h2
  if [ "$RC" -eq 3 ] && grep -q "server does not support HTTP/2" \
    "$TMP/h1only-forced.cerr"; then
    ok "alpn-h1-only-forced-h2-exit-3"
  else
    bad "alpn-h1-only-forced-h2-exit-3" "exit $RC: $(cat "$TMP/h1only-forced.cerr")"
  fi
  kill -TERM "$SPID"
  wait "$SPID"
fi

# ---- nobody listening: exit 2 ----------------------------------------------
FREEPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 1)
run_client refusedconn "$TMP/small.in" "ws://127.0.0.1:$FREEPORT/echo"
if [ "$RC" -eq 2 ] && grep -qx "h2ws: cannot connect to 127.0.0.1:$FREEPORT: connection refused" "$TMP/refusedconn.cerr"; then
  ok "connection-refused-exit-2"
else
  bad "connection-refused-exit-2" "exit $RC: $(cat "$TMP/refusedconn.cerr")"
fi

# ---- usage ------------------------------------------------------------------
"$H2WS" client >/dev/null 2>&1
[ $? -eq 1 ] && ok "usage-exit-1" || bad "usage-exit-1"
"$H2WS" --help | grep -q "exit codes" && ok "help" || bad "help"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
