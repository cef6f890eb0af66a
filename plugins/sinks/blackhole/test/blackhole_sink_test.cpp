// Tests of the `blackhole` sink through the real loader and host: it completes every event,
// counts events and bytes, and reports at report_interval.
#include <gtest/gtest.h>

#include <chrono>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "plugin_harness.hpp"

namespace {

using sluice::testing::make_event;
using sluice::testing::PluginHarness;

TEST(BlackholeSink, CompletesAndCountsEveryEventAndItsBytes) {
  PluginHarness sink("sink", "blackhole", "");
  std::vector<std::vector<uint8_t>> events = {make_event({{"a", 1}}),
                                              make_event({{"symbol", "BTCUSDT"}, {"p", 1.5}}),
                                              make_event({{"s", std::string(300, 'x')}})};
  size_t bytes = 0;
  for (const auto& e : events) bytes += e.size();
  for (const auto& r : sink.process_all(events)) {
    EXPECT_TRUE(r.outcome.ok());
    EXPECT_TRUE(r.emitted.empty());
  }
  sink.flush();
  EXPECT_EQ(sink.counter("blackhole_events_total"), 3);
  EXPECT_EQ(sink.counter("blackhole_bytes_total"), static_cast<double>(bytes));
  // A second flush adds only what arrived since the first.
  EXPECT_TRUE(sink.process(events[0]).outcome.ok());
  sink.flush();
  EXPECT_EQ(sink.counter("blackhole_events_total"), 4);
  EXPECT_EQ(sink.counter("blackhole_bytes_total"), static_cast<double>(bytes + events[0].size()));
}

TEST(BlackholeSink, LogsCountAndRateEveryReportInterval) {
  PluginHarness sink("sink", "blackhole", "report_interval = \"10ms\"");
  EXPECT_TRUE(sink.process(make_event({{"a", 1}})).outcome.ok());
  EXPECT_TRUE(sink.process(make_event({{"a", 2}})).outcome.ok());
  const std::regex report(R"(2 events, \d+ ev/s)");
  bool found = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!found && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    for (const auto& line : sink.logs()) {
      if (line.level == SLUICE_LOG_INFO && std::regex_match(line.message, report)) found = true;
    }
  }
  EXPECT_TRUE(found);
  // The reporter also publishes the counters, without a flush.
  EXPECT_EQ(sink.counter("blackhole_events_total"), 2);
}

TEST(BlackholeSink, LogsNothingWhenReportIntervalIsZero) {
  PluginHarness sink("sink", "blackhole", "");
  EXPECT_TRUE(sink.process(make_event({{"a", 1}})).outcome.ok());
  sink.flush();
  for (const auto& line : sink.logs()) {
    EXPECT_EQ(line.message.find("ev/s"), std::string::npos) << line.message;
  }
}

}  // namespace
