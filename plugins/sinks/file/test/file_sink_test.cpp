// Tests of the `file` sink through the real loader and host: exact JSONL content, truncate and
// append, directory creation, batching, how open and write failures reach the events, and the
// fsync policy.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "plugin_harness.hpp"

namespace {

namespace fs = std::filesystem;
using sluice::EventBuilder;
using sluice::Status;
using sluice::testing::PluginHarness;

constexpr int64_t kTime = 1761125802306000000;  // 2025-10-22T09:36:42.306Z

class FileSinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sluice-file-sink-XXXXXX";
    dir_ = mkdtemp(tmpl);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name = "out.jsonl") const { return dir_ + "/" + name; }

  static std::string options(const std::string& path, const std::string& extra = "") {
    return "path = \"" + path + "\"\n" + extra;
  }

  static std::string read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  static void write(const std::string& path, const std::string& text) {
    std::ofstream(path, std::ios::binary) << text;
  }

  static std::vector<uint8_t> event(uint64_t id, const std::string& symbol, double price) {
    EventBuilder b;
    b.id(id)
        .event_time_ns(kTime)
        .ingest_time_ns(kTime + 1'500'000)
        .source("binance")
        .key(symbol)
        .field("symbol", symbol)
        .field("price", price);
    auto bytes = b.finish();
    return {bytes.begin(), bytes.end()};
  }

  std::string dir_;
};

TEST_F(FileSinkTest, WritesEveryFieldTypeAsOneJsonLine) {
  PluginHarness sink("sink", "file", options(path(), "metadata = false"));
  EventBuilder b;
  const std::vector<uint8_t> blob = {0x00, 0xff, 0x10};
  b.field("qty", int64_t{-3})
      .field("small", 5.99e-05)
      .field("price", 34738.38)
      .field("whole", 2.0)
      .field("liquidated", true)
      .field("text", "say \"hi\" \\ back\nslash")
      .field("symbol", "币安人生USDT")
      .bytes_field("raw", blob)
      .null_field("none");
  auto r = sink.process(b.finish());
  EXPECT_TRUE(r.outcome.ok()) << r.outcome.message;
  sink.flush();
  EXPECT_EQ(read(path()),
            R"({"liquidated":true,"none":null,"price":34738.38,"qty":-3,"raw":"AP8Q",)"
            R"("small":5.99e-05,"symbol":"币安人生USDT","text":"say \"hi\" \\ back\nslash",)"
            R"("whole":2.0})"
            "\n");
}

TEST_F(FileSinkTest, IncludesMetadataByDefault) {
  PluginHarness sink("sink", "file", options(path()));
  EventBuilder b;
  b.id(42)
      .event_time_ns(kTime)
      .ingest_time_ns(kTime + 1'500'000)
      .source("binance")
      .key("BTCUSDT")
      .attr("tier", "vip")
      .hop("big", kTime + 2'000'000)
      .field("price", 64250.5);
  EXPECT_TRUE(sink.process(b.finish()).outcome.ok());
  sink.flush();
  EXPECT_EQ(read(path()),
            R"({"price":64250.5,"_sluice":{"id":42,"event_time":"2025-10-22T09:36:42.306Z",)"
            R"("ingest_time":"2025-10-22T09:36:42.307500Z","source":"binance","key":"BTCUSDT",)"
            R"("attrs":{"tier":"vip"},"hops":[{"stage":"big","time":"2025-10-22T09:36:42.308Z"}]}})"
            "\n");
}

TEST_F(FileSinkTest, TruncatesAnExistingFileAtStartByDefault) {
  write(path(), "old line\n");
  PluginHarness sink("sink", "file", options(path(), "metadata = false"));
  EXPECT_TRUE(sink.process(event(1, "BTCUSDT", 1.5)).outcome.ok());
  EXPECT_TRUE(sink.process(event(2, "ETHUSDT", 2.5)).outcome.ok());
  sink.flush();
  EXPECT_EQ(read(path()),
            "{\"price\":1.5,\"symbol\":\"BTCUSDT\"}\n{\"price\":2.5,\"symbol\":\"ETHUSDT\"}\n");
}

TEST_F(FileSinkTest, AppendKeepsExistingLines) {
  write(path(), "{\"old\":1}\n");
  PluginHarness sink("sink", "file", options(path(), "metadata = false\nappend = true"));
  EXPECT_TRUE(sink.process(event(1, "BTCUSDT", 1.5)).outcome.ok());
  sink.flush();
  EXPECT_EQ(read(path()), "{\"old\":1}\n{\"price\":1.5,\"symbol\":\"BTCUSDT\"}\n");
}

TEST_F(FileSinkTest, CreatingTheSinkLeavesAnExistingFileAlone) {
  // `sluice validate` creates instances: that alone must not truncate anything.
  write(path(), "keep me\n");
  { PluginHarness sink("sink", "file", options(path())); }
  EXPECT_EQ(read(path()), "keep me\n");
  EXPECT_FALSE(fs::exists(path("new.jsonl")));
  { PluginHarness sink("sink", "file", options(path("new.jsonl"))); }
  EXPECT_FALSE(fs::exists(path("new.jsonl")));
}

TEST_F(FileSinkTest, FlushWithoutEventsLeavesAnEmptyFile) {
  write(path(), "old line\n");
  PluginHarness sink("sink", "file", options(path()));
  sink.flush();
  EXPECT_TRUE(fs::exists(path()));
  EXPECT_EQ(read(path()), "");
}

TEST_F(FileSinkTest, CreatesMissingParentDirectories) {
  const std::string nested = path("a/b/c/out.jsonl");
  PluginHarness sink("sink", "file", options(nested, "metadata = false"));
  EXPECT_TRUE(sink.process(event(1, "BTCUSDT", 1.5)).outcome.ok());
  sink.flush();
  EXPECT_EQ(read(nested), "{\"price\":1.5,\"symbol\":\"BTCUSDT\"}\n");
}

TEST_F(FileSinkTest, CompletesEachCallOnlyOnceItsLineIsInTheFile) {
  // A long interval and a big buffer: the sink still writes when the input pauses, so a caller
  // waiting on the call is never stuck for flush_interval.
  PluginHarness sink("sink", "file",
                     options(path(),
                             "metadata = false\nflush_interval = \"1h\"\n"
                             "buffer_size = \"1MiB\""));
  EXPECT_TRUE(sink.process(event(1, "BTCUSDT", 1.5)).outcome.ok());
  EXPECT_EQ(read(path()), "{\"price\":1.5,\"symbol\":\"BTCUSDT\"}\n");
}

TEST_F(FileSinkTest, WritesManyEventsInOrderAcrossBatches) {
  PluginHarness sink("sink", "file", options(path(), "metadata = false\nbuffer_size = \"1KiB\""));
  std::vector<std::vector<uint8_t>> events;
  std::string expected;
  for (int i = 0; i < 500; ++i) {
    events.push_back(event(static_cast<uint64_t>(i), "S" + std::to_string(i), i + 0.5));
    expected +=
        "{\"price\":" + std::to_string(i) + ".5,\"symbol\":\"S" + std::to_string(i) + "\"}\n";
  }
  for (const auto& r : sink.process_all(events)) EXPECT_TRUE(r.outcome.ok()) << r.outcome.message;
  sink.flush();
  EXPECT_EQ(read(path()), expected);
  EXPECT_EQ(sink.counter("file_bytes_written_total"), static_cast<double>(expected.size()));
  EXPECT_EQ(sink.counter("file_write_errors_total"), 0);
}

TEST_F(FileSinkTest, ZeroFlushIntervalWritesEachEventAtOnce) {
  PluginHarness sink("sink", "file", options(path(), "metadata = false\nflush_interval = \"0s\""));
  EXPECT_TRUE(sink.process(event(1, "BTCUSDT", 1.5)).outcome.ok());
  EXPECT_EQ(read(path()), "{\"price\":1.5,\"symbol\":\"BTCUSDT\"}\n");
}

TEST_F(FileSinkTest, RejectsADirectoryAsPath) {
  try {
    PluginHarness sink("sink", "file", options(dir_));
    FAIL() << "expected an error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("option 'path': '" + dir_ + "' is a directory"),
              std::string::npos)
        << e.what();
  }
}

TEST_F(FileSinkTest, RejectsAPathBelowARegularFile) {
  write(path("plain"), "x");
  const std::string bad = path("plain/sub/out.jsonl");
  try {
    PluginHarness sink("sink", "file", options(bad));
    FAIL() << "expected an error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("option 'path': cannot create '" + bad + "': '" +
                                         path("plain") + "' is not a directory"),
              std::string::npos)
        << e.what();
  }
}

TEST_F(FileSinkTest, RejectsAnEmptyPath) {
  try {
    PluginHarness sink("sink", "file", "path = \"\"");
    FAIL() << "expected an error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("option 'path': must not be empty"), std::string::npos)
        << e.what();
  }
}

TEST_F(FileSinkTest, WriteErrorFailsTheEventWithTheReason) {
  PluginHarness sink("sink", "file", options("/dev/full"));
  auto r = sink.process(event(1, "BTCUSDT", 1.5));
  EXPECT_EQ(r.outcome.status, Status::kInternal);
  EXPECT_EQ(r.outcome.message, "write '/dev/full': No space left on device");
  r = sink.process(event(2, "BTCUSDT", 1.5));
  EXPECT_EQ(r.outcome.status, Status::kInternal);
  EXPECT_EQ(sink.counter("file_write_errors_total"), 2);
  size_t errors = 0;
  for (const auto& line : sink.logs()) errors += line.level == SLUICE_LOG_ERROR ? 1 : 0;
  EXPECT_EQ(errors, 1u) << "one error line per run of failures";
}

TEST_F(FileSinkTest, ShortWriteFailsOnlyTheLinesNotWrittenAndLeavesWholeLines) {
  const std::string line = "{\"price\":1.5,\"symbol\":\"BTCUSDT\"}\n";
  rlimit old{};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
  rlimit small = old;
  small.rlim_cur = line.size() * 2 + line.size() / 2;  // room for two and a half lines
  auto* old_handler = signal(SIGXFSZ, SIG_IGN);

  std::vector<sluice::testing::CallResult> results;
  {
    // The limit holds only while the sink writes: the harness's state database is created
    // before and closed after, and would fail under it.
    PluginHarness sink("sink", "file",
                       options(path(), "metadata = false\nflush_interval = \"1h\""));
    ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
    results = sink.process_all({event(1, "BTCUSDT", 1.5), event(2, "BTCUSDT", 1.5),
                                event(3, "BTCUSDT", 1.5), event(4, "BTCUSDT", 1.5)});
    sink.flush();
    setrlimit(RLIMIT_FSIZE, &old);
  }
  signal(SIGXFSZ, old_handler);

  ASSERT_EQ(results.size(), 4u);
  EXPECT_TRUE(results[0].outcome.ok());
  EXPECT_TRUE(results[1].outcome.ok());
  for (size_t i = 2; i < 4; ++i) {
    EXPECT_EQ(results[i].outcome.status, Status::kInternal);
    EXPECT_EQ(results[i].outcome.message, "write '" + path() + "': File too large");
  }
  EXPECT_EQ(read(path()), line + line);
}

}  // namespace

// ---- fsync policy: counted through file_fsyncs_total, which only a successful fdatasync adds to

TEST_F(FileSinkTest, FsyncAlwaysSyncsEachBatchBeforeItsEventsComplete) {
  PluginHarness sink("sink", "file", options(path(), "metadata = false\nfsync = \"always\""));
  for (uint64_t id = 1; id <= 3; ++id) {
    EXPECT_TRUE(sink.process(event(id, "BTCUSDT", 1.5)).outcome.ok());
    // process() returns once the call completed: by then its batch is synced.
    EXPECT_EQ(sink.counter("file_fsyncs_total"), static_cast<double>(id));
  }
  sink.flush();
  EXPECT_EQ(sink.counter("file_fsyncs_total"), 3) << "nothing new to sync at flush";
  EXPECT_EQ(read(path()),
            "{\"price\":1.5,\"symbol\":\"BTCUSDT\"}\n"
            "{\"price\":1.5,\"symbol\":\"BTCUSDT\"}\n"
            "{\"price\":1.5,\"symbol\":\"BTCUSDT\"}\n");
}

TEST_F(FileSinkTest, FsyncIntervalSyncsAtFlushWhenTheIntervalIsNotUp) {
  PluginHarness sink("sink", "file", options(path(), "metadata = false\nfsync_interval = \"1h\""));
  for (uint64_t id = 1; id <= 3; ++id) EXPECT_TRUE(sink.process(event(id, "X", 1.5)).outcome.ok());
  EXPECT_EQ(sink.counter("file_fsyncs_total"), 0);
  sink.flush();
  EXPECT_EQ(sink.counter("file_fsyncs_total"), 1);
  sink.flush();
  EXPECT_EQ(sink.counter("file_fsyncs_total"), 1) << "nothing new to sync";
}

TEST_F(FileSinkTest, FsyncIntervalSyncsOnItsOwnOnceTheIntervalIsUp) {
  PluginHarness sink("sink", "file",
                     options(path(), "metadata = false\nfsync_interval = \"20ms\""));
  EXPECT_TRUE(sink.process(event(1, "X", 1.5)).outcome.ok());
  // No flush and no further event: the sink's own timer syncs.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (sink.counter("file_fsyncs_total") < 1 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(sink.counter("file_fsyncs_total"), 1);
}

TEST_F(FileSinkTest, FsyncNeverLeavesSyncingToTheKernel) {
  PluginHarness sink("sink", "file", options(path(), "metadata = false\nfsync = \"never\""));
  for (uint64_t id = 1; id <= 3; ++id) EXPECT_TRUE(sink.process(event(id, "X", 1.5)).outcome.ok());
  sink.flush();
  EXPECT_EQ(sink.counter("file_fsyncs_total"), 0);
  EXPECT_EQ(read(path()).size(), 3 * std::string("{\"price\":1.5,\"symbol\":\"X\"}\n").size());
}

TEST_F(FileSinkTest, RejectsAnUnknownFsyncPolicyAndAZeroInterval) {
  try {
    PluginHarness sink("sink", "file", options(path(), "fsync = \"sometimes\""));
    FAIL() << "expected an error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("fsync"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("always, interval, never"), std::string::npos) << e.what();
  }
  try {
    PluginHarness sink("sink", "file", options(path(), "fsync_interval = \"0s\""));
    FAIL() << "expected an error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("option 'fsync_interval': must be greater than 0"),
              std::string::npos)
        << e.what();
  }
}
