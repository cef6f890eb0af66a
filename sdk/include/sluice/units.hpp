// Units of option values, shared by the host (pipeline files) and plugins (values inside a
// free-form TABLE option): durations ("250ms", "1m30s") and sizes ("10MiB", "512KB"). One
// implementation, so a plugin reads "30s" exactly as the host does.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::units {

namespace detail {

struct Unit {
  std::string_view name;
  uint64_t factor;
};

inline constexpr Unit kDurationUnits[] = {
    {"ns", 1ULL},
    {"us", 1'000ULL},
    {"ms", 1'000'000ULL},
    {"s", 1'000'000'000ULL},
    {"m", 60'000'000'000ULL},
    {"h", 3'600'000'000'000ULL},
    {"d", 86'400'000'000'000ULL},
};
inline constexpr std::string_view kDurationUnitList = "ns, us, ms, s, m, h, d";

// The longest duration a pipeline file may give. Every duration is added to a clock somewhere
// (a deadline, a retry, a grace period); int64 nanoseconds end in 2262, so a value near that
// limit wraps the deadline into the past. No option of ours means anything beyond a month.
inline constexpr uint64_t kMaxDurationDays = 30;
inline constexpr uint64_t kMaxDurationNs = kMaxDurationDays * 86'400'000'000'000ULL;

inline constexpr Unit kSizeUnits[] = {
    {"B", 1ULL},         {"KB", 1'000ULL},    {"MB", 1'000'000ULL}, {"GB", 1'000'000'000ULL},
    {"KiB", 1ULL << 10}, {"MiB", 1ULL << 20}, {"GiB", 1ULL << 30},
};
inline constexpr std::string_view kSizeUnitList = "B, KB, MB, GB, KiB, MiB, GiB";

inline bool is_digit(char c) { return c >= '0' && c <= '9'; }

inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

// One "<digits>[.<digits>]" read from the front of `text`.
struct Number {
  uint64_t whole = 0;
  std::string_view fraction;  // digits after the '.', possibly empty
  std::string_view text;      // the number as written
};

// Reads a number at text[i]; on failure sets *error and returns nullopt.
inline std::optional<Number> read_number(std::string_view text, size_t& i, std::string* error) {
  size_t start = i;
  Number n;
  if (i >= text.size() || !is_digit(text[i])) {
    if (error) *error = "expected a number at '" + std::string(text.substr(i)) + "'";
    return std::nullopt;
  }
  while (i < text.size() && is_digit(text[i])) {
    uint64_t digit = static_cast<uint64_t>(text[i] - '0');
    if (__builtin_mul_overflow(n.whole, 10ULL, &n.whole) ||
        __builtin_add_overflow(n.whole, digit, &n.whole)) {
      if (error) *error = "number '" + std::string(text.substr(start)) + "' is too large";
      return std::nullopt;
    }
    ++i;
  }
  if (i < text.size() && text[i] == '.') {
    size_t frac_start = ++i;
    while (i < text.size() && is_digit(text[i])) ++i;
    if (i == frac_start) {
      if (error) *error = "expected digits after '.' in '" + std::string(text) + "'";
      return std::nullopt;
    }
    n.fraction = text.substr(frac_start, i - frac_start);
  }
  n.text = text.substr(start, i - start);
  return n;
}

// Reads a unit word (letters) at text[i], after optional spaces.
inline std::string_view read_unit(std::string_view text, size_t& i) {
  while (i < text.size() && text[i] == ' ') ++i;
  size_t start = i;
  while (i < text.size() && !is_digit(text[i]) && text[i] != ' ' && text[i] != '.') ++i;
  return text.substr(start, i - start);
}

// number × factor, rounded to the nearest integer; false on overflow.
inline bool scale(const Number& n, uint64_t factor, uint64_t* out) {
  uint64_t whole = 0;
  if (__builtin_mul_overflow(n.whole, factor, &whole)) return false;
  long double frac = 0;
  long double place = 0.1L;
  for (char c : n.fraction.substr(0, 19)) {
    frac += (c - '0') * place;
    place /= 10;
  }
  auto frac_part = static_cast<uint64_t>(std::llroundl(frac * static_cast<long double>(factor)));
  return !__builtin_add_overflow(whole, frac_part, out);
}

}  // namespace detail

// Parses a duration ("250ms", "1m30s", "2.5s"; units ns, us, ms, s, m, h, d; at most 30 days) into
// nanoseconds; nullopt with *error set (a message naming the problem) when it is not one.
inline std::optional<int64_t> parse_duration(std::string_view text, std::string* error) {
  auto fail = [&](std::string message) -> std::optional<int64_t> {
    if (error) *error = std::move(message);
    return std::nullopt;
  };
  if (text.empty()) return fail("empty duration");
  if (text.front() == '-') return fail("negative durations are not allowed");
  uint64_t total = 0;
  size_t i = 0;
  while (i < text.size()) {
    auto number = detail::read_number(text, i, error);
    if (!number) return std::nullopt;
    std::string_view unit = detail::read_unit(text, i);
    if (unit.empty()) {
      std::string n(number->text);
      return fail("missing unit after '" + n + "' (e.g. '" + n + "s' or '" + n +
                  "ms'; units: " + std::string(detail::kDurationUnitList) + ")");
    }
    auto it = std::find_if(std::begin(detail::kDurationUnits), std::end(detail::kDurationUnits),
                           [&](const detail::Unit& u) { return u.name == unit; });
    if (it == std::end(detail::kDurationUnits)) {
      return fail("unknown unit '" + std::string(unit) +
                  "' (units: " + std::string(detail::kDurationUnitList) + ")");
    }
    uint64_t part = 0;
    if (!detail::scale(*number, it->factor, &part) || __builtin_add_overflow(total, part, &total) ||
        total > detail::kMaxDurationNs) {
      return fail("duration is too large (at most " + std::to_string(detail::kMaxDurationDays) +
                  "d)");
    }
  }
  return static_cast<int64_t>(total);
}

// Parses a size ("10MiB", "512KB", or a byte count) into bytes; nullopt with *error set.
inline std::optional<uint64_t> parse_size(std::string_view text, std::string* error) {
  auto fail = [&](std::string message) -> std::optional<uint64_t> {
    if (error) *error = std::move(message);
    return std::nullopt;
  };
  if (text.empty()) return fail("empty size");
  if (text.front() == '-') return fail("negative sizes are not allowed");
  size_t i = 0;
  auto number = detail::read_number(text, i, error);
  if (!number) return std::nullopt;
  std::string_view unit = detail::read_unit(text, i);
  if (i < text.size()) {
    return fail("unexpected '" + std::string(text.substr(i)) + "' (a size is one number and unit)");
  }
  uint64_t factor = 1;
  if (unit.empty()) {
    if (!number->fraction.empty()) return fail("a byte count must be a whole number");
  } else {
    auto it = std::find_if(std::begin(detail::kSizeUnits), std::end(detail::kSizeUnits),
                           [&](const detail::Unit& u) { return detail::iequals(u.name, unit); });
    if (it == std::end(detail::kSizeUnits)) {
      return fail("unknown unit '" + std::string(unit) +
                  "' (units: " + std::string(detail::kSizeUnitList) + ")");
    }
    factor = it->factor;
  }
  uint64_t bytes = 0;
  if (!detail::scale(*number, factor, &bytes)) return fail("size is too large");
  return bytes;
}

}  // namespace sluice::units
