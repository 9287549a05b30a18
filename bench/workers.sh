#!/usr/bin/env bash
# bench/workers.sh - msg/s of `h2ws serve --cleartext --workers 1` against
# `--workers 2` (BENCHMARKS.md "Several cores: serve --workers"): h2ws load,
# 200 connections x 5 WebSockets (h2c), 64 B text, closed loop (one message
# in flight per WebSocket), on 127.0.0.1.  The load generator is LOADGENS
# `h2ws load` processes of LOADTHREADS loops each (`load --workers`)
# sharing the 200 connections, so it is not held to one core; its CPU
# (user + sys, in cores) is reported next
# to the server's (from /proc/PID/stat), so the total shows what the
# machine had left.  Rounds alternate the order (1 then 2, 2 then 1) so a
# neighbour's load hits both; the table gives each run, the medians and the
# median of the per-round ratios.  Bounded: every command under timeout,
# every process it starts stopped at the end (also on Ctrl-C).
#
# Usage: bench/workers.sh [H2WS_BIN]    (default build/h2ws)
# Environment: ROUNDS (5), DURATION (5s), LOADGENS (1), LOADTHREADS (2),
#              CONNS (200), STREAMS (5), SIZE (64).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${1:-$ROOT/build/h2ws}
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5s}
LOADGENS=${LOADGENS:-1}
LOADTHREADS=${LOADTHREADS:-2}
CONNS=${CONNS:-200}
STREAMS=${STREAMS:-5}
SIZE=${SIZE:-64}
TMP=$(mktemp -d /tmp/h2ws-bench-workers.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do
    [ -n "$p" ] && kill -TERM "$p" 2>/dev/null || true
  done
  sleep 0.5
  for p in "${PIDS[@]:-}"; do
    [ -n "$p" ] && kill -KILL "$p" 2>/dev/null || true
  done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
[ -x "$BIN" ] || { echo "bench/workers.sh: no h2ws binary at $BIN" >&2; exit 1; }
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
TICK=$(getconf CLK_TCK)

# cpu_ticks PID: utime + stime of a process (all its threads)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# one_run W: starts serve --workers W, drives it, writes one JSON line to
# $TMP/line.json (not in a subshell: PIDS must reach the cleanup)
one_run() {
  local w=$1 out="$TMP/serve-$w-$RANDOM$RANDOM.out"
  : >"$out" # (made here: the port is read from it at once)
  # (not under timeout: its CPU is read from its own /proc entry; it is
  # stopped below, or by the cleanup)
  "$BIN" serve --cleartext --listen 127.0.0.1:0 --workers "$w" \
    --access-log off >"$out" 2>&1 &
  local spid=$!
  PIDS+=("$spid")
  local port="" i
  for i in $(seq 1 100); do
    port=$(sed -n 's|^h2ws: listening on http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$out")
    [ -n "$port" ] && break
    sleep 0.05
  done
  [ -n "$port" ] || { echo "serve did not start: $(cat "$out")" >&2; exit 1; }
  local per=$((CONNS / LOADGENS)) lpids=() g
  local c0
  c0=$(cpu_ticks "$spid")
  local t0
  t0=$(date +%s.%N)
  for g in $(seq 1 "$LOADGENS"); do
    timeout 120 "$BIN" load "ws://127.0.0.1:$port/echo" --connections "$per" \
      --streams-per-conn "$STREAMS" --size "$SIZE" --inflight 1 --workers "$LOADTHREADS" \
      --duration "$DURATION" --json >"$TMP/load-$w-$g.json" 2>"$TMP/load-$w-$g.err" &
    lpids+=($!)
    PIDS+=($!)
  done
  local rc=0
  for g in "${lpids[@]}"; do wait "$g" || rc=$?; done
  [ "$rc" -eq 0 ] || cat "$TMP/load-$w-"*.err >&2
  local t1 c1
  t1=$(date +%s.%N)
  c1=$(cpu_ticks "$spid")
  kill -TERM "$spid"
  wait "$spid" || true
  /usr/bin/python3 - "$w" "$rc" "$c0" "$c1" "$t0" "$t1" "$TICK" "$TMP" "$LOADGENS" \
    >"$TMP/line.json" <<'EOF'
import json, sys
w, rc, c0, c1, t0, t1, tick, tmp, n = sys.argv[1:]
msgs = cpu = opened = lost = 0.0
elapsed = 0.0
for g in range(1, int(n) + 1):
    d = json.load(open("%s/load-%s-%d.json" % (tmp, w, g)))
    msgs += d["msg_per_s"]
    cpu += d["cpu_user_s"] + d["cpu_sys_s"]
    elapsed = max(elapsed, d["elapsed_s"])
    opened += d["ws_opened"]
    lost += d["messages_lost"]
wall = float(t1) - float(t0)
print(json.dumps({"workers": int(w), "rc": int(rc), "msg_per_s": msgs, "ws_opened": opened,
                  "lost": lost, "server_cores": (int(c1) - int(c0)) / float(tick) / wall,
                  "load_cores": cpu / wall}))
EOF
}

echo "h2ws serve --workers 1 vs 2: $CONNS connections x $STREAMS WebSockets (h2c), $SIZE B," \
     "closed loop, $DURATION per run, $LOADGENS load process(es) x $LOADTHREADS loops," \
     "$(nproc) CPUs" >&2
RES="$TMP/results.jsonl"
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) -eq 1 ]; then order="1 2"; else order="2 1"; fi
  for w in $order; do
    one_run "$w"
    line=$(cat "$TMP/line.json")
    echo "round $r: $line" >&2
    echo "{\"round\": $r, ${line#\{}" >>"$RES"
    sleep 1
  done
done
/usr/bin/python3 - "$RES" <<'EOF'
import json, statistics, sys
rows = [json.loads(x) for x in open(sys.argv[1])]
print("| round | workers | msg/s | server CPU (cores) | load generator CPU (cores) "
      "| msg/s per server core | WebSockets | lost |")
print("|---|---|---|---|---|---|---|---|")
for x in rows:
    x["per_core"] = x["msg_per_s"] / x["server_cores"] if x["server_cores"] > 0 else 0
    print("| %d | %d | %.0f | %.2f | %.2f | %.0f | %d | %d |" % (x["round"], x["workers"],
          x["msg_per_s"], x["server_cores"], x["load_cores"], x["per_core"], x["ws_opened"], x["lost"]))
med = {}
for w in (1, 2):
    xs = [x for x in rows if x["workers"] == w]
    med[w] = {k: statistics.median(x[k] for x in xs)
              for k in ("msg_per_s", "server_cores", "load_cores", "per_core")}
    print("| median | %d | %.0f | %.2f | %.2f | %.0f | | |" % (w, med[w]["msg_per_s"],
          med[w]["server_cores"], med[w]["load_cores"], med[w]["per_core"]))
ratios = []
for r in sorted({x["round"] for x in rows}):
    a = [x for x in rows if x["round"] == r and x["workers"] == 1]
    b = [x for x in rows if x["round"] == r and x["workers"] == 2]
    if a and b and a[0]["msg_per_s"] > 0:
        ratios.append(b[0]["msg_per_s"] / a[0]["msg_per_s"])
print()
print("per-round ratio 2/1 workers: %s; median %.2f" % (", ".join("%.2f" % x for x in ratios),
      statistics.median(ratios)))
if any(x["rc"] != 0 or x["lost"] for x in rows):
    print("WARNING: a load run failed or lost messages (rc/lost above)")
EOF
