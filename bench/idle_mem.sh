#!/bin/bash
# bench/idle_mem.sh - server memory per idle WebSocket: starts `h2ws serve`
# (127.0.0.1, a free port), reads its VmRSS, opens N idle WebSockets with
# `h2ws load --messages 0 --hold` (in batches of 1000), reads VmRSS again
# 3 s after they are all open, and prints (RSS - base) / opened.  Every process it starts is stopped.
#
# usage: bench/idle_mem.sh [-b BUILD/h2ws] TRANSPORT N
#   TRANSPORT: h2 (wss, 100 per connection), h2c (ws, 100 per connection),
#              h1 (wss, HTTP/1.1 + TLS, one connection each), h1c (ws)
# Prints one line: transport n opened base_kib rss_kib bytes_per_ws
set -u
BIN=./build/h2ws
if [ "${1:-}" = "-b" ]; then BIN=$2; shift 2; fi
T=${1:?transport}
N=${2:?count}
case $T in
  h2) SA=""; URL=wss; LA="-k --h2"; PER=100 ;;
  h2c) SA="--cleartext"; URL=ws; LA="--h2"; PER=100 ;;
  h1) SA=""; URL=wss; LA="-k --h1"; PER=1 ;;
  h1c) SA="--cleartext"; URL=ws; LA="--h1"; PER=1 ;;
  *) echo "unknown transport $T" >&2; exit 1 ;;
esac
ulimit -n "$(ulimit -Hn)" 2>/dev/null
TMP=$(mktemp -d)
SP=""; LP=""
cleanup() {
  for p in ${LPS:-}; do kill "$p" 2>/dev/null; done
  [ -n "$SP" ] && kill "$SP" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
taskset -c 1 "$BIN" serve $SA --no-compress --listen 127.0.0.1:0 \
  >"$TMP/serve.out" 2>"$TMP/serve.err" &
SP=$!
for _ in $(seq 100); do grep -q listening "$TMP/serve.out" && break; sleep 0.05; done
PORT=$(grep -o '127.0.0.1:[0-9]*' "$TMP/serve.out" | head -1 | cut -d: -f2)
[ -n "$PORT" ] || { echo "server did not start" >&2; exit 1; }
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$SP/status"; }
sleep 0.3
BASE=$(rss)
# Opened in batches of at most 1000 WebSockets (one load process each,
# started when the previous batch is open): a storm of 5000 TLS handshakes
# at once outlasts the server's handshake budget on a loaded machine.
BATCH=1000
LPS=""
OPENED=0
LEFT=$N
I=0
while [ "$LEFT" -gt 0 ]; do
  K=$(( LEFT < BATCH ? LEFT : BATCH ))
  if [ "$PER" = 1 ]; then CONNS=$K; SPC=1; else
    SPC=$(( K < PER ? K : PER )); CONNS=$(( (K + SPC - 1) / SPC )); fi
  taskset -c 0 "$BIN" load "$URL://127.0.0.1:$PORT/echo" $LA --binary \
    --connections "$CONNS" --streams-per-conn "$SPC" --messages 0 --hold 300 \
    --open-timeout 60s --json >"$TMP/load$I.out" 2>"$TMP/load$I.err" &
  LP=$!
  LPS="$LPS $LP"
  GOT=""
  for _ in $(seq 1200); do
    GOT=$(grep -o '[0-9]* WebSockets open' "$TMP/load$I.err" | head -1 | cut -d' ' -f1)
    [ -n "$GOT" ] && break
    kill -0 "$LP" 2>/dev/null || break
    sleep 0.05
  done
  OPENED=$(( OPENED + ${GOT:-0} ))
  LEFT=$(( LEFT - K ))
  I=$(( I + 1 ))
done
# idle connections give their TLS work buffers back 1 s after their last
# traffic, and the server's trim of freed memory runs 1 s after that
sleep 3
RSS=$(rss)
[ -n "${VERBOSE:-}" ] && cat "$TMP"/load*.err >&2
for p in $LPS; do kill "$p" 2>/dev/null; done
wait $LPS 2>/dev/null
LP=""
OPENED=${OPENED:-0}
if [ "$OPENED" -gt 0 ]; then PERWS=$(( (RSS - BASE) * 1024 / OPENED )); else PERWS=-; fi
echo "$T n=$N opened=$OPENED base_kib=$BASE rss_kib=$RSS bytes_per_ws=$PERWS"
