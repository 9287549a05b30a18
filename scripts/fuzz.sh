#!/usr/bin/env bash
# scripts/fuzz.sh SECONDS - run every libFuzzer harness in build-fuzz/ for a
# bounded time, two at a time, each from its seed corpus in fuzz/corpus/NAME.
# New inputs go to a scratch directory, so the repository's corpus only
# changes when someone copies interesting cases in on purpose.
set -uo pipefail
secs=${1:-60}
cd "$(dirname "$0")/.."
shopt -s nullglob
harnesses=(build-fuzz/fuzz_*)
[ ${#harnesses[@]} -gt 0 ] || { echo "fuzz: no harnesses built"; exit 1; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
fail=0; pids=(); names=()
run_one() {
  local h=$1 name; name=$(basename "$h")
  mkdir -p "$work/$name" "fuzz/corpus/$name"
  "$h" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
       -artifact_prefix="$work/$name-" "$work/$name" "fuzz/corpus/$name" \
       >"$work/$name.log" 2>&1
  local rc=$?
  if [ $rc -ne 0 ]; then
    echo "fuzz: $name FAILED (exit $rc)"; tail -n 40 "$work/$name.log"
    for a in "$work/$name-"*; do echo "artifact: $a"; xxd "$a" | head -n 20; done
    return 1
  fi
  echo "fuzz: $name ok ($(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$work/$name.log" | grep -o '[0-9]*$') runs in ${secs}s)"
}
i=0
for h in "${harnesses[@]}"; do
  run_one "$h" & pids+=($!); i=$((i+1))
  if [ $((i % 2)) -eq 0 ]; then for p in "${pids[@]}"; do wait "$p" || fail=1; done; pids=(); fi
done
for p in "${pids[@]}"; do wait "$p" || fail=1; done
n=${#harnesses[@]}
if [ $fail -eq 0 ]; then echo "fuzz: $n passed, 0 failed"; else echo "fuzz: some harness failed"; fi
exit $fail
