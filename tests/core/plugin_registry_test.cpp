// Plugin loader: ABI refusal naming both versions, missing entry point, duplicates, and the
// library staying loaded while an instance lives.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <filesystem>

#include "pipeline_runner.hpp"
#include "plugin_harness.hpp"
#include "process.hpp"
#include "sluice/core/node_host.hpp"
#include "sluice/core/plugin_registry.hpp"

namespace sluice::core {
namespace {

const std::string kTestPlugins = SLUICE_TEST_PLUGIN_DIR;

TEST(PluginRegistry, RefusesPluginWithAnotherAbiMajorNamingBothVersions) {
  PluginRegistry reg;
  std::string path = kTestPlugins + "-bad/abi/processor_from_the_future.so";
  EXPECT_EQ(reg.load_file(path),
            fmt::format("{}: incompatible plugin ABI {}.0 (this sluice supports ABI {}.0 to {}.{})",
                        path, SLUICE_ABI_MAJOR + 1, SLUICE_ABI_MAJOR, SLUICE_ABI_MAJOR,
                        SLUICE_ABI_MINOR));
  EXPECT_TRUE(reg.plugins().empty());
}

TEST(PluginRegistry, RefusesSharedObjectWithoutEntryPoint) {
  PluginRegistry reg;
  std::string path = kTestPlugins + "-bad/noentry/processor_no_entry.so";
  EXPECT_EQ(reg.load_file(path),
            path + ": not a sluice plugin: no entry point 'sluice_plugin_descriptor_v1'");
}

TEST(PluginRegistry, RefusesDuplicatePluginName) {
  PluginRegistry reg;
  std::string first = kTestPlugins + "/processor_test_async.so";
  std::string second = kTestPlugins + "-bad/dup/processor_test_async_copy.so";
  EXPECT_EQ(reg.load_file(first), "");
  EXPECT_EQ(reg.load_file(second),
            second + ": duplicate processor plugin 'test_async' (already loaded from " + first +
                ")");
  EXPECT_EQ(reg.plugins().size(), 1u);
}

TEST(PluginRegistry, TheSameFileFoundTwiceIsOnePlugin) {
  PluginRegistry reg;
  std::vector<std::string> errors;
  // The directory twice, once through a path with a detour: one set of plugins, no duplicate.
  reg.load_dirs({kTestPlugins, kTestPlugins + "/../" +
                                   std::filesystem::path(kTestPlugins).filename().string()},
                &errors);
  EXPECT_TRUE(errors.empty()) << errors.front();
  size_t async = 0;
  for (const Plugin& p : reg.plugins()) async += p.name() == "test_async" ? 1 : 0;
  EXPECT_EQ(async, 1u);
  EXPECT_EQ(reg.refusal(NodeKind::kProcessor, "test_async"), std::nullopt);
}

TEST(PluginRegistry, UsingATypeTwoFilesProvideIsAnErrorNamingBoth) {
  PluginRegistry reg;
  std::vector<std::string> errors;
  reg.load_dirs({kTestPlugins, kTestPlugins + "-bad/dup"}, &errors);
  const std::string text = R"([pipeline]
name = "t"

[sources.gen]
type = "generator"
count = 1

[processors.work]
type = "test_async"
inputs = ["gen"]

[sinks.out]
type = "blackhole"
inputs = ["work"]
)";
  PluginRegistry builtin;
  builtin.load_dirs(PluginRegistry::default_dirs(), &errors);
  // The catalog of the registry with the duplicate, plus the built-ins for the other nodes.
  PluginCatalog catalog = reg.catalog();
  PluginCatalog both{[&](NodeKind k, std::string_view t) {
                       auto* d = catalog.find(k, t);
                       return d != nullptr ? d : builtin.catalog().find(k, t);
                     },
                     catalog.names, catalog.refused};
  try {
    load_pipeline_text(text, "p.toml", both);
    FAIL() << "a type two files provide was accepted";
  } catch (const ConfigError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("processors.work: processor type 'test_async' cannot be used: two files "
                        "provide it: " +
                        kTestPlugins + "/processor_test_async.so and " + kTestPlugins +
                        "-bad/dup/processor_test_async_copy.so"),
              std::string::npos)
        << what;
  }
}

TEST(PluginRegistry, UsingATypeWhosePluginWasRefusedNamesTheFileAndBothVersions) {
  testing::TempDir dir;
  std::string path = dir.write("p.toml", fmt::format(R"([pipeline]
name = "t"
plugin_path = ["{0}-bad/abi"]

[sources.gen]
type = "generator"
count = 1

[processors.future]
type = "from_the_future"
inputs = ["gen"]

[sinks.out]
type = "blackhole"
inputs = ["future"]
)",
                                                     kTestPlugins));
  auto r = testing::run_command({testing::sluice_binary(), "validate", path});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find(fmt::format(
                "processors.future: processor type 'from_the_future' cannot be used: "
                "{}-bad/abi/processor_from_the_future.so: incompatible plugin ABI {}.0 (this "
                "sluice supports ABI {}.0 to {}.{})",
                kTestPlugins, SLUICE_ABI_MAJOR + 1, SLUICE_ABI_MAJOR, SLUICE_ABI_MAJOR,
                SLUICE_ABI_MINOR)),
            std::string::npos)
      << r.err;
}

TEST(PluginRegistry, ValidateWritesNothingAndPluginsListNamesEachFile) {
  testing::TempDir dir;
  std::string path = dir.write("p.toml", fmt::format(R"([pipeline]
name = "t"
state_dir = "{0}/state"

[settings]
min_alert_usd = 1000

[sources.gen]
type = "generator"
count = 1

[processors.big]
type = "filter"
inputs = ["gen"]
where = "notional_usd >= $min_alert_usd"

[sinks.out]
type = "blackhole"
inputs = ["big"]
)",
                                                     dir.path()));
  auto r = testing::run_command({testing::sluice_binary(), "validate", path});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/state")) << "validate created state";

  auto list = testing::run_command({testing::sluice_binary(), "plugins", "list"});
  EXPECT_EQ(list.exit_code, 0) << list.err;
  EXPECT_NE(list.out.find("/processor_fallback.so\n"), std::string::npos) << list.out;
}

TEST(PluginRegistry, MissingFileIsAnErrorNotACrash) {
  PluginRegistry reg;
  std::string err = reg.load_file("/nonexistent/plugin.so");
  EXPECT_NE(err.find("/nonexistent/plugin.so: cannot read shared object"), std::string::npos)
      << err;
}

TEST(PluginRegistry, LoadDirsCollectsErrorsAndKeepsGoodPlugins) {
  PluginRegistry reg;
  std::vector<std::string> errors;
  reg.load_dirs({kTestPlugins, kTestPlugins + "-bad/abi", "/nonexistent"}, &errors);
  EXPECT_NE(reg.find(NodeKind::kProcessor, "test_async"), nullptr);
  EXPECT_NE(reg.find(NodeKind::kSink, "test_slow_sink"), nullptr);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("incompatible plugin ABI"), std::string::npos);
}

TEST(PluginRegistry, InstanceKeepsLibraryLoadedAfterRegistryIsGone) {
  auto reg = std::make_unique<PluginRegistry>();
  ASSERT_EQ(reg->load_file(kTestPlugins + "/processor_test_async.so"), "");
  PipelineSpec spec;
  spec.name = "t";
  NodeSpec node;
  node.name = "a";
  node.type = "test_async";
  node.options = {{"delay", 0}, {"jitter", false}, {"fail_every", 0},
                  {"fail_status", "server_error"}, {"tag", ""}, {"cost_usd", 0.0}};
  spec.nodes.push_back(node);
  auto inst = NodeInstance::create(spec, spec.nodes[0], *reg, HostServices{"t", "", nullptr,
                                                                           nullptr});
  const sluice_plugin_descriptor* d = &inst->descriptor();
  reg.reset();  // the registry's handle is gone; the instance's must keep the code mapped
  EXPECT_STREQ(d->name, "test_async");
  inst.reset();
}

// A plugin built against ABI 1.0 has a descriptor that ends before `start` (1.1): it loads, its
// instances start (nothing to call; under AddressSanitizer a read past its descriptor would be
// reported) and it runs in a pipeline. The host it gets is of minor 2 (node state appended to
// sluice_host): the plugin uses it through the 1.0 layout, whose members kept their places.
TEST(PluginRegistry, LoadsAndRunsAPluginOfAnOlderAbiMinorThatHasNoStartHook) {
  PluginRegistry reg;
  ASSERT_EQ(reg.load_file(kTestPlugins + "/processor_test_old_minor.so"), "");
  const Plugin* plugin = reg.find(NodeKind::kProcessor, "test_old_minor");
  ASSERT_NE(plugin, nullptr);
  EXPECT_EQ(plugin->descriptor->abi_minor, 0u);
  PipelineSpec spec;
  spec.name = "t";
  NodeSpec node;
  node.name = "old";
  node.type = "test_old_minor";
  spec.nodes.push_back(node);
  MetricsRegistry metrics;
  SettingsStore settings(std::vector<SettingSpec>{});
  NodeStateStore state(&settings);
  auto inst = NodeInstance::create(spec, spec.nodes[0], reg,
                                   HostServices{"t", "", &settings, &metrics, &state});
  EXPECT_EQ(SLUICE_ABI_MINOR, 2);
  EXPECT_EQ(inst->host().raw()->abi_minor, 2u);
  EXPECT_EQ(metrics.counter_value("old", "old_minor_created_total"), 1);
  inst->start(spec);
  EXPECT_TRUE(inst->started());

  testing::TempDir dir;
  std::string path = dir.write("p.toml", fmt::format(R"([pipeline]
name = "t"
state_dir = "{0}/state"

[sources.gen]
type = "generator"
count = 20

[processors.old]
type = "test_old_minor"
inputs = ["gen"]

[sinks.out]
type = "file"
inputs = ["old"]
path = "{0}/out.jsonl"
)",
                                                     dir.path()));
  auto r = testing::run_pipeline(path);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(testing::read_lines(dir.file("out.jsonl")).size(), 20u);
}

}  // namespace
}  // namespace sluice::core
