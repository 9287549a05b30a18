#!/bin/bash
# bench/syscalls_per_echo.sh BIN tls|h2c|h1|h1c N: syscalls per echo of
# `h2ws serve` (strace -c -f) while `h2ws load` echoes N 64-byte messages
# one at a time over one WebSocket (127.0.0.1; every process stopped).
BIN=$1; T=$2; N=$3
case $T in tls) SA=""; U=wss; LA="-k --h2";; h2c) SA="--cleartext"; U=ws; LA="--h2";; h1) SA=""; U=wss; LA="-k --h1";; h1c) SA="--cleartext"; U=ws; LA="--h1";; esac
D=$(mktemp -d)
taskset -c 1 strace -c -f -o $D/st $BIN serve $SA --no-compress --listen 127.0.0.1:0 > $D/o 2>/dev/null &
STP=$!
for i in $(seq 100); do grep -q listening $D/o && break; sleep 0.05; done
PORT=$(grep -o '127.0.0.1:[0-9]*' $D/o | head -1 | cut -d: -f2)
taskset -c 0 $BIN load $U://127.0.0.1:$PORT/echo $LA --binary --connections 1 --streams-per-conn 1 --inflight 1 --messages $N --size 64 --json >/dev/null 2>&1
kill $(pgrep -P $STP); wait $STP
awk -v n=$N '/^-/ {next} NR>2 && $NF!="total" && $4+0>100 {printf "%s=%.3f ", $NF, $4/n} $NF=="total"{printf "total=%.3f\n", $4/n}' $D/st
rm -rf $D
