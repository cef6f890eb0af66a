// Tests of the `console` sink through the real loader and host: exact text and JSON lines on
// stdout and stderr, field subsets, and the timed flush that keeps interactive use live.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "plugin_harness.hpp"

namespace {

using sluice::EventBuilder;
using sluice::testing::PluginHarness;

constexpr int64_t kTime = 1761125802306000000;  // 2025-10-22T09:36:42.306Z

std::vector<uint8_t> liquidation(const std::string& symbol, double price, double qty,
                                 const std::string& side) {
  EventBuilder b;
  b.id(9)
      .event_time_ns(kTime)
      .ingest_time_ns(kTime)
      .source("file")
      .key(symbol)
      .field("symbol", symbol)
      .field("side", side)
      .field("avg_price", price)
      .field("filled_qty", qty);
  auto bytes = b.finish();
  return {bytes.begin(), bytes.end()};
}

// Runs the sink over the events, flushes it, and returns what it printed on stdout.
std::string print(const std::string& options, const std::vector<std::vector<uint8_t>>& events) {
  PluginHarness sink("sink", "console", options);
  ::testing::internal::CaptureStdout();
  for (const auto& e : events) EXPECT_TRUE(sink.process(e).outcome.ok());
  sink.flush();
  return ::testing::internal::GetCapturedStdout();
}

TEST(ConsoleSink, PrintsTextLinesByDefault) {
  EXPECT_EQ(print("", {liquidation("SOLUSDT", 184.22, 0.04, "SELL"),
                       liquidation("币安人生USDT", 0.1, 3000.0, "BUY")}),
            "2025-10-22T09:36:42.306Z [file] SOLUSDT avg_price=184.22 filled_qty=0.04 side=SELL "
            "symbol=SOLUSDT\n"
            "2025-10-22T09:36:42.306Z [file] 币安人生USDT avg_price=0.1 filled_qty=3000 side=BUY "
            "symbol=币安人生USDT\n");
}

TEST(ConsoleSink, PrintsOnlyTheListedFieldsInTheirOrder) {
  EXPECT_EQ(
      print("fields = [\"side\", \"avg_price\"]", {liquidation("SOLUSDT", 184.22, 0.04, "SELL")}),
      "2025-10-22T09:36:42.306Z [file] SOLUSDT side=SELL avg_price=184.22\n");
}

TEST(ConsoleSink, PrintsJsonLinesWithoutMetadataByDefault) {
  EXPECT_EQ(print("format = \"json\"", {liquidation("SOLUSDT", 184.22, 0.04, "SELL")}),
            R"({"avg_price":184.22,"filled_qty":0.04,"side":"SELL","symbol":"SOLUSDT"})"
            "\n");
}

TEST(ConsoleSink, PrintsJsonMetadataWhenAsked) {
  EXPECT_EQ(print("format = \"json\"\nmetadata = true\nfields = [\"symbol\"]",
                  {liquidation("SOLUSDT", 184.22, 0.04, "SELL")}),
            R"({"symbol":"SOLUSDT","_sluice":{"id":9,"event_time":"2025-10-22T09:36:42.306Z",)"
            R"("ingest_time":"2025-10-22T09:36:42.306Z","source":"file","key":"SOLUSDT"}})"
            "\n");
}

TEST(ConsoleSink, PrintsOnStderrWhenAsked) {
  PluginHarness sink("sink", "console", "stream = \"stderr\"\nfields = [\"side\"]");
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  EXPECT_TRUE(sink.process(liquidation("SOLUSDT", 184.22, 0.04, "SELL")).outcome.ok());
  sink.flush();
  const std::string err = ::testing::internal::GetCapturedStderr();
  const std::string out = ::testing::internal::GetCapturedStdout();
  EXPECT_EQ(err, "2025-10-22T09:36:42.306Z [file] SOLUSDT side=SELL\n");
  EXPECT_EQ(out, "");
}

TEST(ConsoleSink, KeepsEveryLineInOrderAcrossBatches) {
  std::vector<std::vector<uint8_t>> events;
  std::string expected;
  for (int i = 0; i < 2000; ++i) {
    events.push_back(liquidation("S" + std::to_string(i), 1.5, 2.0, "BUY"));
    expected += "2025-10-22T09:36:42.306Z [file] S" + std::to_string(i) + " symbol=S" +
                std::to_string(i) + "\n";
  }
  PluginHarness sink("sink", "console", "fields = [\"symbol\"]");
  ::testing::internal::CaptureStdout();
  for (const auto& r : sink.process_all(events)) EXPECT_TRUE(r.outcome.ok());
  sink.flush();
  EXPECT_EQ(::testing::internal::GetCapturedStdout(), expected);
}

TEST(ConsoleSink, PrintsWithoutWaitingForFlush) {
  // stdout goes to a file we can read while the sink is running; no flush() is called.
  char tmpl[] = "/tmp/sluice-console-XXXXXX";
  const int file = mkstemp(tmpl);
  ASSERT_GE(file, 0);
  std::fflush(stdout);
  const int saved = dup(STDOUT_FILENO);
  dup2(file, STDOUT_FILENO);

  std::string seen;
  {
    PluginHarness sink("sink", "console", "fields = [\"side\"]");
    EXPECT_TRUE(sink.process(liquidation("SOLUSDT", 184.22, 0.04, "SELL")).outcome.ok());
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (seen.empty() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      std::ifstream in(tmpl);
      std::stringstream ss;
      ss << in.rdbuf();
      seen = ss.str();
    }
  }
  dup2(saved, STDOUT_FILENO);
  close(saved);
  close(file);
  std::remove(tmpl);
  EXPECT_EQ(seen, "2025-10-22T09:36:42.306Z [file] SOLUSDT side=SELL\n");
}

TEST(ConsoleSink, RejectsAnUnknownFormat) {
  try {
    PluginHarness sink("sink", "console", "format = \"yaml\"");
    FAIL() << "expected an error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("option 'format' must be one of: text, json (got 'yaml')"),
              std::string::npos)
        << e.what();
  }
}

TEST(ConsoleSink, RejectsAFieldListedTwice) {
  try {
    PluginHarness sink("sink", "console", "fields = [\"side\", \"price\", \"side\"]");
    FAIL() << "expected an error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("option 'fields': lists 'side' twice"), std::string::npos)
        << e.what();
  }
}

// `sluice run … | head`: the reader of stdout goes away. With SIGPIPE ignored (as the sluice
// binary does), writes fail with EPIPE; the sink says so once, stops writing, and keeps
// completing events so the rest of the pipeline goes on.
TEST(ConsoleSink, AClosedReaderIsLoggedOnceCountedAndEventsKeepCompleting) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  ::close(fds[0]);  // the reader is gone before anything is written
  auto* old_handler = ::signal(SIGPIPE, SIG_IGN);
  std::fflush(stdout);
  const int saved = ::dup(STDOUT_FILENO);
  ::dup2(fds[1], STDOUT_FILENO);
  ::close(fds[1]);

  std::vector<sluice::testing::LogLine> logs;
  double write_errors = 0;
  double dropped = 0;
  {
    PluginHarness sink("sink", "console", "fields = [\"side\"]");
    for (int i = 0; i < 3; ++i) {
      EXPECT_TRUE(sink.process(liquidation("SOLUSDT", 184.22, 0.04, "SELL")).outcome.ok());
    }
    sink.flush();  // the first write: EPIPE
    for (int i = 0; i < 2; ++i) {
      EXPECT_TRUE(sink.process(liquidation("SOLUSDT", 184.22, 0.04, "SELL")).outcome.ok());
    }
    sink.flush();
    logs = sink.logs();
    write_errors = sink.counter("console_write_errors_total");
    dropped = sink.counter("console_lines_dropped_total");
  }
  ::dup2(saved, STDOUT_FILENO);
  ::close(saved);
  ::signal(SIGPIPE, old_handler);

  EXPECT_EQ(write_errors, 1) << "one failed write; no write is tried after it";
  EXPECT_EQ(dropped, 5);
  ASSERT_EQ(logs.size(), 1u);
  EXPECT_EQ(logs[0].level, SLUICE_LOG_WARN);
  EXPECT_EQ(logs[0].message,
            "the reader of stdout went away (broken pipe): console output stops here; events "
            "keep flowing to the rest of the pipeline (console_lines_dropped_total counts the "
            "lines not printed)");
}

}  // namespace
