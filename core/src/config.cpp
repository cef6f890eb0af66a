// Pipeline files: the entry points of config.hpp and the pipeline-level checks (sections, node
// names and types, inputs and named outputs, composite children, graph shape, placement).
// Option values are checked in config_options.cpp, units parsed in config_units.cpp and ${VAR}
// expanded in config_env.cpp.
#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <tuple>

#include <fmt/format.h>

#include "config_internal.hpp"
#include "sluice/core/edge_keys.hpp"
#include "sluice/core/pipeline_file.hpp"
#include "sluice/core/state.hpp"

namespace sluice::core {

const char* kind_name(NodeKind k) {
  switch (k) {
    case NodeKind::kSource:
      return "source";
    case NodeKind::kProcessor:
      return "processor";
    case NodeKind::kSink:
      return "sink";
  }
  return "node";
}

const char* kind_section(NodeKind k) {
  switch (k) {
    case NodeKind::kSource:
      return "sources";
    case NodeKind::kProcessor:
      return "processors";
    case NodeKind::kSink:
      return "sinks";
  }
  return "nodes";
}

std::string Diagnostic::format() const {
  // Line 0 means the problem concerns the whole file (e.g. it cannot be read).
  if (pos.line == 0) return pos.file + ": error: " + message;
  return pos.file + ":" + std::to_string(pos.line) + ":" + std::to_string(pos.column) +
         ": error: " + message;
}

namespace {

std::string format_all(const std::vector<Diagnostic>& diags) {
  std::string out;
  for (const auto& d : diags) {
    if (!out.empty()) out += "\n";
    out += d.format();
  }
  return out;
}

}  // namespace

ConfigError::ConfigError(std::vector<Diagnostic> diags)
    : std::runtime_error(format_all(diags)), diags_(std::move(diags)) {}

const NodeSpec* PipelineSpec::find(std::string_view name) const {
  for (const auto& node : nodes) {
    if (node.name == name) return &node;
  }
  return nullptr;
}

namespace {

using detail::ChildOption;
using detail::Diagnostics;
using detail::Expansion;
using detail::in_file_order;
using detail::Reader;
using detail::suggestion;
using detail::type_name;

const std::vector<std::string> kSections = {"pipeline",   "settings", "admin",    "sources",
                                            "processors", "sinks",    "placement"};
const std::vector<std::string> kPipelineKeys = {"name", "plugin_path", "state_dir", "grace_period",
                                                 "max_event_size"};
const std::vector<std::string> kSettingKeys = {"value", "min", "max"};
const std::vector<std::string> kGroupKeys = {"nodes", "host", "port", "curve_public_key",
                                             "curve_secret_key", "curve_secret_key_file"};
// Bounds of [pipeline] max_event_size: below 1 KiB no real event fits; above 1 GiB one peer
// could make a process reserve more memory than a pipeline host should give a single event.
constexpr uint64_t kMinEventSize = 1024;
constexpr uint64_t kMaxEventSize = uint64_t{1} << 30;

bool contains(const std::vector<std::string>& items, std::string_view item) {
  return std::find(items.begin(), items.end(), item) != items.end();
}

// Node and placement group names: [a-z0-9_-]+ (they appear in endpoints, metrics and paths).
bool valid_node_name(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

// Settings are read by expressions as $name: [a-z_][a-z0-9_]*.
bool valid_setting_name(std::string_view name) {
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

bool valid_pipeline_name(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
  });
}

std::optional<std::string> getenv_lookup(const std::string& name) {
  const char* value = std::getenv(name.c_str());
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

std::string where(const SourcePos& pos) {
  return pos.file + ":" + std::to_string(pos.line) + ":" + std::to_string(pos.column);
}

// Reports keys of `table` outside `known`: "<section>: unknown key 'x' (did you mean 'y'?)".
void check_keys(const toml::table& table, const std::vector<std::string>& known,
                const std::string& section, Diagnostics& diags) {
  for (auto [key, value] : in_file_order(table)) {
    std::string k(key->str());
    if (contains(known, k)) continue;
    diags.error(diags.pos(*key),
                section + ": unknown key '" + k + "'" + suggestion(k, known, "valid keys"));
  }
}

// A node while the file is checked: its spec plus what the later passes need.
struct Draft {
  NodeSpec spec;
  std::string section;  // "processors.big", the prefix of this node's messages
  const toml::table* table = nullptr;
  const sluice_plugin_descriptor* desc = nullptr;  // null: type missing or unknown
  std::vector<ChildOption> child_options;
  bool has_inputs = false;      // an `inputs` key is written (valid or not)
  bool inputs_invalid = false;  // `inputs` missing on a sink, empty or not a list of strings
  SourcePos inputs_pos;
  std::string owner;  // the composite that uses this processor as a child
  std::vector<std::string> outputs;
};

// The node's plugin, from `type` (or the type given to load_node_text).
void read_type(Draft& d, const PluginCatalog& plugins, const Reader& reader, bool standalone) {
  Diagnostics& diags = reader.diags();
  NodeSpec& node = d.spec;
  SourcePos type_pos = node.pos;
  if (!standalone) {
    const toml::node* type = d.table->get("type");
    if (type == nullptr) {
      diags.error(node.pos, d.section + ": missing 'type'");
      return;
    }
    auto text = reader.string(*type, d.section + ": 'type'");
    if (!text) return;
    node.type = *text;
    type_pos = diags.pos(*type);
  }
  d.desc = plugins.find ? plugins.find(node.kind, node.type) : nullptr;
  if (auto why = plugins.refused ? plugins.refused(node.kind, node.type) : std::nullopt) {
    d.desc = nullptr;
    diags.error(type_pos, d.section + ": " + kind_name(node.kind) + " type '" + node.type +
                              "' cannot be used: " + *why);
  } else if (d.desc == nullptr) {
    std::vector<std::string> names =
        plugins.names ? plugins.names(node.kind) : std::vector<std::string>{};
    std::sort(names.begin(), names.end());
    diags.error(type_pos, d.section + ": unknown " + kind_name(node.kind) + " type '" + node.type +
                              "'" + suggestion(node.type, names, "available"));
  }
}

// `inputs = ["a", "b.errors"]`, split into node and output; resolved once every node is known.
void read_inputs(Draft& d, const toml::node& inputs, const Reader& reader, bool standalone) {
  Diagnostics& diags = reader.diags();
  d.has_inputs = true;
  d.inputs_pos = diags.pos(inputs);
  if (standalone) {
    diags.error(d.inputs_pos, d.section + ": 'inputs' belong in a pipeline file, not here");
    return;
  }
  auto names = reader.strings(inputs, d.section + ": 'inputs'");
  if (!names) {
    d.inputs_invalid = true;
    return;
  }
  if (names->empty()) {
    d.inputs_invalid = true;
    diags.error(d.inputs_pos, d.section + ": 'inputs' is empty" +
                                  (d.spec.kind == NodeKind::kProcessor
                                       ? std::string(" (omit it for a child processor)")
                                       : std::string()));
  }
  const auto& array = *inputs.as_array();
  for (size_t i = 0; i < names->size(); ++i) {
    const std::string& text = (*names)[i];
    size_t dot = text.find('.');
    InputRef ref;
    ref.node = text.substr(0, dot);
    if (dot != std::string::npos) ref.output = text.substr(dot + 1);
    ref.pos = diags.pos(array[i]);
    d.spec.inputs.push_back(std::move(ref));
  }
}

// Reads one node table: type, the runtime keys, then the plugin's options. `standalone` is
// load_node_text: the type is given, and inputs and children need a whole pipeline.
void read_node(Draft& d, const PluginCatalog& plugins, const Reader& reader, bool standalone) {
  Diagnostics& diags = reader.diags();
  const toml::table& table = *d.table;
  NodeSpec& node = d.spec;
  read_type(d, plugins, reader, standalone);

  std::vector<std::string> skip;          // keys that are not plugin options
  std::vector<std::string> runtime_keys;  // offered in "did you mean" besides plugin options
  if (!standalone) skip.push_back("type");
  skip.push_back("enabled");  // read (and found true) in collect_nodes
  if (node.kind == NodeKind::kSource) {
    if (auto it = table.find("inputs"); it != table.end()) {
      diags.error(diags.pos(it->first), d.section + ": a source has no inputs");
      skip.push_back("inputs");
    }
  } else {
    runtime_keys.assign(std::begin(detail::kRuntimeKeys), std::end(detail::kRuntimeKeys));
    skip.insert(skip.end(), runtime_keys.begin(), runtime_keys.end());
    if (const toml::node* inputs = table.get("inputs")) {
      read_inputs(d, *inputs, reader, standalone);
    } else if (node.kind == NodeKind::kSink && !standalone) {
      d.inputs_invalid = true;
      diags.error(node.pos, d.section + ": missing 'inputs'");
    }
    if (const toml::node* v = table.get("max_in_flight")) {
      if (auto n = reader.integer_in(*v, d.section + ": 'max_in_flight'", 1,
                                     std::numeric_limits<uint32_t>::max())) {
        node.max_in_flight = static_cast<uint32_t>(*n);
      }
    }
    if (const toml::node* v = table.get("ordered")) {
      if (auto b = reader.boolean(*v, d.section + ": 'ordered'")) node.ordered = *b;
    }
  }

  runtime_keys.push_back("enabled");
  if (d.desc != nullptr) {
    detail::validate_options(table, *d.desc, d.section, skip, runtime_keys, reader, node,
                             d.child_options);
  }
  if (standalone) {
    for (const auto& child : d.child_options) {
      auto it = node.option_pos.find(child.key);
      diags.error(it != node.option_pos.end() ? it->second : node.pos,
                  d.section + ": option '" + child.key +
                      "': processor references are only supported in pipeline files");
    }
  }
}

class Loader {
 public:
  Loader(const toml::table& root, Diagnostics& diags, const Expansion& expansion,
         const PluginCatalog& plugins)
      : root_(root), diags_(diags), reader_(diags, expansion), plugins_(plugins) {}

  PipelineSpec run() {
    spec_.file = diags_.file();
    check_sections();
    read_pipeline();
    read_settings();
    read_admin();
    collect_nodes();
    for (auto& d : drafts_) read_node(d, plugins_, reader_, /*standalone=*/false);
    resolve_children();
    for (auto& d : drafts_) d.outputs = detail::node_outputs(d.desc, d.spec.kind, d.table, d.spec);
    resolve_inputs();
    check_graph();
    read_placement();
    check_admin_ports();
    diags_.throw_if_any();
    for (auto& d : drafts_) spec_.nodes.push_back(std::move(d.spec));
    return std::move(spec_);
  }

 private:
  const toml::table* section(const char* name) const { return root_.get_as<toml::table>(name); }

  void check_sections() {
    for (auto [key, value] : in_file_order(root_)) {
      std::string k(key->str());
      if (!contains(kSections, k)) {
        diags_.error(diags_.pos(*key), std::string(value->is_table() ? "unknown section '"
                                                                     : "unknown top-level key '") +
                                           k + "'" + suggestion(k, kSections, "valid sections"));
      } else if (!value->is_table()) {
        reader_.wrong_type(*value, "'" + k + "'", "a table");
      }
    }
  }

  void read_pipeline() {
    std::filesystem::path file(diags_.file());
    spec_.name = file.stem().string();
    if (const toml::table* t = section("pipeline")) {
      check_keys(*t, kPipelineKeys, "pipeline", diags_);
      if (const toml::node* v = t->get("name")) {
        if (auto name = reader_.string(*v, "pipeline: 'name'")) {
          if (valid_pipeline_name(*name)) {
            spec_.name = *name;
          } else {
            diags_.error(diags_.pos(*v), "pipeline: invalid name '" + *name +
                                             "' (use letters, digits, '_', '-' and '.')");
          }
        }
      }
      if (const toml::node* v = t->get("plugin_path")) {
        if (auto paths = reader_.strings(*v, "pipeline: 'plugin_path'")) {
          for (const auto& p : *paths) {
            std::filesystem::path path(p);
            if (path.is_relative()) path = file.parent_path() / path;
            spec_.plugin_path.push_back(path.lexically_normal().string());
          }
        }
      }
      if (const toml::node* v = t->get("state_dir")) {
        if (auto dir = reader_.string(*v, "pipeline: 'state_dir'")) spec_.state_dir = *dir;
      }
      if (const toml::node* v = t->get("grace_period")) {
        if (auto ns = reader_.duration(*v, "pipeline: 'grace_period'")) spec_.grace_period_ns = *ns;
      }
      if (const toml::node* v = t->get("max_event_size")) {
        if (auto bytes = reader_.size(*v, "pipeline: 'max_event_size'")) {
          if (*bytes < kMinEventSize || *bytes > kMaxEventSize) {
            diags_.error(diags_.pos(*v), "pipeline: 'max_event_size' must be between 1KiB and "
                                         "1GiB, got " + std::to_string(*bytes) + " bytes");
          } else {
            spec_.max_event_size = *bytes;
          }
        }
      }
    }
    if (spec_.state_dir.empty()) spec_.state_dir = ".sluice/" + spec_.name;
  }

  void read_settings() {
    const toml::table* t = section("settings");
    if (t == nullptr) return;
    for (auto [key, value] : in_file_order(*t)) {
      std::string name(key->str());
      if (!valid_setting_name(name)) {
        diags_.error(diags_.pos(*key), "settings: invalid setting name '" + name +
                                           "' (use lowercase letters, digits and '_', not "
                                           "starting with a digit)");
        continue;
      }
      // `name = value`, or `name = { value = ..., min = ..., max = ... }` with bounds.
      const toml::table* declared = value->as_table();
      const toml::node* v = value;
      if (declared != nullptr) {
        check_keys(*declared, kSettingKeys, "settings." + name, diags_);
        v = declared->get("value");
        if (v == nullptr) {
          diags_.error(diags_.pos(*value), "settings." + name +
                                               ": missing 'value' (the setting's default, e.g. "
                                               "{ value = 10000, min = 0 })");
          continue;
        }
      }
      std::optional<nlohmann::json> json = setting_value(*v, name);
      if (!json) continue;
      SettingSpec spec{name, std::move(*json), diags_.pos(*v)};
      if (declared == nullptr || read_bounds(*declared, spec)) {
        spec_.settings.push_back(std::move(spec));
      }
    }
  }

  std::optional<nlohmann::json> setting_value(const toml::node& v, const std::string& name) {
    if (reader_.failed(v)) return std::nullopt;
    if (v.is_string() && reader_.expanded(v)) return typed_from_text(v.as_string()->get());
    if (v.is_floating_point() && !std::isfinite(v.as_floating_point()->get())) {
      diags_.error(diags_.pos(v), "settings: '" + name + "' must be a finite number");
      return std::nullopt;
    }
    if (v.is_string() || v.is_integer() || v.is_floating_point() || v.is_boolean()) {
      return detail::to_json(v);
    }
    reader_.wrong_type(v, "settings: '" + name + "'", "a string, integer, float or boolean");
    return std::nullopt;
  }

  // min/max of a declared setting: numbers, only for a number setting, min <= max, and the
  // default inside them. False when anything is wrong (reported).
  bool read_bounds(const toml::table& declared, SettingSpec& spec) {
    bool ok = true;
    std::string what = "settings." + spec.name;
    for (const char* bound : {"min", "max"}) {
      const toml::node* b = declared.get(bound);
      if (b == nullptr) continue;
      if (!spec.value.is_number()) {
        diags_.error(diags_.pos(*b), what + ": '" + bound + "' applies only to a number setting (" +
                                         "this one is a " + json_kind_name(spec.value) + ")");
        ok = false;
        continue;
      }
      auto n = reader_.number(*b, what + ": '" + bound + "'");
      if (!n) {
        ok = false;
        continue;
      }
      nlohmann::json bj = b->is_integer() ? nlohmann::json(b->as_integer()->get())
                                          : nlohmann::json(*n);
      (std::string_view(bound) == "min" ? spec.min : spec.max) = std::move(bj);
    }
    if (!ok) return false;
    if (!spec.min.is_null() && !spec.max.is_null() &&
        spec.min.get<double>() > spec.max.get<double>()) {
      diags_.error(diags_.pos(*declared.get("min")),
                   what + ": 'min' (" + spec.min.dump() + ") is greater than 'max' (" +
                       spec.max.dump() + ")");
      return false;
    }
    std::string why = SettingsStore(std::vector<SettingSpec>{spec}).check(spec.name, spec.value);
    if (!why.empty()) {
      diags_.error(spec.pos, what + ": the default is outside its bounds: " + why);
      return false;
    }
    return true;
  }

  static const char* json_kind_name(const nlohmann::json& v) {
    if (v.is_boolean()) return "boolean";
    if (v.is_string()) return "string";
    return "number";
  }

  // A setting written as "${VAR:-10000}" has no declared type: take the one its text spells.
  static nlohmann::json typed_from_text(const std::string& text) {
    if (text == "true") return true;
    if (text == "false") return false;
    try {
      toml::table t = toml::parse("v = " + text, std::string_view("<setting>"));
      if (const auto* i = t.get_as<int64_t>("v")) return i->get();
      if (const auto* f = t.get_as<double>("v")) return f->get();
    } catch (const toml::parse_error&) {
      // Not a TOML number: it stays a string.
    }
    return text;
  }

  void read_admin() {
    const toml::table* t = section("admin");
    detail::read_admin(t, reader_, spec_.admin);
  }

  // Gathers [sources.X], [processors.X] and [sinks.X]: names checked, duplicates refused,
  // ordered sources, processors, sinks, each in file order.
  void collect_nodes() {
    struct Entry {
      NodeKind kind;
      std::string name;
      const toml::table* table;
      SourcePos pos;
    };
    std::vector<Entry> entries;
    for (NodeKind kind : {NodeKind::kSource, NodeKind::kProcessor, NodeKind::kSink}) {
      const toml::table* t = section(kind_section(kind));
      if (t == nullptr) continue;
      for (auto [key, value] : in_file_order(*t)) {
        std::string name(key->str());
        if (!value->is_table()) {
          reader_.wrong_type(*value, std::string(kind_section(kind)) + ": '" + name + "'",
                             "a table");
          continue;
        }
        entries.push_back({kind, name, value->as_table(), diags_.pos(*value)});
      }
      if (kind == NodeKind::kSource) source_count_ += t->size();
      if (kind == NodeKind::kSink) sink_count_ += t->size();
    }
    // A section written with the wrong type has its own error already.
    if (source_count_ == 0 && !root_.contains("sources")) {
      diags_.error(diags_.file_pos(), "a pipeline needs at least one source");
    }
    if (sink_count_ == 0 && !root_.contains("sinks")) {
      diags_.error(diags_.file_pos(), "a pipeline needs at least one sink");
    }

    std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
      return std::tie(a.pos.line, a.pos.column) < std::tie(b.pos.line, b.pos.column);
    });
    std::map<std::string, const Entry*> seen;
    for (const auto& e : entries) {
      std::string section = std::string(kind_section(e.kind)) + "." + e.name;
      if (!valid_node_name(e.name)) {
        diags_.error(e.pos, section + ": invalid node name '" + e.name +
                                "' (use lowercase letters, digits, '_' and '-')");
        continue;
      }
      if (auto it = seen.find(e.name); it != seen.end()) {
        diags_.error(e.pos, section + ": duplicate node name '" + e.name + "' (also a " +
                                kind_name(it->second->kind) + " at " + where(it->second->pos) +
                                ")");
        continue;
      }
      seen[e.name] = &e;
      // `enabled = false` (usually "${VAR:-false}") leaves the node out as if it were not
      // written: none of its other keys are read, so its ${VAR:?} secrets need not be set.
      if (const toml::node* v = e.table->get("enabled")) {
        // An empty string is off: `enabled = "${LLM_API_KEY:+true}"` with the variable unset.
        const auto* text = v->as_string();
        auto on = text != nullptr && text->get().empty()
                      ? std::optional<bool>(false)
                      : reader_.boolean(*v, section + ": 'enabled'");
        if (on && !*on) {
          disabled_.insert(e.name);
          continue;
        }
      }
      if (e.kind == NodeKind::kSource) ++enabled_sources_;
      if (e.kind == NodeKind::kSink) ++enabled_sinks_;
      Draft d;
      d.spec.name = e.name;
      d.spec.kind = e.kind;
      d.spec.pos = e.pos;
      d.section = section;
      d.table = e.table;
      drafts_.push_back(std::move(d));
    }
    if (source_count_ > 0 && enabled_sources_ == 0 && !disabled_.empty()) {
      diags_.error(diags_.file_pos(), "every source is disabled ('enabled = false')");
    }
    if (sink_count_ > 0 && enabled_sinks_ == 0 && !disabled_.empty()) {
      diags_.error(diags_.file_pos(), "every sink is disabled ('enabled = false')");
    }
    std::stable_sort(drafts_.begin(), drafts_.end(), [](const Draft& a, const Draft& b) {
      return static_cast<int>(a.spec.kind) < static_cast<int>(b.spec.kind);
    });
    for (size_t i = 0; i < drafts_.size(); ++i) index_[drafts_[i].spec.name] = i;
  }

  Draft* find(const std::string& name) {
    auto it = index_.find(name);
    return it == index_.end() ? nullptr : &drafts_[it->second];
  }

  std::vector<std::string> names_of(NodeKind kind) const {
    std::vector<std::string> out;
    for (const auto& d : drafts_) {
      if (d.spec.kind == kind) out.push_back(d.spec.name);
    }
    return out;
  }

  // A top-level node is a stage: sources, sinks, and processors fed by inputs.
  static bool top_level(const Draft& d) {
    return d.spec.kind != NodeKind::kProcessor || (d.has_inputs && d.owner.empty());
  }

  // PROCESSOR / PROCESSOR_LIST options: the named processors become the composite's children,
  // numbered in first-reference order; the option's JSON value becomes their indices.
  void resolve_children() {
    const std::vector<std::string> processors = names_of(NodeKind::kProcessor);
    std::set<std::pair<std::string, std::string>> reported;  // (child, composite)
    for (auto& d : drafts_) {
      for (const auto& option : d.child_options) {
        const std::string what = d.section + ": option '" + option.key + "'";
        nlohmann::json indices = nlohmann::json::array();
        size_t switched_off = 0;
        for (const auto& ref : option.refs) {
          Draft* child = find(ref.name);
          if (child == nullptr && disabled_.count(ref.name) > 0) {
            ++switched_off;
            // A switched-off child leaves a list the way a switched-off input does (an LLM step
            // that is on only when its key is set); a single child cannot be left out.
            if (!option.list) {
              diags_.error(ref.pos, what + ": '" + ref.name +
                                        "' is disabled ('enabled = false') and the option "
                                        "names only that processor");
            }
            continue;
          }
          if (child == nullptr) {
            diags_.error(ref.pos, what + ": unknown processor '" + ref.name + "'" +
                                      suggestion(ref.name, processors, "processors"));
            continue;
          }
          if (child->spec.kind != NodeKind::kProcessor) {
            diags_.error(ref.pos, what + ": '" + ref.name + "' is a " +
                                      kind_name(child->spec.kind) + ", not a processor");
            continue;
          }
          if (child == &d) {
            diags_.error(ref.pos, what + ": a composite cannot contain itself");
            continue;
          }
          if (child->has_inputs) {
            if (reported.insert({ref.name, d.spec.name}).second) {
              diags_.error(child->inputs_pos,
                           child->section + ": a child of '" + d.spec.name + "' has no inputs");
            }
          } else if (!child->owner.empty() && child->owner != d.spec.name) {
            diags_.error(ref.pos, child->section + ": used as a child by both '" + child->owner +
                                      "' and '" + d.spec.name + "'");
          } else {
            child->owner = d.spec.name;
            child->spec.is_child = true;
          }
          auto& children = d.spec.children;
          auto it = std::find(children.begin(), children.end(), ref.name);
          size_t index = static_cast<size_t>(it - children.begin());
          if (it == children.end()) children.push_back(ref.name);
          indices.push_back(index);
        }
        if (option.list && switched_off > 0 && switched_off == option.refs.size()) {
          diags_.error(option.refs.front().pos,
                       what + ": every processor it names is disabled ('enabled = false')");
        }
        if (option.list) {
          d.spec.options[option.key] = std::move(indices);
        } else if (!indices.empty()) {
          d.spec.options[option.key] = indices.front();
        }
      }
    }
    check_child_cycles();
    for (const auto& d : drafts_) {
      if (d.spec.kind == NodeKind::kProcessor && !d.has_inputs && d.owner.empty()) {
        diags_.error(d.spec.pos, d.section + ": has no inputs and is not used by any composite");
      }
    }
  }

  // Each child has one owner, so following owners from a node either ends at a top-level
  // composite or comes back around: a composite that (transitively) contains itself.
  void check_child_cycles() {
    for (size_t i = 0; i < drafts_.size(); ++i) {
      std::vector<size_t> up = {i};  // i, owner(i), owner(owner(i)), ...
      bool cycle = false;
      while (up.size() <= drafts_.size()) {
        const std::string& owner = drafts_[up.back()].owner;
        if (owner.empty()) break;
        size_t next = index_.at(owner);
        if (next == i) {
          cycle = true;
          break;
        }
        if (std::find(up.begin(), up.end(), next) != up.end()) break;  // another node's cycle
        up.push_back(next);
      }
      // Report each cycle once, at its first-declared member, composite → child.
      if (!cycle || *std::min_element(up.begin(), up.end()) != i) continue;
      std::string path = drafts_[i].spec.name;
      for (auto it = up.rbegin(); it != up.rend(); ++it) path += " -> " + drafts_[*it].spec.name;
      diags_.error(drafts_[i].spec.pos, drafts_[i].section + ": child cycle: " + path);
    }
  }

  void resolve_inputs() {
    std::vector<std::string> all;
    for (const auto& d : drafts_) all.push_back(d.spec.name);
    for (auto& d : drafts_) {
      // Inputs from disabled nodes are dropped; a node left with none is an error.
      auto& inputs = d.spec.inputs;
      const size_t before = inputs.size();
      std::erase_if(inputs, [&](const InputRef& in) { return disabled_.count(in.node) > 0; });
      if (before > 0 && inputs.empty()) {
        diags_.error(d.inputs_pos, d.section +
                                       ": every input is disabled ('enabled = false'); disable "
                                       "this node too or give it another input");
        input_errors_ = true;
      }
      std::vector<std::string> seen;
      for (const auto& in : d.spec.inputs) {
        std::string text = in.output.empty() ? in.node : in.node + "." + in.output;
        auto fail = [&](const std::string& message) {
          diags_.error(in.pos, d.section + ": " + message);
          input_errors_ = true;
        };
        if (contains(seen, text)) {
          fail("duplicate input '" + text + "'");
          continue;
        }
        seen.push_back(text);
        Draft* up = find(in.node);
        if (up == nullptr) {
          fail("unknown input '" + in.node + "'" + suggestion(in.node, all, "nodes"));
          continue;
        }
        if (!up->owner.empty()) {
          fail("input '" + in.node + "' is a child of '" + up->owner +
               "' (use its composite as the input)");
          continue;
        }
        if (up->spec.kind == NodeKind::kSink && in.output.empty()) {
          fail("input '" + in.node + "' is a sink; a sink's only output is '" + in.node +
               ".errors'");
          continue;
        }
        bool known = up->desc != nullptr || in.output == "errors";
        if (!in.output.empty() && known && !contains(up->outputs, in.output)) {
          std::string list = up->outputs.empty() ? " (it has only its default output)"
                                                 : " (outputs: " + detail::join(up->outputs) + ")";
          fail("node '" + in.node + "' has no output '" + in.output + "'" + list);
          continue;
        }
        edges_.emplace_back(index_.at(in.node), index_.at(d.spec.name));
      }
    }
  }

  // Cycles among stages, and stages whose events can never reach a sink.
  void check_graph() {
    std::vector<std::vector<size_t>> down(drafts_.size());
    for (auto [from, to] : edges_) {
      if (!contains_index(down[from], to)) down[from].push_back(to);
    }
    std::vector<int> state(drafts_.size(), 0);  // 0 new, 1 on the DFS stack, 2 done
    std::vector<size_t> stack;
    std::set<std::vector<size_t>> cycles;
    std::function<void(size_t)> visit = [&](size_t n) {
      state[n] = 1;
      stack.push_back(n);
      for (size_t next : down[n]) {
        if (state[next] == 1) {
          std::vector<size_t> cycle(std::find(stack.begin(), stack.end(), next), stack.end());
          std::rotate(cycle.begin(), std::min_element(cycle.begin(), cycle.end()), cycle.end());
          cycles.insert(cycle);
        } else if (state[next] == 0) {
          visit(next);
        }
      }
      stack.pop_back();
      state[n] = 2;
    };
    for (size_t i = 0; i < drafts_.size(); ++i) {
      if (state[i] == 0) visit(i);
    }
    for (const auto& cycle : cycles) {
      std::string path;
      for (size_t n : cycle) path += drafts_[n].spec.name + " -> ";
      path += drafts_[cycle.front()].spec.name;
      const Draft& first = drafts_[cycle.front()];
      diags_.error(first.spec.pos, first.section + ": cycle: " + path);
    }

    // A broken input list already has its own error; "reaches no sink" would only echo it.
    if (input_errors_) return;
    for (const auto& d : drafts_) {
      if (d.inputs_invalid) return;
    }
    std::vector<bool> reaches(drafts_.size(), false);
    std::vector<size_t> work;
    for (size_t i = 0; i < drafts_.size(); ++i) {
      if (drafts_[i].spec.kind == NodeKind::kSink) {
        reaches[i] = true;
        work.push_back(i);
      }
    }
    while (!work.empty()) {
      size_t n = work.back();
      work.pop_back();
      for (auto [from, to] : edges_) {
        if (to == n && !reaches[from]) {
          reaches[from] = true;
          work.push_back(from);
        }
      }
    }
    for (size_t i = 0; i < drafts_.size(); ++i) {
      if (!reaches[i] && top_level(drafts_[i])) {
        diags_.error(drafts_[i].spec.pos, drafts_[i].section + ": output reaches no sink");
      }
    }
  }

  static bool contains_index(const std::vector<size_t>& v, size_t x) {
    return std::find(v.begin(), v.end(), x) != v.end();
  }

  // The admin port of the last placement group must exist (each listens on port + index).
  void check_admin_ports() {
    const AdminSpec& a = spec_.admin;
    if (!a.enabled || a.port == 0 || spec_.placement.size() < 2) return;
    size_t last = a.port + spec_.placement.size() - 1;
    if (last > 65535) {
      diags_.error(a.port_pos, "admin: 'port' " + std::to_string(a.port) +
                                   " plus the index of placement group '" +
                                   spec_.placement.back().name + "' is " + std::to_string(last) +
                                   ", past 65535; use a port of at most " +
                                   std::to_string(65535 - (spec_.placement.size() - 1)));
    }
  }

  // [placement.X] curve_public_key / curve_secret_key / curve_secret_key_file. The secret of a
  // file is read when the group runs (other processes only need the public key); an inline one
  // (from ${...}) is checked here. No message ever contains key material.
  void read_curve_keys(const toml::table& group, const std::string& gsection, PlacementGroup& g) {
    if (const toml::node* v = group.get("curve_public_key")) {
      if (auto key = reader_.string(*v, gsection + ": 'curve_public_key'")) {
        if (!is_z85_key(*key)) {
          diags_.error(diags_.pos(*v), gsection + ": 'curve_public_key' must be a 40-character "
                                                  "Z85 public key (as printed by `sluice keys`)");
        } else {
          g.curve_public_key = *key;
        }
      }
    }
    const toml::node* secret = group.get("curve_secret_key");
    const toml::node* file = group.get("curve_secret_key_file");
    if (secret != nullptr && file != nullptr) {
      diags_.error(diags_.pos(*file), gsection + ": give 'curve_secret_key' or "
                                                 "'curve_secret_key_file', not both");
      return;
    }
    if (secret != nullptr) {
      g.curve_pos = diags_.pos(*secret);
      auto key = reader_.string(*secret, gsection + ": 'curve_secret_key'");
      // Empty: the variable is not set in this process (`${WORK_SECRET:-}`), which is how the
      // other processes of the pipeline read a file whose secrets they do not hold.
      if (!key || key->empty()) return;
      if (!reader_.expanded(*secret)) {
        diags_.error(g.curve_pos, gsection + ": 'curve_secret_key' is written in the file; "
                                             "take it from the environment (\"${VAR}\") or use "
                                             "'curve_secret_key_file'");
        return;
      }
      std::optional<std::string> pub = curve_public_of(*key);
      if (!pub) {
        diags_.error(g.curve_pos, gsection + ": 'curve_secret_key' is not a 40-character Z85 "
                                             "secret key (as written by `sluice keys`)");
      } else if (g.curve_public_key.empty()) {
        diags_.error(g.curve_pos, gsection + ": 'curve_secret_key' needs 'curve_public_key' "
                                             "beside it (other processes read it there)");
      } else if (*pub != g.curve_public_key) {
        diags_.error(g.curve_pos, gsection + ": 'curve_secret_key' does not belong to "
                                             "'curve_public_key' (generate a pair with `sluice "
                                             "keys`)");
      } else {
        g.curve_secret_key = *key;
      }
    } else if (file != nullptr) {
      g.curve_pos = diags_.pos(*file);
      if (auto path = reader_.string(*file, gsection + ": 'curve_secret_key_file'")) {
        std::filesystem::path p(*path);
        if (p.is_relative()) p = std::filesystem::path(diags_.file()).parent_path() / p;
        g.curve_secret_key_file = p.lexically_normal().string();
        if (g.curve_public_key.empty()) {
          diags_.error(g.curve_pos, gsection + ": 'curve_secret_key_file' needs "
                                               "'curve_public_key' beside it (other processes "
                                               "read it there)");
        }
      }
    }
  }

  // Edges between groups over tcp: a group listening beyond loopback must authenticate its
  // senders (CURVE), and CURVE needs keys on both ends of each such edge.
  void check_edge_security(const std::map<std::string, std::string>& placed) {
    auto group = [&](const std::string& node) -> const PlacementGroup* {
      auto it = placed.find(node);
      if (it == placed.end()) return nullptr;
      for (const PlacementGroup& g : spec_.placement) {
        if (g.name == it->second) return &g;
      }
      return nullptr;
    };
    std::set<std::string> reported;
    auto once = [&](const std::string& key, SourcePos pos, const std::string& message) {
      if (reported.insert(key).second) diags_.error(std::move(pos), message);
    };
    for (auto [from, to] : edges_) {
      const PlacementGroup* up = group(drafts_[from].spec.name);
      const PlacementGroup* down = group(drafts_[to].spec.name);
      if (up == nullptr || down == nullptr || up == down || down->port == 0) continue;
      std::string down_section = "placement." + down->name;
      SourcePos where = down->host_pos.line != 0 ? down->host_pos : down->pos;
      if (down->curve_public_key.empty()) {
        if (!is_loopback_host(down->host)) {
          once("open:" + down->name, where,
               fmt::format("{}: listens on {}:{} (beyond loopback) without CURVE keys, so anyone "
                           "who reaches that port could inject events or end the stream; add "
                           "curve_public_key and curve_secret_key_file (create them with "
                           "`sluice keys {}`), or listen on host = \"127.0.0.1\"",
                           down_section, down->host, down->port, down->name));
        } else if (!up->curve_public_key.empty()) {
          once("half:" + down->name, where,
               fmt::format("{}: receives over tcp from placement.{}, which has CURVE keys, but "
                           "has none itself; CURVE needs keys on both ends (`sluice keys {}`)",
                           down_section, up->name, down->name));
        }
      } else if (up->curve_public_key.empty()) {
        once("client:" + up->name, up->pos,
             fmt::format("placement.{}: sends over tcp to {}, which uses CURVE, but has no keys "
                         "of its own; add curve_public_key and curve_secret_key_file (create "
                         "them with `sluice keys {}`)",
                         up->name, down_section, up->name));
      }
    }
  }

  void read_placement() {
    const toml::table* t = section("placement");
    if (t == nullptr || t->empty()) return;
    std::map<std::string, std::string> placed;  // node → group
    std::vector<std::string> stages;
    for (const auto& d : drafts_) {
      if (d.owner.empty()) stages.push_back(d.spec.name);
    }
    for (auto [key, value] : in_file_order(*t)) {
      std::string name(key->str());
      std::string gsection = "placement." + name;
      if (!valid_node_name(name)) {
        diags_.error(diags_.pos(*key), "placement: invalid group name '" + name +
                                           "' (use lowercase letters, digits, '_' and '-')");
        continue;
      }
      const toml::table* group = value->as_table();
      if (group == nullptr) {
        reader_.wrong_type(*value, "placement: '" + name + "'", "a table");
        continue;
      }
      PlacementGroup g;
      g.name = name;
      g.pos = diags_.pos(*value);
      check_keys(*group, kGroupKeys, gsection, diags_);
      const toml::node* nodes = group->get("nodes");
      if (nodes == nullptr) {
        diags_.error(g.pos, gsection + ": missing 'nodes'");
      } else if (auto names = reader_.strings(*nodes, gsection + ": 'nodes'")) {
        if (names->empty()) diags_.error(diags_.pos(*nodes), gsection + ": 'nodes' is empty");
        for (size_t i = 0; i < names->size(); ++i) {
          const std::string& n = (*names)[i];
          SourcePos pos = diags_.pos((*nodes->as_array())[i]);
          const Draft* d = find(n);
          if (d == nullptr && disabled_.count(n) > 0) {
            continue;  // placed but disabled: nothing to run
          }
          if (d == nullptr) {
            diags_.error(pos,
                         gsection + ": unknown node '" + n + "'" + suggestion(n, stages, "nodes"));
          } else if (!d->owner.empty()) {
            diags_.error(pos, gsection + ": node '" + n + "' is a child of '" + d->owner +
                                  "' and is placed with it");
          } else if (auto it = placed.find(n); it == placed.end()) {
            placed[n] = name;
            g.nodes.push_back(n);
          } else if (it->second == name) {
            diags_.error(pos, gsection + ": node '" + n + "' is listed twice");
          } else {
            diags_.error(pos, "node '" + n + "' is in placement groups '" + it->second + "' and '" +
                                  name + "'");
          }
        }
      }
      if (const toml::node* v = group->get("host")) {
        g.host_pos = diags_.pos(*v);
        if (auto host = reader_.string(*v, gsection + ": 'host'")) g.host = *host;
      }
      if (const toml::node* v = group->get("port")) {
        if (auto port = reader_.integer_in(*v, gsection + ": 'port'", 1, 65535)) {
          g.port = static_cast<uint16_t>(*port);
          // Stage i of the group listens on port + i: every one of them must be a real port.
          uint64_t last = *port + (g.nodes.empty() ? 0 : g.nodes.size() - 1);
          if (last > 65535) {
            diags_.error(diags_.pos(*v),
                         fmt::format("{}: port {} leaves no room for the group's {} stages (the "
                                     "n-th stage listens on port + n, up to {}, past 65535); use "
                                     "a port of at most {}",
                                     gsection, *port, g.nodes.size(), last,
                                     65536 - g.nodes.size()));
          }
        }
      }
      read_curve_keys(*group, gsection, g);
      spec_.placement.push_back(std::move(g));
    }
    check_edge_security(placed);
    for (const auto& d : drafts_) {
      if (d.owner.empty() && !placed.count(d.spec.name)) {
        diags_.error(d.spec.pos, "node '" + d.spec.name + "' is not in any placement group");
      }
    }
  }

  const toml::table& root_;
  Diagnostics& diags_;
  Reader reader_;
  const PluginCatalog& plugins_;
  PipelineSpec spec_;
  std::vector<Draft> drafts_;
  std::map<std::string, size_t> index_;
  std::vector<std::pair<size_t, size_t>> edges_;  // (upstream, downstream) draft indices
  bool input_errors_ = false;
  size_t source_count_ = 0;
  size_t sink_count_ = 0;
  size_t enabled_sources_ = 0;
  size_t enabled_sinks_ = 0;
  std::set<std::string> disabled_;  // nodes with enabled = false
};

// Parses TOML (within the size and nesting limits) and expands ${VAR}; a syntax error or a
// limit ends the load at once (nothing else is trustworthy after it).
toml::table parse_and_expand(std::string_view text, Diagnostics& diags, const EnvLookup& env,
                             Expansion& expansion) {
  toml::table root = parse_pipeline_toml(text, diags.file());
  detail::expand_env(root, env ? env : EnvLookup(getenv_lookup), expansion, diags);
  return root;
}

}  // namespace

PipelineSpec load_pipeline_text(std::string_view text, const std::string& file,
                                const PluginCatalog& plugins, const EnvLookup& env) {
  Diagnostics diags(file);
  Expansion expansion;
  toml::table root = parse_and_expand(text, diags, env, expansion);
  return Loader(root, diags, expansion, plugins).run();
}

AdminTarget load_admin_target(const std::string& path, const EnvLookup& env) {
  const std::string text = read_pipeline_file(path);
  Diagnostics diags(path);
  toml::table root = parse_pipeline_toml(text, path);
  AdminTarget out;
  Expansion expansion;
  toml::table* admin = root.get_as<toml::table>("admin");
  if (admin != nullptr) {
    detail::expand_env(*admin, env ? env : EnvLookup(getenv_lookup), expansion, diags);
  }
  detail::read_admin(admin, Reader(diags, expansion), out.admin);
  if (const toml::table* placement = root.get_as<toml::table>("placement")) {
    for (auto [key, value] : in_file_order(*placement)) out.groups.emplace_back(key->str());
  }
  diags.throw_if_any();
  return out;
}

PipelineSpec load_pipeline(const std::string& path, const PluginCatalog& plugins,
                           const EnvLookup& env) {
  const std::string text = read_pipeline_file(path);
  // ${SLUICE_PIPELINE_DIR} is the pipeline file's own directory, so a pipeline can name files
  // beside it (replay data, templates) wherever it is run from.
  std::string dir = std::filesystem::absolute(path).parent_path().string();
  EnvLookup base = env ? env : EnvLookup(getenv_lookup);
  EnvLookup with_dir = [dir, base](const std::string& name) -> std::optional<std::string> {
    if (name == "SLUICE_PIPELINE_DIR") return dir;
    return base(name);
  };
  return load_pipeline_text(text, path, plugins, with_dir);
}

NodeSpec load_node_text(std::string_view toml_body, NodeKind kind, std::string_view type,
                        const PluginCatalog& plugins, const EnvLookup& env) {
  Diagnostics diags("<options>");
  Expansion expansion;
  toml::table root = parse_and_expand(toml_body, diags, env, expansion);
  Draft d;
  d.spec.name = "test";
  d.spec.kind = kind;
  d.spec.type = std::string(type);
  d.spec.pos = diags.file_pos();
  d.section = std::string(kind_section(kind)) + ".test";
  d.table = &root;
  read_node(d, plugins, Reader(diags, expansion), /*standalone=*/true);
  diags.throw_if_any();
  return std::move(d.spec);
}

namespace {

// The value an error key names: an option ("where") or an entry of a table option
// ("routes.big"); null when there is none.
const nlohmann::json* option_value(const nlohmann::json& options, const std::string& key) {
  if (auto it = options.find(key); it != options.end()) return &*it;
  const nlohmann::json* value = &options;
  size_t start = 0;
  while (start <= key.size()) {
    size_t dot = std::min(key.find('.', start), key.size());
    if (!value->is_object()) return nullptr;
    auto it = value->find(key.substr(start, dot - start));
    if (it == value->end()) return nullptr;
    value = &*it;
    start = dot + 1;
  }
  return value;
}

}  // namespace

Diagnostic plugin_error(const PipelineSpec& spec, const NodeSpec& node, const sluice_error& err) {
  std::string key(err.key, strnlen(err.key, sizeof(err.key)));
  std::string message(err.message, strnlen(err.message, sizeof(err.message)));
  std::string section = std::string(kind_section(node.kind)) + "." + node.name;
  Diagnostic d;
  d.pos = node.pos;
  if (key.empty()) {
    d.message = section + ": " + message;
  } else {
    if (auto it = node.option_pos.find(key); it != node.option_pos.end()) {
      d.pos = it->second;
      // toml++ places a string at its opening quote, so character N of the value sits at
      // quote column + N.
      const nlohmann::json* value = option_value(node.options, key);
      if (err.column > 0 && value != nullptr && value->is_string()) d.pos.column += err.column;
    }
    d.message = section + ": option '" + key + "': " + message;
  }
  if (d.pos.file.empty()) d.pos.file = spec.file;
  return d;
}

}  // namespace sluice::core
