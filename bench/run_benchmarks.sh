#!/usr/bin/env bash
# Runs every benchmark against an optimised build and writes a report to
# <build>/bench-results.md (copy the numbers into docs/BENCHMARKS.md with date and machine).
#   bench/run_benchmarks.sh build/release
set -euo pipefail
build=${1:-build/release}
here=$(cd "$(dirname "$0")/.." && pwd)
out="$build/bench-results.md"
sluice="$build/sluice"
work=$(mktemp -d /tmp/sluice-bench-XXXXXX)
trap 'pkill -P $$ 2>/dev/null || true; rm -rf "$work"' EXIT

{
  echo "# Benchmark run $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
       "load average $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
} > "$out"

# Every bench/*_bench executable, llm_classifier_bench included (about 8 s: 3 s at 1 k and at
# 5 k requests/s against its in-process zero-latency server; its runs are fixed, so min_time does
# not apply to it).
for b in "$build"/bench/*_bench; do
  echo "## $(basename "$b")" >> "$out"
  echo '```' >> "$out"
  "$b" --benchmark_min_time=0.2 2>/dev/null | grep -vE '^(\*\*\*|-{5,})' >> "$out" || true
  echo '```' >> "$out"
done

# Per-hop latency at a steady 50 k events/s: generator → blackhole, one hop, over inproc (one
# process), ipc and tcp (two processes on this host). The summary's p50/p99 are the upper bounds
# of the latency histogram buckets the percentile falls in.
latency_pipeline() {  # $1 = placement block
  cat <<TOML
[pipeline]
name = "latency"
state_dir = "$work/state"

[sources.gen]
type = "generator"
rate = 50000.0
count = 500000
fields = { symbol = "BTCUSDT", side = "SELL", price = 34603.03, quantity = 0.5, notional_usd = 17301.5 }

[sinks.out]
type = "blackhole"
inputs = ["gen"]
$1
TOML
}
echo "## per-hop latency at 50 k events/s (generator → blackhole, 500 k events)" >> "$out"
echo '```' >> "$out"
latency_pipeline "" > "$work/inproc.toml"
echo "inproc:" >> "$out"
"$sluice" run "$work/inproc.toml" --admin-port -1 --log-level warn 2>&1 | grep -E "^(node|out |peak)" >> "$out"
for transport in ipc tcp; do
  if [ "$transport" = ipc ]; then
    latency_pipeline $'[placement]\na = { nodes = ["gen"] }\nb = { nodes = ["out"] }' > "$work/$transport.toml"
  else
    latency_pipeline $'[placement]\na = { nodes = ["gen"] }\nb = { nodes = ["out"], host = "127.0.0.1", port = 47311 }' > "$work/$transport.toml"
  fi
  "$sluice" run "$work/$transport.toml" --process b --admin-port -1 --log-level warn 2> "$work/b.log" &
  sink_pid=$!
  "$sluice" run "$work/$transport.toml" --process a --admin-port -1 --log-level warn 2> "$work/a.log"
  wait $sink_pid
  echo "$transport (sink process):" >> "$out"
  grep -E "^(node|out |peak)" "$work/b.log" >> "$out"
done
echo '```' >> "$out"
cat "$out"
