// Pipeline throughput against a raw ZeroMQ baseline, measured in one run (the machine is shared
// and noisy, so only ratios taken together mean anything):
//   BM_RawZmq3Threads      PUSH/PULL inproc through 3 threads (2 hops), N-byte messages, no work
//   BM_SluiceGenFilterSink generator → filter → blackhole in one process: same threads and hops,
//                          events of about the same size, a real predicate on every event
#include <benchmark/benchmark.h>
#include <zmq.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include <fmt/format.h>

#include "sluice/core/config.hpp"
#include "sluice/core/plugin_registry.hpp"
#include "sluice/core/runtime.hpp"
#include "sluice/sdk.hpp"

namespace {

constexpr int64_t kEvents = 1'000'000;

void BM_RawZmq3Threads(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  for (auto _ : state) {
    void* ctx = zmq_ctx_new();
    std::thread sink([&] {
      void* pull = zmq_socket(ctx, ZMQ_PULL);
      zmq_bind(pull, "inproc://sink");
      zmq_msg_t m;
      zmq_msg_init(&m);
      for (int64_t i = 0; i < kEvents; ++i) zmq_msg_recv(&m, pull, 0);
      zmq_msg_close(&m);
      zmq_close(pull);
    });
    std::thread mid([&] {
      void* pull = zmq_socket(ctx, ZMQ_PULL);
      zmq_bind(pull, "inproc://mid");
      void* push = zmq_socket(ctx, ZMQ_PUSH);
      zmq_connect(push, "inproc://sink");
      zmq_msg_t m;
      zmq_msg_init(&m);
      for (int64_t i = 0; i < kEvents; ++i) {
        zmq_msg_recv(&m, pull, 0);
        zmq_msg_send(&m, push, 0);
      }
      zmq_msg_close(&m);
      zmq_close(pull);
      zmq_close(push);
    });
    void* push = zmq_socket(ctx, ZMQ_PUSH);
    zmq_connect(push, "inproc://mid");
    std::vector<char> payload(size, 'x');
    for (int64_t i = 0; i < kEvents; ++i) {
      zmq_msg_t m;
      zmq_msg_init_size(&m, size);
      std::memcpy(zmq_msg_data(&m), payload.data(), size);
      zmq_msg_send(&m, push, 0);
    }
    mid.join();
    sink.join();
    zmq_close(push);
    zmq_ctx_term(ctx);
  }
  state.SetItemsProcessed(state.iterations() * kEvents);
  state.counters["events_per_s"] =
      benchmark::Counter(static_cast<double>(kEvents), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_RawZmq3Threads)->Arg(256)->Unit(benchmark::kMillisecond)->UseRealTime()
    ->Iterations(3);

void BM_SluiceGenFilterSink(benchmark::State& state) {
  namespace fs = std::filesystem;
  sluice::core::PluginRegistry reg;
  std::vector<std::string> errors;
  reg.load_dirs(sluice::core::PluginRegistry::default_dirs(), &errors);
  fs::path dir = fs::temp_directory_path() / "sluice-bench";
  fs::create_directories(dir);
  // Five liquidation-like fields: about 256 bytes on the wire.
  std::string text = fmt::format(R"(
[pipeline]
name = "bench"
state_dir = "{}"

[sources.gen]
type = "generator"
count = {}
fields = {{ symbol = "{{choice:BTCUSDT|ETHUSDT|SOLUSDT}}", side = "SELL", price = 34603.03, quantity = 0.5, notional_usd = "{{float:100:50000}}" }}

[processors.big]
type = "filter"
inputs = ["gen"]
where = "notional_usd >= 10000 || side == \"SELL\""

[sinks.out]
type = "blackhole"
inputs = ["big"]
)", dir.string(), kEvents);
  auto spec = sluice::core::load_pipeline_text(text, "bench.toml", reg.catalog());
  double bytes = 0;
  for (auto _ : state) {
    sluice::core::RunOptions opts;
    opts.admin_port = -1;
    opts.print_summary = false;
    sluice::core::Pipeline p(spec, reg, opts);
    p.run();
    const auto* sink = p.metrics().find_node("out");
    bytes = static_cast<double>(sink->bytes_in.load()) / static_cast<double>(sink->events_in.load());
    if (sink->events_in.load() != static_cast<uint64_t>(kEvents)) state.SkipWithError("lost events");
  }
  state.SetItemsProcessed(state.iterations() * kEvents);
  state.counters["events_per_s"] =
      benchmark::Counter(static_cast<double>(kEvents), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["event_bytes"] = bytes;
}
BENCHMARK(BM_SluiceGenFilterSink)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);

}  // namespace

BENCHMARK_MAIN();
