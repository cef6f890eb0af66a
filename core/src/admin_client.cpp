// `sluice ctl`'s HTTP client for the admin endpoint: URL parsing, the endpoint a pipeline file
// names, and one synchronous request with a deadline (Boost.Beast over plain TCP).
#include "sluice/core/admin_client.hpp"

#include <algorithm>
#include <charconv>
#include <stdexcept>

#include <fmt/format.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace sluice::core {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

std::string AdminUrl::host_header() const {
  bool v6 = host.find(':') != std::string::npos;
  return fmt::format("{}:{}", v6 ? "[" + host + "]" : host, port);
}

std::string AdminUrl::text() const { return "http://" + host_header() + base_path; }

std::optional<AdminUrl> parse_admin_url(std::string_view url, std::string* error) {
  auto fail = [&](const std::string& why) -> std::optional<AdminUrl> {
    if (error != nullptr) *error = fmt::format("invalid admin URL '{}': {}", url, why);
    return std::nullopt;
  };
  constexpr std::string_view kScheme = "http://";
  if (url.substr(0, kScheme.size()) != kScheme) {
    return fail(
        "it must start with http:// (the endpoint speaks plain HTTP; reach a remote one "
        "through a tunnel or a TLS proxy)");
  }
  std::string_view rest = url.substr(kScheme.size());
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? "" : rest.substr(slash);
  AdminUrl out;
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return fail("missing ']' after the IPv6 address");
    out.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty() && after.front() != ':') return fail("unexpected text after ']'");
    if (!after.empty()) port_text = after.substr(1);
  } else {
    size_t colon = authority.find(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
  }
  if (out.host.empty()) return fail("no host");
  if (out.host.find('@') != std::string::npos) return fail("user information is not supported");
  if (!port_text.empty()) {
    unsigned port = 0;
    auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || ptr != port_text.data() + port_text.size() || port == 0 ||
        port > 65535) {
      return fail("the port must be a number from 1 to 65535");
    }
    out.port = static_cast<uint16_t>(port);
  }
  if (path.find_first_of("?#") != std::string_view::npos) {
    return fail("a query or fragment is not supported");
  }
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  out.base_path = std::string(path);
  return out;
}

AdminUrl admin_url_of(const AdminTarget& target, const std::string& process) {
  const AdminSpec& a = target.admin;
  if (!a.enabled) {
    throw std::runtime_error(
        fmt::format("{}: the admin endpoint is off ([admin] enabled = false)", a.pos.file));
  }
  AdminUrl url;
  url.host = a.address == "0.0.0.0" ? "127.0.0.1" : a.address == "::" ? "::1" : a.address;
  unsigned port = a.port;
  if (!process.empty()) {
    auto it = std::find(target.groups.begin(), target.groups.end(), process);
    if (it == target.groups.end()) {
      throw std::runtime_error(
          target.groups.empty()
              ? fmt::format("--process {}: {} has no [placement]", process, a.pos.file)
              : fmt::format("--process {}: no such placement group (groups: {})", process,
                            fmt::join(target.groups, ", ")));
    }
    port += static_cast<unsigned>(it - target.groups.begin());
  }
  if (port == 0 || port > 65535) {
    throw std::runtime_error(fmt::format(
        "{}: [admin] port is {}, so the endpoint's port is only known to the running process "
        "(its log says it); pass --admin http://127.0.0.1:PORT",
        a.pos.file, port));
  }
  url.port = static_cast<uint16_t>(port);
  return url;
}

AdminReply admin_request(const AdminUrl& url, const std::string& method, const std::string& path,
                         const std::string& token, const std::string& json_body,
                         std::chrono::milliseconds timeout) {
  asio::io_context io;
  beast::tcp_stream stream(io);
  beast::error_code ec;
  auto fail = [&](const char* what) {
    return std::runtime_error(fmt::format("cannot {} {}: {}", what, url.text(), ec.message()));
  };
  tcp::resolver resolver(io);
  auto endpoints = resolver.resolve(url.host, std::to_string(url.port), ec);
  if (ec) throw fail("resolve");
  stream.expires_after(timeout);
  stream.connect(endpoints, ec);
  if (ec) throw fail("reach");

  http::request<http::string_body> req{http::string_to_verb(method), url.base_path + path, 11};
  req.set(http::field::host, url.host_header());
  req.set(http::field::user_agent, "sluice-ctl");
  req.set(http::field::connection, "close");
  if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
  if (!json_body.empty()) {
    req.set(http::field::content_type, "application/json");
    req.body() = json_body;
  }
  req.prepare_payload();
  stream.expires_after(timeout);
  http::write(stream, req, ec);
  if (ec) throw fail("send a request to");

  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(16 * 1024 * 1024);  // /metrics of a large pipeline
  stream.expires_after(timeout);
  http::read(stream, buffer, parser, ec);
  if (ec) throw fail("read the answer of");
  auto& res = parser.get();
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  return AdminReply{static_cast<int>(res.result_int()), std::string(res.reason()), res.body()};
}

}  // namespace sluice::core
