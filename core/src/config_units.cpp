// Units in pipeline files: durations ("250ms", "1m30s") and sizes ("10MiB", "512KB"), plus the
// edit-distance match behind every "did you mean" suggestion.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/core/config.hpp"

namespace sluice::core {
namespace {

struct Unit {
  std::string_view name;
  uint64_t factor;
};

constexpr Unit kDurationUnits[] = {
    {"ns", 1ULL},
    {"us", 1'000ULL},
    {"ms", 1'000'000ULL},
    {"s", 1'000'000'000ULL},
    {"m", 60'000'000'000ULL},
    {"h", 3'600'000'000'000ULL},
    {"d", 86'400'000'000'000ULL},
};
constexpr std::string_view kDurationUnitList = "ns, us, ms, s, m, h, d";

// The longest duration a pipeline file may give. Every duration is added to a clock somewhere
// (a deadline, a retry, a grace period); int64 nanoseconds end in 2262, so a value near that
// limit wraps the deadline into the past. No option of ours means anything beyond a month.
constexpr uint64_t kMaxDurationDays = 30;
constexpr uint64_t kMaxDurationNs = kMaxDurationDays * 86'400'000'000'000ULL;

constexpr Unit kSizeUnits[] = {
    {"B", 1ULL},         {"KB", 1'000ULL},    {"MB", 1'000'000ULL}, {"GB", 1'000'000'000ULL},
    {"KiB", 1ULL << 10}, {"MiB", 1ULL << 20}, {"GiB", 1ULL << 30},
};
constexpr std::string_view kSizeUnitList = "B, KB, MB, GB, KiB, MiB, GiB";

bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool iequals(std::string_view a, std::string_view b) {
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
std::optional<Number> read_number(std::string_view text, size_t& i, std::string* error) {
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
std::string_view read_unit(std::string_view text, size_t& i) {
  while (i < text.size() && text[i] == ' ') ++i;
  size_t start = i;
  while (i < text.size() && !is_digit(text[i]) && text[i] != ' ' && text[i] != '.') ++i;
  return text.substr(start, i - start);
}

// number × factor, rounded to the nearest integer; false on overflow.
bool scale(const Number& n, uint64_t factor, uint64_t* out) {
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

}  // namespace

std::optional<int64_t> parse_duration(std::string_view text, std::string* error) {
  auto fail = [&](std::string message) -> std::optional<int64_t> {
    if (error) *error = std::move(message);
    return std::nullopt;
  };
  if (text.empty()) return fail("empty duration");
  if (text.front() == '-') return fail("negative durations are not allowed");
  uint64_t total = 0;
  size_t i = 0;
  while (i < text.size()) {
    auto number = read_number(text, i, error);
    if (!number) return std::nullopt;
    std::string_view unit = read_unit(text, i);
    if (unit.empty()) {
      std::string n(number->text);
      return fail("missing unit after '" + n + "' (e.g. '" + n + "s' or '" + n +
                  "ms'; units: " + std::string(kDurationUnitList) + ")");
    }
    auto it = std::find_if(std::begin(kDurationUnits), std::end(kDurationUnits),
                           [&](const Unit& u) { return u.name == unit; });
    if (it == std::end(kDurationUnits)) {
      return fail("unknown unit '" + std::string(unit) +
                  "' (units: " + std::string(kDurationUnitList) + ")");
    }
    uint64_t part = 0;
    if (!scale(*number, it->factor, &part) || __builtin_add_overflow(total, part, &total) ||
        total > kMaxDurationNs) {
      return fail("duration is too large (at most " + std::to_string(kMaxDurationDays) + "d)");
    }
  }
  return static_cast<int64_t>(total);
}

std::optional<uint64_t> parse_size(std::string_view text, std::string* error) {
  auto fail = [&](std::string message) -> std::optional<uint64_t> {
    if (error) *error = std::move(message);
    return std::nullopt;
  };
  if (text.empty()) return fail("empty size");
  if (text.front() == '-') return fail("negative sizes are not allowed");
  size_t i = 0;
  auto number = read_number(text, i, error);
  if (!number) return std::nullopt;
  std::string_view unit = read_unit(text, i);
  if (i < text.size()) {
    return fail("unexpected '" + std::string(text.substr(i)) + "' (a size is one number and unit)");
  }
  uint64_t factor = 1;
  if (unit.empty()) {
    if (!number->fraction.empty()) return fail("a byte count must be a whole number");
  } else {
    auto it = std::find_if(std::begin(kSizeUnits), std::end(kSizeUnits),
                           [&](const Unit& u) { return iequals(u.name, unit); });
    if (it == std::end(kSizeUnits)) {
      return fail("unknown unit '" + std::string(unit) + "' (units: " + std::string(kSizeUnitList) +
                  ")");
    }
    factor = it->factor;
  }
  uint64_t bytes = 0;
  if (!scale(*number, factor, &bytes)) return fail("size is too large");
  return bytes;
}

std::string nearest_name(std::string_view name, const std::vector<std::string>& candidates) {
  // Levenshtein distance with two rows.
  auto distance = [](std::string_view a, std::string_view b) {
    std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
      cur[0] = i;
      for (size_t j = 1; j <= b.size(); ++j) {
        size_t substitute = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
        cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, substitute});
      }
      std::swap(prev, cur);
    }
    return prev[b.size()];
  };
  const size_t limit = std::max<size_t>(2, name.size() / 3);
  std::string best;
  size_t best_distance = std::numeric_limits<size_t>::max();
  for (const auto& candidate : candidates) {
    size_t d = distance(name, candidate);
    // A candidate that shares nothing with the name (every character replaced) is no hint.
    if (d > limit || d >= std::max(name.size(), candidate.size())) continue;
    if (d < best_distance) {
      best_distance = d;
      best = candidate;
    }
  }
  return best;
}

}  // namespace sluice::core
