// Reading exchange messages with simdjson: field accessors that never throw and explain a bad
// field in words a user can act on ('field "data[1].v": "1,5" is not a decimal number').
// Header-only; shared by the exchange sources' parsers.
#pragma once

#include <charconv>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>

#include <simdjson.h>

namespace sluice::ws::json {

using simdjson::dom::element;
using simdjson::dom::element_type;
using simdjson::dom::object;

inline const char* type_name(element_type t) {
  switch (t) {
    case element_type::ARRAY:
      return "an array";
    case element_type::OBJECT:
      return "an object";
    case element_type::INT64:
    case element_type::UINT64:
    case element_type::DOUBLE:
      return "a number";
    case element_type::STRING:
      return "a string";
    case element_type::BOOL:
      return "a boolean";
    case element_type::NULL_VALUE:
      return "null";
  }
  return "a value";
}

// Error texts quote at most this much of a bad value.
inline constexpr size_t kShownValueBytes = 40;

inline std::string shown(std::string_view text) {
  if (text.size() <= kShownValueBytes) return "\"" + std::string(text) + "\"";
  return "\"" + std::string(text.substr(0, kShownValueBytes)) + "…\"";
}

// "a string \"x\"", "a number 1.5", "an object": what a value was, for error texts.
inline std::string described(element e) {
  std::string out = type_name(e.type());
  if (e.is_string()) out += " " + shown(std::string_view(e));
  if (e.is_number()) out += " " + simdjson::minify(e);
  return out;
}

// A decimal number sent as a string ("34603.03", "5.99e-05"); false for anything else.
inline bool parse_decimal(std::string_view text, double& out) {
  if (text.empty() || text.front() == '+') return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

// Reads the fields of one object, naming them with a prefix ("data[2].") in errors; on failure
// the accessors return false and leave the reason in `error`.
class Reader {
 public:
  Reader(object obj, std::string prefix, std::string& error)
      : obj_(obj), prefix_(std::move(prefix)), error_(error) {}

  bool find(std::string_view key, element& out) {
    if (obj_.at_key(key).get(out) == simdjson::SUCCESS) return true;
    error_ = "missing field \"" + name(key) + "\"";
    return false;
  }
  bool string(std::string_view key, std::string_view& out) {
    element e;
    if (!find(key, e)) return false;
    if (e.get_string().get(out) == simdjson::SUCCESS) return true;
    error_ = "field \"" + name(key) + "\": expected a string, got " + described(e);
    return false;
  }
  // Exchanges send decimals as strings; plain JSON numbers are accepted as well. Finite, >= 0.
  bool decimal(std::string_view key, double& out) {
    element e;
    if (!find(key, e)) return false;
    std::string_view text;
    if (e.is_number()) {
      out = double(e);
    } else if (e.get_string().get(text) == simdjson::SUCCESS) {
      if (!parse_decimal(text, out)) {
        error_ = "field \"" + name(key) + "\": " + shown(text) + " is not a decimal number";
        return false;
      }
    } else {
      error_ =
          "field \"" + name(key) + "\": expected a decimal string or number, got " + described(e);
      return false;
    }
    if (!std::isfinite(out) || out < 0) {
      error_ = "field \"" + name(key) + "\": must be a finite number >= 0";
      return false;
    }
    return true;
  }
  // Epoch milliseconds: an integer, or a string of digits.
  bool millis(std::string_view key, int64_t& out) {
    element e;
    if (!find(key, e)) return false;
    if (e.get_int64().get(out) == simdjson::SUCCESS) {
      if (out >= 0) return true;
    } else if (std::string_view text; e.get_string().get(text) == simdjson::SUCCESS) {
      auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
      if (ec == std::errc() && end == text.data() + text.size() && out >= 0) return true;
    }
    error_ = "field \"" + name(key) + "\": expected epoch milliseconds (an integer >= 0), got " +
             described(e);
    return false;
  }
  std::string name(std::string_view key) const { return prefix_ + std::string(key); }

 private:
  object obj_;
  std::string prefix_;
  std::string& error_;
};

}  // namespace sluice::ws::json
