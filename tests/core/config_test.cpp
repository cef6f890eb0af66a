// Pipeline file loading: every rule's exact diagnostic (file:line:col included), and what good
// files turn into (defaults, units, interpolation, children, inputs, placement). The plugins are
// fake descriptors declared here: the loader only ever sees option schemas.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "sluice/core/config.hpp"

namespace sluice::core {
namespace {

using nlohmann::json;

// ---- Fake plugins -------------------------------------------------------------------------

constexpr sluice_option_spec opt(const char* key, sluice_option_type type, const char* default_toml,
                                 int required = 0, const char* choices = nullptr) {
  return {.key = key,
          .type = type,
          .default_toml = default_toml,
          .required = required,
          .description = "test option",
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
// ABI 1.2 bounds the host checks: integers, doubles, durations, sizes and list items.
constexpr sluice_option_bounds kGeneratorBounds[] = {
    {.key = "count", .min = "0", .max = "1000"},
    {.key = "interval", .min = "\"1ms\"", .max = "\"1h\""},
    {.key = "buffer", .min = nullptr, .max = "\"1MiB\""},
    {.key = "rate", .min = "0.5", .max = nullptr},
    {.key = "weights", .min = "0.0", .max = "1.0"},
};

// A plugin bug: the default is not a duration.
constexpr sluice_option_spec kBrokenOptions[] = {opt("timeout", SLUICE_OPT_DURATION, "\"soon\"")};

sluice_plugin_descriptor descriptor(sluice_kind kind, const char* name,
                                    const sluice_option_spec* options, size_t count,
                                    const char* const* outputs = nullptr) {
  sluice_plugin_descriptor d{};
  d.abi_major = SLUICE_ABI_MAJOR;
  d.abi_minor = SLUICE_ABI_MINOR;
  d.kind = kind;
  d.name = name;
  d.version = "1.0.0";
  d.description = "test double";
  d.options = options;
  d.option_count = count;
  d.outputs = outputs;
  return d;
}

template <size_t N>
sluice_plugin_descriptor descriptor(sluice_kind kind, const char* name,
                                    const sluice_option_spec (&options)[N],
                                    const char* const* outputs = nullptr) {
  return descriptor(kind, name, options, N, outputs);
}

sluice_plugin_descriptor with_bounds(sluice_plugin_descriptor d) {
  d.option_bounds = kGeneratorBounds;
  d.option_bounds_count = std::size(kGeneratorBounds);
  return d;
}

const std::vector<sluice_plugin_descriptor>& fake_plugins() {
  static const std::vector<sluice_plugin_descriptor> plugins = {
      with_bounds(descriptor(SLUICE_KIND_SOURCE, "generator", kGeneratorOptions)),
      descriptor(SLUICE_KIND_SOURCE, "broken", kBrokenOptions),
      descriptor(SLUICE_KIND_PROCESSOR, "filter", kFilterOptions),
      descriptor(SLUICE_KIND_PROCESSOR, "route", kRouteOptions, kRouteOutputs),
      descriptor(SLUICE_KIND_PROCESSOR, "fallback", kFallbackOptions),
      descriptor(SLUICE_KIND_PROCESSOR, "shadow", kShadowOptions),
      descriptor(SLUICE_KIND_PROCESSOR, "passthrough", nullptr, 0),
      descriptor(SLUICE_KIND_SINK, "console", kConsoleOptions),
  };
  return plugins;
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
    for (const auto& d : fake_plugins()) {
      if (d.kind == abi_kind(kind) && type == d.name) return &d;
    }
    return nullptr;
  };
  c.names = [](NodeKind kind) {
    std::vector<std::string> names;
    for (const auto& d : fake_plugins()) {
      if (d.kind == abi_kind(kind)) names.emplace_back(d.name);
    }
    return names;
  };
  return c;
}

EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

PipelineSpec load(std::string_view text, std::map<std::string, std::string> vars = {}) {
  return load_pipeline_text(text, "dir/p.toml", catalog(), env_of(std::move(vars)));
}

// All diagnostics of a bad file, one per line, or "(loaded)" when it was accepted.
std::string errors(std::string_view text, std::map<std::string, std::string> vars = {}) {
  try {
    load(text, std::move(vars));
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(loaded)";
}

// ---- Bad files: one rule each, exact text --------------------------------------------------

struct BadCase {
  const char* rule;
  const char* toml;
  const char* expected;
  std::map<std::string, std::string> env = {};
};

void PrintTo(const BadCase& c, std::ostream* os) { *os << c.rule; }

class BadPipeline : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadPipeline, ReportsExactDiagnostic) {
  EXPECT_EQ(errors(GetParam().toml, GetParam().env), GetParam().expected);
}

// Most cases add one broken piece to this valid two-node pipeline (lines 1-6).
#define GEN_OUT            \
  "[sources.gen]\n"        \
  "type = \"generator\"\n" \
  "\n"                     \
  "[sinks.out]\n"          \
  "type = \"console\"\n"   \
  "inputs = [\"gen\"]\n"

const BadCase kBadCases[] = {
    // TOML syntax and sections
    {"toml_syntax_error", "[sources.gen\ntype = 1\n",
     "dir/p.toml:1:13: error: invalid TOML: Error while parsing table header: expected ']', saw "
     "'\\n'"},
    {"unknown_section", GEN_OUT "[sink.x]\ntype = \"console\"\n",
     "dir/p.toml:7:2: error: unknown section 'sink' (did you mean 'sinks'?)"},
    {"unknown_top_level_key", "name = \"x\"\n" GEN_OUT,
     "dir/p.toml:1:1: error: unknown top-level key 'name' (valid sections: pipeline, settings, "
     "admin, sources, processors, sinks, placement)"},
    {"section_not_a_table", "admin = 5\n" GEN_OUT,
     "dir/p.toml:1:9: error: 'admin' must be a table, got integer"},
    {"pipeline_unknown_key", "[pipeline]\nnme = \"x\"\n" GEN_OUT,
     "dir/p.toml:2:1: error: pipeline: unknown key 'nme' (did you mean 'name'?)"},
    {"pipeline_wrong_type", "[pipeline]\nname = 5\nplugin_path = \"./plugins\"\n" GEN_OUT,
     "dir/p.toml:2:8: error: pipeline: 'name' must be a string, got integer\n"
     "dir/p.toml:3:15: error: pipeline: 'plugin_path' must be a list of strings, got string"},
    {"pipeline_bad_name", "[pipeline]\nname = \"my pipeline\"\n" GEN_OUT,
     "dir/p.toml:2:8: error: pipeline: invalid name 'my pipeline' (use letters, digits, '_', '-' "
     "and '.')"},
    {"pipeline_bad_grace_period", "[pipeline]\ngrace_period = \"5\"\n" GEN_OUT,
     "dir/p.toml:2:16: error: pipeline: 'grace_period': invalid duration '5': missing unit "
     "after '5' (e.g. '5s' or '5ms'; units: ns, us, ms, s, m, h, d)"},
    {"admin_unknown_key_and_port_range", "[admin]\nportt = 1\nport = 70000\n" GEN_OUT,
     "dir/p.toml:2:1: error: admin: unknown key 'portt' (did you mean 'port'?)\n"
     "dir/p.toml:3:8: error: admin: 'port' must be between 0 and 65535, got 70000"},
    {"admin_wrong_type", "[admin]\nenabled = \"yes\"\n" GEN_OUT,
     "dir/p.toml:2:11: error: admin: 'enabled' must be a boolean, got string"},

    // ${VAR} interpolation
    {"env_unset", GEN_OUT "format = \"${FMT}\"\n",
     "dir/p.toml:7:10: error: environment variable 'FMT' is not set"},
    {"env_required_with_message", GEN_OUT "format = \"${FMT:?set FMT to text or json}\"\n",
     "dir/p.toml:7:10: error: environment variable 'FMT' is not set: set FMT to text or json"},
    {"env_required_but_empty",
     GEN_OUT "format = \"${FMT:?needed}\"\n",
     "dir/p.toml:7:10: error: environment variable 'FMT' is empty: needed",
     {{"FMT", ""}}},
    {"env_unterminated", GEN_OUT "format = \"${FMT\"\n",
     "dir/p.toml:7:10: error: unterminated '${' in '${FMT' (missing '}')"},
    {"env_bad_syntax", GEN_OUT "format = \"${1X}\"\n",
     "dir/p.toml:7:10: error: invalid interpolation '${1X}' (use ${VAR}, ${VAR:-default}, "
     "${VAR:?message} or ${VAR:+word})"},
    {"env_inside_array",
     "[sources.gen]\ntype = \"generator\"\nsymbols = [\"A\", \"${SYM}\"]\n"
     "[sinks.out]\ntype = \"console\"\ninputs = [\"gen\"]\n",
     "dir/p.toml:3:17: error: environment variable 'SYM' is not set"},
    {"env_coercion_fails",
     "[sources.gen]\ntype = \"generator\"\ncount = \"${N}\"\n"
     "loop = \"${LOOP}\"\n[sinks.out]\ntype = \"console\"\ninputs = [\"gen\"]\n",
     "dir/p.toml:3:9: error: sources.gen: option 'count' must be an integer, got 'ten' "
     "(expanded from ${...})\n"
     "dir/p.toml:4:8: error: sources.gen: option 'loop' must be a boolean, got 'yes' (expanded "
     "from ${...})",
     {{"N", "ten"}, {"LOOP", "yes"}}},
    {"env_failure_is_reported_once",
     "[sources.gen]\ntype = \"generator\"\ncount = \"${N}\"\n"
     "[sinks.out]\ntype = \"console\"\ninputs = [\"gen\"]\n",
     "dir/p.toml:3:9: error: environment variable 'N' is not set"},

    // Node sections
    {"node_bad_name",
     "[sources.Gen]\ntype = \"generator\"\n[sinks.out]\ntype = \"console\"\n"
     "inputs = [\"gen\"]\n",
     "dir/p.toml:1:1: error: sources.Gen: invalid node name 'Gen' (use lowercase letters, "
     "digits, '_' and '-')\n"
     "dir/p.toml:5:11: error: sinks.out: unknown input 'gen' (nodes: out)"},
    {"node_not_a_table", GEN_OUT "[processors]\nbig = 1\n",
     "dir/p.toml:8:7: error: processors: 'big' must be a table, got integer"},
    {"duplicate_node_name",
     GEN_OUT "[processors.gen]\ntype = \"passthrough\"\ninputs = [\"gen\"]\n",
     "dir/p.toml:7:1: error: processors.gen: duplicate node name 'gen' (also a source at "
     "dir/p.toml:1:1)"},
    {"missing_type",
     "[sources.gen]\ncount = 1\n[sinks.out]\ntype = \"console\"\n"
     "inputs = [\"gen\"]\n",
     "dir/p.toml:1:1: error: sources.gen: missing 'type'"},
    {"type_not_a_string",
     "[sources.gen]\ntype = 1\n[sinks.out]\ntype = \"console\"\n"
     "inputs = [\"gen\"]\n",
     "dir/p.toml:2:8: error: sources.gen: 'type' must be a string, got integer"},
    {"unknown_type_close",
     "[sources.gen]\ntype = \"genrator\"\n[sinks.out]\ntype = \"console\"\n"
     "inputs = [\"gen\"]\n",
     "dir/p.toml:2:8: error: sources.gen: unknown source type 'genrator' (did you mean "
     "'generator'?)"},
    {"unknown_type_far",
     "[sources.gen]\ntype = \"kafka\"\n[sinks.out]\ntype = \"console\"\n"
     "inputs = [\"gen\"]\n",
     "dir/p.toml:2:8: error: sources.gen: unknown source type 'kafka' (available: broken, "
     "generator)"},

    // Plugin options
    {"unknown_option_close", GEN_OUT "formt = \"json\"\n",
     "dir/p.toml:7:1: error: sinks.out: unknown option 'formt' (did you mean 'format'?)"},
    {"unknown_option_far", GEN_OUT "colour = \"red\"\n",
     "dir/p.toml:7:1: error: sinks.out: unknown option 'colour' (valid options: format, inputs, "
     "max_in_flight, ordered, enabled)"},
    {"unknown_option_plugin_without_options",
     GEN_OUT "[processors.p]\ntype = \"passthrough\"\ninputs = [\"gen\"]\nspeed = 1\n",
     "dir/p.toml:7:1: error: processors.p: output reaches no sink\n"
     "dir/p.toml:10:1: error: processors.p: unknown option 'speed' (valid options: inputs, "
     "max_in_flight, ordered, enabled)"},
    {"missing_required_option", GEN_OUT "[processors.big]\ntype = \"filter\"\ninputs = [\"gen\"]\n",
     "dir/p.toml:7:1: error: processors.big: missing required option 'where'\n"
     "dir/p.toml:7:1: error: processors.big: output reaches no sink"},
    {"option_wrong_type",
     "[sources.gen]\ntype = \"generator\"\ncount = \"10\"\nrate = true\n"
     "extra = 5\n[sinks.out]\ntype = \"console\"\ninputs = [\"gen\"]\n",
     "dir/p.toml:3:9: error: sources.gen: option 'count' must be an integer, got string\n"
     "dir/p.toml:4:8: error: sources.gen: option 'rate' must be a number, got boolean\n"
     "dir/p.toml:5:9: error: sources.gen: option 'extra' must be a table, got integer"},
    {"option_number_not_finite",
     "[sources.gen]\ntype = \"generator\"\nrate = nan\n[sinks.out]\ntype = \"console\"\n"
     "inputs = [\"gen\"]\n",
     "dir/p.toml:3:8: error: sources.gen: option 'rate' must be a finite number"},
    {"option_list_item_wrong_type",
     "[sources.gen]\ntype = \"generator\"\nids = [1, \"2\", 3.5]\n"
     "symbols = \"BTC\"\n[sinks.out]\ntype = \"console\"\ninputs = [\"gen\"]\n",
     "dir/p.toml:3:11: error: sources.gen: option 'ids' item 2 must be an integer, got string\n"
     "dir/p.toml:3:16: error: sources.gen: option 'ids' item 3 must be an integer, got float\n"
     "dir/p.toml:4:11: error: sources.gen: option 'symbols' must be a list of strings, got "
     "string"},
    {"option_outside_its_bounds",
     "[sources.gen]\ntype = \"generator\"\ncount = 1001\ninterval = \"0s\"\n"
     "buffer = \"2MiB\"\nrate = 0.25\nweights = [0.5, 1.5]\n[sinks.out]\ntype = \"console\"\n"
     "inputs = [\"gen\"]\n",
     "dir/p.toml:3:9: error: sources.gen: option 'count' must be at most 1000, got 1001\n"
     "dir/p.toml:4:12: error: sources.gen: option 'interval' must be at least \"1ms\", got "
     "\"0s\"\n"
     "dir/p.toml:5:10: error: sources.gen: option 'buffer' must be at most \"1MiB\", got "
     "\"2MiB\"\n"
     "dir/p.toml:6:8: error: sources.gen: option 'rate' must be at least 0.5, got 0.25\n"
     "dir/p.toml:7:17: error: sources.gen: option 'weights' item 2 must be at most 1.0, got 1.5"},
    {"option_choices", GEN_OUT "format = \"xml\"\n",
     "dir/p.toml:7:10: error: sinks.out: option 'format' must be one of: text, json (got 'xml')"},
    {"option_bad_duration",
     "[sources.gen]\ntype = \"generator\"\ninterval = \"10 parsecs\"\n"
     "[sinks.out]\ntype = \"console\"\ninputs = [\"gen\"]\n",
     "dir/p.toml:3:12: error: sources.gen: option 'interval': invalid duration '10 parsecs': "
     "unknown unit 'parsecs' (units: ns, us, ms, s, m, h, d)"},
    {"option_duration_as_number",
     "[sources.gen]\ntype = \"generator\"\ninterval = 10\n"
     "[sinks.out]\ntype = \"console\"\ninputs = [\"gen\"]\n",
     "dir/p.toml:3:12: error: sources.gen: option 'interval' must be a duration (e.g. \"250ms\"), "
     "got integer"},
    {"option_bad_size",
     "[sources.gen]\ntype = \"generator\"\nbuffer = \"10 parsecs\"\n"
     "[sinks.out]\ntype = \"console\"\ninputs = [\"gen\"]\n",
     "dir/p.toml:3:10: error: sources.gen: option 'buffer': invalid size '10 parsecs': unknown "
     "unit 'parsecs' (units: B, KB, MB, GB, KiB, MiB, GiB)"},
    {"option_negative_size",
     "[sources.gen]\ntype = \"generator\"\nbuffer = -1\n"
     "[sinks.out]\ntype = \"console\"\ninputs = [\"gen\"]\n",
     "dir/p.toml:3:10: error: sources.gen: option 'buffer' must not be negative, got -1"},
    {"plugin_default_is_invalid",
     "[sources.gen]\ntype = \"broken\"\n[sinks.out]\n"
     "type = \"console\"\ninputs = [\"gen\"]\n",
     "dir/p.toml:1:1: error: sources.gen: plugin 'broken' has an invalid default for option "
     "'timeout': option 'timeout': invalid duration 'soon': expected a number at 'soon'"},

    // Runtime options and inputs
    {"source_with_inputs",
     "[sources.gen]\ntype = \"generator\"\ninputs = [\"x\"]\n"
     "[sinks.out]\ntype = \"console\"\ninputs = [\"gen\"]\n",
     "dir/p.toml:3:1: error: sources.gen: a source has no inputs"},
    {"sink_without_inputs",
     "[sources.gen]\ntype = \"generator\"\n[sinks.out]\ntype = \"console\"\n",
     "dir/p.toml:3:1: error: sinks.out: missing 'inputs'"},
    {"inputs_empty", GEN_OUT "[processors.p]\ntype = \"passthrough\"\ninputs = []\n",
     "dir/p.toml:9:10: error: processors.p: 'inputs' is empty (omit it for a child processor)"},
    {"inputs_wrong_type", GEN_OUT "[sinks.more]\ntype = \"console\"\ninputs = \"gen\"\n",
     "dir/p.toml:9:10: error: sinks.more: 'inputs' must be a list of strings, got string"},
    {"max_in_flight_and_ordered", GEN_OUT "max_in_flight = 0\nordered = \"yes\"\n",
     "dir/p.toml:7:17: error: sinks.out: 'max_in_flight' must be between 1 and 4294967295, got 0\n"
     "dir/p.toml:8:11: error: sinks.out: 'ordered' must be a boolean, got string"},
    {"unknown_input",
     GEN_OUT "[processors.big]\ntype = \"passthrough\"\ninputs = [\"gen\"]\n"
             "[sinks.alerts]\ntype = \"console\"\ninputs = [\"bigg\"]\n",
     "dir/p.toml:12:11: error: sinks.alerts: unknown input 'bigg' (did you mean 'big'?)"},
    {"duplicate_input",
     "[sources.gen]\ntype = \"generator\"\n[sinks.out]\ntype = \"console\"\n"
     "inputs = [\"gen\", \"gen\"]\n",
     "dir/p.toml:5:18: error: sinks.out: duplicate input 'gen'"},
    {"input_is_a_sink", GEN_OUT "[sinks.more]\ntype = \"console\"\ninputs = [\"out\"]\n",
     "dir/p.toml:9:11: error: sinks.more: input 'out' is a sink; a sink's only output is "
     "'out.errors'"},
    {"unknown_named_output",
     GEN_OUT
     "[processors.route]\ntype = \"route\"\ninputs = [\"gen\"]\n"
     "routes = { big = \"x > 1\" }\n[sinks.x]\ntype = \"console\"\ninputs = [\"route.foo\"]\n",
     "dir/p.toml:13:11: error: sinks.x: node 'route' has no output 'foo' (outputs: errors, "
     "unmatched, big)"},
    {"source_has_no_named_outputs",
     GEN_OUT "[sinks.x]\ntype = \"console\"\n"
             "inputs = [\"gen.errors\"]\n",
     "dir/p.toml:9:11: error: sinks.x: node 'gen' has no output 'errors' (it has only its default "
     "output)"},

    // Children
    {"child_with_inputs",
     GEN_OUT
     "[processors.classify]\ntype = \"fallback\"\ninputs = [\"gen\"]\n"
     "chain = [\"rules\"]\n[processors.rules]\ntype = \"passthrough\"\ninputs = [\"gen\"]\n",
     "dir/p.toml:7:1: error: processors.classify: output reaches no sink\n"
     "dir/p.toml:11:1: error: processors.rules: output reaches no sink\n"
     "dir/p.toml:13:10: error: processors.rules: a child of 'classify' has no inputs"},
    {"processor_without_inputs_unused", GEN_OUT "[processors.lonely]\ntype = \"passthrough\"\n",
     "dir/p.toml:7:1: error: processors.lonely: has no inputs and is not used by any composite"},
    {"child_of_two_composites",
     GEN_OUT "[processors.a]\ntype = \"fallback\"\ninputs = [\"gen\"]\nchain = [\"rules\"]\n"
             "[processors.b]\ntype = \"fallback\"\ninputs = [\"a\"]\nchain = [\"rules\"]\n"
             "[processors.rules]\ntype = \"passthrough\"\n[sinks.end]\ntype = \"console\"\n"
             "inputs = [\"b\"]\n",
     "dir/p.toml:14:10: error: processors.rules: used as a child by both 'a' and 'b'"},
    {"child_cycle",
     GEN_OUT "[processors.x]\ntype = \"fallback\"\nchain = [\"y\"]\n"
             "[processors.y]\ntype = \"fallback\"\nchain = [\"z\"]\n"
             "[processors.z]\ntype = \"shadow\"\nprimary = \"x\"\ncandidate = \"x\"\n",
     "dir/p.toml:7:1: error: processors.x: child cycle: x -> y -> z -> x"},
    {"child_cycle_reached_from_a_stage",
     GEN_OUT
     "[processors.top]\ntype = \"fallback\"\ninputs = [\"gen\"]\n"
     "chain = [\"x\"]\n[processors.x]\ntype = \"fallback\"\nchain = [\"y\"]\n"
     "[processors.y]\ntype = \"fallback\"\nchain = [\"x\"]\n[sinks.end]\ntype = \"console\"\n"
     "inputs = [\"top\"]\n",
     "dir/p.toml:16:10: error: processors.x: used as a child by both 'top' and 'y'"},
    {"self_containing_composite",
     GEN_OUT "[processors.x]\ntype = \"fallback\"\n"
             "chain = [\"x\"]\n",
     "dir/p.toml:7:1: error: processors.x: has no inputs and is not used by any composite\n"
     "dir/p.toml:9:10: error: processors.x: option 'chain': a composite cannot contain itself"},
    {"unknown_child",
     GEN_OUT "[processors.classify]\ntype = \"fallback\"\ninputs = [\"gen\"]\n"
             "chain = [\"rulez\"]\n[processors.rules]\ntype = \"passthrough\"\n"
             "[sinks.end]\ntype = \"console\"\ninputs = [\"classify\"]\n",
     "dir/p.toml:10:10: error: processors.classify: option 'chain': unknown processor 'rulez' "
     "(did you mean 'rules'?)\n"
     "dir/p.toml:11:1: error: processors.rules: has no inputs and is not used by any composite"},
    {"child_is_not_a_processor",
     GEN_OUT
     "[processors.s]\ntype = \"shadow\"\ninputs = [\"gen\"]\n"
     "primary = \"out\"\ncandidate = 5\n[sinks.end]\ntype = \"console\"\ninputs = [\"s\"]\n",
     "dir/p.toml:10:11: error: processors.s: option 'primary': 'out' is a sink, not a processor\n"
     "dir/p.toml:11:13: error: processors.s: option 'candidate' must be a processor name, got "
     "integer"},
    {"input_is_a_child",
     GEN_OUT "[processors.classify]\ntype = \"fallback\"\ninputs = [\"gen\"]\n"
             "chain = [\"rules\"]\n[processors.rules]\ntype = \"passthrough\"\n"
             "[sinks.end]\ntype = \"console\"\ninputs = [\"rules\"]\n",
     "dir/p.toml:15:11: error: sinks.end: input 'rules' is a child of 'classify' (use its "
     "composite as the input)"},

    // Graph shape
    {"cycle",
     "[sources.gen]\ntype = \"generator\"\n[processors.a]\ntype = \"passthrough\"\n"
     "inputs = [\"gen\", \"b\"]\n[processors.b]\ntype = \"passthrough\"\ninputs = [\"a\"]\n"
     "[sinks.out]\ntype = \"console\"\ninputs = [\"b\"]\n",
     "dir/p.toml:3:1: error: processors.a: cycle: a -> b -> a"},
    {"reaches_no_sink",
     GEN_OUT "[processors.x]\ntype = \"passthrough\"\ninputs = [\"gen\"]\n"
             "[sources.idle]\ntype = \"generator\"\n",
     "dir/p.toml:7:1: error: processors.x: output reaches no sink\n"
     "dir/p.toml:10:1: error: sources.idle: output reaches no sink"},
    {"no_source_no_sink", "[pipeline]\nname = \"empty\"\n",
     "dir/p.toml:1:1: error: a pipeline needs at least one source\n"
     "dir/p.toml:1:1: error: a pipeline needs at least one sink"},

    // Settings
    {"settings_bad_name_and_value", GEN_OUT "[settings]\nMin = 1\nlevels = [1, 2]\n",
     "dir/p.toml:8:1: error: settings: invalid setting name 'Min' (use lowercase letters, digits "
     "and '_', not starting with a digit)\n"
     "dir/p.toml:9:10: error: settings: 'levels' must be a string, integer, float or boolean, got "
     "array"},
    // enabled = false
    {"enabled_not_a_boolean", GEN_OUT "enabled = \"no\"\n",
     "dir/p.toml:7:11: error: sinks.out: 'enabled' must be a boolean, got string"},
    {"every_input_disabled",
     GEN_OUT "[sources.more]\ntype = \"generator\"\nenabled = false\n"
             "[sinks.more_out]\ntype = \"console\"\ninputs = [\"more\"]\n",
     "dir/p.toml:12:10: error: sinks.more_out: every input is disabled ('enabled = false'); disable "
     "this node too or give it another input"},
    {"every_source_disabled",
     "[sources.gen]\ntype = \"generator\"\nenabled = \"${GEN:-false}\"\n"
     "[sinks.out]\ntype = \"console\"\ninputs = [\"gen\"]\nenabled = false\n",
     "dir/p.toml:1:1: error: every source is disabled ('enabled = false')\n"
     "dir/p.toml:1:1: error: every sink is disabled ('enabled = false')"},
    {"enabled_misspelt", GEN_OUT "enable = false\n",
     "dir/p.toml:7:1: error: sinks.out: unknown option 'enable' (did you mean 'enabled'?)"},

    // Placement
    {"placement_node_missing", GEN_OUT "[placement]\ningest = { nodes = [\"gen\"] }\n",
     "dir/p.toml:4:1: error: node 'out' is not in any placement group"},
    {"placement_node_twice",
     GEN_OUT "[placement]\na = { nodes = [\"gen\", \"out\"] }\n"
             "b = { nodes = [\"out\"] }\n",
     "dir/p.toml:9:16: error: node 'out' is in placement groups 'a' and 'b'"},
    {"placement_unknown_node_and_port",
     GEN_OUT
     "[placement]\n"
     "a = { nodes = [\"gen\", \"outt\"], port = 0 }\nb = { nodes = [\"out\"], replicas = 2 }\n",
     "dir/p.toml:8:23: error: placement.a: unknown node 'outt' (did you mean 'out'?)\n"
     "dir/p.toml:8:39: error: placement.a: 'port' must be between 1 and 65535, got 0\n"
     "dir/p.toml:9:24: error: placement.b: unknown key 'replicas' (valid keys: nodes, host, "
     "port, curve_public_key, curve_secret_key, curve_secret_key_file)"},
    {"placement_lists_a_child",
     GEN_OUT
     "[processors.c]\ntype = \"fallback\"\ninputs = [\"gen\"]\n"
     "chain = [\"r\"]\n[processors.r]\ntype = \"passthrough\"\n[sinks.end]\ntype = \"console\"\n"
     "inputs = [\"c\"]\n[placement]\none = { nodes = [\"gen\", \"out\", \"c\", \"r\", \"end\"] }\n",
     "dir/p.toml:17:37: error: placement.one: node 'r' is a child of 'c' and is placed with it"},
    {"placement_group_without_nodes",
     GEN_OUT "[placement]\none = { host = \"10.0.0.1\" }\n"
             "two = { nodes = [] }\n",
     "dir/p.toml:1:1: error: node 'gen' is not in any placement group\n"
     "dir/p.toml:4:1: error: node 'out' is not in any placement group\n"
     "dir/p.toml:8:7: error: placement.one: missing 'nodes'\n"
     "dir/p.toml:9:17: error: placement.two: 'nodes' is empty"},
};

INSTANTIATE_TEST_SUITE_P(EveryRule, BadPipeline, ::testing::ValuesIn(kBadCases),
                         [](const auto& info) { return std::string(info.param.rule); });

TEST(BadPipelineMessages, DiagnosticsAreCollectedAndSortedByPosition) {
  const char* text =
      "[sinks.out]\n"
      "type = \"consol\"\n"
      "inputs = [\"gen\"]\n"
      "[sources.gen]\n"
      "type = \"generator\"\n"
      "count = \"x\"\n"
      "[pipeline]\n"
      "nam = 1\n";
  try {
    load(text);
    FAIL() << "accepted";
  } catch (const ConfigError& e) {
    ASSERT_EQ(e.diagnostics().size(), 3u);
    EXPECT_EQ(e.diagnostics()[0].pos.line, 2u);
    EXPECT_EQ(e.diagnostics()[0].message,
              "sinks.out: unknown sink type 'consol' (did you mean 'console'?)");
    EXPECT_EQ(e.diagnostics()[1].format(),
              "dir/p.toml:6:9: error: sources.gen: option 'count' must be an integer, got string");
    EXPECT_EQ(e.diagnostics()[2].message, "pipeline: unknown key 'nam' (did you mean 'name'?)");
  }
}

TEST(BadPipelineMessages, ListsOnlyTheFirstTwelveCandidates) {
  std::string text = "[sources.src]\ntype = \"generator\"\n";
  for (int i = 0; i < 14; ++i) {
    text += "[processors.p" + std::to_string(i) + "]\ntype = \"passthrough\"\n";
    text += "inputs = [\"src\"]\n";
  }
  text += "[sinks.out]\ntype = \"console\"\ninputs = [\"zzzzzz\"]\n";
  EXPECT_EQ(errors(text),
            "dir/p.toml:47:11: error: sinks.out: unknown input 'zzzzzz' (nodes: src, p0, p1, p2, "
            "p3, p4, p5, p6, p7, p8, p9, p10, and 4 more)");
}

// ---- Good files ---------------------------------------------------------------------------

TEST(LoadPipeline, AppliesDefaultsAndNormalisesUnits) {
  auto spec = load(GEN_OUT);
  const NodeSpec* gen = spec.find("gen");
  ASSERT_NE(gen, nullptr);
  EXPECT_EQ(gen->kind, NodeKind::kSource);
  EXPECT_EQ(gen->type, "generator");
  EXPECT_EQ(gen->options, json::parse(R"({"count": 10, "interval": 250000000, "buffer": 1048576,
      "format": "text", "symbols": ["BTCUSDT"], "rate": 1.5, "loop": false})"));
  EXPECT_TRUE(gen->option_pos.empty());  // nothing written: defaults have no position
  EXPECT_EQ(spec.find("out")->options, json::parse(R"({"format": "text"})"));
}

TEST(LoadPipeline, LeavesOutDisabledNodesTheirEdgesAndTheirUnsetSecrets) {
  const char* text = R"([sources.gen]
type = "generator"

[sources.optional]
type = "generator"
enabled = "${OPTIONAL_ON:-false}"
api_key = "${OPTIONAL_KEY:?needed only when enabled}"

[sinks.out]
type = "console"
inputs = ["gen", "optional"]

[placement]
one = { nodes = ["gen", "optional", "out"] }
)";
  auto spec = load(text);
  EXPECT_EQ(spec.find("optional"), nullptr);
  ASSERT_EQ(spec.nodes.size(), 2u);
  ASSERT_EQ(spec.find("out")->inputs.size(), 1u);
  EXPECT_EQ(spec.find("out")->inputs[0].node, "gen");
  ASSERT_EQ(spec.placement.size(), 1u);
  EXPECT_EQ(spec.placement[0].nodes, (std::vector<std::string>{"gen", "out"}));

  // Enabled, it is read like any node: its secret must now be set.
  EXPECT_EQ(errors(text, {{"OPTIONAL_ON", "true"}}),
            "dir/p.toml:7:11: error: environment variable 'OPTIONAL_KEY' is not set: needed only "
            "when enabled");
  auto on = load(text, {{"OPTIONAL_ON", "true"}, {"OPTIONAL_KEY", "k"}});
  EXPECT_NE(on.find("optional"), nullptr);
  EXPECT_EQ(on.find("out")->inputs.size(), 2u);
}

TEST(LoadPipeline, ConvertsWrittenOptionsToTheirJsonForm) {
  auto spec = load(R"([sources.gen]
type = "generator"
count = 3
interval = "1m30s"
buffer = "64KiB"
rate = 2
loop = true
symbols = ["ETHUSDT", "BTCUSDT"]
ids = [7, 8]
weights = [1, 0.5]
api_key = "hunter2"
extra = { depth = 2, tags = ["a"], nested = { on = true } }

[sinks.out]
type = "console"
inputs = ["gen"]
format = "json"
)");
  const NodeSpec& gen = *spec.find("gen");
  EXPECT_EQ(gen.options, json::parse(R"({"count": 3, "interval": 90000000000, "buffer": 65536,
      "format": "text", "symbols": ["ETHUSDT", "BTCUSDT"], "ids": [7, 8],
      "weights": [1.0, 0.5], "rate": 2.0, "loop": true, "api_key": "hunter2",
      "extra": {"depth": 2, "tags": ["a"], "nested": {"on": true}}})"));
  EXPECT_TRUE(gen.options["rate"].is_number_float());
  EXPECT_TRUE(gen.options["buffer"].is_number_unsigned());
  EXPECT_EQ(gen.secret_keys, std::vector<std::string>{"api_key"});
  ASSERT_EQ(gen.option_pos.count("interval"), 1u);
  EXPECT_EQ(gen.option_pos.at("interval").line, 4u);
  EXPECT_EQ(gen.option_pos.at("interval").column, 12u);
  EXPECT_EQ(gen.option_pos.at("interval").file, "dir/p.toml");
  EXPECT_EQ(gen.option_pos.count("format"), 0u);
  EXPECT_EQ(spec.find("out")->options["format"], "json");
}

TEST(LoadPipeline, ReadsPipelineSectionAndDefaultsFromTheFileName) {
  auto defaults = load(GEN_OUT);
  EXPECT_EQ(defaults.file, "dir/p.toml");
  EXPECT_EQ(defaults.name, "p");
  EXPECT_EQ(defaults.state_dir, ".sluice/p");
  EXPECT_EQ(defaults.grace_period_ns, 5'000'000'000);
  EXPECT_TRUE(defaults.plugin_path.empty());
  EXPECT_TRUE(defaults.placement.empty());
  EXPECT_TRUE(defaults.admin.enabled);
  EXPECT_EQ(defaults.admin.address, "127.0.0.1");
  EXPECT_EQ(defaults.admin.port, 9464);

  auto spec = load(R"([pipeline]
name = "liquidation-alerts"
plugin_path = ["./plugins", "../shared/plugins", "/opt/sluice/plugins"]
grace_period = "2.5s"

[admin]
enabled = false
address = "0.0.0.0"
port = 9500
)" GEN_OUT);
  EXPECT_EQ(spec.name, "liquidation-alerts");
  EXPECT_EQ(spec.state_dir, ".sluice/liquidation-alerts");
  EXPECT_EQ(spec.plugin_path,
            (std::vector<std::string>{"dir/plugins", "shared/plugins", "/opt/sluice/plugins"}));
  EXPECT_EQ(spec.grace_period_ns, 2'500'000'000);
  EXPECT_FALSE(spec.admin.enabled);
  EXPECT_EQ(spec.admin.address, "0.0.0.0");
  EXPECT_EQ(spec.admin.port, 9500);

  auto custom_state = load("[pipeline]\nstate_dir = \"/var/lib/sluice/x\"\n" GEN_OUT);
  EXPECT_EQ(custom_state.state_dir, "/var/lib/sluice/x");
}

TEST(LoadPipeline, OrdersNodesSourcesProcessorsSinksEachInFileOrder) {
  auto spec = load(R"([sinks.z_out]
type = "console"
inputs = ["b"]
[processors.b]
type = "passthrough"
inputs = ["a"]
[sources.src]
type = "generator"
[processors.a]
type = "passthrough"
inputs = ["src"]
)");
  std::vector<std::string> names;
  for (const auto& n : spec.nodes) names.push_back(n.name);
  EXPECT_EQ(names, (std::vector<std::string>{"src", "b", "a", "z_out"}));
  EXPECT_EQ(spec.find("z_out")->pos.line, 1u);
  EXPECT_EQ(spec.find("z_out")->pos.column, 1u);
  EXPECT_EQ(spec.find("nope"), nullptr);
}

TEST(LoadPipeline, ExpandsEnvironmentVariablesEverywhereInStrings) {
  auto spec = load(R"([settings]
min_usd = "${MIN_USD:-10000}"
ratio = "${RATIO}"
flag = "${FLAG}"
label = "${LABEL}"
plain = "cost: $$5"

[sources.gen]
type = "generator"
count = "${COUNT}"
interval = "${INTERVAL:-1s}"
rate = "${RATE}"
loop = "${LOOP}"
symbols = ["${SYM}", "ETH${SUFFIX:-USDT}"]
api_key = "${KEY:-}"
extra = { url = "${HOST}:${PORT}", literal = "$${NOT_A_VAR}" }

[processors.big]
type = "filter"
inputs = ["gen"]
where = "notional_usd >= $min_usd and side == '${SIDE}'"
max_in_flight = "${INFLIGHT}"

[sinks.out]
type = "console"
inputs = ["big"]
)",
                   {{"RATIO", "0.25"},
                    {"FLAG", "true"},
                    {"LABEL", "alerts"},
                    {"COUNT", "42"},
                    {"RATE", "3.5"},
                    {"LOOP", "true"},
                    {"SYM", "BTCUSDT"},
                    {"HOST", "example"},
                    {"PORT", "8080"},
                    {"SIDE", "SELL"},
                    {"INFLIGHT", "4"},
                    {"KEY", ""}});
  ASSERT_EQ(spec.settings.size(), 5u);
  EXPECT_EQ(spec.settings[0].name, "min_usd");
  EXPECT_EQ(spec.settings[0].value, json(10000));
  EXPECT_EQ(spec.settings[0].pos.line, 2u);
  EXPECT_EQ(spec.settings[1].value, json(0.25));
  EXPECT_EQ(spec.settings[2].value, json(true));
  EXPECT_EQ(spec.settings[3].value, json("alerts"));
  EXPECT_EQ(spec.settings[4].value, json("cost: $$5"));  // only "$${" is an escape

  const NodeSpec& gen = *spec.find("gen");
  EXPECT_EQ(gen.options["count"], 42);
  EXPECT_EQ(gen.options["interval"], 1'000'000'000);
  EXPECT_EQ(gen.options["rate"], 3.5);
  EXPECT_EQ(gen.options["loop"], true);
  EXPECT_EQ(gen.options["symbols"], json::parse(R"(["BTCUSDT", "ETHUSDT"])"));
  EXPECT_EQ(gen.options["api_key"], "");
  EXPECT_EQ(gen.options["extra"],
            json::parse(R"({"url": "example:8080", "literal": "${NOT_A_VAR}"})"));
  const NodeSpec& big = *spec.find("big");
  EXPECT_EQ(big.options["where"], "notional_usd >= $min_usd and side == 'SELL'");
  EXPECT_EQ(big.max_in_flight, 4u);
}

TEST(LoadPipeline, ReadsSettingsWithTheirTypesInFileOrder) {
  auto spec = load(GEN_OUT R"([settings]
min_alert_usd = 10000
ratio = 0.5
channel = "ops"
enabled = true
)");
  ASSERT_EQ(spec.settings.size(), 4u);
  EXPECT_EQ(spec.settings[0].name, "min_alert_usd");
  EXPECT_EQ(spec.settings[0].value, json(10000));
  EXPECT_EQ(spec.settings[0].pos.line, 8u);
  EXPECT_EQ(spec.settings[0].pos.column, 17u);
  EXPECT_EQ(spec.settings[1].value, json(0.5));
  EXPECT_EQ(spec.settings[2].value, json("ops"));
  EXPECT_EQ(spec.settings[3].value, json(true));
}

TEST(LoadPipeline, ParsesInputsWithNamedOutputs) {
  auto spec = load(R"([sources.gen]
type = "generator"
[processors.route]
type = "route"
inputs = ["gen"]
routes = { big = "notional_usd > 1e6", small = "true" }
[sinks.big]
type = "console"
inputs = ["route.big", "route.unmatched"]
[sinks.rest]
type = "console"
inputs = ["route", "route.small", "route.errors", "big.errors"]
)");
  const NodeSpec& big = *spec.find("big");
  ASSERT_EQ(big.inputs.size(), 2u);
  EXPECT_EQ(big.inputs[0].node, "route");
  EXPECT_EQ(big.inputs[0].output, "big");
  EXPECT_EQ(big.inputs[0].pos.line, 9u);
  EXPECT_EQ(big.inputs[0].pos.column, 11u);
  EXPECT_EQ(big.inputs[1].output, "unmatched");
  const NodeSpec& rest = *spec.find("rest");
  ASSERT_EQ(rest.inputs.size(), 4u);
  EXPECT_EQ(rest.inputs[0].output, "");
  EXPECT_EQ(rest.inputs[1].output, "small");
  EXPECT_EQ(rest.inputs[2].output, "errors");
  EXPECT_EQ(rest.inputs[3].node, "big");
  EXPECT_EQ(rest.inputs[3].output, "errors");
}

TEST(LoadPipeline, RuntimeOptionsStayOutOfPluginOptions) {
  auto spec = load(GEN_OUT R"([processors.slow]
type = "passthrough"
inputs = ["gen"]
max_in_flight = 64
ordered = true
[sinks.more]
type = "console"
inputs = ["slow"]
)");
  const NodeSpec& slow = *spec.find("slow");
  EXPECT_EQ(slow.max_in_flight, 64u);
  EXPECT_TRUE(slow.ordered);
  EXPECT_EQ(slow.options, json::object());
  EXPECT_EQ(spec.find("out")->max_in_flight, 128u);
  EXPECT_FALSE(spec.find("out")->ordered);
}

TEST(LoadPipeline, TurnsProcessorReferencesIntoChildIndices) {
  auto spec = load(R"([sources.gen]
type = "generator"

[processors.classify]
type = "fallback"
inputs = ["gen"]
chain = ["deepseek", "gemini", "deepseek", "rules"]

[processors.deepseek]
type = "passthrough"
[processors.gemini]
type = "shadow"
primary = "g_stable"
candidate = "g_canary"
[processors.g_stable]
type = "passthrough"
[processors.g_canary]
type = "passthrough"
[processors.rules]
type = "passthrough"

[sinks.out]
type = "console"
inputs = ["classify", "classify.errors"]
)");
  const NodeSpec& classify = *spec.find("classify");
  EXPECT_FALSE(classify.is_child);
  EXPECT_EQ(classify.children, (std::vector<std::string>{"deepseek", "gemini", "rules"}));
  EXPECT_EQ(classify.options["chain"], json::parse("[0, 1, 0, 2]"));
  EXPECT_TRUE(classify.options["chain"][0].is_number_unsigned());
  EXPECT_EQ(classify.options["deadline"], 8'000'000'000);

  const NodeSpec& gemini = *spec.find("gemini");
  EXPECT_TRUE(gemini.is_child);
  EXPECT_EQ(gemini.children, (std::vector<std::string>{"g_stable", "g_canary"}));
  EXPECT_EQ(gemini.options["primary"], 0u);
  EXPECT_EQ(gemini.options["candidate"], 1u);
  for (const char* child : {"deepseek", "gemini", "g_stable", "g_canary", "rules"}) {
    EXPECT_TRUE(spec.find(child)->is_child) << child;
  }
}

// `enabled = "${LLM_API_KEY:+true}"`: the child exists only when the key is set; left out, it
// leaves the chain the way a disabled input leaves `inputs`.
TEST(LoadPipeline, AChildSwitchedOffByAnUnsetVariableLeavesTheChain) {
  const char* text = R"([sources.gen]
type = "generator"

[processors.classify]
type = "fallback"
inputs = ["gen"]
chain = ["llm", "rules"]

[processors.llm]
type = "passthrough"
enabled = "${LLM_API_KEY:+true}"

[processors.rules]
type = "passthrough"

[sinks.out]
type = "console"
inputs = ["classify"]
)";
  auto off = load(text);
  EXPECT_EQ(off.find("llm"), nullptr);
  EXPECT_EQ(off.find("classify")->children, (std::vector<std::string>{"rules"}));
  EXPECT_EQ(off.find("classify")->options["chain"], json::parse("[0]"));
  // Set but empty counts as unset, as in the shell.
  EXPECT_EQ(load(text, {{"LLM_API_KEY", ""}}).find("llm"), nullptr);

  auto on = load(text, {{"LLM_API_KEY", "sk-1"}});
  ASSERT_NE(on.find("llm"), nullptr);
  EXPECT_EQ(on.find("classify")->children, (std::vector<std::string>{"llm", "rules"}));

  // A list left empty, or a single child left out, is an error at the reference.
  std::string all_off = text;
  all_off.replace(all_off.find("chain = [\"llm\", \"rules\"]"), 24, "chain = [\"llm\"]         ");
  EXPECT_EQ(errors(all_off),
            "dir/p.toml:7:10: error: processors.classify: option 'chain': every processor it "
            "names is disabled ('enabled = false')\n"
            "dir/p.toml:13:1: error: processors.rules: has no inputs and is not used by any "
            "composite");
}

TEST(ExpandEnv, WordWhenSetAndNotEmpty) {
  const char* text = R"([sources.gen]
type = "generator"
enabled = "${ON:+true}"
format = "${FMT:+json}"

[sinks.out]
type = "console"
inputs = ["gen"]
)";
  auto spec = load(text, {{"ON", "1"}, {"FMT", "yes"}});
  ASSERT_NE(spec.find("gen"), nullptr);
  EXPECT_EQ(spec.find("gen")->options["format"], "json");
  std::string bad = errors(R"([sources.gen]
type = "generator"
format = "${ON:*true}"

[sinks.out]
type = "console"
inputs = ["gen"]
)");
  EXPECT_NE(bad.find("dir/p.toml:3:10: error: invalid interpolation '${ON:*true}' (use ${VAR}, "
                     "${VAR:-default}, ${VAR:?message} or ${VAR:+word})"),
            std::string::npos)
      << bad;
}

TEST(LoadPipeline, ReadsPlacementGroups) {
  auto spec = load(R"([sources.binance]
type = "generator"
[processors.big]
type = "filter"
inputs = ["binance"]
where = "notional_usd >= 10000"
[processors.classify]
type = "fallback"
inputs = ["big"]
chain = ["rules"]
[processors.rules]
type = "passthrough"
[sinks.out]
type = "console"
inputs = ["classify"]

[placement]
ingest = { nodes = ["binance", "big"] }
classify = { nodes = ["classify"], port = "${CLASSIFY_PORT}" }
notify = { nodes = ["out"], host = "127.0.0.2", port = 7300 }
)",
                   {{"CLASSIFY_PORT", "7200"}});
  ASSERT_EQ(spec.placement.size(), 3u);
  EXPECT_EQ(spec.placement[0].name, "ingest");
  EXPECT_EQ(spec.placement[0].nodes, (std::vector<std::string>{"binance", "big"}));
  EXPECT_EQ(spec.placement[0].host, "127.0.0.1");
  EXPECT_EQ(spec.placement[0].port, 0);
  EXPECT_EQ(spec.placement[0].pos.line, 18u);
  EXPECT_EQ(spec.placement[0].pos.column, 10u);
  EXPECT_EQ(spec.placement[1].name, "classify");
  EXPECT_EQ(spec.placement[1].port, 7200);
  EXPECT_EQ(spec.placement[2].name, "notify");
  EXPECT_EQ(spec.placement[2].host, "127.0.0.2");
  EXPECT_EQ(spec.placement[2].port, 7300);
}

TEST(LoadPipeline, ReadsAFileFromDisk) {
  auto dir =
      std::filesystem::temp_directory_path() / ("sluice_config_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto path = (dir / "alerts.toml").string();
  {
    std::ofstream out(path);
    out << GEN_OUT << "[pipeline]\nplugin_path = [\"plugins\"]\n";
  }
  auto spec = load_pipeline(path, catalog(), env_of({}));
  EXPECT_EQ(spec.file, path);
  EXPECT_EQ(spec.name, "alerts");
  EXPECT_EQ(spec.plugin_path, std::vector<std::string>{(dir / "plugins").string()});
  EXPECT_EQ(spec.find("gen")->pos.file, path);
  std::filesystem::remove_all(dir);
}

TEST(LoadPipeline, ReportsAnUnreadableFile) {
  try {
    load_pipeline("/nonexistent/pipeline.toml", catalog());
    FAIL() << "accepted";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(),
                 "/nonexistent/pipeline.toml: error: cannot read pipeline file: No such file or "
                 "directory");
  }
}

// deadline = now + grace_period: a grace period near the int64 limit wrapped the deadline into
// the past and broke shutdown. Durations beyond 30 days are refused where they are written.
TEST(LoadPipeline, RefusesAGracePeriodBeyondThirtyDays) {
  EXPECT_EQ(errors("[pipeline]\ngrace_period = \"106751d\"\n" GEN_OUT),
            "dir/p.toml:2:16: error: pipeline: 'grace_period': invalid duration '106751d': "
            "duration is too large (at most 30d)");
  EXPECT_EQ(errors("[pipeline]\ngrace_period = \"${GRACE}\"\n" GEN_OUT,
                   {{"GRACE", "9223372036854775807ns"}}),
            "dir/p.toml:2:16: error: pipeline: 'grace_period': invalid duration "
            "'9223372036854775807ns': duration is too large (at most 30d)");
  EXPECT_EQ(load("[pipeline]\ngrace_period = \"30d\"\n" GEN_OUT).grace_period_ns,
            30LL * 86'400'000'000'000LL);
}

TEST(LoadPipeline, RefusesAPluginDurationOptionBeyondThirtyDays) {
  EXPECT_EQ(errors("[sources.gen]\ntype = \"generator\"\ninterval = \"365d\"\n\n"
                   "[sinks.out]\ntype = \"console\"\ninputs = [\"gen\"]\n"),
            "dir/p.toml:3:12: error: sources.gen: option 'interval': invalid duration '365d': "
            "duration is too large (at most 30d)");
}

TEST(LoadPipeline, UsesTheProcessEnvironmentByDefault) {
  ::setenv("SLUICE_CONFIG_TEST_COUNT", "77", 1);
  auto spec = load_pipeline_text(GEN_OUT
                                 "[sources.more]\ntype = \"generator\"\n"
                                 "count = \"${SLUICE_CONFIG_TEST_COUNT}\"\n"
                                 "[sinks.more_out]\ntype = \"console\"\n"
                                 "inputs = [\"more\"]\n",
                                 "p.toml", catalog());
  EXPECT_EQ(spec.find("more")->options["count"], 77);
  ::unsetenv("SLUICE_CONFIG_TEST_COUNT");
}

// ---- Single nodes (plugin tests) ----------------------------------------------------------

TEST(LoadNodeText, ValidatesOneNodeAgainstItsPlugin) {
  NodeSpec node =
      load_node_text("where = \"price > ${MIN}\"\nmax_in_flight = 8\n", NodeKind::kProcessor,
                     "filter", catalog(), env_of({{"MIN", "10"}}));
  EXPECT_EQ(node.name, "test");
  EXPECT_EQ(node.type, "filter");
  EXPECT_EQ(node.options, json::parse(R"({"where": "price > 10"})"));
  EXPECT_EQ(node.max_in_flight, 8u);
  EXPECT_EQ(node.option_pos.at("where").file, "<options>");
  EXPECT_EQ(node.option_pos.at("where").column, 9u);

  NodeSpec gen = load_node_text("", NodeKind::kSource, "generator", catalog());
  EXPECT_EQ(gen.options["count"], 10);
}

std::string node_errors(std::string_view body, NodeKind kind, std::string_view type) {
  try {
    load_node_text(body, kind, type, catalog(), env_of({}));
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(loaded)";
}

TEST(LoadNodeText, UsesTheSameMessagesWithATestSectionName) {
  EXPECT_EQ(node_errors("wher = \"x\"\n", NodeKind::kProcessor, "filter"),
            "<options>:1:1: error: processors.test: unknown option 'wher' (did you mean 'where'?)\n"
            "<options>:1:1: error: processors.test: missing required option 'where'");
  EXPECT_EQ(node_errors("", NodeKind::kSink, "consol"),
            "<options>:1:1: error: sinks.test: unknown sink type 'consol' (did you mean "
            "'console'?)");
  EXPECT_EQ(node_errors("count = [", NodeKind::kSource, "generator"),
            "<options>:1:10: error: invalid TOML: Error while parsing array: encountered "
            "end-of-file");
}

TEST(LoadNodeText, RejectsProcessorReferencesAndInputs) {
  EXPECT_EQ(node_errors("chain = [\"a\"]\ninputs = [\"x\"]\n", NodeKind::kProcessor, "fallback"),
            "<options>:1:9: error: processors.test: option 'chain': processor references are "
            "only supported in pipeline files\n"
            "<options>:2:10: error: processors.test: 'inputs' belong in a pipeline file, not "
            "here");
}

// ---- plugin_error, formatting, names ------------------------------------------------------

sluice_error make_error(const char* key, uint32_t column, const char* message) {
  sluice_error err{};
  std::snprintf(err.key, sizeof(err.key), "%s", key);
  err.column = column;
  std::snprintf(err.message, sizeof(err.message), "%s", message);
  return err;
}

TEST(PluginError, PointsInsideTheOptionsStringValue) {
  auto spec = load(GEN_OUT R"([processors.big]
type = "filter"
inputs = ["gen"]
where = "price >> 10"
[sinks.more]
type = "console"
inputs = ["big"]
)");
  const NodeSpec& big = *spec.find("big");
  // The value's quote is at column 9, so its 8th character (the second '>') is at column 17.
  Diagnostic d = plugin_error(spec, big, make_error("where", 8, "unexpected '>'"));
  EXPECT_EQ(d.format(), "dir/p.toml:10:17: error: processors.big: option 'where': unexpected '>'");
  Diagnostic whole = plugin_error(spec, big, make_error("where", 0, "too complex"));
  EXPECT_EQ(whole.format(), "dir/p.toml:10:9: error: processors.big: option 'where': too complex");
}

TEST(PluginError, PointsInsideAnEntryOfATableOption) {
  auto spec = load(GEN_OUT R"([processors.route]
type = "route"
inputs = ["gen"]
routes = { big = "x >= ", small = { deep = "y" } }
[sinks.more]
type = "console"
inputs = ["route.big", "route.small"]
)");
  const NodeSpec& route = *spec.find("route");
  EXPECT_EQ(route.option_pos.at("routes").column, 10u);
  EXPECT_EQ(route.option_pos.at("routes.big").column, 18u);
  EXPECT_EQ(route.option_pos.at("routes.small.deep").column, 44u);
  EXPECT_EQ(plugin_error(spec, route, make_error("routes.big", 5, "expected an operand")).format(),
            "dir/p.toml:10:23: error: processors.route: option 'routes.big': expected an operand");
  // A table entry that is not a string has no columns to point into.
  EXPECT_EQ(plugin_error(spec, route, make_error("routes.small", 2, "must be a string")).format(),
            "dir/p.toml:10:35: error: processors.route: option 'routes.small': must be a string");
}

TEST(PluginError, FallsBackToTheNodeTable) {
  auto spec = load(GEN_OUT);
  const NodeSpec& gen = *spec.find("gen");
  EXPECT_EQ(plugin_error(spec, gen, make_error("", 3, "cannot open /dev/x")).format(),
            "dir/p.toml:1:1: error: sources.gen: cannot open /dev/x");
  // A defaulted option has no position of its own, and an integer has no columns.
  EXPECT_EQ(plugin_error(spec, gen, make_error("count", 2, "too many")).format(),
            "dir/p.toml:1:1: error: sources.gen: option 'count': too many");
}

TEST(Diagnostic, FormatsFileLineColumnAndJoinsInConfigError) {
  Diagnostic a{{"f.toml", 3, 7}, "first"};
  Diagnostic b{{"f.toml", 9, 1}, "second"};
  EXPECT_EQ(a.format(), "f.toml:3:7: error: first");
  ConfigError e({a, b});
  EXPECT_STREQ(e.what(), "f.toml:3:7: error: first\nf.toml:9:1: error: second");
  EXPECT_EQ(e.diagnostics().size(), 2u);
}

TEST(NodeKindNames, NameKindsAndTheirSections) {
  EXPECT_STREQ(kind_name(NodeKind::kSource), "source");
  EXPECT_STREQ(kind_name(NodeKind::kProcessor), "processor");
  EXPECT_STREQ(kind_name(NodeKind::kSink), "sink");
  EXPECT_STREQ(kind_section(NodeKind::kSource), "sources");
  EXPECT_STREQ(kind_section(NodeKind::kProcessor), "processors");
  EXPECT_STREQ(kind_section(NodeKind::kSink), "sinks");
}

}  // namespace
}  // namespace sluice::core
