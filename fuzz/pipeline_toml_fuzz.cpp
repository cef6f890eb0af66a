// Fuzzes the pipeline loader (TOML parse, ${VAR} expansion, schema checks, graph and placement
// rules) with a small fixed plugin catalog that has an option of every type. Bad files must
// end in ConfigError with at least one diagnostic; nothing else may escape or crash. The first
// byte picks the entry point: a whole pipeline, or one node's options (load_node_text).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "fuzz_util.hpp"
#include "sluice/core/config.hpp"

using namespace sluice;
using namespace sluice::core;

namespace {

constexpr sluice_option_spec opt(const char* key, sluice_option_type type, const char* default_toml,
                                 int required = 0, const char* choices = nullptr) {
  return {.key = key,
          .type = type,
          .default_toml = default_toml,
          .required = required,
          .description = "fuzz option",
          .choices = choices};
}

constexpr sluice_option_spec kGeneratorOptions[] = {
    opt("count", SLUICE_OPT_INT, "10"),
    opt("interval", SLUICE_OPT_DURATION, "\"250ms\""),
    opt("buffer", SLUICE_OPT_SIZE, "\"1MiB\""),
    opt("format", SLUICE_OPT_STRING, "\"text\"", 0, "text,json"),
    opt("symbols", SLUICE_OPT_STRING_LIST, "[\"BTCUSDT\"]"),
    opt("ids", SLUICE_OPT_INT_LIST, nullptr),
    opt("weights", SLUICE_OPT_DOUBLE_LIST, nullptr),
    opt("rate", SLUICE_OPT_DOUBLE, "1.5"),
    opt("loop", SLUICE_OPT_BOOL, "false"),
    opt("api_key", SLUICE_OPT_SECRET, nullptr),
    opt("extra", SLUICE_OPT_TABLE, nullptr),
};
constexpr sluice_option_spec kFilterOptions[] = {opt("where", SLUICE_OPT_EXPRESSION, nullptr, 1)};
constexpr sluice_option_spec kRouteOptions[] = {opt("routes", SLUICE_OPT_TABLE, nullptr, 1)};
const char* const kRouteOutputs[] = {"unmatched", "*routes", nullptr};
constexpr sluice_option_spec kFallbackOptions[] = {
    opt("chain", SLUICE_OPT_PROCESSOR_LIST, nullptr, 1),
    opt("deadline", SLUICE_OPT_DURATION, "\"8s\""),
};
constexpr sluice_option_spec kShadowOptions[] = {
    opt("primary", SLUICE_OPT_PROCESSOR, nullptr, 1),
    opt("candidate", SLUICE_OPT_PROCESSOR, nullptr, 1),
};
constexpr sluice_option_spec kConsoleOptions[] = {
    opt("format", SLUICE_OPT_STRING, "\"text\"", 0, "text,json"),
};

template <size_t N>
sluice_plugin_descriptor descriptor(sluice_kind kind, const char* name,
                                    const sluice_option_spec (&options)[N],
                                    const char* const* outputs = nullptr) {
  sluice_plugin_descriptor d{};
  d.abi_major = SLUICE_ABI_MAJOR;
  d.abi_minor = SLUICE_ABI_MINOR;
  d.kind = kind;
  d.name = name;
  d.version = "1.0.0";
  d.description = "fuzz double";
  d.options = options;
  d.option_count = N;
  d.outputs = outputs;
  return d;
}

const std::vector<sluice_plugin_descriptor>& plugins() {
  static const std::vector<sluice_plugin_descriptor> all = {
      descriptor(SLUICE_KIND_SOURCE, "generator", kGeneratorOptions),
      descriptor(SLUICE_KIND_PROCESSOR, "filter", kFilterOptions),
      descriptor(SLUICE_KIND_PROCESSOR, "route", kRouteOptions, kRouteOutputs),
      descriptor(SLUICE_KIND_PROCESSOR, "fallback", kFallbackOptions),
      descriptor(SLUICE_KIND_PROCESSOR, "shadow", kShadowOptions),
      descriptor(SLUICE_KIND_SINK, "console", kConsoleOptions),
  };
  return all;
}

sluice_kind abi_kind(NodeKind kind) {
  switch (kind) {
    case NodeKind::kSource:
      return SLUICE_KIND_SOURCE;
    case NodeKind::kProcessor:
      return SLUICE_KIND_PROCESSOR;
    case NodeKind::kSink:
      return SLUICE_KIND_SINK;
  }
  return SLUICE_KIND_SOURCE;
}

PluginCatalog catalog() {
  PluginCatalog c;
  c.find = [](NodeKind kind, std::string_view type) -> const sluice_plugin_descriptor* {
    for (const auto& d : plugins()) {
      if (d.kind == abi_kind(kind) && type == d.name) return &d;
    }
    return nullptr;
  };
  c.names = [](NodeKind kind) {
    std::vector<std::string> names;
    for (const auto& d : plugins()) {
      if (d.kind == abi_kind(kind)) names.emplace_back(d.name);
    }
    return names;
  };
  return c;
}

// A fixed environment, so ${VAR} expansion is exercised without reading the real one.
std::optional<std::string> env(const std::string& name) {
  if (name == "TOKEN") return "s3cret";
  if (name == "PORT") return "9000";
  if (name == "EMPTY") return "";
  return std::nullopt;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const PluginCatalog kCatalog = catalog();
  fuzz::Input in(data, size);
  const uint8_t mode = in.byte();
  const std::string_view text = in.rest();
  try {
    if ((mode & 1) == 0) {
      const PipelineSpec spec = load_pipeline_text(text, "fuzz.toml", kCatalog, env);
      FUZZ_CHECK(!spec.nodes.empty());
    } else {
      static const char* const kTypes[] = {"generator", "filter", "route", "console"};
      static const NodeKind kKinds[] = {NodeKind::kSource, NodeKind::kProcessor,
                                        NodeKind::kProcessor, NodeKind::kSink};
      const size_t k = (mode >> 1) % 4;
      (void)load_node_text(text, kKinds[k], kTypes[k], kCatalog, env);
    }
  } catch (const ConfigError& e) {
    FUZZ_CHECK(!e.diagnostics().empty());
  }
  return 0;
}
