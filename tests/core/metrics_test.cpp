// Prometheus exposition: HELP/TYPE, cumulative buckets, label escaping, plugin series.
#include <gtest/gtest.h>

#include "sluice/abi.h"
#include "sluice/core/metrics.hpp"

namespace sluice::core {
namespace {

TEST(Metrics, HistogramBucketsAreCumulativeWithInfSumAndCount) {
  MetricsRegistry reg;
  reg.observe("n", "llm_latency_seconds", "model=\"m\"", 0.0004);
  reg.observe("n", "llm_latency_seconds", "model=\"m\"", 2.0);
  std::string out = reg.render_prometheus();
  EXPECT_NE(out.find("# TYPE sluice_llm_latency_seconds histogram"), std::string::npos);
  EXPECT_NE(out.find("sluice_llm_latency_seconds_bucket{node=\"n\",model=\"m\",le=\"0.0001\"} 0"),
            std::string::npos);
  EXPECT_NE(out.find("sluice_llm_latency_seconds_bucket{node=\"n\",model=\"m\",le=\"0.0005\"} 1"),
            std::string::npos);
  EXPECT_NE(out.find("sluice_llm_latency_seconds_bucket{node=\"n\",model=\"m\",le=\"2.5\"} 2"),
            std::string::npos);
  EXPECT_NE(out.find("sluice_llm_latency_seconds_bucket{node=\"n\",model=\"m\",le=\"+Inf\"} 2"),
            std::string::npos);
  EXPECT_NE(out.find("sluice_llm_latency_seconds_count{node=\"n\",model=\"m\"} 2"),
            std::string::npos);
}

TEST(Metrics, CountersAccumulateAndLabelValuesAreEscaped) {
  MetricsRegistry reg;
  reg.counter_add("a\"b", "alerts_total", "", 2);
  reg.counter_add("a\"b", "alerts_total", "", 3);
  std::string out = reg.render_prometheus();
  EXPECT_NE(out.find("# HELP sluice_alerts_total"), std::string::npos);
  EXPECT_NE(out.find("sluice_alerts_total{node=\"a\\\"b\"} 5"), std::string::npos) << out;
  EXPECT_DOUBLE_EQ(reg.counter_value("a\"b", "alerts_total"), 5);
  EXPECT_EQ(escape_label("x\\y\nz"), "x\\\\y\\nz");
}

TEST(Metrics, NodeCountersAppearWithNodeKindAndType) {
  MetricsRegistry reg;
  NodeMetrics& m = reg.node("big", "processor", "filter");
  m.events_in += 7;
  m.errors[SLUICE_ERR_TIMEOUT] += 2;
  std::string out = reg.render_prometheus();
  EXPECT_NE(out.find("sluice_node_events_in_total{node=\"big\",kind=\"processor\","
                     "type=\"filter\"} 7"),
            std::string::npos);
  EXPECT_NE(out.find("sluice_node_errors_total{node=\"big\",kind=\"processor\",type=\"filter\","
                     "class=\"timeout\"} 2"),
            std::string::npos);
}

TEST(Metrics, QuantileUpperBoundFindsTheBucket) {
  Histogram h;
  for (int i = 0; i < 99; ++i) h.observe_ns(20'000);  // 20 µs
  h.observe_ns(3'000'000);                            // 3 ms
  EXPECT_DOUBLE_EQ(h.quantile_upper_bound(0.5), 2e-5);
  EXPECT_DOUBLE_EQ(h.quantile_upper_bound(0.999), 5e-3);
}

}  // namespace
}  // namespace sluice::core
