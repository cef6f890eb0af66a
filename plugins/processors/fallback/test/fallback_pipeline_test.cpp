// fallback in a real pipeline: child calls through the runtime's host (deadlines enforced on the
// stage's timers, hedged losers cancelled), a child of plugin ABI 1.0 in the chain, dead letters.
#include <gtest/gtest.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "pipeline_runner.hpp"
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

}  // namespace
}  // namespace sluice::fallback
