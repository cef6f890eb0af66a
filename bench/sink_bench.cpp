// Rendering cost of the sinks' hot path (sluice/event_json.hpp): one liquidation event as a JSON
// line (file sink, console json), as a text line (console text), and, for scale, the same JSON
// built through nlohmann::json. Counters: event_bytes (FlatBuffers size), line_bytes (output).
//
// Then the built `file` sink itself, through its C ABI, under each fsync policy: what an
// acknowledged event costs when it must be on disk (always), may wait up to fsync_interval
// (interval) or is left to the kernel (never). It writes below the build directory, on the real
// disk (a tmpfs /tmp would make fsync free).
#include <benchmark/benchmark.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "bench_support.hpp"
#include "sluice/event_json.hpp"

namespace {

constexpr int64_t kTime = 1761125802306000000;  // 2025-10-22T09:36:42.306Z

// The normalised field set every exchange source emits (ARCHITECTURE.md §2), without `raw`.
std::string liquidation_event() {
  sluice::EventBuilder b;
  b.id(123456)
      .event_time_ns(kTime)
      .ingest_time_ns(kTime + 4'211'000)
      .source("binance")
      .key("SOLUSDT")
      .field("exchange", "binance")
      .field("symbol", "SOLUSDT")
      .field("side", "SELL")
      .field("price", 183.95)
      .field("avg_price", 184.22)
      .field("quantity", 0.04)
      .field("notional_usd", 7.3688)
      .field("order_type", "LIMIT")
      .field("status", "FILLED")
      .field("trade_time_ms", int64_t{1761125802301});
  auto bytes = b.finish();
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

void set_counters(benchmark::State& state, const std::string& event, const std::string& line) {
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(line.size()));
  state.counters["event_bytes"] = static_cast<double>(event.size());
  state.counters["line_bytes"] = static_cast<double>(line.size());
}

void BM_AppendEventJson(benchmark::State& state) {
  const std::string event = liquidation_event();
  const sluice::EventView view(reinterpret_cast<const uint8_t*>(event.data()), event.size());
  const sluice::JsonOptions opts{.metadata = state.range(0) != 0};
  std::string out;
  for (auto _ : state) {
    out.clear();
    sluice::append_event_json(out, view, opts);
    benchmark::DoNotOptimize(out.data());
  }
  set_counters(state, event, out);
}
BENCHMARK(BM_AppendEventJson)->ArgName("metadata")->Arg(0)->Arg(1);

void BM_AppendEventText(benchmark::State& state) {
  const std::string event = liquidation_event();
  const sluice::EventView view(reinterpret_cast<const uint8_t*>(event.data()), event.size());
  std::string out;
  for (auto _ : state) {
    out.clear();
    sluice::append_event_text(out, view);
    benchmark::DoNotOptimize(out.data());
  }
  set_counters(state, event, out);
}
BENCHMARK(BM_AppendEventText);

// The same fields through a DOM and dump(): what the sinks would pay with a JSON library.
void BM_NlohmannDump(benchmark::State& state) {
  const std::string event = liquidation_event();
  const sluice::EventView view(reinterpret_cast<const uint8_t*>(event.data()), event.size());
  std::string out;
  for (auto _ : state) {
    nlohmann::json j = nlohmann::json::object();
    for (size_t i = 0; i < view.field_count(); ++i) {
      const sluice::fb::Field* f = view.field_at(i);
      std::string name(sluice::EventView::sv(f->name()));
      switch (f->type()) {
        case sluice::FieldType::Int:
          j[name] = f->i();
          break;
        case sluice::FieldType::Double:
          j[name] = f->d();
          break;
        case sluice::FieldType::Bool:
          j[name] = f->b();
          break;
        case sluice::FieldType::String:
          j[name] = sluice::EventView::sv(f->s());
          break;
        default:
          j[name] = nullptr;
          break;
      }
    }
    out = j.dump();
    benchmark::DoNotOptimize(out.data());
  }
  set_counters(state, event, out);
}
BENCHMARK(BM_NlohmannDump);

// One in-flight event handed to the sink, and whether its done() has come.
struct PendingCall {
  sluice_call call{};
  std::atomic<bool> done{false};
  std::atomic<bool> ok{false};
};

constexpr const char* kPolicies[] = {"always", "interval", "never"};

// range(0): the fsync policy (0 always, 1 interval, 2 never); range(1): events in flight. With 1,
// each event is written (flush_interval = "0s") and acknowledged alone, as a slow stream; with
// 64 (the sink's batch size, half the default max_in_flight), as a busy one.
void BM_FileSinkFsync(benchmark::State& state) {
  const char* policy = kPolicies[state.range(0)];
  const auto window = static_cast<size_t>(state.range(1));
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(SLUICE_BINARY_DIR) / "bench" /
                       fmt::format("file_sink_{}_{}_{}", policy, window, ::getpid());
  fs::create_directories(dir);
  const std::string path = (dir / "out.jsonl").string();
  const auto plugin = sluice::bench::load_plugin(
      sluice::core::NodeKind::kSink, "file",
      fmt::format("path = \"{}\"\nmetadata = false\nfsync = \"{}\"{}", path, policy,
                  window == 1 ? "\nflush_interval = \"0s\"" : ""));
  const sluice_host host = sluice::bench::quiet_host("file");
  void* self = sluice::bench::create_or_skip(state, plugin, host);
  if (self == nullptr) return;

  const std::string event = liquidation_event();
  std::vector<PendingCall> calls(window);
  int64_t failed = 0;
  int64_t since_truncate = 0;
  for (auto _ : state) {
    for (PendingCall& c : calls) {
      c.done.store(false, std::memory_order_relaxed);
      c.call.event = reinterpret_cast<const uint8_t*>(event.data());
      c.call.event_size = event.size();
      c.call.host_data = &c;
      c.call.emit = [](sluice_call*, const char*, const uint8_t*, size_t) {};
      c.call.done = [](sluice_call* call, const sluice_outcome* o) {
        auto* pending = static_cast<PendingCall*>(call->host_data);
        pending->ok.store(o->status == SLUICE_OK, std::memory_order_relaxed);
        pending->done.store(true, std::memory_order_release);
      };
      plugin.descriptor->process(self, &c.call);
    }
    for (PendingCall& c : calls) {
      while (!c.done.load(std::memory_order_acquire)) std::this_thread::yield();
      failed += c.ok.load(std::memory_order_relaxed) ? 0 : 1;
    }
    // Keep the file small; the sink appends (O_APPEND), so it writes on at the new end.
    since_truncate += static_cast<int64_t>(window);
    if (since_truncate >= 100'000) {
      state.PauseTiming();
      fs::resize_file(path, 0);
      since_truncate = 0;
      state.ResumeTiming();
    }
  }
  if (plugin.descriptor->flush != nullptr) plugin.descriptor->flush(self);
  plugin.descriptor->destroy(self);
  fs::remove_all(dir);
  if (failed > 0) state.SkipWithError(fmt::format("{} events failed", failed).c_str());
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(window));
  state.SetLabel(fmt::format("fsync={} in_flight={}", policy, window));
}
BENCHMARK(BM_FileSinkFsync)
    ->ArgNames({"policy", "in_flight"})
    ->ArgsProduct({{0, 1, 2}, {1, 64}})
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
