// Pipeline files: TOML → validated PipelineSpec.
//
// Everything a user can get wrong in a pipeline file is reported here, before any stage starts,
// as a Diagnostic naming file:line:column. Plugin options are checked against each plugin's
// declared schema (sluice_option_spec), so this module never sees plugin code, only descriptors.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "sluice/abi.h"

namespace sluice::core {

enum class NodeKind { kSource, kProcessor, kSink };
const char* kind_name(NodeKind k);        // "source" | "processor" | "sink"
const char* kind_section(NodeKind k);     // "sources" | "processors" | "sinks"

struct SourcePos {
  std::string file;
  uint32_t line = 0;
  uint32_t column = 0;
};

// One problem, rendered as "file:line:col: error: message".
struct Diagnostic {
  SourcePos pos;
  std::string message;
  std::string format() const;
};

// Thrown by load_pipeline with every problem found (not just the first).
class ConfigError : public std::runtime_error {
 public:
  explicit ConfigError(std::vector<Diagnostic> diags);
  const std::vector<Diagnostic>& diagnostics() const { return diags_; }

 private:
  std::vector<Diagnostic> diags_;
};

// "250ms", "2.5s", "1m30s", "1h", "10us", "5ns" → nanoseconds. Error text on failure.
std::optional<int64_t> parse_duration(std::string_view text, std::string* error = nullptr);
// "10MiB", "512KB", "1GiB", "100B", "4096" → bytes.
std::optional<uint64_t> parse_size(std::string_view text, std::string* error = nullptr);
// Closest candidate by edit distance (for "did you mean"), or "" when nothing is close.
std::string nearest_name(std::string_view name, const std::vector<std::string>& candidates);

struct InputRef {
  std::string node;    // upstream node name
  std::string output;  // "" = default output, else a named output ("errors", "unmatched")
  SourcePos pos;
};

struct NodeSpec {
  std::string name;
  NodeKind kind = NodeKind::kProcessor;
  std::string type;
  SourcePos pos;                    // position of the [section.name] table
  std::vector<InputRef> inputs;
  // The plugin's options: validated, defaults applied, ${VAR} expanded, durations as integer
  // nanoseconds, sizes as integer bytes, PROCESSOR/PROCESSOR_LIST options as indices into
  // `children`. This is exactly the JSON handed to the plugin's create().
  nlohmann::json options = nlohmann::json::object();
  std::vector<std::string> children;  // child processor names, in index order
  std::map<std::string, SourcePos> option_pos;  // where each option's value is written
  std::vector<std::string> secret_keys;         // options of type SECRET (redact in dumps)
  // Runtime options every node accepts (not passed to the plugin):
  uint32_t max_in_flight = 128;  // concurrent process() calls (processors and sinks)
  bool ordered = false;          // emit in input order even when calls finish out of order
  bool is_child = false;         // a processor without inputs that a composite owns
};

struct PlacementGroup {
  std::string name;
  std::vector<std::string> nodes;
  std::string host = "127.0.0.1";  // where this group's stages listen for tcp edges
  uint16_t port = 0;               // first tcp port of this group; 0 = ipc (same host)
  // CURVE for tcp edges: the group's public key (every process reads it), and its secret, inline
  // (from ${VAR}) or as a file read only by the process that runs the group. Never logged.
  std::string curve_public_key;
  std::string curve_secret_key;
  std::string curve_secret_key_file;  // resolved against the pipeline file's directory
  SourcePos pos;
  SourcePos host_pos;   // where `host` is written (line 0: not written)
  SourcePos curve_pos;  // where the secret (or its file) is named
};

struct AdminSpec {
  bool enabled = true;
  std::string address = "127.0.0.1";  // an IP address (checked by the loader)
  uint16_t port = 9464;  // per process: port + index of the placement group
  // Bearer token every request but /health and /ready must carry ("" = none). A secret: never
  // logged or shown in an error. Required when `address` is not loopback.
  std::string token;
  // Host header values accepted besides the loopback names and `address` (for a Prometheus
  // that scrapes this host by name); an entry without a port means the endpoint's port.
  std::vector<std::string> hosts;
  SourcePos pos;       // the [admin] table, or the file when there is none
  SourcePos port_pos;  // where `port` is written (else as pos)
};

// True for 127.0.0.0/8, ::1 and ::ffff:127.x.y.z; false for anything else, names included.
bool is_loopback_address(std::string_view address);

struct SettingSpec {
  SettingSpec() = default;
  // Bounds last and optional, so `{name, value, pos}` still declares an unbounded setting.
  SettingSpec(std::string n, nlohmann::json v, SourcePos p, nlohmann::json lo = nullptr,
              nlohmann::json hi = nullptr)
      : name(std::move(n)), value(std::move(v)), pos(std::move(p)), min(std::move(lo)),
        max(std::move(hi)) {}

  std::string name;
  nlohmann::json value;  // default value (number, string, bool)
  SourcePos pos;
  // Optional inclusive bounds of a number setting (null = unbounded), from
  // `name = { value = 10, min = 0, max = 100 }`.
  nlohmann::json min;
  nlohmann::json max;
};

struct PipelineSpec {
  std::string file;
  std::string name;
  std::vector<std::string> plugin_path;  // [pipeline] plugin_path, resolved against the file
  std::string state_dir;                 // [pipeline] state_dir, default ".sluice/<name>"
  int64_t grace_period_ns = 5'000'000'000;  // [pipeline] grace_period
  uint64_t max_event_size = 16u << 20;      // [pipeline] max_event_size: largest frame accepted
  std::vector<SettingSpec> settings;        // [settings]
  std::vector<NodeSpec> nodes;              // declaration order: sources, processors, sinks
  std::vector<PlacementGroup> placement;    // empty = one process
  AdminSpec admin;                          // [admin] enabled/address/port

  const NodeSpec* find(std::string_view name) const;
};

// How the loader sees plugins without depending on the registry.
struct PluginCatalog {
  std::function<const sluice_plugin_descriptor*(NodeKind, std::string_view type)> find;
  std::function<std::vector<std::string>(NodeKind)> names;
  // Why a type cannot be used although a file provides it (refused ABI, two files); optional.
  std::function<std::optional<std::string>(NodeKind, std::string_view type)> refused;
};

// Environment lookup for ${VAR}; defaults to getenv.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;

// Parses and validates a pipeline file. Throws ConfigError listing every problem.
PipelineSpec load_pipeline(const std::string& path, const PluginCatalog& plugins,
                           const EnvLookup& env = {});
// Same, from text (tests); `file` is the name used in diagnostics.
PipelineSpec load_pipeline_text(std::string_view text, const std::string& file,
                                const PluginCatalog& plugins, const EnvLookup& env = {});

// What `sluice ctl` needs from a pipeline file, read without the plugins and without expanding
// ${VAR} outside [admin] (the operator's shell need not hold the pipeline's other secrets).
struct AdminTarget {
  AdminSpec admin;
  std::vector<std::string> groups;  // [placement] group names in file order
};
AdminTarget load_admin_target(const std::string& path, const EnvLookup& env = {});

}  // namespace sluice::core

namespace sluice::core {

// Validates a single node's options (the body of its table, without `type`) against its
// plugin's schema. For plugin tests and tools; PROCESSOR options are rejected here.
NodeSpec load_node_text(std::string_view toml_body, NodeKind kind, std::string_view type,
                        const PluginCatalog& plugins, const EnvLookup& env = {});

// Maps a plugin's create() error to the option's position in the file (column counts into
// the option's string value, so an expression error points at the offending character).
Diagnostic plugin_error(const PipelineSpec& spec, const NodeSpec& node, const sluice_error& err);

}  // namespace sluice::core
