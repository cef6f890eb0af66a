// Rendering cost of the sinks' hot path (sluice/event_json.hpp): one liquidation event as a JSON
// line (file sink, console json), as a text line (console text), and, for scale, the same JSON
// built through nlohmann::json. Counters: event_bytes (FlatBuffers size), line_bytes (output).
#include <benchmark/benchmark.h>

#include <string>

#include <nlohmann/json.hpp>

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

}  // namespace

BENCHMARK_MAIN();
