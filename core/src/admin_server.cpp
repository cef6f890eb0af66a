// Admin HTTP server on Boost.Beast: one thread, sequential connections with keep-alive, small
// request limits (it serves operators and Prometheus, not the public).
#include "sluice/core/admin_server.hpp"

#include <atomic>
#include <optional>
#include <thread>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <fmt/format.h>

namespace sluice::core {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct AdminServer::Impl {
  asio::io_context io;
  tcp::acceptor acceptor{io};
  Handler handler;
  std::thread thread;

  void accept() {
    acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
      if (ec) return;  // acceptor closed
      auto session = std::make_shared<Session>(std::move(socket), handler);
      session->read();
      accept();
    });
  }

  struct Session : std::enable_shared_from_this<Session> {
    Session(tcp::socket s, Handler& h) : stream(std::move(s)), handler(h) {}
    beast::tcp_stream stream;
    Handler& handler;
    beast::flat_buffer buffer;
    std::optional<http::request_parser<http::string_body>> parser;
    http::response<http::string_body> res;

    void read() {
      parser.emplace();
      parser->body_limit(64 * 1024);
      stream.expires_after(std::chrono::seconds(30));
      http::async_read(stream, buffer, *parser,
                       [self = shared_from_this()](beast::error_code ec, size_t) {
                         if (ec) return;
                         self->respond();
                       });
    }
    void respond() {
      auto req = parser->release();
      HttpRequest r{std::string(req.method_string()), std::string(req.target()), req.body()};
      HttpResponse out;
      try {
        out = handler(r);
      } catch (const std::exception& e) {
        out = HttpResponse{500, "text/plain; charset=utf-8", fmt::format("error: {}\n", e.what())};
      }
      res = {};
      res.version(req.version());
      res.result(static_cast<http::status>(out.status));
      res.set(http::field::server, "sluice");
      res.set(http::field::content_type, out.content_type);
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

AdminServer::AdminServer(const std::string& address, uint16_t port, Handler handler)
    : impl_(std::make_unique<Impl>()) {
  impl_->handler = std::move(handler);
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
        fmt::format("admin: cannot listen on {}:{}: {}", address, port, ec.message()));
  }
  impl_->accept();
  impl_->thread = std::thread([this] { impl_->io.run(); });
}

AdminServer::~AdminServer() {
  asio::post(impl_->io, [this] {
    beast::error_code ignored;
    impl_->acceptor.close(ignored);
    impl_->io.stop();
  });
  if (impl_->thread.joinable()) impl_->thread.join();
}

uint16_t AdminServer::port() const { return impl_->acceptor.local_endpoint().port(); }

}  // namespace sluice::core
