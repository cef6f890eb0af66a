// The stage runtime end to end, in one process: delivery, async calls with in-flight caps,
// ordering, dead-letter outputs, composites, backpressure, drain and the admin endpoint.
#include <gtest/gtest.h>

#include <set>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "loopback_http.hpp"
#include "pipeline_runner.hpp"
#include "sluice/core/runtime.hpp"

namespace sluice::core {
namespace {

using testing::read_lines;
using testing::run_pipeline;
using testing::TempDir;

std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::vector<nlohmann::json> out;
  for (const std::string& line : read_lines(path)) out.push_back(nlohmann::json::parse(line));
  return out;
}

std::multiset<uint64_t> ids_of(const std::vector<nlohmann::json>& events) {
  std::multiset<uint64_t> ids;
  for (const auto& e : events) ids.insert(e["_sluice"]["id"].get<uint64_t>());
  return ids;
}

std::string header(const TempDir& dir) {
  return fmt::format("[pipeline]\nname = \"t\"\nstate_dir = \"{}/state\"\n\n", dir.path());
}

TEST(Runtime, FiniteSourceDrainsThroughFilterAndExitsZero) {
  TempDir dir;
  std::string path = dir.write("p.toml", header(dir) + fmt::format(R"(
[sources.gen]
type = "generator"
count = 1000

[processors.keep]
type = "filter"
inputs = ["gen"]
where = "notional_usd >= 0"

[sinks.out]
type = "file"
inputs = ["keep"]
path = "{}/out.jsonl"
)",
                                                                   dir.path()));
  auto r = run_pipeline(path);
  EXPECT_EQ(r.exit_code, 0);
  auto events = read_jsonl(dir.file("out.jsonl"));
  ASSERT_EQ(events.size(), 1000u);
  auto ids = ids_of(events);
  EXPECT_EQ(std::set<uint64_t>(ids.begin(), ids.end()).size(), 1000u);  // each exactly once
  EXPECT_EQ(r.node("gen")->events_out, 1000u);
  EXPECT_EQ(r.node("keep")->events_in, 1000u);
  EXPECT_EQ(r.node("out")->events_in, 1000u);
}

TEST(Runtime, AsyncProcessorWithInFlightCapLosesNothing) {
  TempDir dir;
  std::string path = dir.write("p.toml", header(dir) + fmt::format(R"(
[sources.gen]
type = "generator"
count = 600

[processors.slow]
type = "test_async"
inputs = ["gen"]
delay = "2ms"
jitter = true
max_in_flight = 32

[sinks.out]
type = "file"
inputs = ["slow"]
path = "{}/out.jsonl"
)",
                                                                   dir.path()));
  auto r = run_pipeline(path);
  EXPECT_EQ(r.exit_code, 0);
  auto ids = ids_of(read_jsonl(dir.file("out.jsonl")));
  EXPECT_EQ(ids.size(), 600u);
  EXPECT_EQ(std::set<uint64_t>(ids.begin(), ids.end()).size(), 600u);
}

TEST(Runtime, OrderedProcessorEmitsInInputOrderDespiteJitter) {
  TempDir dir;
  std::string path = dir.write("p.toml", header(dir) + fmt::format(R"(
[sources.gen]
type = "generator"
count = 300

[processors.slow]
type = "test_async"
inputs = ["gen"]
delay = "3ms"
jitter = true
max_in_flight = 64
ordered = true

[sinks.out]
type = "file"
inputs = ["slow"]
path = "{}/out.jsonl"
)",
                                                                   dir.path()));
  ASSERT_EQ(run_pipeline(path).exit_code, 0);
  auto events = read_jsonl(dir.file("out.jsonl"));
  ASSERT_EQ(events.size(), 300u);
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i]["_sluice"]["id"].get<uint64_t>(), i + 1) << "position " << i;
  }
}

TEST(Runtime, FailedEventsGoToTheErrorsOutputWithTheirClass) {
  TempDir dir;
  std::string path = dir.write("p.toml", header(dir) + fmt::format(R"(
[sources.gen]
type = "generator"
count = 200

[processors.flaky]
type = "test_async"
inputs = ["gen"]
delay = "0ms"
fail_every = 10
fail_status = "rate_limited"

[sinks.good]
type = "file"
inputs = ["flaky"]
path = "{0}/good.jsonl"

[sinks.dead]
type = "file"
inputs = ["flaky.errors"]
path = "{0}/dead.jsonl"
)",
                                                                   dir.path()));
  auto r = run_pipeline(path);
  EXPECT_EQ(r.exit_code, 0);
  auto good = read_jsonl(dir.file("good.jsonl"));
  auto dead = read_jsonl(dir.file("dead.jsonl"));
  EXPECT_EQ(good.size(), 180u);
  ASSERT_EQ(dead.size(), 20u);
  EXPECT_EQ(dead[0]["_sluice"]["attrs"]["error.class"], "rate_limited");
  EXPECT_EQ(dead[0]["_sluice"]["attrs"]["error.node"], "flaky");
  EXPECT_EQ(dead[0]["_sluice"]["attrs"]["error.message"].get<std::string>().rfind(
                "injected failure #", 0),
            0u);
  EXPECT_EQ(r.node("flaky")->errors, 20u);
  auto all = ids_of(good);
  auto dead_ids = ids_of(dead);
  all.insert(dead_ids.begin(), dead_ids.end());
  EXPECT_EQ(std::set<uint64_t>(all.begin(), all.end()).size(), 200u);  // nothing lost
}

TEST(Runtime, CompositeFallsBackToTheNextChildAndObservesEachOutcome) {
  TempDir dir;
  std::string path = dir.write("p.toml", header(dir) + fmt::format(R"(
[sources.gen]
type = "generator"
count = 50

[processors.classify]
type = "test_chain"
inputs = ["gen"]
chain = ["primary", "backup"]

[processors.primary]
type = "test_async"
delay = "1ms"
fail_every = 2
fail_status = "timeout"
tag = "primary"
cost_usd = 0.5

[processors.backup]
type = "test_async"
delay = "0ms"
tag = "backup"

[sinks.out]
type = "file"
inputs = ["classify"]
path = "{}/out.jsonl"
)",
                                                                   dir.path()));
  PipelineSpec spec = testing::load_spec(path);
  RunOptions opts;
  opts.admin_port = -1;
  opts.print_summary = false;
  Pipeline p(spec, testing::test_registry(), opts);
  ASSERT_EQ(p.run(), 0);
  auto events = read_jsonl(dir.file("out.jsonl"));
  ASSERT_EQ(events.size(), 50u);
  int primary = 0;
  int backup = 0;
  for (const auto& e : events) (e["handled_by"] == "primary" ? primary : backup)++;
  EXPECT_EQ(primary, 25);
  EXPECT_EQ(backup, 25);
  std::string metrics = p.metrics().render_prometheus();
  EXPECT_NE(metrics.find("sluice_test_chain_attempts_total{node=\"classify\",child=\"primary\","
                         "outcome=\"timeout\"} 25"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("sluice_test_chain_attempts_total{node=\"classify\",child=\"backup\","
                         "outcome=\"ok\"} 25"),
            std::string::npos);
  // Children are nodes too: their own counters are exported.
  EXPECT_NE(metrics.find("sluice_node_errors_total{node=\"primary\",kind=\"processor\","
                         "type=\"test_async\",class=\"timeout\"} 25"),
            std::string::npos);
}

TEST(Runtime, SlowSinkAppliesBackpressureWithoutLossAndBoundedQueues) {
  TempDir dir;
  std::string path = dir.write("p.toml", header(dir) + R"(
[sources.gen]
type = "generator"
count = 1500

[sinks.slow]
type = "test_slow_sink"
inputs = ["gen"]
delay = "200us"
max_in_flight = 1
)");
  PipelineSpec spec = testing::load_spec(path);
  RunOptions opts;
  opts.admin_port = -1;
  opts.print_summary = false;
  opts.queue_capacity = 50;
  Pipeline p(spec, testing::test_registry(), opts);
  std::atomic<bool> done{false};
  uint64_t max_gap = 0;
  std::thread sampler([&] {
    while (!done) {
      const NodeMetrics* gen = p.metrics().find_node("gen");
      const NodeMetrics* sink = p.metrics().find_node("slow");
      if (gen && sink) {
        uint64_t in = sink->events_in.load();
        uint64_t out = gen->events_out.load();
        if (out > in) max_gap = std::max(max_gap, out - in);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  });
  int rc = p.run();
  done = true;
  sampler.join();
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(p.metrics().find_node("slow")->events_in.load(), 1500u);
  // Queued events are bounded by the send and receive high-water marks (50 + 50) plus one
  // receive batch; an unbounded queue would let the source run ~1500 ahead.
  EXPECT_LE(max_gap, 50u + 50u + 256u + 10u);
  EXPECT_GT(max_gap, 0u);
}

TEST(Runtime, StopDrainsEventsAlreadyInFlight) {
  TempDir dir;
  std::string path = dir.write("p.toml", header(dir) + fmt::format(R"(
[sources.gen]
type = "generator"
rate = 2000.0

[processors.slow]
type = "test_async"
inputs = ["gen"]
delay = "100ms"
max_in_flight = 1000

[sinks.out]
type = "file"
inputs = ["slow"]
path = "{}/out.jsonl"
)",
                                                                   dir.path()));
  PipelineSpec spec = testing::load_spec(path);
  RunOptions opts;
  opts.admin_port = -1;
  opts.print_summary = false;
  Pipeline p(spec, testing::test_registry(), opts);
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    p.stop();
  });
  int rc = p.run();
  stopper.join();
  EXPECT_EQ(rc, 0);
  uint64_t produced = p.metrics().find_node("gen")->events_out.load();
  EXPECT_GT(produced, 0u);
  EXPECT_EQ(p.metrics().find_node("slow")->events_in.load(), produced);
  EXPECT_EQ(p.metrics().find_node("slow")->events_out.load(), produced);
  EXPECT_EQ(read_lines(dir.file("out.jsonl")).size(), produced);
}

TEST(Runtime, DrainIsBoundedByTheGracePeriod) {
  TempDir dir;
  std::string path = dir.write("p.toml", fmt::format(R"(
[pipeline]
name = "t"
state_dir = "{}/state"
grace_period = "200ms"

[sources.gen]
type = "generator"
rate = 100.0

[processors.stuck]
type = "test_async"
inputs = ["gen"]
delay = "30s"

[sinks.out]
type = "blackhole"
inputs = ["stuck"]
)",
                                                     dir.path()));
  PipelineSpec spec = testing::load_spec(path);
  RunOptions opts;
  opts.admin_port = -1;
  opts.print_summary = false;
  Pipeline p(spec, testing::test_registry(), opts);
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    p.stop();
  });
  auto start = std::chrono::steady_clock::now();
  int rc = p.run();
  stopper.join();
  EXPECT_EQ(rc, 1);  // forced: events were still in flight
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
}

// Minimal HTTP/1.1 client for the admin endpoint (loopback only).
std::string http(uint16_t port, const std::string& method, const std::string& target,
                 const std::string& body = "") {
  return testing::loopback_http(port, method, target, body);
}

TEST(Runtime, AdminEndpointServesMetricsHealthAndSettings) {
  TempDir dir;
  std::string path = dir.write("p.toml", header(dir) + R"(
[settings]
min_usd = 100

[sources.gen]
type = "generator"
rate = 200.0

[processors.big]
type = "filter"
inputs = ["gen"]
where = "notional_usd >= $min_usd"

[sinks.out]
type = "blackhole"
inputs = ["big"]
)");
  PipelineSpec spec = testing::load_spec(path);
  RunOptions opts;
  opts.admin_port = 0;
  opts.print_summary = false;
  Pipeline p(spec, testing::test_registry(), opts);
  std::thread runner([&] { p.run(); });
  while (p.admin_port() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  uint16_t port = p.admin_port();
  std::string health = http(port, "GET", "/health");
  EXPECT_NE(health.find("HTTP/1.1 200"), std::string::npos);
  EXPECT_NE(health.find("\r\n\r\nok\n"), std::string::npos);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::string metrics = http(port, "GET", "/metrics");
  EXPECT_NE(metrics.find("Content-Type: text/plain; version=0.0.4"), std::string::npos);
  EXPECT_NE(metrics.find("# TYPE sluice_node_events_in_total counter"), std::string::npos);
  EXPECT_NE(metrics.find("sluice_node_events_in_total{node=\"big\",kind=\"processor\","
                         "type=\"filter\"}"),
            std::string::npos);
  EXPECT_NE(metrics.find("sluice_node_ingest_latency_seconds_bucket{node=\"out\",kind=\"sink\","
                         "type=\"blackhole\",le=\"+Inf\"}"),
            std::string::npos);
  std::string set = http(port, "PUT", "/settings/min_usd", "25000");
  EXPECT_NE(set.find("HTTP/1.1 200"), std::string::npos) << set;
  EXPECT_EQ(p.settings().get("min_usd"), nlohmann::json(25000));
  std::string bad = http(port, "PUT", "/settings/min_usd", "\"lots\"");
  EXPECT_NE(bad.find("HTTP/1.1 400"), std::string::npos);
  EXPECT_NE(bad.find("setting 'min_usd' is a number, got a string"), std::string::npos);
  std::string unknown = http(port, "PUT", "/settings/nope", "1");
  EXPECT_NE(unknown.find("unknown setting 'nope'"), std::string::npos);
  p.stop();
  runner.join();
}

TEST(Settings, ChangedValuePersistsAcrossRestarts) {
  TempDir dir;
  std::vector<SettingSpec> specs = {{"min_usd", 10000, {}}, {"mode", "live", {}}};
  {
    SettingsStore s(dir.path(), specs);
    EXPECT_EQ(s.get("min_usd"), nlohmann::json(10000));
    uint64_t v = s.version();
    EXPECT_EQ(s.set("min_usd", 25000), "");
    EXPECT_GT(s.version(), v);
  }
  SettingsStore again(dir.path(), specs);
  EXPECT_EQ(again.get("min_usd"), nlohmann::json(25000));
  EXPECT_EQ(again.get("mode"), nlohmann::json("live"));
}

TEST(Settings, ChangeByAnotherProcessIsPickedUpByRefresh) {
  TempDir dir;
  std::vector<SettingSpec> specs = {{"min_usd", 10000, {}}};
  SettingsStore a(dir.path(), specs);
  SettingsStore b(dir.path(), specs);
  uint64_t v = b.version();
  EXPECT_EQ(a.set("min_usd", 5), "");
  b.refresh();
  EXPECT_EQ(b.get("min_usd"), nlohmann::json(5));
  EXPECT_GT(b.version(), v);
}

}  // namespace
}  // namespace sluice::core
