#!/usr/bin/env bash
# Runs the libFuzzer targets built in <build dir>/fuzz (make fuzz, make fuzz-smoke):
#   fuzz/run.sh <build dir> <seconds per target> <work dir> [target ...]
# Each target first replays every input in fuzz/regressions/<target>/ (each must pass), then
# fuzzes for the given time from its seed corpus fuzz/corpus/<target>/ with fuzz/dict/<target>.dict
# when there is one. New corpus entries go to <work dir>/corpus/<target>/ and crashes to
# <work dir>/crashes/<target>/, never into the repository. Exits non-zero when any target
# crashed, leaked, timed out or failed a regression input; the log of each run is in <work dir>.
set -uo pipefail
cd "$(dirname "$0")/.."
build=$1 seconds=$2 work=$3
shift 3
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in fuzz/*_fuzz.cpp; do t=$(basename "$f" _fuzz.cpp); targets+=("$t"); done
fi
mkdir -p "$work"
failed=()
for t in "${targets[@]}"; do
  bin="$build/fuzz/${t}_fuzz"
  if [ ! -x "$bin" ]; then echo "fuzz: $bin is not built" >&2; failed+=("$t(not built)"); continue; fi
  mkdir -p "$work/corpus/$t" "$work/crashes/$t"
  if compgen -G "fuzz/regressions/$t/*" > /dev/null; then
    if ! "$bin" -timeout=60 fuzz/regressions/"$t"/* > "$work/$t.regressions.log" 2>&1; then
      echo "fuzz: $t: a regression input fails (log: $work/$t.regressions.log)" >&2
      tail -n 30 "$work/$t.regressions.log" >&2
      failed+=("$t(regression)")
      continue
    fi
  fi
  dict=()
  [ -f "fuzz/dict/$t.dict" ] && dict=(-dict="fuzz/dict/$t.dict")
  "$bin" -max_total_time="$seconds" -timeout=60 -rss_limit_mb=2048 -print_final_stats=1 \
    "${dict[@]}" -artifact_prefix="$work/crashes/$t/" \
    "$work/corpus/$t" "fuzz/corpus/$t" > "$work/$t.log" 2>&1
  status=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t.log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/$t.log")
  cov=$(grep -o 'cov: [0-9]*' "$work/$t.log" | tail -n 1)
  printf 'fuzz: %-18s %ss  %10s runs  %6s exec/s  %s\n' "$t" "$seconds" "${runs:-?}" \
    "${rate:-?}" "${cov:-}"
  if [ $status -ne 0 ]; then
    echo "fuzz: $t failed (exit $status); input in $work/crashes/$t/, log $work/$t.log" >&2
    tail -n 40 "$work/$t.log" >&2
    failed+=("$t")
  fi
done
if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: all ${#targets[@]} targets passed"
