// Expression values: what an operand yields at evaluation time, and the comparison rules.
//
// A Value is a small non-owning view (strings point into the event, the compiled expression or a
// cached setting), so evaluation never allocates. A Constant owns its string and hands out Values.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "sluice/event.hpp"

namespace sluice::expr {

enum class Type : uint8_t { kNull, kBool, kInt, kDouble, kString };

// "a number", "a string", ...: for error messages.
inline const char* type_phrase(Type t) {
  switch (t) {
    case Type::kNull:
      return "null";
    case Type::kBool:
      return "a boolean";
    case Type::kInt:
    case Type::kDouble:
      return "a number";
    case Type::kString:
      return "a string";
  }
  return "a value";
}

inline bool is_number(Type t) { return t == Type::kInt || t == Type::kDouble; }

struct Value {
  Type type = Type::kNull;
  bool b = false;
  int64_t i = 0;
  double d = 0;
  std::string_view s;

  static Value null() { return {}; }
  static Value boolean(bool v) { return {Type::kBool, v, 0, 0, {}}; }
  static Value integer(int64_t v) { return {Type::kInt, false, v, 0, {}}; }
  static Value number(double v) { return {Type::kDouble, false, 0, v, {}}; }
  static Value string(std::string_view v) { return {Type::kString, false, 0, 0, v}; }
  // Event ids are unsigned; the rare id beyond int64 still compares numerically as a double.
  static Value unsigned_integer(uint64_t v) {
    if (v <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return integer(static_cast<int64_t>(v));
    }
    return number(static_cast<double>(v));
  }

  double as_double() const { return type == Type::kInt ? static_cast<double>(i) : d; }
};

// An owned value: literals in a compiled expression and cached settings.
struct Constant {
  Type type = Type::kNull;
  bool b = false;
  int64_t i = 0;
  double d = 0;
  std::string s;

  Value view() const { return {type, b, i, d, s}; }
};

// Reads an event field. Bytes fields read as strings (so `raw contains "..."` works); a missing
// field or a Null field is null.
inline Value field_value(const fb::Field* f) {
  if (f == nullptr) return Value::null();
  switch (f->type()) {
    case FieldType::Int:
      return Value::integer(f->i());
    case FieldType::Double:
      return Value::number(f->d());
    case FieldType::Bool:
      return Value::boolean(f->b());
    case FieldType::String:
      return Value::string(EventView::sv(f->s()));
    case FieldType::Bytes:
      if (f->bin() == nullptr) return Value::string({});
      return Value::string(
          std::string_view(reinterpret_cast<const char*>(f->bin()->data()), f->bin()->size()));
    default:
      return Value::null();
  }
}

// A setting's JSON value as a Constant; false for lists and tables, which no operator accepts.
inline bool constant_from_json(const nlohmann::json& j, Constant* out) {
  *out = Constant{};
  if (j.is_null()) return true;
  if (j.is_boolean()) {
    out->type = Type::kBool;
    out->b = j.get<bool>();
  } else if (j.is_number_integer() && !j.is_number_unsigned()) {
    out->type = Type::kInt;
    out->i = j.get<int64_t>();
  } else if (j.is_number_unsigned()) {
    Value v = Value::unsigned_integer(j.get<uint64_t>());
    out->type = v.type;
    out->i = v.i;
    out->d = v.d;
  } else if (j.is_number_float()) {
    out->type = Type::kDouble;
    out->d = j.get<double>();
  } else if (j.is_string()) {
    out->type = Type::kString;
    out->s = j.get<std::string>();
  } else {
    return false;
  }
  return true;
}

enum class Cmp : uint8_t { kEq, kNe, kLt, kLe, kGt, kGe };

inline const char* cmp_text(Cmp c) {
  switch (c) {
    case Cmp::kEq:
      return "==";
    case Cmp::kNe:
      return "!=";
    case Cmp::kLt:
      return "<";
    case Cmp::kLe:
      return "<=";
    case Cmp::kGt:
      return ">";
    case Cmp::kGe:
      return ">=";
  }
  return "?";
}

// Equality: null equals only null; numbers compare numerically across int and double; values of
// different types are never equal. `!=` is always the exact negation of `==`.
inline bool equal(const Value& a, const Value& b) {
  if (a.type == Type::kInt && b.type == Type::kInt) return a.i == b.i;
  if (is_number(a.type) && is_number(b.type)) return a.as_double() == b.as_double();
  if (a.type != b.type) return false;
  switch (a.type) {
    case Type::kNull:
      return true;
    case Type::kBool:
      return a.b == b.b;
    case Type::kString:
      return a.s == b.s;
    default:
      return false;
  }
}

// Ordering (<, <=, >, >=): numbers numerically, strings bytewise; anything else (null, booleans,
// mixed types, NaN) is unordered, so every ordering comparison on it is false.
inline bool ordered(Cmp c, const Value& a, const Value& b) {
  int r = 0;
  if (a.type == Type::kInt && b.type == Type::kInt) {
    r = a.i < b.i ? -1 : (a.i > b.i ? 1 : 0);
  } else if (is_number(a.type) && is_number(b.type)) {
    double x = a.as_double();
    double y = b.as_double();
    if (std::isnan(x) || std::isnan(y)) return false;
    r = x < y ? -1 : (x > y ? 1 : 0);
  } else if (a.type == Type::kString && b.type == Type::kString) {
    r = a.s.compare(b.s);
  } else {
    return false;
  }
  switch (c) {
    case Cmp::kLt:
      return r < 0;
    case Cmp::kLe:
      return r <= 0;
    case Cmp::kGt:
      return r > 0;
    case Cmp::kGe:
      return r >= 0;
    default:
      return false;
  }
}

inline bool compare(Cmp c, const Value& a, const Value& b) {
  if (c == Cmp::kEq) return equal(a, b);
  if (c == Cmp::kNe) return !equal(a, b);
  return ordered(c, a, b);
}

}  // namespace sluice::expr
