// ${VAR} interpolation in pipeline files. It runs on the parsed TOML tree before validation, on
// string values only (never keys), so a variable cannot change the file's structure.
#include <string>
#include <string_view>

#include "config_internal.hpp"

namespace sluice::core::detail {
namespace {

bool is_name_start(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }
bool is_name_char(char c) { return is_name_start(c) || (c >= '0' && c <= '9'); }

// Expands one string. Returns false with *error set on the first problem; *expanded says
// whether any ${...} was substituted (an escaped "$${" does not count).
bool expand_text(std::string_view text, const EnvLookup& env, std::string* out, bool* expanded,
                 std::string* error) {
  out->clear();
  *expanded = false;
  size_t i = 0;
  while (i < text.size()) {
    if (text.compare(i, 3, "$${") == 0) {
      out->append("${");
      i += 3;
      continue;
    }
    if (text.compare(i, 2, "${") != 0) {
      out->push_back(text[i++]);
      continue;
    }
    size_t close = text.find('}', i + 2);
    if (close == std::string_view::npos) {
      *error = "unterminated '${' in '" + std::string(text) + "' (missing '}')";
      return false;
    }
    std::string_view inner = text.substr(i + 2, close - i - 2);
    size_t name_end = 0;
    while (name_end < inner.size() && is_name_char(inner[name_end])) ++name_end;
    std::string name(inner.substr(0, name_end));
    std::string_view rest = inner.substr(name_end);
    bool has_default = rest.starts_with(":-");
    bool has_message = rest.starts_with(":?");
    bool has_alternative = rest.starts_with(":+");
    if (name.empty() || !is_name_start(name[0]) ||
        !(rest.empty() || has_default || has_message || has_alternative)) {
      *error = "invalid interpolation '${" + std::string(inner) +
               "}' (use ${VAR}, ${VAR:-default}, ${VAR:?message} or ${VAR:+word})";
      return false;
    }
    std::optional<std::string> value = env(name);
    // As in the shell, ":-", ":?" and ":+" treat an empty variable like an unset one.
    bool usable = value.has_value() && (rest.empty() || !value->empty());
    if (has_alternative) {
      // ${VAR:+word}: `word` when VAR is set and not empty, else nothing; VAR's value is never
      // used, so a secret can switch a node on without being copied anywhere.
      if (usable) out->append(rest.substr(2));
    } else if (usable) {
      out->append(*value);
    } else if (has_default) {
      out->append(rest.substr(2));
    } else {
      *error = "environment variable '" + name + (value ? "' is empty" : "' is not set");
      if (has_message && rest.size() > 2) *error += ": " + std::string(rest.substr(2));
      return false;
    }
    *expanded = true;
    i = close + 1;
  }
  return true;
}

void walk(toml::node& node, const EnvLookup& env, Expansion& out, Diagnostics& diags) {
  if (auto* table = node.as_table()) {
    for (auto&& [key, value] : *table) walk(value, env, out, diags);
  } else if (auto* array = node.as_array()) {
    for (auto& value : *array) walk(value, env, out, diags);
  } else if (auto* str = node.as_string()) {
    const std::string& text = str->get();
    if (text.find("${") == std::string::npos) return;
    std::string result, error;
    bool expanded = false;
    if (!expand_text(text, env, &result, &expanded, &error)) {
      diags.error(diags.pos(node), error);
      out.failed.insert(&node);
      return;
    }
    str->get() = std::move(result);
    if (expanded) out.expanded.insert(&node);
  }
}

// `enabled = false`, or a string that is "false" or empty (`"${LLM_API_KEY:+true}"` with the
// variable unset): the node is left out.
bool switched_off(const toml::node& n) {
  if (const auto* b = n.as_boolean()) return !b->get();
  if (const auto* str = n.as_string()) return str->get() == "false" || str->get().empty();
  return false;
}

}  // namespace

void expand_env(toml::node& root, const EnvLookup& env, Expansion& out, Diagnostics& diags) {
  toml::table* top = root.as_table();
  if (top == nullptr) return walk(root, env, out, diags);
  for (auto&& [key, value] : *top) {
    toml::table* section = value.as_table();
    const bool nodes = key == "sources" || key == "processors" || key == "sinks";
    if (!nodes || section == nullptr) {
      walk(value, env, out, diags);
      continue;
    }
    for (auto&& [name, node] : *section) {
      // A disabled node's values are never read, so its ${VAR:?} secrets need not be set.
      if (toml::table* t = node.as_table(); t != nullptr) {
        if (toml::node* enabled = t->get("enabled")) {
          walk(*enabled, env, out, diags);
          if (switched_off(*enabled)) continue;
        }
      }
      walk(node, env, out, diags);
    }
  }
}

}  // namespace sluice::core::detail
