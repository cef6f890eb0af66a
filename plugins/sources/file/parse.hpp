// Text rules of the `file` source: reading lines, CSV records (RFC 4180), typing CSV values and
// turning recorded times into epoch nanoseconds. Pure functions, so tests pin each rule.
#pragma once

#include <cstdint>
#include <istream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/event.hpp"

namespace sluice::file_source {

// A typed value read from a row. Strings are views into the row being read.
struct Value {
  FieldType type = FieldType::Null;
  int64_t i = 0;
  double d = 0;
  bool b = false;
  std::string_view s;
};

// Reads physical lines, counting them from 1, dropping a UTF-8 byte-order mark on the first
// line and the '\r' of CRLF endings.
class LineReader {
 public:
  explicit LineReader(std::istream& in) : in_(in) {}
  bool next(std::string& line);
  uint64_t line_number() const { return line_; }

 private:
  std::istream& in_;
  uint64_t line_ = 0;
};

bool is_blank(std::string_view line);

// How many '"' the text holds: a CSV record is complete when its total is even.
size_t count_quotes(std::string_view text);

// Splits one CSV record (RFC 4180: quoted cells may hold commas, newlines and "" for a quote;
// a quote inside an unquoted cell is kept as it is). Returns "" or what is wrong.
std::string split_csv_record(std::string_view record, std::vector<std::string>& cells);

// Types a CSV cell: an integer literal becomes Int (Double if it does not fit 64 bits),
// a decimal or scientific literal Double, true/false Bool, anything else String.
Value type_cell(std::string_view cell);

// Epoch numbers, told apart by magnitude: below 1e11 seconds, below 1e14 milliseconds, below
// 1e17 microseconds, else nanoseconds.
std::optional<int64_t> epoch_ns(int64_t v);
std::optional<int64_t> epoch_ns(double v);
// "2025-10-22T09:36:42.306000", with ' ' or 'T', optional seconds, fraction and zone (Z, +02:00,
// -0500); no zone means UTC. A string of digits is an epoch number.
std::optional<int64_t> parse_time_text(std::string_view text);
// A value used as the event time; nullopt when it is no time.
std::optional<int64_t> time_ns(const Value& v);

// A value as key text: strings as they are, numbers in their shortest form.
void append_text(std::string& out, const Value& v);

}  // namespace sluice::file_source
