// One plain HTTP/1.1 request to 127.0.0.1 (the admin endpoint of a pipeline under test), read
// to the end of the connection. Returns the whole response (status line, headers, body), or
// "connect failed".
#pragma once

#include <cstdint>
#include <string>

namespace sluice::testing {

std::string loopback_http(uint16_t port, const std::string& method, const std::string& target,
                          const std::string& body = "");

// Sends `request` exactly as given (headers and all; it should say Connection: close) and
// returns the whole response, or "connect failed".
std::string loopback_http_raw(uint16_t port, const std::string& request);

}  // namespace sluice::testing
