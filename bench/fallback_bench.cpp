// What a `fallback` node adds per event when its first child answers at once: the same
// rules_classifier called directly and as the only link of a fallback chain, both through the
// runtime's real host (NodeInstance, child calls, metrics), on one thread with an executor that
// runs posted callbacks and timers in line. The difference of the two times is the node's
// overhead: the child call's copy of the event, the hand-off of its outcome, and the rebuild of
// the output event with the three fallback_* fields.
#include <benchmark/benchmark.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "sluice/core/config.hpp"
#include "sluice/core/metrics.hpp"
#include "sluice/core/node_host.hpp"
#include "sluice/core/plugin_registry.hpp"
#include "sluice/core/state.hpp"
#include "sluice/core/timer_queue.hpp"
#include "sluice/event.hpp"
#include "sluice/sdk.hpp"

namespace {

using namespace sluice;
using namespace sluice::core;

constexpr const char* kPipeline = R"([pipeline]
name = "bench"

[sources.gen]
type = "generator"
count = 1

[processors.direct]
type = "rules_classifier"
inputs = ["gen"]

[processors.chain]
type = "fallback"
inputs = ["gen"]
chain = ["rules"]

[processors.rules]
type = "rules_classifier"

[sinks.out]
type = "blackhole"
inputs = ["direct", "chain"]
)";

// Runs posted callbacks and due timers on the bench thread, as a stage thread does.
class InlineExecutor : public Executor {
 public:
  void post(std::function<void()> fn) override { posted_.push_back(std::move(fn)); }
  uint64_t schedule(int64_t delay_ns, std::function<void(bool)> fn) override {
    return timers_.add(sluice::mono_ns() + delay_ns, std::move(fn));
  }
  bool cancel_scheduled(uint64_t id) override { return timers_.cancel(id); }
  void run() {
    while (!posted_.empty()) {
      std::vector<std::function<void()>> now;
      now.swap(posted_);
      for (auto& fn : now) fn();
    }
    if (!timers_.maybe_empty()) timers_.run_due(sluice::mono_ns());
  }
  ~InlineExecutor() override { timers_.clear(); }

 private:
  std::vector<std::function<void()>> posted_;
  TimerQueue timers_;
};

struct Call {
  sluice_call call{};
  bool done = false;
  size_t emitted = 0;
};

struct Nodes {
  PluginRegistry registry;
  PipelineSpec spec;
  MetricsRegistry metrics;
  std::unique_ptr<SettingsStore> settings;
  std::unique_ptr<NodeStateStore> state;
  InlineExecutor executor;
  std::unique_ptr<NodeInstance> direct;
  std::unique_ptr<NodeInstance> chain;
  std::string error;

  Nodes() {
    std::vector<std::string> errors;
    registry.load_dirs({std::string(SLUICE_BINARY_DIR) + "/plugins"}, &errors);
    try {
      spec = load_pipeline_text(kPipeline, "<bench>", registry.catalog());
      settings = std::make_unique<SettingsStore>(spec.settings);
      state = std::make_unique<NodeStateStore>(settings.get());
      HostServices services{"bench", "", settings.get(), &metrics, state.get()};
      direct = NodeInstance::create(spec, *spec.find("direct"), registry, services);
      chain = NodeInstance::create(spec, *spec.find("chain"), registry, services);
      direct->set_executor(&executor);
      chain->set_executor(&executor);
      direct->start(spec);
      chain->start(spec);
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
};

Nodes& nodes() {
  static Nodes n;
  return n;
}

std::vector<uint8_t> liquidation() {
  EventBuilder b;
  b.id(1).key("ETHUSDT").event_time_ns(now_ns()).ingest_time_ns(now_ns());
  b.field("exchange", "binance")
      .field("symbol", "ETHUSDT")
      .field("side", "SELL")
      .field("avg_price", 3841.71)
      .field("quantity", 16.289)
      .field("notional_usd", 62577.61);
  auto bytes = b.finish();
  return {bytes.begin(), bytes.end()};
}

void run(benchmark::State& state, bool through_fallback) {
  Nodes& n = nodes();
  if (!n.error.empty()) {
    state.SkipWithError(n.error.c_str());
    return;
  }
  NodeInstance& node = through_fallback ? *n.chain : *n.direct;
  const std::vector<uint8_t> event = liquidation();
  const sluice_plugin_descriptor& d = node.descriptor();
  for (auto _ : state) {
    Call c;
    c.call.event = event.data();
    c.call.event_size = event.size();
    c.call.host_data = &c;
    c.call.emit = [](sluice_call* call, const char*, const uint8_t* data, size_t) {
      benchmark::DoNotOptimize(data);
      ++static_cast<Call*>(call->host_data)->emitted;
    };
    c.call.done = [](sluice_call* call, const sluice_outcome*) {
      static_cast<Call*>(call->host_data)->done = true;
    };
    c.call.on_cancel = [](sluice_call*, void (*fn)(void*, int), void* user) { fn(user, 0); };
    d.process(node.plugin().self(), &c.call);
    while (!c.done) n.executor.run();
    if (c.emitted != 1) {
      state.SkipWithError("the node did not emit one event");
      return;
    }
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_RulesDirect(benchmark::State& state) { run(state, false); }
void BM_RulesThroughFallback(benchmark::State& state) { run(state, true); }

BENCHMARK(BM_RulesDirect);
BENCHMARK(BM_RulesThroughFallback);

}  // namespace

BENCHMARK_MAIN();
