#!/bin/bash
# bench/server_insn.sh BIN tls|h2c SIZE WEBSOCKETS INFLIGHT MESSAGES: the
# user-space instructions `h2ws serve` retires (valgrind --tool=callgrind,
# Ir) while `h2ws load` sends MESSAGES per WebSocket (127.0.0.1, a free
# port; every process stopped). Run it twice with two counts and take the
# difference: instructions per echo / per MB, without the start-up and
# handshakes. The other load on a shared machine does not change it.
BIN=$1; T=$2; SIZE=$3; ST=$4; INF=$5; M=$6
if [ $T = tls ]; then SA=""; SCH=wss; LA="-k"; else SA="--cleartext"; SCH=ws; LA=""; fi
D=$(mktemp -d)
LIB=$(dirname $BIN)
LD_LIBRARY_PATH=$LIB valgrind --tool=callgrind --callgrind-out-file=$D/cg.out $BIN serve $SA --no-compress --max-message 64MiB --listen 127.0.0.1:0 > $D/o 2>$D/e &
VP=$!
for i in $(seq 400); do grep -q listening $D/o && break; sleep 0.05; done
PORT=$(grep -o '127.0.0.1:[0-9]*' $D/o | head -1 | cut -d: -f2)
$BIN load $SCH://127.0.0.1:$PORT/echo $LA --binary --streams-per-conn $ST --inflight $INF --size $SIZE --messages $M --timeout 300 --json >/dev/null 2>&1 || echo "load failed" >&2
kill -INT $VP; wait $VP
grep -m1 "^summary:\|^totals:" $D/cg.out | awk '{print $2}'
[ -n "$KEEP" ] && cp $D/cg.out cg.keep
rm -rf $D
