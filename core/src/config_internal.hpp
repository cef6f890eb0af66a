// Private pieces of the pipeline loader shared by config*.cpp: the diagnostic collector, the
// record of ${VAR} expansion, typed value readers with uniform messages, and plugin option
// validation against a descriptor's option schema.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include <toml++/toml.h>
#include <nlohmann/json.hpp>

#include "sluice/core/config.hpp"

namespace sluice::core::detail {

// Collects every problem of one file; the loader throws them together at the end.
class Diagnostics {
 public:
  explicit Diagnostics(std::string file) : file_(std::move(file)) {}

  const std::string& file() const { return file_; }
  SourcePos pos(const toml::source_position& p) const { return {file_, p.line, p.column}; }
  SourcePos pos(const toml::node& n) const { return pos(n.source().begin); }
  SourcePos pos(const toml::key& k) const { return pos(k.source().begin); }
  // The whole file, for problems no single line owns ("a pipeline needs at least one sink").
  SourcePos file_pos() const { return {file_, 1, 1}; }

  void error(SourcePos pos, std::string message);
  size_t count() const { return diags_.size(); }
  const std::vector<Diagnostic>& all() const { return diags_; }
  // Throws ConfigError with every diagnostic, ordered by position, when there is any.
  void throw_if_any();

 private:
  std::string file_;
  std::vector<Diagnostic> diags_;
};

// Which strings got their text from ${...} (so a number option may read "${PORT}"), and which
// failed to expand (already reported: readers stay silent about them rather than pile on).
struct Expansion {
  std::unordered_set<const toml::node*> expanded;
  std::unordered_set<const toml::node*> failed;
};

// Expands ${VAR}, ${VAR:-default} and ${VAR:?message} in every string value under `root`.
void expand_env(toml::node& root, const EnvLookup& env, Expansion& out, Diagnostics& diags);

// "string", "integer", "float", "boolean", "array", "table", "date", "time", "date-time".
const char* type_name(const toml::node& n);

// A table's entries in the order they are written in the file (toml::table sorts by key).
std::vector<std::pair<const toml::key*, const toml::node*>> in_file_order(const toml::table& t);

// toml value → JSON (tables, arrays and scalars; dates and times become their TOML text).
nlohmann::json to_json(const toml::node& n);

// Typed reads that report "<what> must be an integer, got string" and similar. `what` names the
// value in a message: "pipeline: 'grace_period'" or "processors.big: option 'count'".
class Reader {
 public:
  Reader(Diagnostics& diags, const Expansion& expansion) : diags_(diags), expansion_(expansion) {}

  Diagnostics& diags() const { return diags_; }
  // True when the node is a string whose expansion failed (and was reported already).
  bool failed(const toml::node& n) const { return expansion_.failed.count(&n) != 0; }
  bool expanded(const toml::node& n) const { return expansion_.expanded.count(&n) != 0; }

  std::optional<std::string> string(const toml::node& n, std::string_view what) const;
  std::optional<int64_t> integer(const toml::node& n, std::string_view what) const;
  // An integer within [lo, hi]; the message names the range.
  std::optional<int64_t> integer_in(const toml::node& n, std::string_view what, int64_t lo,
                                    int64_t hi) const;
  std::optional<double> number(const toml::node& n, std::string_view what) const;
  std::optional<bool> boolean(const toml::node& n, std::string_view what) const;
  std::optional<int64_t> duration(const toml::node& n, std::string_view what) const;
  std::optional<uint64_t> size(const toml::node& n, std::string_view what) const;
  // An array of strings; each element's own problems name it as "<what> item N".
  std::optional<std::vector<std::string>> strings(
      const toml::node& n, std::string_view what,
      const char* list_desc = "a list of strings") const;

  // "<what> must be <expected>, got <type>" at the node.
  void wrong_type(const toml::node& n, std::string_view what, std::string_view expected) const;

 private:
  // The expanded text of an interpolated string, for coercion to another type.
  const std::string* coercible(const toml::node& n) const;

  Diagnostics& diags_;
  const Expansion& expansion_;
};

// One name written in a PROCESSOR / PROCESSOR_LIST option, resolved once all nodes are known.
struct ChildRef {
  std::string name;
  SourcePos pos;
};
struct ChildOption {
  std::string key;
  bool list = false;  // PROCESSOR_LIST: the JSON value is an array of indices
  std::vector<ChildRef> refs;
};

// Keys of a node table that the runtime reads itself; they never reach the plugin.
inline constexpr const char* kRuntimeKeys[] = {"inputs", "max_in_flight", "ordered"};

// Validates a node's plugin options (every key of `table` except `skip`): types, choices,
// units, required keys and defaults. Fills node.options / option_pos / secret_keys; processor
// references are returned in `child_options` with placeholder JSON for the caller to resolve.
// `extra_keys` are offered in "did you mean" and "valid options" lists besides the plugin's.
void validate_options(const toml::table& table, const sluice_plugin_descriptor& desc,
                      const std::string& section, const std::vector<std::string>& skip,
                      const std::vector<std::string>& extra_keys, const Reader& reader,
                      NodeSpec& node, std::vector<ChildOption>& child_options);

// The named outputs a node offers besides its default one: "errors" for processors and sinks,
// then the descriptor's outputs, with "*key" replaced by the keys of table option `key` (in
// file order when `table` has it, else from the validated options).
std::vector<std::string> node_outputs(const sluice_plugin_descriptor* desc, NodeKind kind,
                                      const toml::table* table, const NodeSpec& node);

// "a, b, c"
std::string join(const std::vector<std::string>& items, std::string_view sep = ", ");
// " (did you mean 'x'?)" when a candidate is close, else " (<list_label>: a, b)" (at most 12
// names, then "and N more"), or "" when there are no candidates at all.
std::string suggestion(std::string_view name, const std::vector<std::string>& candidates,
                       std::string_view list_label);

// [admin] (null when the file has none) into `out`: keys, an IP address, the port, the token
// (required beyond loopback, never echoed) and extra Host names. Lives in config_admin.cpp.
void read_admin(const toml::table* table, const Reader& reader, AdminSpec& out);

}  // namespace sluice::core::detail
