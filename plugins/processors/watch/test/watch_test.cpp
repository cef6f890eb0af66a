// watch: pass-through, the window's statistics, firing and resolving (hysteresis, min_samples,
// below), the failover-rate share, the latency measure, the interval timer on a quiet stream and
// option errors, driven through the plugin's entry point with sluice/testing.hpp. Tests that
// need old samples to leave the window sleep past it; their margins are generous.
#include <gtest/gtest.h>

#include <cmath>
#include <thread>

#include "../watch.hpp"
#include "sluice/testing.hpp"

namespace sluice::watch {
namespace {

using namespace std::chrono_literals;
using testkit::make_event;
using testkit::TestOptions;
using testkit::TestPlugin;

constexpr int64_t kMs = 1'000'000;

// Options as the host hands them over: defaults applied, durations in nanoseconds.
Json options(Json overrides) {
  Json o = {
      {"stat", "p95"}, {"window", 60'000 * kMs}, {"interval", 5'000 * kMs}, {"min_samples", 20}};
  for (auto& [k, v] : overrides.items()) o[k] = v;
  return o;
}

// Feeds events to a watch, checks each passes through untouched, and collects the alerts.
class Feeder {
 public:
  explicit Feeder(TestPlugin& p) : p_(p) {}

  // The fields of every alert event emitted while processing `event`.
  std::vector<Json> send(const std::vector<uint8_t>& event) {
    auto r = p_.process(event);
    EXPECT_TRUE(r.outcome.ok()) << r.outcome.message;
    std::vector<Json> alerts;
    size_t forwarded = 0;
    for (const auto& e : r.emitted) {
      if (e.output == "alerts") {
        alerts.push_back(testkit::event_to_json(e.bytes)["fields"]);
      } else {
        EXPECT_EQ(e.output, "");
        EXPECT_TRUE(e.forwarded);
        EXPECT_EQ(e.bytes, event);
        ++forwarded;
      }
    }
    EXPECT_EQ(forwarded, 1u);
    return alerts;
  }
  // `count` events whose field `name` is `value`.
  std::vector<Json> send(const std::string& name, const Json& value, int count = 1) {
    std::vector<Json> alerts;
    for (int i = 0; i < count; ++i) {
      for (Json& a : send(make_event({{name, value}}, "BTCUSDT", next_id_++))) {
        alerts.push_back(std::move(a));
      }
    }
    return alerts;
  }

 private:
  TestPlugin& p_;
  uint64_t next_id_ = 1;
};

TEST(Watch, PassesEveryEventThroughUnchangedAndCountsThoseItCannotMeasure) {
  TestPlugin p(options({{"field", "notional_usd"}, {"above", 1e6}, {"min_samples", 1}}));
  Feeder feed(p);
  EXPECT_TRUE(feed.send(make_event({{"notional_usd", 250000.5}, {"symbol", "BTCUSDT"}})).empty());
  EXPECT_TRUE(feed.send(make_event({{"symbol", "ETHUSDT"}}, "ETHUSDT", 7)).empty());
  EXPECT_TRUE(feed.send(make_event({{"notional_usd", "lots"}}, "ETHUSDT", 8)).empty());
  EXPECT_TRUE(feed.send(make_event({{"notional_usd", std::nan("")}}, "ETHUSDT", 9)).empty());
  EXPECT_EQ(p.host().counter("watch_unmeasured_total"), 3);
  EXPECT_EQ(p.host().gauge("watch_samples"), 1);
  EXPECT_EQ(p.host().gauge("watch_value"), 250000.5);
  // Warned once, not per event.
  auto logs = p.host().logs();
  ASSERT_EQ(logs.size(), 1u);
  EXPECT_EQ(logs[0].message,
            "event 7 has no finite number in field 'notional_usd'; such events are not measured "
            "(watch_unmeasured_total)");
}

TEST(Watch, StatisticsOverTheWindowUseTheNearestRank) {
  const std::pair<const char*, double> expected[] = {
      {"p50", 50}, {"p95", 95}, {"p99", 99}, {"mean", 50.5}, {"max", 100}};
  for (const auto& [stat, value] : expected) {
    TestPlugin p(options({{"field", "x"}, {"stat", stat}, {"above", 1e9}}));
    Feeder feed(p);
    // 1..100 in a scrambled order (37 is coprime with 100).
    for (int i = 0; i < 100; ++i) feed.send("x", (i * 37) % 100 + 1);
    EXPECT_EQ(p.host().gauge("watch_value"), value) << stat;
    EXPECT_EQ(p.host().gauge("watch_samples"), 100) << stat;
  }
}

TEST(Watch, FiresOnceAboveAndResolvesOnceBelowClearWithNothingInBetween) {
  // Each phase fills a fresh window: the test sleeps past the window between phases.
  const int64_t window = 300 * kMs;
  TestPlugin p(options({{"field", "spread_bps"},
                        {"window", window},
                        {"min_samples", 5},
                        {"above", 100},
                        {"clear", 80}}));
  Feeder feed(p);
  auto next_window = [&] { std::this_thread::sleep_for(std::chrono::nanoseconds(window) + 100ms); };

  EXPECT_TRUE(feed.send("spread_bps", 50, 10).empty());
  next_window();
  auto fired = feed.send("spread_bps", 150, 10);
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0], Json({{"alert", "firing"},
                            {"watch", "under_test"},
                            {"metric", "p95 spread_bps"},
                            {"value", 150.0},
                            {"threshold", 100.0},
                            {"direction", "above"},
                            {"samples", 5},
                            {"window_s", 0.3},
                            {"text",
                             "🔴 p95 spread_bps is 150 (above 100) over the last 300 ms "
                             "(5 events)"}}));
  EXPECT_EQ(p.host().gauge("watch_firing"), 1);
  next_window();
  EXPECT_TRUE(feed.send("spread_bps", 90, 10).empty()) << "between clear and threshold";
  next_window();
  auto resolved = feed.send("spread_bps", 70, 10);
  ASSERT_EQ(resolved.size(), 1u);
  EXPECT_EQ(resolved[0]["alert"], "resolved");
  EXPECT_EQ(resolved[0]["value"], 70.0);
  EXPECT_EQ(resolved[0]["text"], "✅ p95 spread_bps is back to 70 over the last 300 ms (5 events)");
  next_window();
  EXPECT_TRUE(feed.send("spread_bps", 90, 10).empty()) << "no new alert below the threshold";

  EXPECT_EQ(p.host().counter("watch_alerts_total", "state=\"firing\""), 1);
  EXPECT_EQ(p.host().counter("watch_alerts_total", "state=\"resolved\""), 1);
  EXPECT_EQ(p.host().gauge("watch_firing"), 0);
  EXPECT_TRUE(p.host().logged(SLUICE_LOG_WARN, "🔴 p95 spread_bps is 150"));
  EXPECT_TRUE(p.host().logged(SLUICE_LOG_INFO, "✅ p95 spread_bps is back to 70"));
}

TEST(Watch, AlertEventsHaveIdsKeyAndTime) {
  TestPlugin p(options({{"field", "x"}, {"stat", "p50"}, {"above", 10}, {"min_samples", 1}}));
  int64_t before = now_ns();
  auto r = p.process(make_event({{"x", 11}}));
  ASSERT_EQ(r.emitted.size(), 2u);
  EXPECT_EQ(r.emitted[1].output, "alerts");
  EventView alert = r.emitted[1].view();
  EXPECT_EQ(alert.id(), 1u);
  EXPECT_EQ(alert.key(), "under_test");
  EXPECT_GE(alert.event_time_ns(), before);
  EXPECT_LE(alert.event_time_ns(), now_ns());
  auto again = p.process(make_event({{"x", 1}}));
  ASSERT_EQ(again.emitted.size(), 2u);
  EXPECT_EQ(again.emitted[1].view().id(), 2u);
  EXPECT_EQ(again.emitted[1].view().string("alert"), "resolved");
}

TEST(Watch, FewerThanMinSamplesNeitherFires) {
  TestPlugin p(options({{"field", "x"}, {"above", 100}, {"min_samples", 20}}));
  Feeder feed(p);
  EXPECT_TRUE(feed.send("x", 500, 19).empty());
  EXPECT_EQ(p.host().gauge("watch_samples"), 19);
  EXPECT_EQ(p.host().gauge("watch_value"), 500);
  EXPECT_EQ(p.host().gauge("watch_firing"), 0);
  auto fired = feed.send("x", 500);
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0]["samples"], 20);
}

TEST(Watch, FewerThanMinSamplesNeitherResolves) {
  // The stream stops while the alert fires: its samples expire, but no data is not good news.
  TestPlugin p(options({{"field", "x"},
                        {"above", 100},
                        {"min_samples", 5},
                        {"window", 200 * kMs},
                        {"interval", 50 * kMs}}));
  Feeder feed(p);
  ASSERT_EQ(feed.send("x", 500, 5).size(), 1u);
  std::this_thread::sleep_for(400ms);
  p.host().run_posted();
  EXPECT_EQ(p.host().gauge("watch_samples"), 0);
  EXPECT_EQ(p.host().gauge("watch_firing"), 1);
  EXPECT_EQ(p.host().counter("watch_alerts_total", "state=\"resolved\""), 0);
}

TEST(Watch, BelowFiresWhenTheValueDropsAndResolvesAtClear) {
  TestPlugin p(options({{"field", "depth"},
                        {"stat", "mean"},
                        {"below", 10},
                        {"clear", 20},
                        {"min_samples", 5},
                        {"name", "mean book depth"}}));
  Feeder feed(p);
  EXPECT_TRUE(feed.send("depth", 31, 5).empty());
  // The mean 155 / (5 + k) drops below 10 at the 11th zero.
  EXPECT_TRUE(feed.send("depth", 0, 10).empty());
  auto fired = feed.send("depth", 0);
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0]["text"],
            "🔴 mean book depth is 9.69 (below 10) over the last 60 s (16 events)");
  EXPECT_EQ(fired[0]["direction"], "below");
  // Back to 19.4 (above 10, not yet at clear), then 23.9.
  EXPECT_TRUE(feed.send("depth", 100, 2).empty());
  auto resolved = feed.send("depth", 100);
  ASSERT_EQ(resolved.size(), 1u);
  EXPECT_EQ(resolved[0]["text"],
            "✅ mean book depth is back to 23.9 over the last 60 s (19 events)");
}

TEST(Watch, MatchShareFiresOnTheFailoverRate) {
  TestPlugin p(options({{"match", "fallback_errors != \"[]\""},
                        {"above", 0.2},
                        {"min_samples", 10},
                        {"name", "failover rate"}}));
  Feeder feed(p);
  const std::string failover = R"([{"child":"primary","class":"timeout","message":"slow"}])";
  EXPECT_TRUE(feed.send("fallback_errors", "[]", 10).empty());
  EXPECT_TRUE(feed.send("fallback_errors", failover, 2).empty());  // 2 / 12
  auto fired = feed.send("fallback_errors", failover);             // 3 / 13
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0]["metric"], "share matching fallback_errors != \"[]\"");
  EXPECT_DOUBLE_EQ(fired[0]["value"].get<double>(), 3.0 / 13.0);
  EXPECT_EQ(fired[0]["threshold"], 0.2);
  EXPECT_EQ(fired[0]["text"],
            "🔴 failover rate is 23.1% (above 20%) over the last 60 s (13 events)");
  EXPECT_TRUE(feed.send("fallback_errors", failover, 5).empty()) << "fires once per crossing";
}

TEST(Watch, LatencyIsNowMinusTheEventTimeInMs) {
  TestPlugin p(options({{"measure", "latency"}, {"above", 1000}, {"min_samples", 5}}));
  Feeder feed(p);
  for (uint64_t id = 1; id <= 5; ++id) {
    EXPECT_TRUE(feed.send(make_event({{"symbol", "BTCUSDT"}}, "BTCUSDT", id, now_ns())).empty());
  }
  std::vector<Json> fired;
  for (uint64_t id = 6; id <= 10; ++id) {
    auto event = make_event({{"symbol", "BTCUSDT"}}, "BTCUSDT", id, now_ns() - 5000 * kMs);
    for (Json& a : feed.send(event)) fired.push_back(std::move(a));
  }
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0]["metric"], "p95 latency_ms");
  double ms = fired[0]["value"].get<double>();
  EXPECT_GE(ms, 5000);
  EXPECT_LT(ms, 60000);
  const std::string text = fired[0]["text"];
  EXPECT_EQ(text.rfind("🔴 p95 exchange-to-alert latency is ", 0), 0u) << text;
  EXPECT_NE(text.find(" ms (above 1000 ms) over the last 60 s ("), std::string::npos) << text;
}

TEST(Watch, TheIntervalTimerLetsAQuietWindowRecover) {
  TestPlugin p(options({{"field", "x"},
                        {"above", 100},
                        {"min_samples", 5},
                        {"window", 1000 * kMs},
                        {"interval", 50 * kMs}}));
  EXPECT_EQ(p.host().pending_timers(), 1u);
  Feeder feed(p);
  ASSERT_EQ(feed.send("x", 150, 10).size(), 1u);
  std::this_thread::sleep_for(500ms);
  // Ten highs and ten lows: the p95 is still high.
  EXPECT_TRUE(feed.send("x", 50, 10).empty());
  // Then nothing arrives. Once the highs are past the window (the lows not yet, with 400 ms of
  // margin), the timer finds the value back below the threshold.
  std::this_thread::sleep_for(600ms);
  p.host().run_posted();
  EXPECT_EQ(p.host().gauge("watch_samples"), 10);
  EXPECT_EQ(p.host().gauge("watch_firing"), 0);
  EXPECT_EQ(p.host().counter("watch_alerts_total", "state=\"resolved\""), 1);
  EXPECT_EQ(p.host().pending_timers(), 1u) << "re-armed";
  // The resolved event goes out from the timer itself (Host::emit), not with a later event.
  auto sent = p.host().host_emitted();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].first, "alerts");
  Json resolved = testkit::event_to_json(sent[0].second)["fields"];
  EXPECT_EQ(resolved["alert"], "resolved");
  EXPECT_EQ(resolved["samples"], 10);
  EXPECT_TRUE(feed.send("x", 50).empty());
}

TEST(Watch, ValidatingStartsNoTimer) {
  TestOptions create_only;
  create_only.start = false;
  TestPlugin p(options({{"field", "x"}, {"above", 1}}), create_only);
  EXPECT_EQ(p.host().pending_timers(), 0u);
}

TEST(Watch, BadOptionsNameTheOption) {
  auto error = [](Json o) {
    auto e = TestPlugin::create_error(options(std::move(o)));
    return e ? e->key() + ": " + e->what() : std::string("accepted");
  };
  EXPECT_EQ(error({{"field", "x"}, {"above", 1}}), "accepted");
  EXPECT_EQ(error({{"above", 1}}),
            "field: give one of field, measure or match: what the watch measures");
  EXPECT_EQ(error({{"field", "x"}, {"match", "x > 1"}, {"above", 1}}),
            "match: cannot be combined with field: a watch measures one thing (use a second "
            "watch node)");
  EXPECT_EQ(error({{"field", "x"}, {"measure", "latency"}, {"above", 1}}).rfind("measure: ", 0),
            0u);
  EXPECT_EQ(error({{"field", ""}, {"above", 1}}), "field: must not be empty");
  EXPECT_EQ(error({{"measure", "throughput"}, {"above", 1}}), "measure: must be latency");
  EXPECT_EQ(error({{"field", "x"}, {"stat", "p90"}, {"above", 1}}),
            "stat: must be one of p50, p95, p99, mean, max");
  EXPECT_EQ(error({{"field", "x"}, {"window", -1000}, {"above", 1}}), "window: must be positive");
  EXPECT_EQ(error({{"field", "x"}, {"interval", 0}, {"above", 1}}), "interval: must be positive");
  EXPECT_EQ(error({{"field", "x"}, {"min_samples", 0}, {"above", 1}}),
            "min_samples: must be at least 1");
  EXPECT_EQ(error({{"field", "x"}}),
            "above: give above or below: the threshold that fires the alert");
  EXPECT_EQ(error({{"field", "x"}, {"above", 1}, {"below", 0}}),
            "below: cannot be combined with above: a watch has one threshold");
  EXPECT_EQ(error({{"field", "x"}, {"above", 100}, {"clear", 120}}),
            "clear: must not be above the threshold (above = 100): the alert resolves once the "
            "value is back at or below it");
  EXPECT_EQ(error({{"field", "x"}, {"below", 10}, {"clear", 5}}),
            "clear: must not be below the threshold (below = 10): the alert resolves once the "
            "value is back at or above it");
  EXPECT_EQ(error({{"match", "x > 1"}, {"above", 5}}),
            "above: is a share between 0 and 1 with match, e.g. 0.05 for 5%");
  EXPECT_EQ(error({{"match", "x > 1"}, {"above", 0.1}, {"clear", -0.1}}),
            "clear: is a share between 0 and 1 with match, e.g. 0.05 for 5%");
  EXPECT_EQ(error({{"field", "x"}, {"above", 1}, {"name", ""}}), "name: must not be empty");

  auto bad = TestPlugin::create_error(options({{"match", "fallback_errors != "}, {"above", 0.1}}));
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->key(), "match");
  EXPECT_EQ(bad->column(), 20u);
  EXPECT_STREQ(bad->what(), "expected an operand after '!=' at column 20");
}

}  // namespace
}  // namespace sluice::watch
