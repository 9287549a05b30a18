#!/usr/bin/env bash
# scripts/fuzz-long.sh - long fuzzing runs (issue 9.5): each libFuzzer
# harness of build-fuzz/ (`make fuzz-build`) for a budget of CPU-seconds,
# at nice 19, into a scratch corpus, then the new inputs merged minimized
# (-merge=1: only inputs that add coverage) into fuzz/corpus/NAME, and a
# summary written.
#
#   scripts/fuzz-long.sh [-t CPU_SECONDS] [-w WORKDIR] [-o SUMMARY]
#                        [-j PARALLEL] [-n] [--fresh] [NAME...]
#
#   -t  CPU-seconds per harness (default 3600; FUZZ_LONG_SECONDS)
#   -w  scratch directory (default build-fuzz/long): per harness a corpus,
#       artifacts, logs and the CPU spent so far
#   -o  summary file (default WORKDIR/summary.md), a Markdown table:
#       harness, CPU-seconds, execs, exec/s, cov and ft before -> after,
#       corpus files and size before -> after, crashes
#   -j  harnesses run side by side (default 1; the machine is shared)
#   -n  fuzz only: no merge into fuzz/corpus (the summary still written)
#   --fresh  forget earlier runs in WORKDIR (else a run continues them)
#   NAME...  harnesses (default: every build-fuzz/fuzz_*)
#
# The budget is CPU time, read from /proc (the fuzzer is stopped with
# SIGINT once it has used it), so a run that is SIGSTOPped and SIGCONTed
# later, or starved by other work, still gets its full budget.  It is
# restartable: the CPU spent and the scratch corpus stay in WORKDIR, and
# a second invocation continues where the first stopped (SIGINT/SIGTERM
# to the script stop the fuzzer cleanly and keep what it found).  A
# libFuzzer exit before the budget is spent (a crash, a timeout, its wall
# limit) starts it again after the artifact is kept.  At the end every
# artifact is run again: only those that reproduce count as crashes (a
# "timeout" caused by a SIGSTOP does not reproduce), and they are listed
# with the sanitizer's SUMMARY line.  fuzz/corpus/NAME keeps its files;
# the merge adds the scratch inputs that add features.
set -uo pipefail
cd "$(dirname "$0")/.."
budget=${FUZZ_LONG_SECONDS:-3600}
work=build-fuzz/long
summary=
jobs=1
merge=1
fresh=0
names=()
while [ $# -gt 0 ]; do
  case "$1" in
  -t) budget=$2; shift 2 ;;
  -w) work=$2; shift 2 ;;
  -o) summary=$2; shift 2 ;;
  -j) jobs=$2; shift 2 ;;
  -n) merge=0; shift ;;
  --fresh) fresh=1; shift ;;
  -h|--help) sed -n '2,34p' "$0"; exit 0 ;;
  -*) echo "fuzz-long: unknown option $1" >&2; exit 2 ;;
  *) names+=("$1"); shift ;;
  esac
done
[ -n "$summary" ] || summary=$work/summary.md
if [ ${#names[@]} -eq 0 ]; then
  for h in build-fuzz/fuzz_*; do [ -x "$h" ] && names+=("$(basename "$h")"); done
fi
[ ${#names[@]} -gt 0 ] || { echo "fuzz-long: no harnesses built (make fuzz-build)" >&2; exit 1; }
mkdir -p "$work"
tck=$(getconf CLK_TCK)

# CPU-seconds (user + system, with waited-for children) of a process.
cpu_of() {
  local s
  s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
  s=${s##*) } # after the command name
  # fields from 3 (state): utime is 14, stime 15, cutime 16, cstime 17
  set -- $s
  echo $(( (${12} + ${13} + ${14} + ${15}) / tck ))
}

# "cov ft" of a harness over a corpus directory (no fuzzing).
cov_of() {
  local h=$1 dir=$2 line
  [ -n "$(ls -A "$dir" 2>/dev/null)" ] || { echo "0 0"; return; }
  line=$(nice -n 19 "$h" -runs=0 -rss_limit_mb=2048 -timeout=60 "$dir" 2>&1 |
         grep -E '(INITED|DONE) ' | tail -n 1)
  echo "$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<<"$line") $(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$line")"
}

files_of() { find "$1" -maxdepth 1 -type f 2>/dev/null | wc -l; }
kib_of() { du -sk --apparent-size "$1" 2>/dev/null | cut -f1; }

stop_pid=
pids=()
on_signal() {
  # the fuzzer stops cleanly on SIGINT (libFuzzer prints its stats); the
  # harnesses run side by side (-j) are told with SIGTERM
  if [ -n "$stop_pid" ]; then kill -INT "$stop_pid" 2>/dev/null; fi
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  interrupted=1
}
interrupted=0
trap on_signal INT TERM

# state file: "cpu execs" spent so far
read_state() { if [ -f "$1" ]; then cat "$1"; else echo "0 0"; fi; }

run_one() {
  local name=$1 h=build-fuzz/$1 d=$work/$1
  [ -x "$h" ] || { echo "fuzz-long: $h not built" >&2; return 1; }
  [ $fresh -eq 1 ] && rm -rf "$d"
  mkdir -p "$d/corpus" "$d/artifacts" "fuzz/corpus/$name"
  local before_files before_kib before_cov
  if [ -f "$d/before" ]; then read -r before_files before_kib before_cov < "$d/before"
  else
    before_files=$(files_of "fuzz/corpus/$name")
    before_kib=$(kib_of "fuzz/corpus/$name")
    before_cov=$(cov_of "$h" "fuzz/corpus/$name" | tr ' ' '/')
    echo "$before_files $before_kib $before_cov" > "$d/before"
  fi
  local spent execs
  read -r spent execs < <(read_state "$d/state")
  local round crash_rounds=0
  round=$(find "$d" -maxdepth 1 -name "log.*" | wc -l) # logs of earlier runs kept
  while [ "$spent" -lt "$budget" ] && [ $interrupted -eq 0 ]; do
    local left=$((budget - spent)) log=$d/log.$round
    round=$((round + 1))
    # wall bound only as a safety net (the CPU budget stops it first)
    nice -n 19 "$h" -max_total_time=$((left * 20 + 600)) -timeout=30 \
      -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$d/artifacts/" \
      "$d/corpus" "fuzz/corpus/$name" > "$log" 2>&1 &
    local pid=$!
    stop_pid=$pid
    local used=0
    while kill -0 "$pid" 2>/dev/null; do
      sleep 5
      local u; u=$(cpu_of "$pid")
      [ "$u" -gt 0 ] && used=$u
      if [ $((spent + used)) -ge "$budget" ]; then kill -INT "$pid" 2>/dev/null; fi
    done
    wait "$pid" 2>/dev/null
    stop_pid=
    local n; n=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -n 1)
    # no final stats (a crash): the last status line's count
    [ -n "$n" ] || n=$(grep -o '^#[0-9]*' "$log" | tail -n 1 | tr -d '#')
    spent=$((spent + used))
    execs=$((execs + ${n:-0}))
    echo "$spent $execs" > "$d/state"
    [ "$used" -eq 0 ] && ! grep -q 'INITED' "$log" && { echo "fuzz-long: $name does not start, see $log" >&2; break; }
    # libFuzzer stops at the first crash: go on (it is kept), but not
    # forever on one that keeps coming back
    if grep -qE 'ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer)|SUMMARY: ' "$log"; then
      crash_rounds=$((crash_rounds + 1))
      [ $crash_rounds -ge 5 ] && { echo "fuzz-long: $name: 5 crashing rounds, stopping it" >&2; break; }
    fi
  done
  # merge the scratch corpus (minimized) into the repository's
  if [ $merge -eq 1 ] && [ $interrupted -eq 0 ]; then
    nice -n 19 "$h" -merge=1 -merge_control_file="$d/merge.ctl" -rss_limit_mb=2048 \
      -timeout=30 "fuzz/corpus/$name" "$d/corpus" > "$d/merge.log" 2>&1 ||
      echo "fuzz-long: $name merge failed, see $d/merge.log" >&2
    rm -f "$d/merge.ctl"
  fi
  local after_cov after_files after_kib
  after_cov=$(cov_of "$h" "fuzz/corpus/$name" | tr ' ' '/')
  [ $merge -eq 1 ] || after_cov="$(cov_of "$h" "$d/corpus" | tr ' ' '/') (scratch)"
  after_files=$(files_of "fuzz/corpus/$name")
  after_kib=$(kib_of "fuzz/corpus/$name")
  # artifacts: only those that reproduce are crashes
  local crashes=0 notes=""
  for a in "$d/artifacts/"*; do
    [ -f "$a" ] || continue
    if out=$(timeout 120 nice -n 19 "$h" -timeout=30 -rss_limit_mb=2048 "$a" 2>&1); then
      notes+="$(basename "$a"): does not reproduce; "
    else
      crashes=$((crashes + 1))
      notes+="$(basename "$a"): $(grep -m1 -E '^SUMMARY:|ERROR: libFuzzer' <<<"$out" | cut -c1-120); "
    fi
  done
  local eps=0
  [ "$spent" -gt 0 ] && eps=$((execs / spent))
  printf '| %s | %s | %s | %s | %s -> %s | %s -> %s | %s -> %s KiB | %s %s|\n' \
    "$name" "$spent" "$execs" "$eps" "$before_cov" "$after_cov" \
    "$before_files" "$after_files" "$before_kib" "$after_kib" "$crashes" \
    "${notes:+(${notes%; }) }" > "$d/row"
  [ "$after_kib" -gt 2048 ] && echo "fuzz-long: fuzz/corpus/$name is ${after_kib} KiB (> 2 MiB)" >&2
  echo "fuzz-long: $name: $spent CPU-s, $execs execs, cov/ft $before_cov -> $after_cov, files $before_files -> $after_files, crashes $crashes"
}

for name in "${names[@]}"; do
  if [ "$jobs" -le 1 ]; then run_one "$name"
  else
    (pids=(); trap on_signal TERM; run_one "$name") & pids+=($!)
    while [ ${#pids[@]} -ge "$jobs" ]; do
      wait "${pids[0]}"
      kill -0 "${pids[0]}" 2>/dev/null || pids=("${pids[@]:1}")
    done
  fi
  [ $interrupted -eq 1 ] && break
done
while [ ${#pids[@]} -gt 0 ]; do
  wait "${pids[0]}" # returns early on a signal: wait again
  kill -0 "${pids[0]}" 2>/dev/null || pids=("${pids[@]:1}")
done

{
  echo "# fuzz-long summary ($(date -u '+%Y-%m-%d %H:%M UTC'), budget $budget CPU-s per harness, $(git rev-parse --short HEAD 2>/dev/null))"
  echo
  echo "| harness | CPU-s | execs | exec/s | cov/ft before -> after | corpus files | corpus size | crashes |"
  echo "|---|---|---|---|---|---|---|---|"
  for name in "${names[@]}"; do cat "$work/$name/row" 2>/dev/null; done
} > "$summary"
echo "fuzz-long: summary in $summary"
[ $interrupted -eq 0 ]
