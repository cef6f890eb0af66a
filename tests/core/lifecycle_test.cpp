// Node lifecycle: creating a pipeline (what `sluice validate` does) never calls a plugin's start
// hook; running it starts every node, children included, exactly once and before the first
// event; a start that fails ends the run naming the node, before any event, secrets redacted.
// The test_lifecycle plugin journals each call to a file.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "pipeline_runner.hpp"
#include "process.hpp"
#include "sluice/core/runtime.hpp"

namespace sluice::core {
namespace {

using testing::read_lines;
using testing::TempDir;

constexpr const char* kToken = "tok-9f8e7d6c5b4a";

// generator → mid (test_lifecycle) → chain (test_chain over `child`, a test_lifecycle) →
// out (test_lifecycle sink). `extra` is appended to mid's table.
std::string pipeline_text(const TempDir& dir, const std::string& extra = "") {
  return fmt::format(R"([pipeline]
name = "t"
state_dir = "{0}/state"
plugin_path = ["{1}"]

[sources.gen]
type = "generator"
count = 5

[processors.mid]
type = "test_lifecycle"
inputs = ["gen"]
journal = "{0}/journal"
{2}

[processors.chain]
type = "test_chain"
inputs = ["mid"]
chain = ["child"]

[processors.child]
type = "test_lifecycle"
journal = "{0}/journal"

[sinks.out]
type = "test_lifecycle"
inputs = ["chain"]
journal = "{0}/journal"
)",
                     dir.path(), SLUICE_TEST_PLUGIN_DIR, extra);
}

RunOptions quiet() {
  RunOptions o;
  o.admin_port = -1;
  o.print_summary = false;
  return o;
}

// Journal lines "<node> <call>" → for each node, its calls in order ("event 3" → "event").
std::map<std::string, std::vector<std::string>> calls_by_node(
    const std::vector<std::string>& lines) {
  std::map<std::string, std::vector<std::string>> out;
  for (const std::string& line : lines) {
    size_t space = line.find(' ');
    std::string call = line.substr(space + 1);
    out[line.substr(0, space)].push_back(call.substr(0, call.find(' ')));
  }
  return out;
}

size_t count(const std::vector<std::string>& calls, const std::string& call) {
  return static_cast<size_t>(std::count(calls.begin(), calls.end(), call));
}

TEST(Lifecycle, CreatingThePipelineAsValidateDoesNeverStartsANode) {
  TempDir dir;
  std::string path = dir.write("p.toml", pipeline_text(dir));
  { Pipeline p(testing::load_spec(path), testing::test_registry(), quiet()); }
  auto calls = calls_by_node(read_lines(dir.file("journal")));
  ASSERT_EQ(calls.size(), 3u);
  for (const auto& [node, seen] : calls) {
    EXPECT_EQ(seen, (std::vector<std::string>{"create", "destroy"})) << node;
  }
}

TEST(Lifecycle, SluiceValidateNeverStartsANode) {
  TempDir dir;
  std::string path = dir.write("p.toml", pipeline_text(dir));
  auto r = testing::run_command({testing::sluice_binary(), "validate", path});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto lines = read_lines(dir.file("journal"));
  EXPECT_EQ(lines.size(), 6u);  // create and destroy of mid, child and out
  for (const std::string& line : lines) EXPECT_EQ(line.find("start"), std::string::npos) << line;
}

TEST(Lifecycle, RunStartsEveryNodeOnceBeforeTheFirstEventChildrenIncluded) {
  TempDir dir;
  std::string path = dir.write("p.toml", pipeline_text(dir));
  {
    Pipeline p(testing::load_spec(path), testing::test_registry(), quiet());
    ASSERT_EQ(p.run(), 0);
  }
  auto lines = read_lines(dir.file("journal"));
  auto calls = calls_by_node(lines);
  ASSERT_EQ(calls.size(), 3u);
  for (const auto& [node, seen] : calls) {
    EXPECT_EQ(count(seen, "create"), 1u) << node;
    EXPECT_EQ(count(seen, "start"), 1u) << node;
    EXPECT_EQ(count(seen, "event"), 5u) << node;
    EXPECT_EQ(count(seen, "destroy"), 1u) << node;
    EXPECT_EQ(seen.front(), "create") << node;
    EXPECT_EQ(seen[1], "start") << node;
    EXPECT_EQ(seen.back(), "destroy") << node;
  }
  // Every node was started before any node saw an event.
  auto first_event = std::find_if(lines.begin(), lines.end(), [](const std::string& l) {
    return l.find(" event ") != std::string::npos;
  });
  auto last_start = std::find_if(lines.rbegin(), lines.rend(),
                                 [](const std::string& l) { return l.ends_with(" start"); });
  ASSERT_NE(first_event, lines.end());
  ASSERT_NE(last_start, lines.rend());
  EXPECT_LT(std::distance(lines.begin(), last_start.base()) - 1,
            std::distance(lines.begin(), first_event));
}

TEST(Lifecycle, FailingStartFailsTheRunNamingTheNodeBeforeAnyEventWithSecretsRedacted) {
  TempDir dir;
  std::string path = dir.write(
      "p.toml", pipeline_text(dir, fmt::format("fail_start = true\ntoken = \"{}\"", kToken)));
  {
    Pipeline p(testing::load_spec(path), testing::test_registry(), quiet());
    EXPECT_EQ(p.run(), 1);
    ASSERT_TRUE(p.start_error().has_value());
    std::string what = p.start_error()->format();
    EXPECT_NE(what.find("processors.mid: failed to start: cannot log in with ***"),
              std::string::npos)
        << what;
    EXPECT_NE(what.find("p.toml:"), std::string::npos) << what;
    EXPECT_EQ(what.find(kToken), std::string::npos) << what;
  }
  auto calls = calls_by_node(read_lines(dir.file("journal")));
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_EQ(count(calls["mid"], "start"), 1u);
  for (const auto& [node, seen] : calls) {
    EXPECT_EQ(count(seen, "event"), 0u) << node;
    EXPECT_LE(count(seen, "start"), 1u) << node;
    EXPECT_EQ(seen.back(), "destroy") << node;  // destroyed as usual, started or not
  }
}

TEST(Lifecycle, SluiceRunReportsAFailedStartNamingTheNode) {
  TempDir dir;
  std::string path = dir.write(
      "p.toml", pipeline_text(dir, fmt::format("fail_start = true\ntoken = \"{}\"", kToken)));
  auto r = testing::run_command({testing::sluice_binary(), "run", path, "--admin-port", "-1"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("processors.mid: failed to start: cannot log in with ***"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(r.err.find(kToken), std::string::npos) << r.err;
  EXPECT_EQ(r.out.find(kToken), std::string::npos) << r.out;
}

}  // namespace
}  // namespace sluice::core
