// Expression cost: compiling typical predicates, and evaluating them per event (ns/event = the
// reported time) over real recorded liquidations normalised to the exchange field set.
#include <benchmark/benchmark.h>

#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "sluice/event.hpp"
#include "sluice/expr.hpp"

namespace {

// Serves one unchanging setting, min_usd = 10000, like a pipeline's [settings] at rest.
sluice_host settings_host() {
  sluice_host h{};
  h.abi_major = SLUICE_ABI_MAJOR;
  h.abi_minor = SLUICE_ABI_MINOR;
  h.settings_version = [](void*) -> uint64_t { return 1; };
  h.setting_get = [](void*, const char* name, char* buf, size_t cap) -> int64_t {
    if (std::strcmp(name, "min_usd") != 0) return -1;
    static constexpr char kValue[] = "10000";
    std::memcpy(buf, kValue, std::min(cap, sizeof(kValue) - 1));
    return sizeof(kValue) - 1;
  };
  return h;
}

const sluice_host kHost = settings_host();

// The rows of the filter test's recorded sample, built the way an exchange source builds them
// (ten normalised fields plus the raw frame).
std::vector<std::vector<uint8_t>> recorded_events() {
  std::ifstream in(std::string(SLUICE_SOURCE_DIR) +
                   "/plugins/processors/filter/test/data/binance_slice_0.csv");
  if (!in) throw std::runtime_error("cannot read binance_slice_0.csv");
  std::string line;
  std::getline(in, line);
  std::vector<std::vector<uint8_t>> events;
  sluice::EventBuilder b;
  auto number = [](const std::string& s) {
    double v = 0;
    std::from_chars(s.data(), s.data() + s.size(), v);
    return v;
  };
  while (std::getline(in, line)) {
    std::vector<std::string> c;
    std::stringstream ss(line);
    for (std::string col; std::getline(ss, col, ',');) c.push_back(col);
    if (c.size() != 6) continue;
    b.reset()
        .key(c[1])
        .source("binance")
        .field("exchange", "binance")
        .field("symbol", c[1])
        .field("side", c[2])
        .field("price", number(c[3]))
        .field("avg_price", number(c[3]))
        .field("quantity", number(c[4]))
        .field("notional_usd", number(c[5]))
        .field("order_type", "LIMIT")
        .field("status", "FILLED")
        .field("trade_time_ms", int64_t{1761125802306})
        .field("raw", "{\"e\":\"forceOrder\",\"o\":{\"s\":\"" + c[1] + "\",\"S\":\"" + c[2] +
                          "\",\"ap\":\"" + c[3] + "\",\"z\":\"" + c[4] + "\"}}");
    auto bytes = b.finish();
    events.emplace_back(bytes.begin(), bytes.end());
  }
  return events;
}

const char* const kPredicates[] = {
    "notional_usd >= $min_usd && side == \"SELL\"",
    "notional_usd >= 10000",
    "symbol in ['BTCUSDT', 'ETHUSDT', 'SOLUSDT', 'FETUSDT'] && notional_usd > 1000",
    "@key starts_with '1000' || (side == 'BUY' && quantity > 100)",
    "raw contains 'forceOrder' && status != 'CANCELED'",
    "missing_field == null && !(order_type == 'MARKET')",
};

void BM_Compile(benchmark::State& state) {
  const char* text = kPredicates[state.range(0)];
  for (auto _ : state) {
    auto e = sluice::expr::Expression::compile(text, &kHost);
    benchmark::DoNotOptimize(e);
  }
  state.SetLabel(text);
}
BENCHMARK(BM_Compile)->DenseRange(0, std::size(kPredicates) - 1);

// Time per iteration is the cost of one evaluation (one event).
void BM_Evaluate(benchmark::State& state) {
  static const std::vector<std::vector<uint8_t>> events = recorded_events();
  std::vector<sluice::EventView> views;
  for (const auto& e : events) views.emplace_back(e.data(), e.size());
  auto expr = sluice::expr::Expression::compile(kPredicates[state.range(0)], &kHost);
  size_t i = 0;
  size_t matched = 0;
  for (auto _ : state) {
    matched += expr.matches(views[i]) ? 1 : 0;
    if (++i == views.size()) i = 0;
  }
  benchmark::DoNotOptimize(matched);
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(kPredicates[state.range(0)]);
}
BENCHMARK(BM_Evaluate)->DenseRange(0, std::size(kPredicates) - 1);

}  // namespace

BENCHMARK_MAIN();
