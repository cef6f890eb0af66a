// Builds an http::Response from a fuzz input, for the reply classifiers of the chat sinks:
//   byte 0: the error kind (mostly none), byte 1: the status (one the services use, or any),
//   then "Name: value" header lines up to an empty line, then the body.
#pragma once

#include <cstdint>
#include <string_view>

#include "fuzz_util.hpp"
#include "delivery.hpp"
#include "http_client.hpp"

namespace sluice::fuzz {

inline http::Response response_from(Input& in) {
  static constexpr int kStatuses[] = {200, 204, 400, 401, 403, 404, 409, 410,
                                      413, 429, 500, 502, 503, 504, 302, 100};
  http::Response r;
  const uint8_t e = in.byte();
  r.error = e < 200 ? http::ErrorKind::kNone : static_cast<http::ErrorKind>(e % 8);
  if (!r.ok()) r.error_message = "fuzz error";
  const uint8_t s = in.byte();
  r.status = s < 128 ? kStatuses[s % 16] : 100 + (s - 128) * 4;
  for (;;) {
    std::string_view line = in.until('\n');
    if (line.empty()) break;
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) break;
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    r.headers.emplace_back(std::string(line.substr(0, colon)), std::string(value));
  }
  r.body = std::string(in.rest());
  return r;
}

// A verdict must say what went wrong whenever it is not a success.
inline void check_verdict(const http::Verdict& v) {
  if (v.next != http::Verdict::Next::kDone) FUZZ_CHECK(!v.message.empty());
  FUZZ_CHECK(v.retry_after.count() >= -1);
}

}  // namespace sluice::fuzz
