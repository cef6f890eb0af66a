// fallback in a real pipeline: child calls through the runtime's host (deadlines enforced on the
// stage's timers, hedged losers cancelled), a child of plugin ABI 1.0 in the chain, dead letters.
#include <gtest/gtest.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <ctime>
#include <thread>

#include "loopback_http.hpp"
#include "pipeline_runner.hpp"
#include "process.hpp"
#include "sluice/core/runtime.hpp"
#include "sluice/sdk.hpp"

namespace sluice::fallback {
namespace {

using testing::read_lines;
using testing::run_pipeline;
using testing::TempDir;

std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::vector<nlohmann::json> out;
  for (const std::string& line : read_lines(path)) out.push_back(nlohmann::json::parse(line));
  return out;
}

// "2026-12-03T17:20:46.641123Z" (an event's `_sluice.ingest_time`) in ns since the epoch.
int64_t iso_ns(const std::string& text) {
  std::tm tm{};
  int micros = 0;
  if (std::sscanf(text.c_str(), "%d-%d-%dT%d:%d:%d.%6dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &micros) != 7) {
    ADD_FAILURE() << "not an ingest time: " << text;
    return 0;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<int64_t>(timegm(&tm)) * 1'000'000'000 + int64_t{micros} * 1000;
}

// A pipeline running in this process with an admin endpoint on a free port, for `sluice ctl`.
class RunningPipeline {
 public:
  explicit RunningPipeline(const std::string& path)
      : pipeline_(testing::load_spec(path), testing::test_registry(), options()),
        runner_([this] { rc_ = pipeline_.run(); }) {
    for (int i = 0; i < 1000 && pipeline_.admin_port() == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  ~RunningPipeline() { stop(); }
  uint16_t port() const { return pipeline_.admin_port(); }
  std::string admin() const { return "http://127.0.0.1:" + std::to_string(port()); }
  // Stops the run and returns its exit code.
  int stop() {
    if (runner_.joinable()) {
      pipeline_.stop();
      runner_.join();
    }
    return rc_;
  }

 private:
  static core::RunOptions options() {
    core::RunOptions opts;
    opts.admin_port = 0;
    opts.print_summary = false;
    return opts;
  }
  core::Pipeline pipeline_;
  int rc_ = -1;
  std::thread runner_;
};

TEST(FallbackPipeline, HedgeAnswersFromTheFastChildAndCancelsTheSlowOne) {
  TempDir dir;
  // `slow` would hold each event for 5 s; the hedge starts `old` (a plugin of ABI 1.0, whose
  // outcomes lack the 1.2 usage members) after 20 ms and its answer wins.
  std::string path = dir.write("p.toml", fmt::format(R"([pipeline]
name = "t"
state_dir = "{0}/state"

[sources.gen]
type = "generator"
count = 20

[processors.slow]
type = "test_async"
delay = "5s"

[processors.old]
type = "test_old_minor"

[processors.classify]
type = "fallback"
inputs = ["gen"]
chain = ["slow", "old"]
hedge_after = "20ms"
deadline = "10s"
max_in_flight = 4

[sinks.out]
type = "file"
inputs = ["classify"]
path = "{0}/out.jsonl"
)",
                                                     dir.path()));
  int64_t start = mono_ns();
  auto r = run_pipeline(path);
  double seconds = static_cast<double>(mono_ns() - start) / 1e9;
  EXPECT_EQ(r.exit_code, 0);
  auto out = read_jsonl(dir.file("out.jsonl"));
  ASSERT_EQ(out.size(), 20u);
  for (const auto& e : out) {
    EXPECT_EQ(e["fallback_used"], "old");
    EXPECT_EQ(e["fallback_attempts"], 2);
  }
  // Without the hedge and the cancel, 20 events at 4 in flight would hold the run for 25 s.
  EXPECT_LT(seconds, 15.0);
}

TEST(FallbackPipeline, TheChainDeadlineEndsAHangingChildAndTheEventBecomesADeadLetter) {
  TempDir dir;
  std::string path = dir.write("p.toml", fmt::format(R"([pipeline]
name = "t"
state_dir = "{0}/state"

[sources.gen]
type = "generator"
count = 5

[processors.slow]
type = "test_async"
delay = "30s"

[processors.classify]
type = "fallback"
inputs = ["gen"]
chain = ["slow"]
deadline = "50ms"

[sinks.out]
type = "file"
inputs = ["classify"]
path = "{0}/out.jsonl"

[sinks.dead]
type = "file"
inputs = ["classify.errors"]
path = "{0}/dead.jsonl"
)",
                                                     dir.path()));
  int64_t start = mono_ns();
  auto r = run_pipeline(path);
  double seconds = static_cast<double>(mono_ns() - start) / 1e9;
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_TRUE(read_lines(dir.file("out.jsonl")).empty());
  auto dead = read_jsonl(dir.file("dead.jsonl"));
  ASSERT_EQ(dead.size(), 5u);
  for (const auto& e : dead) {
    EXPECT_EQ(e["_sluice"]["attrs"]["error.class"], "timeout");
    EXPECT_NE(e["_sluice"]["attrs"]["error.message"].get<std::string>().find(
                  "slow: no answer within its deadline"),
              std::string::npos)
        << e.dump();
  }
  EXPECT_LT(seconds, 20.0);  // never the child's 30 s
}

// Node commands through the admin endpoint and `sluice ctl node`: a breaker opened by a failing
// child is seen with `status` and closed with `reset_breaker`.
TEST(FallbackPipeline, NodeCommandsOverTheAdminEndpointAndCtl) {
  TempDir dir;
  std::string path = dir.write("p.toml", fmt::format(R"([pipeline]
name = "t"
state_dir = "{0}/state"

[sources.gen]
type = "generator"
count = 0
rate = 50

[processors.failing]
type = "test_async"
delay = "0ms"
fail_every = 1

[processors.old]
type = "test_old_minor"

[processors.classify]
type = "fallback"
inputs = ["gen"]
chain = ["failing", "old"]

[processors.classify.children.failing]
breaker = {{ failures = 2, cooldown = "1h" }}

[sinks.out]
type = "blackhole"
inputs = ["classify"]
)",
                                                     dir.path()));
  RunningPipeline pipeline(path);
  const uint16_t port = pipeline.port();
  ASSERT_NE(port, 0);
  const std::string admin = pipeline.admin();

  auto nodes = testing::run_command({testing::sluice_binary(), "ctl", "--admin", admin, "nodes"});
  EXPECT_EQ(nodes.exit_code, 0) << nodes.err;
  EXPECT_NE(nodes.out.find("classify reset_breaker: Close a child's circuit breaker now"),
            std::string::npos)
      << nodes.out;

  // Two failures open the breaker of `failing` (the generator sends 50 events/s).
  nlohmann::json status;
  for (int i = 0; i < 500; ++i) {
    auto r = testing::run_command(
        {testing::sluice_binary(), "ctl", "--admin", admin, "node", "classify", "status"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    status = nlohmann::json::parse(r.out);
    if (status["children"][0]["breaker"] == "open") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(status["children"][0]["name"], "failing");
  EXPECT_EQ(status["children"][0]["breaker"], "open");
  EXPECT_EQ(status["children"][1]["breaker"], "closed");

  auto bad = testing::run_command({testing::sluice_binary(), "ctl", "--admin", admin, "node",
                                   "classify", "reset_breaker", R"({"child": "nope"})"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("400"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("no child 'nope' in the chain (failing, old)"), std::string::npos)
      << bad.err;
  auto reset = testing::run_command({testing::sluice_binary(), "ctl", "--admin", admin, "node",
                                     "classify", "reset_breaker", R"({"child": "failing"})"});
  EXPECT_EQ(reset.exit_code, 0) << reset.err;
  EXPECT_EQ(nlohmann::json::parse(reset.out)["breaker"], "closed");

  // The endpoint's own rules: JSON only, POST only, unknown names listed.
  std::string res = testing::loopback_http_raw(
      port, fmt::format("POST /nodes/classify/status HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n"
                        "Connection: close\r\nContent-Type: text/plain\r\n"
                        "Content-Length: 2\r\n\r\n{{}}",
                        port));
  EXPECT_EQ(res.rfind("HTTP/1.1 415", 0), 0u) << res;
  res = testing::loopback_http(port, "GET", "/nodes/classify/status");
  EXPECT_EQ(res.rfind("HTTP/1.1 405", 0), 0u) << res;
  auto missing = testing::run_command(
      {testing::sluice_binary(), "ctl", "--admin", admin, "node", "classify", "nope"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("node 'classify' has no command 'nope' (commands: reset_breaker, "
                             "status)"),
            std::string::npos)
      << missing.err;

  EXPECT_EQ(pipeline.stop(), 0);
}


// A runtime switch: `sluice ctl settings set primary_enabled false` turns the primary child off
// for every event ingested after the command returned, and `true` turns it back on, without a
// restart.
TEST(FallbackPipeline, ASwitchFlippedWithCtlTakesEffectOnTheNextEvent) {
  TempDir dir;
  std::string path = dir.write("p.toml", fmt::format(R"([pipeline]
name = "t"
state_dir = "{0}/state"

[settings]
primary_enabled = true

[sources.gen]
type = "generator"
count = 0
rate = 100

[processors.primary]
type = "test_async"
delay = "0ms"

[processors.backup]
type = "test_old_minor"

[processors.classify]
type = "fallback"
inputs = ["gen"]
chain = ["primary", "backup"]

[processors.classify.children.primary]
enabled = "$primary_enabled"

[sinks.out]
type = "file"
inputs = ["classify"]
path = "{0}/out.jsonl"
)",
                                                     dir.path()));
  RunningPipeline pipeline(path);
  ASSERT_NE(pipeline.port(), 0);
  const std::string admin = pipeline.admin();
  auto set = [&](const char* value) {
    auto r = testing::run_command({testing::sluice_binary(), "ctl", "--admin", admin, "settings",
                                   "set", "primary_enabled", value});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return now_ns();
  };
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  int64_t off_at = set("false");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  int64_t on_requested = now_ns();
  int64_t on_at = set("true");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto get = testing::run_command(
      {testing::sluice_binary(), "ctl", "--admin", admin, "settings", "get", "primary_enabled"});
  EXPECT_EQ(get.out, "true\n") << get.err;
  EXPECT_EQ(pipeline.stop(), 0);

  auto out = read_jsonl(dir.file("out.jsonl"));
  ASSERT_GT(out.size(), 30u);
  size_t off = 0, on_again = 0;
  for (const auto& e : out) {
    int64_t ingested = iso_ns(e["_sluice"]["ingest_time"].get<std::string>());
    const std::string used = e["fallback_used"];
    if (ingested > off_at && ingested < on_requested) {
      EXPECT_EQ(used, "backup") << e.dump();
      ++off;
    } else if (ingested > on_at) {
      EXPECT_EQ(used, "primary") << e.dump();
      ++on_again;
    }
  }
  EXPECT_GT(off, 5u);
  EXPECT_GT(on_again, 5u);
  EXPECT_EQ(out.front()["fallback_used"], "primary");
}

}  // namespace
}  // namespace sluice::fallback
