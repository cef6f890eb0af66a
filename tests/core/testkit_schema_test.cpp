// sluice/testing.hpp's apply_schema() must convert options exactly as the host does: for real
// built-in plugins, the options a pipeline file writes go through the host's loader and through
// apply_schema(), and both must hand create() the same JSON (defaults, units, widening, child
// indices), and refuse the same out-of-bounds values.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include "pipeline_runner.hpp"
#include "sluice/core/config.hpp"
#include "sluice/core/plugin_registry.hpp"
#include "sluice/testing.hpp"

namespace sluice::testing {
namespace {

struct Case {
  const char* section;  // sources | processors | sinks
  const char* type;
  const char* toml;     // the node's options as written
  const char* json;     // the same options for apply_schema()
};

const sluice_plugin_descriptor* descriptor_of(const char* section, const char* type) {
  core::NodeKind kind = std::string(section) == "sources"      ? core::NodeKind::kSource
                        : std::string(section) == "processors" ? core::NodeKind::kProcessor
                                                               : core::NodeKind::kSink;
  const core::Plugin* p = test_registry().find(kind, type);
  return p != nullptr ? p->descriptor : nullptr;
}

TEST(TestkitSchema, ConvertsWrittenOptionsLikeTheHost) {
  const Case cases[] = {
      {"processors", "fallback",
       R"(chain = ["a", "b"]
deadline = "8s"
hedge_after = "250ms"
retries = 2)",
       R"({"chain": ["a", "b"], "deadline": "8s", "hedge_after": "250ms", "retries": 2})"},
      {"processors", "rate_limit", R"(rate = 5
burst = 10
max_wait = "30s")",
       R"({"rate": 5, "burst": 10, "max_wait": "30s"})"},
      {"processors", "rules_classifier", R"(high_usd = 50000.0
medium_usd = 10000)",
       R"({"high_usd": 50000.0, "medium_usd": 10000})"},
      {"sinks", "file", R"(path = "out.jsonl"
fsync = "never")",
       R"({"path": "out.jsonl", "fsync": "never"})"},
      {"sources", "generator", R"(count = 3
rate = 2)",
       R"({"count": 3, "rate": 2})"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.type);
    const sluice_plugin_descriptor* d = descriptor_of(c.section, c.type);
    ASSERT_NE(d, nullptr);
    std::string children;
    if (std::string(c.type) == "fallback") {
      children = "\n[processors.a]\ntype = \"rules_classifier\"\n[processors.b]\n"
                 "type = \"rules_classifier\"\n";
    }
    const bool source = std::string(c.section) == "sources";
    std::string text = fmt::format(
        "{}\n[{}.node]\ntype = \"{}\"\n{}{}\n{}\n", source ? "" : "[sources.gen]\ntype = \"generator\"\n",
        c.section, c.type, source ? "" : "inputs = [\"gen\"]\n", c.toml, children);
    if (std::string(c.section) != "sinks") text += "[sinks.out]\ntype = \"blackhole\"\ninputs = [\"node\"]\n";
    core::PipelineSpec spec = core::load_pipeline_text(text, "p.toml", test_registry().catalog());
    const Json host = spec.find("node")->options;
    std::vector<testkit::ScriptedChild> scripted;
    for (const std::string& name : spec.find("node")->children) scripted.push_back({name, {}});
    const Json kit = testkit::apply_schema(d, Json::parse(c.json), scripted);
    EXPECT_EQ(kit, host) << "host: " << host.dump() << "\ntestkit: " << kit.dump();
    // Same JSON types, not only equal values (an int where the plugin reads a double).
    EXPECT_EQ(kit.dump(), host.dump());
  }
}

TEST(TestkitSchema, RefusesWhatTheHostRefuses) {
  const sluice_plugin_descriptor* d = descriptor_of("processors", "fallback");
  ASSERT_NE(d, nullptr);
  std::vector<testkit::ScriptedChild> kids = {{"a", {}}};
  auto error = [&](const char* json) -> std::string {
    try {
      testkit::apply_schema(d, Json::parse(json), kids);
    } catch (const testkit::CreateError& e) {
      return e.key() + ": " + e.what();
    }
    return "(accepted)";
  };
  EXPECT_EQ(error(R"({"chain": ["a"], "retries": 11})"),
            "retries: option 'retries' must be at most 10, got 11");
  EXPECT_EQ(error(R"({"chain": ["a"], "deadline": "0ms"})"),
            "deadline: option 'deadline' must be at least \"1ms\", got \"0ms\"");
  EXPECT_EQ(error(R"({"chain": ["a"], "deadline": 5})"),
            "deadline: option 'deadline' must be a duration (e.g. \"250ms\")");
  EXPECT_EQ(error(R"({"chain": ["a"], "colour": 1})"), "colour: unknown option 'colour'");
  EXPECT_EQ(error(R"({})"), "chain: missing required option 'chain'");
  EXPECT_EQ(error(R"({"chain": ["zz"]})"), "chain: option 'chain': unknown processor 'zz'");
}

}  // namespace
}  // namespace sluice::testing
