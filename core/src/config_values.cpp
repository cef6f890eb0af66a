// Diagnostics, typed reads of TOML values (with coercion of ${VAR}-expanded text) and small
// helpers shared by the pipeline loader and the option validator.
#include <cmath>
#include <algorithm>
#include <charconv>
#include <limits>
#include <sstream>
#include <tuple>

#include "config_internal.hpp"

namespace sluice::core::detail {

void Diagnostics::error(SourcePos pos, std::string message) {
  diags_.push_back(Diagnostic{std::move(pos), std::move(message)});
}

void Diagnostics::throw_if_any() {
  if (diags_.empty()) return;
  std::stable_sort(diags_.begin(), diags_.end(), [](const Diagnostic& a, const Diagnostic& b) {
    return std::tie(a.pos.line, a.pos.column) < std::tie(b.pos.line, b.pos.column);
  });
  throw ConfigError(std::move(diags_));
}

const char* type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string:
      return "string";
    case toml::node_type::integer:
      return "integer";
    case toml::node_type::floating_point:
      return "float";
    case toml::node_type::boolean:
      return "boolean";
    case toml::node_type::array:
      return "array";
    case toml::node_type::table:
      return "table";
    case toml::node_type::date:
      return "date";
    case toml::node_type::time:
      return "time";
    case toml::node_type::date_time:
      return "date-time";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

std::vector<std::pair<const toml::key*, const toml::node*>> in_file_order(const toml::table& t) {
  std::vector<std::pair<const toml::key*, const toml::node*>> entries;
  for (auto&& [key, value] : t) entries.emplace_back(&key, &value);
  std::stable_sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
    const auto& pa = a.first->source().begin;
    const auto& pb = b.first->source().begin;
    return std::tie(pa.line, pa.column) < std::tie(pb.line, pb.column);
  });
  return entries;
}

nlohmann::json to_json(const toml::node& n) {
  if (auto* table = n.as_table()) {
    nlohmann::json out = nlohmann::json::object();
    for (auto&& [key, value] : *table) out[std::string(key.str())] = to_json(value);
    return out;
  }
  if (auto* array = n.as_array()) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& value : *array) out.push_back(to_json(value));
    return out;
  }
  if (auto* s = n.as_string()) return s->get();
  if (auto* i = n.as_integer()) return i->get();
  if (auto* f = n.as_floating_point()) return f->get();
  if (auto* b = n.as_boolean()) return b->get();
  std::ostringstream text;  // dates and times keep their TOML spelling
  n.visit([&](const auto& v) { text << v; });
  return text.str();
}

std::string join(const std::vector<std::string>& items, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += sep;
    out += items[i];
  }
  return out;
}

std::string suggestion(std::string_view name, const std::vector<std::string>& candidates,
                       std::string_view list_label) {
  std::string near = nearest_name(name, candidates);
  if (!near.empty()) return " (did you mean '" + near + "'?)";
  if (candidates.empty()) return "";
  // A long list helps nobody; the first names show what kind of name is expected.
  constexpr size_t kMaxListed = 12;
  if (candidates.size() <= kMaxListed) {
    return " (" + std::string(list_label) + ": " + join(candidates) + ")";
  }
  std::vector<std::string> first(candidates.begin(), candidates.begin() + kMaxListed);
  return " (" + std::string(list_label) + ": " + join(first) + ", and " +
         std::to_string(candidates.size() - kMaxListed) + " more)";
}

void Reader::wrong_type(const toml::node& n, std::string_view what,
                        std::string_view expected) const {
  diags_.error(diags_.pos(n),
               std::string(what) + " must be " + std::string(expected) + ", got " + type_name(n));
}

const std::string* Reader::coercible(const toml::node& n) const {
  if (!expanded(n)) return nullptr;
  return &n.as_string()->get();
}

namespace {

std::string coerce_failure(std::string_view what, std::string_view expected,
                           const std::string& text) {
  return std::string(what) + " must be " + std::string(expected) + ", got '" + text +
         "' (expanded from ${...})";
}

template <class T>
std::optional<T> parse_whole(const std::string& text) {
  T value{};
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end || text.empty()) return std::nullopt;
  return value;
}

}  // namespace

std::optional<std::string> Reader::string(const toml::node& n, std::string_view what) const {
  if (failed(n)) return std::nullopt;
  if (auto* s = n.as_string()) return s->get();
  wrong_type(n, what, "a string");
  return std::nullopt;
}

std::optional<int64_t> Reader::integer(const toml::node& n, std::string_view what) const {
  if (auto* i = n.as_integer()) return i->get();
  if (failed(n)) return std::nullopt;
  if (const std::string* text = coercible(n)) {
    if (auto value = parse_whole<int64_t>(*text)) return value;
    diags_.error(diags_.pos(n), coerce_failure(what, "an integer", *text));
    return std::nullopt;
  }
  wrong_type(n, what, "an integer");
  return std::nullopt;
}

std::optional<int64_t> Reader::integer_in(const toml::node& n, std::string_view what, int64_t lo,
                                          int64_t hi) const {
  auto value = integer(n, what);
  if (!value || (*value >= lo && *value <= hi)) return value;
  std::string range = hi == std::numeric_limits<int64_t>::max()
                          ? "at least " + std::to_string(lo)
                          : "between " + std::to_string(lo) + " and " + std::to_string(hi);
  diags_.error(diags_.pos(n),
               std::string(what) + " must be " + range + ", got " + std::to_string(*value));
  return std::nullopt;
}

std::optional<double> Reader::number(const toml::node& n, std::string_view what) const {
  if (auto* i = n.as_integer()) return static_cast<double>(i->get());
  if (auto* f = n.as_floating_point()) {
    // JSON (what plugins receive) has no nan/inf: refuse them here, where the position is known.
    if (!std::isfinite(f->get())) {
      diags_.error(diags_.pos(n), std::string(what) + " must be a finite number");
      return std::nullopt;
    }
    return f->get();
  }
  if (failed(n)) return std::nullopt;
  if (const std::string* text = coercible(n)) {
    if (auto value = parse_whole<double>(*text)) return value;
    diags_.error(diags_.pos(n), coerce_failure(what, "a number", *text));
    return std::nullopt;
  }
  wrong_type(n, what, "a number");
  return std::nullopt;
}

std::optional<bool> Reader::boolean(const toml::node& n, std::string_view what) const {
  if (auto* b = n.as_boolean()) return b->get();
  if (failed(n)) return std::nullopt;
  if (const std::string* text = coercible(n)) {
    if (*text == "true") return true;
    if (*text == "false") return false;
    diags_.error(diags_.pos(n), coerce_failure(what, "a boolean", *text));
    return std::nullopt;
  }
  wrong_type(n, what, "a boolean");
  return std::nullopt;
}

std::optional<int64_t> Reader::duration(const toml::node& n, std::string_view what) const {
  if (failed(n)) return std::nullopt;
  auto* s = n.as_string();
  if (s == nullptr) {
    wrong_type(n, what, "a duration (e.g. \"250ms\")");
    return std::nullopt;
  }
  std::string reason;
  if (auto ns = parse_duration(s->get(), &reason)) return ns;
  diags_.error(diags_.pos(n),
               std::string(what) + ": invalid duration '" + s->get() + "': " + reason);
  return std::nullopt;
}

std::optional<uint64_t> Reader::size(const toml::node& n, std::string_view what) const {
  if (auto* i = n.as_integer()) {
    if (i->get() >= 0) return static_cast<uint64_t>(i->get());
    diags_.error(diags_.pos(n),
                 std::string(what) + " must not be negative, got " + std::to_string(i->get()));
    return std::nullopt;
  }
  if (failed(n)) return std::nullopt;
  auto* s = n.as_string();
  if (s == nullptr) {
    wrong_type(n, what, "a size (e.g. \"10MiB\" or a byte count)");
    return std::nullopt;
  }
  std::string reason;
  if (auto bytes = parse_size(s->get(), &reason)) return bytes;
  diags_.error(diags_.pos(n), std::string(what) + ": invalid size '" + s->get() + "': " + reason);
  return std::nullopt;
}

std::optional<std::vector<std::string>> Reader::strings(const toml::node& n, std::string_view what,
                                                        const char* list_desc) const {
  auto* array = n.as_array();
  if (array == nullptr) {
    wrong_type(n, what, list_desc);
    return std::nullopt;
  }
  std::vector<std::string> out;
  bool ok = true;
  for (size_t i = 0; i < array->size(); ++i) {
    auto value = string((*array)[i], std::string(what) + " item " + std::to_string(i + 1));
    if (value) {
      out.push_back(std::move(*value));
    } else {
      ok = false;
    }
  }
  if (!ok) return std::nullopt;
  return out;
}

}  // namespace sluice::core::detail
