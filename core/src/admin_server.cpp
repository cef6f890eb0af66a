// Admin HTTP server on Boost.Beast: one thread, sequential connections with keep-alive, small
// request limits (it serves operators and Prometheus, not the public), and the access rules
// every request passes before a route sees it.
#include "sluice/core/admin_server.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <optional>
#include <thread>

#include <fmt/format.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "sluice/core/node_host.hpp"

namespace sluice::core {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// Compares in time that depends only on the lengths, so the token cannot be guessed byte by
// byte from response times.
bool constant_time_equal(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  size_t n = std::max(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff = static_cast<unsigned char>(diff | (x ^ y));
  }
  return diff == 0;
}

// Every Host value that names this endpoint, lowercased.
std::vector<std::string> own_hosts(const AdminAccess& access, uint16_t port) {
  std::vector<std::string> out;
  auto with_port = [&](const std::string& host) { return fmt::format("{}:{}", host, port); };
  for (const char* name : {"127.0.0.1", "localhost", "[::1]"}) out.push_back(with_port(name));
  bool v6 = access.address.find(':') != std::string::npos;
  out.push_back(with_port(v6 ? "[" + access.address + "]" : access.address));
  for (const std::string& h : access.hosts) {
    // "name:port" and "[v6]:port" carry a port; "name" and "[v6]" take the endpoint's.
    size_t colon = h.rfind(':');
    bool has_port = colon != std::string::npos && h.find(']', colon) == std::string::npos &&
                    (h.front() == '[' || h.find(':') == colon);
    out.push_back(lower(has_port ? h : with_port(h)));
  }
  return out;
}

HttpResponse refuse(int status, std::string message) {
  return HttpResponse{status, "text/plain; charset=utf-8", std::move(message) + "\n", {}};
}

}  // namespace

std::optional<HttpResponse> admin_refusal(const AdminAccess& access, uint16_t port,
                                          const HttpRequest& req) {
  std::vector<std::string> hosts = own_hosts(access, port);
  std::string host = lower(req.host);
  // DNS rebinding: a page on evil.example whose name now resolves to 127.0.0.1 reaches this
  // port, but its requests still say Host: evil.example:PORT.
  if (std::find(hosts.begin(), hosts.end(), host) == hosts.end()) {
    return refuse(
        421, req.host_present
                 ? fmt::format("refused: Host '{}' does not name this endpoint (use {}; "
                               "other names can be allowed with [admin] hosts)",
                               req.host, hosts.front())
                 : fmt::format("refused: the request has no Host header (use {})", hosts.front()));
  }
  // Cross-site requests: a browser names the page's origin; only the endpoint's own is taken.
  if (req.origin_present) {
    std::string origin = lower(req.origin);
    bool own = std::any_of(hosts.begin(), hosts.end(),
                           [&](const std::string& h) { return origin == "http://" + h; });
    if (!own) {
      return refuse(403, fmt::format("refused: requests from web pages of another origin ('{}') "
                                     "are not accepted",
                                     req.origin));
    }
  }
  if (!access.token.empty()) {
    std::string path = req.target.substr(0, req.target.find('?'));
    bool probe = req.method == "GET" && (path == "/health" || path == "/ready");
    const std::string scheme = "bearer ";
    const std::string& auth = req.authorization;
    bool ok = auth.size() > scheme.size() && lower(auth.substr(0, scheme.size())) == scheme &&
              constant_time_equal(auth.substr(scheme.size()), access.token);
    if (!probe && !ok) {
      HttpResponse r = refuse(401, auth.empty() ? "unauthorized: this endpoint needs "
                                                  "'Authorization: Bearer <[admin] token>'"
                                                : "unauthorized: wrong bearer token");
      r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"sluice\"");
      return r;
    }
  }
  return std::nullopt;
}

struct AdminServer::Impl {
  asio::io_context io;
  tcp::acceptor acceptor{io};
  asio::steady_timer retry{io};
  AdminAccess access;
  uint16_t port = 0;
  Handler handler;
  std::thread thread;
  std::shared_ptr<spdlog::logger> logger = make_logger("sluice.admin");
  // Accept failures in a row; the first is logged, the recovery too, none in between.
  uint64_t accept_failures = 0;
  std::chrono::milliseconds backoff{0};

  static constexpr std::chrono::milliseconds kFirstBackoff{10};
  static constexpr std::chrono::milliseconds kMaxBackoff{1000};

  void accept() {
    acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;  // closing
      if (ec) {
        // Out of file descriptors (EMFILE/ENFILE), ENOBUFS, a connection reset before accept:
        // the listening socket is fine, so wait and try again rather than stop serving.
        if (accept_failures++ == 0) {
          logger->error(
              "admin endpoint: accept failed: {}; retrying with backoff (logged once "
              "until it recovers)",
              ec.message());
        }
        backoff = backoff.count() == 0 ? kFirstBackoff : std::min(backoff * 2, kMaxBackoff);
        retry.expires_after(backoff);
        retry.async_wait([this](beast::error_code wait_ec) {
          if (!wait_ec) accept();
        });
        return;
      }
      if (accept_failures != 0) {
        logger->info("admin endpoint: accepting again after {} failed attempt(s)", accept_failures);
        accept_failures = 0;
        backoff = std::chrono::milliseconds{0};
      }
      auto session = std::make_shared<Session>(std::move(socket), *this);
      session->read();
      accept();
    });
  }

  struct Session : std::enable_shared_from_this<Session> {
    Session(tcp::socket s, Impl& i) : stream(std::move(s)), impl(i) {}
    beast::tcp_stream stream;
    Impl& impl;
    beast::flat_buffer buffer;
    std::optional<http::request_parser<http::string_body>> parser;
    http::response<http::string_body> res;

    void read() {
      parser.emplace();
      parser->body_limit(64 * 1024);
      parser->header_limit(16 * 1024);
      stream.expires_after(std::chrono::seconds(30));
      http::async_read(stream, buffer, *parser,
                       [self = shared_from_this()](beast::error_code ec, size_t) {
                         if (ec) return;
                         self->respond();
                       });
    }
    void respond() {
      auto req = parser->release();
      HttpRequest r;
      r.method = std::string(req.method_string());
      r.target = std::string(req.target());
      r.body = req.body();
      auto header = [&](http::field f, std::string& value, bool* present) {
        auto it = req.find(f);
        if (present != nullptr) *present = it != req.end();
        if (it != req.end()) value = std::string(it->value());
      };
      header(http::field::host, r.host, &r.host_present);
      header(http::field::origin, r.origin, &r.origin_present);
      header(http::field::content_type, r.content_type, nullptr);
      header(http::field::authorization, r.authorization, nullptr);
      HttpResponse out;
      if (auto refused = admin_refusal(impl.access, impl.port, r)) {
        out = std::move(*refused);
      } else {
        try {
          out = impl.handler(r);
        } catch (const std::exception& e) {
          out = HttpResponse{
              500, "text/plain; charset=utf-8", fmt::format("error: {}\n", e.what()), {}};
        }
      }
      res = {};
      res.version(req.version());
      res.result(static_cast<http::status>(out.status));
      res.set(http::field::server, "sluice");
      res.set(http::field::content_type, out.content_type);
      for (const auto& [name, value] : out.headers) res.set(name, value);
      res.keep_alive(req.keep_alive());
      res.body() = std::move(out.body);
      res.prepare_payload();
      http::async_write(stream, res, [self = shared_from_this()](beast::error_code ec, size_t) {
        if (ec || !self->res.keep_alive()) {
          beast::error_code ignored;
          self->stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
          return;
        }
        self->read();
      });
    }
  };
};

AdminServer::AdminServer(AdminAccess access, uint16_t port, Handler handler)
    : impl_(std::make_unique<Impl>()) {
  impl_->handler = std::move(handler);
  impl_->access = std::move(access);
  const std::string& address = impl_->access.address;
  beast::error_code ec;
  auto addr = asio::ip::make_address(address, ec);
  if (ec) throw std::runtime_error(fmt::format("admin: invalid address '{}'", address));
  tcp::endpoint ep(addr, port);
  impl_->acceptor.open(ep.protocol(), ec);
  if (!ec) impl_->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl_->acceptor.bind(ep, ec);
  if (!ec) impl_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    throw std::runtime_error(
        fmt::format("admin endpoint: cannot listen on {}:{}: {}", address, port, ec.message()));
  }
  impl_->port = impl_->acceptor.local_endpoint().port();
  impl_->accept();
  impl_->thread = std::thread([this] { impl_->io.run(); });
}

AdminServer::~AdminServer() {
  asio::post(impl_->io, [this] {
    beast::error_code ignored;
    impl_->acceptor.close(ignored);
    impl_->retry.cancel();
    impl_->io.stop();
  });
  if (impl_->thread.joinable()) impl_->thread.join();
}

uint16_t AdminServer::port() const { return impl_->port; }

}  // namespace sluice::core
