// Plugin options: a node table checked against its plugin's declared option schema
// (sluice_option_spec), turned into the JSON the plugin's create() receives.
#include <algorithm>
#include <sstream>
#include <span>

#include "config_internal.hpp"

namespace sluice::core::detail {
namespace {

using nlohmann::json;

std::vector<std::string> split_choices(const char* choices) {
  std::vector<std::string> out;
  std::string_view rest = choices;
  while (!rest.empty()) {
    size_t comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (!item.empty()) out.emplace_back(item);
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return out;
}

// A string option restricted to `choices`: "<what> must be one of: text, json (got 'xml')".
bool check_choice(const sluice_option_spec& spec, const std::string& value, const toml::node& n,
                  const std::string& what, const Reader& reader) {
  if (spec.choices == nullptr) return true;
  auto allowed = split_choices(spec.choices);
  if (std::find(allowed.begin(), allowed.end(), value) != allowed.end()) return true;
  reader.diags().error(reader.diags().pos(n),
                       what + " must be one of: " + join(allowed) + " (got '" + value + "')");
  return false;
}

std::string item_what(const std::string& what, size_t index) {
  return what + " item " + std::to_string(index + 1);
}

// Reads every element of an array with `read`; reports all bad elements, nullopt if any.
template <class Read>
std::optional<json> convert_list(const toml::node& n, const std::string& what,
                                 const char* list_desc, const Reader& reader, Read read) {
  auto* array = n.as_array();
  if (array == nullptr) {
    reader.wrong_type(n, what, list_desc);
    return std::nullopt;
  }
  json out = json::array();
  bool ok = true;
  for (size_t i = 0; i < array->size(); ++i) {
    std::optional<json> value = read((*array)[i], item_what(what, i));
    if (value) {
      out.push_back(std::move(*value));
    } else {
      ok = false;
    }
  }
  if (!ok) return std::nullopt;
  return out;
}

template <class T>
std::optional<json> to_json_value(std::optional<T> v) {
  if (!v) return std::nullopt;
  return json(std::move(*v));
}

// Converts one option value to its JSON form, reporting problems. PROCESSOR options record the
// names they reference in `child` and yield null: indices are known only once every node is.
std::optional<json> convert(const sluice_option_spec& spec, const toml::node& n,
                            const std::string& what, const Reader& reader, ChildOption& child) {
  switch (spec.type) {
    case SLUICE_OPT_STRING: {
      auto s = reader.string(n, what);
      if (!s || !check_choice(spec, *s, n, what, reader)) return std::nullopt;
      return json(*s);
    }
    case SLUICE_OPT_SECRET:
    case SLUICE_OPT_EXPRESSION:
      return to_json_value(reader.string(n, what));
    case SLUICE_OPT_INT:
      return to_json_value(reader.integer(n, what));
    case SLUICE_OPT_DOUBLE:
      return to_json_value(reader.number(n, what));
    case SLUICE_OPT_BOOL:
      return to_json_value(reader.boolean(n, what));
    case SLUICE_OPT_DURATION:
      return to_json_value(reader.duration(n, what));
    case SLUICE_OPT_SIZE:
      return to_json_value(reader.size(n, what));
    case SLUICE_OPT_STRING_LIST:
      return convert_list(n, what, "a list of strings", reader,
                          [&](const toml::node& e, const std::string& w) -> std::optional<json> {
                            auto s = reader.string(e, w);
                            if (!s || !check_choice(spec, *s, e, w, reader)) return std::nullopt;
                            return json(*s);
                          });
    case SLUICE_OPT_INT_LIST:
      return convert_list(n, what, "a list of integers", reader,
                          [&](const toml::node& e, const std::string& w) {
                            return to_json_value(reader.integer(e, w));
                          });
    case SLUICE_OPT_DOUBLE_LIST:
      return convert_list(n, what, "a list of numbers", reader,
                          [&](const toml::node& e, const std::string& w) {
                            return to_json_value(reader.number(e, w));
                          });
    case SLUICE_OPT_TABLE:
      if (!n.is_table()) {
        reader.wrong_type(n, what, "a table");
        return std::nullopt;
      }
      return to_json(n);
    case SLUICE_OPT_PROCESSOR: {
      if (!n.is_string()) {
        reader.wrong_type(n, what, "a processor name");
        return std::nullopt;
      }
      auto name = reader.string(n, what);
      if (!name) return std::nullopt;
      child.refs.push_back({*name, reader.diags().pos(n)});
      return json(nullptr);
    }
    case SLUICE_OPT_PROCESSOR_LIST: {
      auto names = reader.strings(n, what, "a list of processor names");
      if (!names) return std::nullopt;
      const auto& array = *n.as_array();
      for (size_t i = 0; i < names->size(); ++i) {
        child.refs.push_back({(*names)[i], reader.diags().pos(array[i])});
      }
      return json(nullptr);
    }
  }
  reader.diags().error(reader.diags().pos(n), what + " has a type this host does not know (" +
                                                  std::to_string(static_cast<int>(spec.type)) +
                                                  "); update sluice");
  return std::nullopt;
}

bool is_child_type(sluice_option_type t) {
  return t == SLUICE_OPT_PROCESSOR || t == SLUICE_OPT_PROCESSOR_LIST;
}

// Parses and converts a plugin's default_toml. A bad default is the plugin's bug, reported at
// the node so the user knows which plugin to blame.
void apply_default(const sluice_option_spec& spec, const sluice_plugin_descriptor& desc,
                   const std::string& section, const Reader& reader, NodeSpec& node,
                   std::vector<ChildOption>& child_options) {
  std::string key = spec.key;
  std::string problem;
  try {
    toml::table parsed =
        toml::parse("v = " + std::string(spec.default_toml), std::string_view("<default>"));
    Diagnostics local("<default>");
    Expansion none;
    Reader local_reader(local, none);
    ChildOption child{key, spec.type == SLUICE_OPT_PROCESSOR_LIST, {}};
    auto value = convert(spec, *parsed.get("v"), "option '" + key + "'", local_reader, child);
    if (value) {
      node.options[key] = std::move(*value);
      if (is_child_type(spec.type)) {
        for (auto& ref : child.refs) ref.pos = node.pos;
        child_options.push_back(std::move(child));
      }
      return;
    }
    problem = local.all().empty() ? "rejected" : local.all().front().message;
  } catch (const toml::parse_error& e) {
    problem = std::string(e.description());
  }
  reader.diags().error(node.pos, section + ": plugin '" + desc.name +
                                     "' has an invalid default for option '" + key +
                                     "': " + problem);
}

// A value as written in the file, for messages: 11, 0.5, "0s".
std::string toml_text(const toml::node& n) {
  if (const auto* str = n.as_string()) return "\"" + str->get() + "\"";
  std::ostringstream out;
  n.visit([&](const auto& v) { out << v; });
  return out.str();
}

// A bound's TOML literal converted like a value of the option ("\"1ms\"" → 1000000); nullopt
// with *problem set when the plugin wrote one that does not fit the option's type.
std::optional<json> bound_value(const sluice_option_spec& spec, const char* literal,
                                std::string* problem) {
  sluice_option_spec scalar = spec;
  if (spec.type == SLUICE_OPT_INT_LIST) scalar.type = SLUICE_OPT_INT;
  if (spec.type == SLUICE_OPT_DOUBLE_LIST) scalar.type = SLUICE_OPT_DOUBLE;
  try {
    toml::table parsed = toml::parse("v = " + std::string(literal), std::string_view("<bound>"));
    Diagnostics local("<bound>");
    Expansion none;
    Reader local_reader(local, none);
    ChildOption unused{spec.key, false, {}};
    auto value = convert(scalar, *parsed.get("v"), "bound", local_reader, unused);
    if (value && value->is_number()) return value;
    *problem = local.all().empty() ? "not a number" : local.all().front().message;
  } catch (const toml::parse_error& e) {
    *problem = std::string(e.description());
  }
  return std::nullopt;
}

// Checks a converted value (or each item of a list) against the plugin's declared bounds for
// the option (ABI 1.2): "<what> must be at least 1ms, got 0ns" at the value's position.
void check_bounds(const sluice_option_spec& spec, const sluice_plugin_descriptor& desc,
                  const json& value, const toml::node& n, const std::string& what,
                  const Reader& reader) {
  if (desc.abi_minor < 2 || desc.option_bounds == nullptr) return;
  const sluice_option_bounds* bounds = nullptr;
  for (size_t i = 0; i < desc.option_bounds_count; ++i) {
    if (desc.option_bounds[i].key != nullptr && std::string_view(desc.option_bounds[i].key) ==
                                                    spec.key) {
      bounds = &desc.option_bounds[i];
    }
  }
  if (bounds == nullptr) return;
  Diagnostics& diags = reader.diags();
  auto check = [&](const json& v, const toml::node& at, const std::string& w) {
    if (!v.is_number()) return;
    for (bool lower : {true, false}) {
      const char* literal = lower ? bounds->min : bounds->max;
      if (literal == nullptr) continue;
      std::string problem;
      auto limit = bound_value(spec, literal, &problem);
      if (!limit) {
        diags.error(diags.pos(at), w + ": plugin '" + desc.name + "' declares an invalid " +
                                       (lower ? "minimum" : "maximum") + " '" + literal +
                                       "': " + problem);
        return;
      }
      // Integers (durations and sizes too) compare exactly; a double against either as double.
      bool outside = false;
      if (v.is_number_float() || limit->is_number_float()) {
        outside = lower ? v.get<double>() < limit->get<double>()
                        : v.get<double>() > limit->get<double>();
      } else if (v.is_number_unsigned() && limit->is_number_unsigned()) {
        outside = lower ? v.get<uint64_t>() < limit->get<uint64_t>()
                        : v.get<uint64_t>() > limit->get<uint64_t>();
      } else {
        outside = lower ? v.get<int64_t>() < limit->get<int64_t>()
                        : v.get<int64_t>() > limit->get<int64_t>();
      }
      if (outside) {
        std::string shown = toml_text(at);
        diags.error(diags.pos(at), w + " must be " + (lower ? "at least " : "at most ") +
                                       std::string(literal) + ", got " + shown);
        return;
      }
    }
  };
  if (value.is_array()) {
    const auto* array = n.as_array();
    for (size_t i = 0; i < value.size() && array != nullptr && i < array->size(); ++i) {
      check(value[i], (*array)[i], item_what(what, i));
    }
  } else {
    check(value, n, what);
  }
}

// Positions of the entries of a TABLE option, as "key.sub.subsub", so a plugin can point at
// one entry (the route plugin reports "routes.big" with a column inside that expression).
void record_positions(const std::string& prefix, const toml::table& table, const Diagnostics& diags,
                      NodeSpec& node) {
  for (auto&& [key, value] : table) {
    std::string path = prefix + "." + std::string(key.str());
    node.option_pos[path] = diags.pos(value);
    if (auto* sub = value.as_table()) record_positions(path, *sub, diags, node);
  }
}

}  // namespace

void validate_options(const toml::table& table, const sluice_plugin_descriptor& desc,
                      const std::string& section, const std::vector<std::string>& skip,
                      const std::vector<std::string>& extra_keys, const Reader& reader,
                      NodeSpec& node, std::vector<ChildOption>& child_options) {
  std::span<const sluice_option_spec> specs(desc.options, desc.options ? desc.option_count : 0);
  auto find_spec = [&](std::string_view key) -> const sluice_option_spec* {
    for (const auto& s : specs) {
      if (s.key != nullptr && key == s.key) return &s;
    }
    return nullptr;
  };
  std::vector<std::string> valid;
  for (const auto& s : specs) {
    if (s.key != nullptr) valid.emplace_back(s.key);
  }
  valid.insert(valid.end(), extra_keys.begin(), extra_keys.end());

  Diagnostics& diags = reader.diags();
  for (auto [key, value] : in_file_order(table)) {
    std::string k(key->str());
    if (std::find(skip.begin(), skip.end(), k) != skip.end()) continue;
    const sluice_option_spec* spec = find_spec(k);
    if (spec == nullptr) {
      std::string hint =
          valid.empty() ? " (this plugin takes no options)" : suggestion(k, valid, "valid options");
      diags.error(diags.pos(*key), section + ": unknown option '" + k + "'" + hint);
      continue;
    }
    std::string what = section + ": option '" + k + "'";
    ChildOption child{k, spec->type == SLUICE_OPT_PROCESSOR_LIST, {}};
    auto converted = convert(*spec, *value, what, reader, child);
    if (!converted) continue;
    check_bounds(*spec, desc, *converted, *value, what, reader);
    node.options[k] = std::move(*converted);
    node.option_pos[k] = diags.pos(*value);
    if (spec->type == SLUICE_OPT_TABLE) record_positions(k, *value->as_table(), diags, node);
    if (is_child_type(spec->type)) child_options.push_back(std::move(child));
  }

  for (const auto& spec : specs) {
    if (spec.key == nullptr || table.contains(spec.key)) continue;
    if (spec.required) {
      diags.error(node.pos, section + ": missing required option '" + spec.key + "'");
    } else if (spec.default_toml != nullptr) {
      apply_default(spec, desc, section, reader, node, child_options);
    }
  }
  for (const auto& spec : specs) {
    if (spec.key != nullptr && spec.type == SLUICE_OPT_SECRET && node.options.contains(spec.key)) {
      node.secret_keys.emplace_back(spec.key);
    }
  }
}

std::vector<std::string> node_outputs(const sluice_plugin_descriptor* desc, NodeKind kind,
                                      const toml::table* table, const NodeSpec& node) {
  std::vector<std::string> out;
  auto add = [&](std::string name) {
    if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(std::move(name));
  };
  if (kind != NodeKind::kSource) add("errors");
  if (desc == nullptr || desc->outputs == nullptr) return out;
  for (const char* const* output = desc->outputs; *output != nullptr; ++output) {
    std::string_view name = *output;
    if (!name.starts_with('*')) {
      add(std::string(name));
      continue;
    }
    std::string key(name.substr(1));
    const toml::table* routes = table ? table->get_as<toml::table>(key) : nullptr;
    if (routes != nullptr) {
      for (auto [route, value] : in_file_order(*routes)) add(std::string(route->str()));
    } else if (auto it = node.options.find(key); it != node.options.end() && it->is_object()) {
      for (const auto& [route, value] : it->items()) add(route);
    }
  }
  return out;
}

}  // namespace sluice::core::detail
