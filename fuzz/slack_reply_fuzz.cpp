// Fuzzes how the slack sink reads Slack's answers: the shared HTTP classification (status,
// Retry-After, the error text in the body: invalid_payload, channel_not_found, …) and the
// body snippet that goes into error messages.
#include <cstdint>

#include "delivery.hpp"
#include "http_fuzz_util.hpp"

using namespace sluice;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Input in(data, size);
  const http::Response r = fuzz::response_from(in);
  fuzz::check_verdict(http::classify_http(r, "slack"));
  const std::string snippet = http::body_snippet(r.body);
  FUZZ_CHECK(snippet.find('\n') == std::string::npos);
  return 0;
}
