// Text rules of the `file` source: lines, CSV records and cells, and recorded times.
#include "parse.hpp"

#include <charconv>
#include <cmath>
#include <limits>

namespace sluice::file_source {
namespace {

constexpr std::string_view kByteOrderMark = "\xEF\xBB\xBF";

bool is_digit(char c) { return c >= '0' && c <= '9'; }

size_t count_digits(std::string_view s, size_t from) {
  size_t n = 0;
  while (from + n < s.size() && is_digit(s[from + n])) ++n;
  return n;
}

// Reads exactly `width` digits at p.
bool fixed_digits(std::string_view s, size_t& p, size_t width, int& out) {
  if (p + width > s.size()) return false;
  out = 0;
  for (size_t k = 0; k < width; ++k) {
    if (!is_digit(s[p + k])) return false;
    out = out * 10 + (s[p + k] - '0');
  }
  p += width;
  return true;
}

bool expect(std::string_view s, size_t& p, char c) {
  if (p >= s.size() || s[p] != c) return false;
  ++p;
  return true;
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

unsigned days_in_month(int y, unsigned m) {
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : kDays[m - 1];
}

std::optional<int64_t> parse_iso8601(std::string_view s) {
  size_t p = 0;
  int year, month, day, hour = 0, minute = 0, second = 0;
  if (!fixed_digits(s, p, 4, year) || !expect(s, p, '-') || !fixed_digits(s, p, 2, month) ||
      !expect(s, p, '-') || !fixed_digits(s, p, 2, day)) {
    return std::nullopt;
  }
  if (month < 1 || month > 12 || day < 1 || day > static_cast<int>(days_in_month(year, month))) {
    return std::nullopt;
  }
  int64_t fraction_ns = 0;
  int64_t offset_s = 0;
  if (p < s.size()) {
    if (s[p] != 'T' && s[p] != 't' && s[p] != ' ') return std::nullopt;
    ++p;
    if (!fixed_digits(s, p, 2, hour) || !expect(s, p, ':') || !fixed_digits(s, p, 2, minute)) {
      return std::nullopt;
    }
    if (p < s.size() && s[p] == ':') {
      ++p;
      if (!fixed_digits(s, p, 2, second)) return std::nullopt;
      if (p < s.size() && (s[p] == '.' || s[p] == ',')) {
        ++p;
        const size_t n = count_digits(s, p);
        if (n == 0) return std::nullopt;
        for (size_t k = 0; k < 9; ++k) {
          fraction_ns = fraction_ns * 10 + (k < n ? s[p + k] - '0' : 0);
        }
        p += n;  // digits beyond nanoseconds are dropped
      }
    }
    if (hour > 23 || minute > 59 || second > 60) return std::nullopt;
    if (p < s.size() && (s[p] == 'Z' || s[p] == 'z')) {
      ++p;
    } else if (p < s.size() && (s[p] == '+' || s[p] == '-')) {
      const int sign = s[p] == '-' ? -1 : 1;
      ++p;
      int oh, om = 0;
      if (!fixed_digits(s, p, 2, oh)) return std::nullopt;
      if (p < s.size() && s[p] == ':') ++p;
      if (p < s.size() && !fixed_digits(s, p, 2, om)) return std::nullopt;
      if (oh > 23 || om > 59) return std::nullopt;
      offset_s = sign * (oh * 3600 + om * 60);
    }
  }
  if (p != s.size()) return std::nullopt;
  const int64_t seconds =
      days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day)) * 86400 +
      hour * 3600 + minute * 60 + second - offset_s;
  int64_t ns;
  if (__builtin_mul_overflow(seconds, int64_t{1'000'000'000}, &ns) ||
      __builtin_add_overflow(ns, fraction_ns, &ns)) {
    return std::nullopt;
  }
  return ns;
}

// Nanoseconds per unit of an epoch number of this magnitude.
int64_t epoch_unit_ns(double magnitude) {
  if (magnitude < 1e11) return 1'000'000'000;
  if (magnitude < 1e14) return 1'000'000;
  if (magnitude < 1e17) return 1'000;
  return 1;
}

}  // namespace

bool LineReader::next(std::string& line) {
  if (!std::getline(in_, line)) return false;
  if (++line_ == 1 && line.starts_with(kByteOrderMark)) line.erase(0, kByteOrderMark.size());
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return true;
}

bool is_blank(std::string_view line) {
  return line.find_first_not_of(" \t\r\n") == std::string_view::npos;
}

size_t count_quotes(std::string_view text) {
  size_t n = 0;
  for (char c : text) n += c == '"';
  return n;
}

std::string split_csv_record(std::string_view record, std::vector<std::string>& cells) {
  size_t n = 0;
  size_t i = 0;
  while (true) {
    if (n == cells.size()) cells.emplace_back();
    std::string& cell = cells[n++];
    cell.clear();
    if (i < record.size() && record[i] == '"') {
      const size_t open = i;
      size_t pos = i + 1;
      while (true) {
        const size_t q = record.find('"', pos);
        if (q == std::string_view::npos) {
          cells.resize(n);
          return "unterminated quoted value starting at column " + std::to_string(open + 1);
        }
        cell.append(record.substr(pos, q - pos));
        if (q + 1 < record.size() && record[q + 1] == '"') {
          cell += '"';
          pos = q + 2;
          continue;
        }
        i = q + 1;
        break;
      }
      if (i < record.size() && record[i] != ',') {
        cells.resize(n);
        return "unexpected character after a closing quote at column " + std::to_string(i + 1);
      }
    } else {
      const size_t comma = std::min(record.find(',', i), record.size());
      cell.assign(record.substr(i, comma - i));
      i = comma;
    }
    if (i >= record.size()) break;
    ++i;  // the comma
  }
  cells.resize(n);
  return {};
}

Value type_cell(std::string_view cell) {
  Value v;
  v.type = FieldType::String;
  v.s = cell;
  if (cell == "true" || cell == "false") {
    v.type = FieldType::Bool;
    v.b = cell == "true";
    return v;
  }
  // from_chars takes no leading '+', so the number starts after it.
  const size_t start = !cell.empty() && cell[0] == '+' ? 1 : 0;
  size_t p = !cell.empty() && (cell[0] == '+' || cell[0] == '-') ? 1 : 0;
  const size_t int_digits = count_digits(cell, p);
  p += int_digits;
  const char* first = cell.data() + start;
  const char* last = cell.data() + cell.size();
  if (int_digits > 0 && p == cell.size()) {
    auto r = std::from_chars(first, last, v.i);
    if (r.ec == std::errc() && r.ptr == last) {
      v.type = FieldType::Int;
      return v;
    }
  }
  size_t frac_digits = 0;
  if (p < cell.size() && cell[p] == '.') {
    frac_digits = count_digits(cell, p + 1);
    p += 1 + frac_digits;
  }
  if (int_digits + frac_digits == 0) return v;
  if (p < cell.size() && (cell[p] == 'e' || cell[p] == 'E')) {
    ++p;
    if (p < cell.size() && (cell[p] == '+' || cell[p] == '-')) ++p;
    const size_t exp_digits = count_digits(cell, p);
    if (exp_digits == 0) return v;
    p += exp_digits;
  }
  if (p != cell.size()) return v;
  auto r = std::from_chars(first, last, v.d);
  if (r.ec == std::errc() && r.ptr == last && std::isfinite(v.d)) v.type = FieldType::Double;
  return v;
}

std::optional<int64_t> epoch_ns(int64_t v) {
  const double magnitude = std::fabs(static_cast<double>(v));
  int64_t ns;
  if (__builtin_mul_overflow(v, epoch_unit_ns(magnitude), &ns)) return std::nullopt;
  return ns;
}

std::optional<int64_t> epoch_ns(double v) {
  if (!std::isfinite(v)) return std::nullopt;
  const double ns = v * static_cast<double>(epoch_unit_ns(std::fabs(v)));
  // 2^63 is exactly representable; anything at or beyond it does not fit.
  if (std::fabs(ns) >= 9223372036854775808.0) return std::nullopt;
  return std::llround(ns);
}

std::optional<int64_t> parse_time_text(std::string_view text) {
  const Value number = type_cell(text);
  if (number.type == FieldType::Int) return epoch_ns(number.i);
  if (number.type == FieldType::Double) return epoch_ns(number.d);
  return parse_iso8601(text);
}

std::optional<int64_t> time_ns(const Value& v) {
  switch (v.type) {
    case FieldType::Int:
      return epoch_ns(v.i);
    case FieldType::Double:
      return epoch_ns(v.d);
    case FieldType::String:
      return parse_time_text(v.s);
    default:
      return std::nullopt;
  }
}

void append_text(std::string& out, const Value& v) {
  char buf[40];
  switch (v.type) {
    case FieldType::String:
      out.append(v.s);
      break;
    case FieldType::Int:
      out.append(buf, std::to_chars(buf, buf + sizeof(buf), v.i).ptr);
      break;
    case FieldType::Double:
      out.append(buf, std::to_chars(buf, buf + sizeof(buf), v.d).ptr);
      break;
    case FieldType::Bool:
      out.append(v.b ? "true" : "false");
      break;
    default:
      break;
  }
}

}  // namespace sluice::file_source
