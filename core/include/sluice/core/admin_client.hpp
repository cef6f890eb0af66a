// The client side of the admin endpoint, for `sluice ctl`: where the endpoint is (a URL, or the
// [admin] section of a pipeline file) and one request to it over plain HTTP (Boost.Beast).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "sluice/core/config.hpp"

namespace sluice::core {

struct AdminUrl {
  std::string host;  // name or address; an IPv6 address without brackets
  uint16_t port = 80;
  std::string base_path;            // "" or "/prefix" (no trailing slash), put before every path
  std::string text() const;         // http://host:port[/prefix]
  std::string host_header() const;  // host:port, IPv6 in brackets
};

// "http://127.0.0.1:9464", "http://[::1]:9464/", "http://admin.local:9464/sluice". Only http.
std::optional<AdminUrl> parse_admin_url(std::string_view url, std::string* error);

// The endpoint a pipeline file's [admin] names for the whole pipeline (`process` empty) or one
// placement group (port + the group's index). A wildcard address (0.0.0.0, ::) is reached on
// loopback. Throws std::runtime_error when the endpoint is off or the group is unknown.
AdminUrl admin_url_of(const AdminTarget& target, const std::string& process);

struct AdminReply {
  int status = 0;
  std::string reason;
  std::string body;
};

// One request (Connection: close). `token` (may be "") is sent as a bearer token; a non-empty
// `json_body` is sent with Content-Type: application/json. Throws std::runtime_error naming the
// URL when the endpoint cannot be reached or does not answer within `timeout`.
AdminReply admin_request(const AdminUrl& url, const std::string& method, const std::string& path,
                         const std::string& token, const std::string& json_body,
                         std::chrono::milliseconds timeout);

}  // namespace sluice::core
