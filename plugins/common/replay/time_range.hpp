// The times a source accepts from the data it reads. An exchange frame's millisecond time becomes
// an event time in int64 nanoseconds, which ends in 2262: a time such as T = 99999999999999999
// wrapped into a date in 1969 (and is undefined behaviour). Times outside the ranges below are
// bad data, counted with reason "out_of_range" and never emitted.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace sluice::replay {

// Exchange frames (Binance, Bybit, OKX) and recording receive times: from 2000-01-01T00:00:00Z
// (no crypto exchange is older; a smaller number is a unit mistake) up to, not including,
// 2200-01-01T00:00:00Z (far beyond any real clock, and well inside int64 nanoseconds).
inline constexpr int64_t kMinExchangeTimeMs = 946'684'800'000;
inline constexpr int64_t kMaxExchangeTimeMs = 7'258'118'400'000;

inline constexpr bool exchange_time_ok(int64_t ms) {
  return ms >= kMinExchangeTimeMs && ms < kMaxExchangeTimeMs;
}

// 'field "o.T": 99999999999999999 is out of range (epoch milliseconds from 2000-01-01 up to
// 2200-01-01)'
inline std::string time_out_of_range(std::string_view field, int64_t ms) {
  return "field \"" + std::string(field) + "\": " + std::to_string(ms) +
         " is out of range (epoch milliseconds from 2000-01-01 up to 2200-01-01)";
}

// Any event time read from a file (the `file` source): from 1970-01-01 up to 2200-01-01 in
// nanoseconds, so that the difference of two event times (replay pacing) never overflows.
inline constexpr int64_t kMinFileTimeNs = 0;
inline constexpr int64_t kMaxFileTimeNs = kMaxExchangeTimeMs * 1'000'000;

inline constexpr bool file_time_ok(int64_t ns) {
  return ns >= kMinFileTimeNs && ns < kMaxFileTimeNs;
}

}  // namespace sluice::replay
