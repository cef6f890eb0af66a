// Text, Markdown, JSON Schema and DOT renderings derived from declared schemas and specs.
#include "sluice/core/plugin_docs.hpp"

#include <cctype>
#include <utility>

#include <fmt/format.h>

namespace sluice::core {

const char* option_type_name(sluice_option_type t) {
  switch (t) {
    case SLUICE_OPT_STRING:
      return "string";
    case SLUICE_OPT_INT:
      return "integer";
    case SLUICE_OPT_DOUBLE:
      return "number";
    case SLUICE_OPT_BOOL:
      return "boolean";
    case SLUICE_OPT_DURATION:
      return "duration";
    case SLUICE_OPT_SIZE:
      return "size";
    case SLUICE_OPT_STRING_LIST:
      return "list of strings";
    case SLUICE_OPT_INT_LIST:
      return "list of integers";
    case SLUICE_OPT_DOUBLE_LIST:
      return "list of numbers";
    case SLUICE_OPT_TABLE:
      return "table";
    case SLUICE_OPT_PROCESSOR:
      return "processor name";
    case SLUICE_OPT_PROCESSOR_LIST:
      return "list of processor names";
    case SLUICE_OPT_SECRET:
      return "secret";
    case SLUICE_OPT_EXPRESSION:
      return "expression";
  }
  return "unknown";
}

namespace {

std::string outputs_text(const sluice_plugin_descriptor& d) {
  std::vector<std::string> outs;
  if (d.kind != SLUICE_KIND_SOURCE) outs.emplace_back("errors");
  for (const char* const* o = d.outputs; o != nullptr && *o != nullptr; ++o) {
    std::string s = *o;
    outs.push_back(s[0] == '*' ? fmt::format("<each key of `{}`>", s.substr(1)) : s);
  }
  return fmt::format("{}", fmt::join(outs, ", "));
}

nlohmann::json option_schema(const sluice_option_spec& o) {
  nlohmann::json s;
  static const char* kDuration = "^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h|d))+$";
  static const char* kSize = "^[0-9]+(\\.[0-9]+)?\\s*(B|KB|MB|GB|KiB|MiB|GiB)?$";
  switch (o.type) {
    case SLUICE_OPT_STRING:
    case SLUICE_OPT_SECRET:
    case SLUICE_OPT_EXPRESSION:
    case SLUICE_OPT_PROCESSOR:
      s = {{"type", "string"}};
      break;
    case SLUICE_OPT_INT:
      s = {{"type", "integer"}};
      break;
    case SLUICE_OPT_DOUBLE:
      s = {{"type", "number"}};
      break;
    case SLUICE_OPT_BOOL:
      s = {{"type", "boolean"}};
      break;
    case SLUICE_OPT_DURATION:
      s = {{"type", "string"}, {"pattern", kDuration}};
      break;
    case SLUICE_OPT_SIZE:
      s = {{"anyOf", {{{"type", "integer"}}, {{"type", "string"}, {"pattern", kSize}}}}};
      break;
    case SLUICE_OPT_STRING_LIST:
    case SLUICE_OPT_PROCESSOR_LIST:
      s = {{"type", "array"}, {"items", {{"type", "string"}}}};
      break;
    case SLUICE_OPT_INT_LIST:
      s = {{"type", "array"}, {"items", {{"type", "integer"}}}};
      break;
    case SLUICE_OPT_DOUBLE_LIST:
      s = {{"type", "array"}, {"items", {{"type", "number"}}}};
      break;
    case SLUICE_OPT_TABLE:
      s = {{"type", "object"}};
      break;
  }
  if (o.description) s["description"] = o.description;
  if (o.choices) {
    nlohmann::json e = nlohmann::json::array();
    std::string_view rest(o.choices);
    while (!rest.empty()) {
      size_t c = rest.find(',');
      e.push_back(std::string(rest.substr(0, c)));
      if (c == std::string_view::npos) break;
      rest.remove_prefix(c + 1);
    }
    s["enum"] = e;
  }
  return s;
}

// The plugin's declared bounds of an option (ABI 1.2), or nullptr.
const sluice_option_bounds* bounds_of(const sluice_plugin_descriptor& d, const char* key) {
  if (d.abi_minor < 2 || d.option_bounds == nullptr || key == nullptr) return nullptr;
  for (size_t i = 0; i < d.option_bounds_count; ++i) {
    const char* k = d.option_bounds[i].key;
    if (k != nullptr && std::string_view(k) == key) return &d.option_bounds[i];
  }
  return nullptr;
}

// "from 0 to 10", "at least \"1ms\"", "" for none.
std::string bounds_text(const sluice_option_bounds* b, const char* quote) {
  if (b == nullptr || (b->min == nullptr && b->max == nullptr)) return "";
  if (b->min != nullptr && b->max != nullptr) {
    return fmt::format("from {0}{1}{0} to {0}{2}{0}", quote, b->min, b->max);
  }
  if (b->min != nullptr) return fmt::format("at least {0}{1}{0}", quote, b->min);
  return fmt::format("at most {0}{1}{0}", quote, b->max);
}

// Numeric bounds of INT / DOUBLE options (and their lists) as JSON Schema keywords.
void add_schema_bounds(nlohmann::json& s, const sluice_option_spec& o,
                       const sluice_option_bounds* b) {
  if (b == nullptr) return;
  bool numeric = o.type == SLUICE_OPT_INT || o.type == SLUICE_OPT_DOUBLE;
  bool list = o.type == SLUICE_OPT_INT_LIST || o.type == SLUICE_OPT_DOUBLE_LIST;
  if (!numeric && !list) return;
  nlohmann::json& target = list ? s["items"] : s;
  for (auto [literal, keyword] : {std::pair{b->min, "minimum"}, std::pair{b->max, "maximum"}}) {
    if (literal == nullptr) continue;
    auto v = nlohmann::json::parse(literal, nullptr, false);
    if (v.is_number()) target[keyword] = v;
  }
}

}  // namespace

std::string describe_text(const Plugin& p) {
  const sluice_plugin_descriptor& d = *p.descriptor;
  std::string out = fmt::format("{} {} {} (ABI {}.{})\n  {}\n  file: {}\n  outputs: {}\n",
                                kind_name(p.kind()), d.name, d.version, d.abi_major, d.abi_minor,
                                d.description, p.path, outputs_text(d));
  out += "  options:\n";
  if (d.option_count == 0) out += "    (none)\n";
  for (size_t i = 0; i < d.option_count; ++i) {
    const sluice_option_spec& o = d.options[i];
    std::string b = bounds_text(bounds_of(d, o.key), "");
    fmt::format_to(
        std::back_inserter(out), "    {:<18} {:<24} {}{}{}\n", o.key, option_type_name(o.type),
        o.required ? "required"
                   : fmt::format("default {}", o.default_toml ? o.default_toml : "(none)"),
        o.choices ? fmt::format(", one of: {}", o.choices) : "", b.empty() ? "" : ", " + b);
    fmt::format_to(std::back_inserter(out), "        {}\n", o.description ? o.description : "");
  }
  return out;
}

std::string describe_markdown(const Plugin& p) {
  const sluice_plugin_descriptor& d = *p.descriptor;
  std::string out = fmt::format(
      "# `{}` ({})\n\n<!-- Generated by `sluice plugins docs`; do not edit. -->\n\n{}\n\n"
      "Version {} · plugin ABI {}.{} · outputs: {}\n\n",
      d.name, kind_name(p.kind()), d.description, d.version, d.abi_major, d.abi_minor,
      outputs_text(d));
  out += "| option | type | default | description |\n|---|---|---|---|\n";
  for (size_t i = 0; i < d.option_count; ++i) {
    const sluice_option_spec& o = d.options[i];
    std::string desc = o.description ? o.description : "";
    if (o.choices) desc += fmt::format(" One of: `{}`.", o.choices);
    if (std::string b = bounds_text(bounds_of(d, o.key), "`"); !b.empty()) {
      b[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(b[0])));
      desc += " " + b + ".";
    }
    std::string def =
        o.required ? "**required**" : (o.default_toml ? fmt::format("`{}`", o.default_toml) : "—");
    fmt::format_to(std::back_inserter(out), "| `{}` | {} | {} | {} |\n", o.key,
                   option_type_name(o.type), def, desc);
  }
  if (p.kind() != NodeKind::kSource) {
    out +=
        "\nEvery processor and sink also takes `inputs`, `max_in_flight`, `ordered` and "
        "`enabled` (see docs/pipeline-files.md).\n";
  } else {
    out += "\nEvery source also takes `enabled` (see docs/pipeline-files.md).\n";
  }
  return out;
}

nlohmann::json pipeline_json_schema(const PluginRegistry& registry) {
  nlohmann::json sections = nlohmann::json::object();
  for (NodeKind kind : {NodeKind::kSource, NodeKind::kProcessor, NodeKind::kSink}) {
    nlohmann::json variants = nlohmann::json::array();
    for (const Plugin& p : registry.plugins()) {
      if (p.kind() != kind) continue;
      const sluice_plugin_descriptor& d = *p.descriptor;
      nlohmann::json props = {{"type", {{"const", d.name}}}};
      nlohmann::json required = {"type"};
      props["enabled"] = {
          {"description", "false leaves the node out, e.g. \"${BYBIT:-false}\""},
          {"anyOf", {{{"type", "boolean"}}, {{"type", "string"}, {"pattern", "\\$\\{"}}}}};
      if (kind != NodeKind::kSource) {
        props["inputs"] = {{"type", "array"}, {"items", {{"type", "string"}}}};
        props["max_in_flight"] = {{"type", "integer"}, {"minimum", 1}};
        props["ordered"] = {{"type", "boolean"}};
      }
      for (size_t i = 0; i < d.option_count; ++i) {
        props[d.options[i].key] = option_schema(d.options[i]);
        add_schema_bounds(props[d.options[i].key], d.options[i], bounds_of(d, d.options[i].key));
        if (d.options[i].required) required.push_back(d.options[i].key);
      }
      variants.push_back({{"type", "object"},
                          {"description", d.description},
                          {"properties", props},
                          {"required", required},
                          {"additionalProperties", false}});
    }
    sections[kind_section(kind)] = {{"type", "object"},
                                    {"additionalProperties", {{"oneOf", variants}}}};
  }
  nlohmann::json schema = {{"$schema", "https://json-schema.org/draft/2020-12/schema"},
                           {"title", "Sluice pipeline"},
                           {"type", "object"},
                           {"properties",
                            {{"pipeline", {{"type", "object"}}},
                             {"settings", {{"type", "object"}}},
                             {"admin", {{"type", "object"}}},
                             {"placement", {{"type", "object"}}},
                             {"sources", sections["sources"]},
                             {"processors", sections["processors"]},
                             {"sinks", sections["sinks"]}}},
                           {"additionalProperties", false}};
  return schema;
}

std::string pipeline_dot(const PipelineSpec& spec) {
  std::string out = fmt::format(
      "digraph \"{}\" {{\n  rankdir=LR;\n  node [fontname=\"Helvetica\"];\n", spec.name);
  auto node_line = [&](const NodeSpec& n) {
    const char* shape = n.kind == NodeKind::kSource ? "invhouse"
                        : n.kind == NodeKind::kSink ? "house"
                                                    : "box";
    return fmt::format("\"{}\" [shape={}{}, label=\"{}\\n({})\"];\n", n.name, shape,
                       n.is_child ? ", style=dashed" : "", n.name, n.type);
  };
  if (spec.placement.empty()) {
    for (const NodeSpec& n : spec.nodes) out += "  " + node_line(n);
  } else {
    for (const PlacementGroup& g : spec.placement) {
      fmt::format_to(std::back_inserter(out), "  subgraph \"cluster_{}\" {{\n    label=\"{}\";\n",
                     g.name, g.name);
      for (const std::string& name : g.nodes) {
        if (const NodeSpec* n = spec.find(name)) out += "    " + node_line(*n);
      }
      out += "  }\n";
    }
    for (const NodeSpec& n : spec.nodes) {
      if (n.is_child) out += "  " + node_line(n);
    }
  }
  for (const NodeSpec& n : spec.nodes) {
    for (const InputRef& in : n.inputs) {
      fmt::format_to(std::back_inserter(out), "  \"{}\" -> \"{}\"{};\n", in.node, n.name,
                     in.output.empty() ? "" : fmt::format(" [label=\"{}\"]", in.output));
    }
    for (const std::string& c : n.children) {
      fmt::format_to(std::back_inserter(out),
                     "  \"{}\" -> \"{}\" [style=dashed, arrowhead=odot];\n", n.name, c);
    }
  }
  out += "}\n";
  return out;
}

}  // namespace sluice::core
