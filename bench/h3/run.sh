#!/usr/bin/env bash
# bench/h3/run.sh - h3 vs h2 vs h1 with `h2ws load` against one `h2ws serve`
# (TLS + HTTP/3 on one port, --no-compress): closed loop, binary echoes,
# 1 connection, 3 s per run, each scenario RUNS times (default 3),
# transports interleaved inside each round; the server pinned to CPU 0 and
# the load to CPU 1 (taskset).  Prints one JSON line per run (the load's
# --json plus the server's CPU per message) and a markdown table of the
# medians.  127.0.0.1 only; the server is stopped at the end.
#   bench/h3/run.sh [BUILD_DIR] [RUNS]
set -eu
BUILD=${1:-build}
RUNS=${2:-3}
H2WS=$BUILD/h2ws
TMP=$(mktemp -d)
trap 'kill $SPID 2>/dev/null; wait $SPID 2>/dev/null; rm -rf "$TMP"' EXIT
taskset -c 0 "$H2WS" serve --no-compress --listen 127.0.0.1:0 --access-log off \
  --max-message 2MiB > "$TMP/serve.out" 2>&1 &
SPID=$!
for _ in $(seq 50); do
  PORT=$(sed -n 's/^h2ws: listening on https:\/\/127\.0\.0\.1:\([0-9]*\)\/ .*/\1/p' "$TMP/serve.out")
  [ -n "$PORT" ] && grep -q "(h3, QUIC)" "$TMP/serve.out" && break
  sleep 0.1
done
cpu() { awk '{print $14 + $15}' /proc/$SPID/stat; }   # utime + stime, ticks
TICK=$(getconf CLK_TCK)
# scenarios: streams size
SCEN="1:64 100:64 1:16384 1:1048576"
for round in $(seq "$RUNS"); do
  for sc in $SCEN; do
    n=${sc%%:*}; size=${sc##*:}
    for tr in h3 h2 h1; do
      c0=$(cpu)
      out=$(taskset -c 1 "$H2WS" load -k --$tr --binary --connections 1 --streams-per-conn "$n" \
            --size "$size" --duration 3 --json "wss://127.0.0.1:$PORT/echo" 2>/dev/null || true)
      c1=$(cpu)
      echo "$out" | python3 -c '
import json, sys
d = json.loads(sys.stdin.read() or "{}")
tick, c0, c1, tr = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
n = d.get("messages_received") or 1
d["bench_transport"] = tr
d["server_cpu_us_per_msg"] = (c1 - c0) * 1e6 / tick / n
print(json.dumps(d))' "$TICK" "$c0" "$c1" "$tr" >> "$TMP/results.jsonl"
    done
  done
done
cat "$TMP/results.jsonl"
python3 - "$TMP/results.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print("\n| transport | WebSockets | size | msg/s | MB/s | p50 us | p99 us | server CPU us/msg | load CPU us/msg | lost/failed |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
keys = []
for r in rows:
    k = (r["streams_per_conn"], r["size"], r["bench_transport"])
    if k not in keys: keys.append(k)
for k in keys:
    rs = [r for r in rows if (r["streams_per_conn"], r["size"], r["bench_transport"]) == k]
    med = lambda f: statistics.median(f(r) for r in rs)
    print("| %s | %d | %s | %s | %.1f | %.1f | %.1f | %.2f | %.2f | %d/%d |" % (
        k[2], k[0], "%d B" % k[1] if k[1] < 1024 else "%d KiB" % (k[1] // 1024),
        format(int(med(lambda r: r["msg_per_s"])), ","), med(lambda r: r["mb_per_s"]),
        med(lambda r: r["latency_us"]["p50"]), med(lambda r: r["latency_us"]["p99"]),
        med(lambda r: r["server_cpu_us_per_msg"]), med(lambda r: r["cpu_us_per_msg"]),
        sum(r["messages_lost"] for r in rs), sum(r["ws_failed"] for r in rs)))
PY
