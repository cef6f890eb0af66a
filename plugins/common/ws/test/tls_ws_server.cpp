// The streaming sources' TLS WebSocket test server: Boost.Beast on one thread, a test CA and server
// certificate made with the OpenSSL API.
#include "tls_ws_server.hpp"

#include "test_certificates.hpp"

#include <unistd.h>

#include <algorithm>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <variant>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

namespace sluice::ws::testing {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace ssl = asio::ssl;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

struct Send {
  std::string text;
};
struct Ping {
  std::string payload;
};
struct Drop {};
using Action = std::variant<Send, Ping, Drop>;

}  // namespace

struct TlsWsServer::Impl {
  class Session;

  asio::io_context io;
  ssl::context tls{ssl::context::tls_server};
  tcp::acceptor acceptor{io};
  std::thread thread;
  std::filesystem::path dir;
  std::string ca_file;
  uint16_t port = 0;

  mutable std::mutex mu;
  std::map<size_t, std::shared_ptr<Session>> sessions;  // by connection number
  size_t opened = 0;
  size_t open_now = 0;
  size_t max_open = 0;
  size_t refuse = 0;
  bool answer = true;
  Responder responder;
  std::vector<std::chrono::steady_clock::time_point> refused_at;
  std::vector<std::string> targets;
  std::map<size_t, std::vector<std::string>> received;
  std::vector<std::string> pongs;

  class Session : public std::enable_shared_from_this<Session> {
   public:
    Session(Impl& server, tcp::socket socket)
        : server_(server), ws_(std::move(socket), server.tls) {}

    void start() {
      ws_.next_layer().async_handshake(ssl::stream_base::server,
                                       [self = shared_from_this()](beast::error_code ec) {
                                         if (!ec) self->read_request();
                                       });
    }
    void act(Action a) {
      actions_.push_back(std::move(a));
      if (!busy_) next_action();
    }

   private:
    void read_request() {
      beast::http::async_read(ws_.next_layer(), buffer_, request_,
                              [self = shared_from_this()](beast::error_code ec, size_t) {
                                if (!ec) self->accept();
                              });
    }
    void accept() {
      ws_.control_callback([this](websocket::frame_type kind, beast::string_view payload) {
        if (kind != websocket::frame_type::pong) return;
        std::lock_guard lock(server_.mu);
        server_.pongs.emplace_back(payload);
      });
      ws_.async_accept(request_, [self = shared_from_this()](beast::error_code ec) {
        if (ec) return;
        {
          std::lock_guard lock(self->server_.mu);
          self->number_ = ++self->server_.opened;
          ++self->server_.open_now;
          self->server_.max_open = std::max(self->server_.max_open, self->server_.open_now);
          self->server_.targets.emplace_back(self->request_.target());
          self->server_.sessions[self->number_] = self;
        }
        self->buffer_.clear();
        self->read();
      });
    }
    void read() {
      ws_.async_read(buffer_, [self = shared_from_this()](beast::error_code ec, size_t) {
        if (ec) return self->closed();
        std::string text = beast::buffers_to_string(self->buffer_.data());
        self->buffer_.clear();
        Responder responder;
        {
          std::lock_guard lock(self->server_.mu);
          self->server_.received[self->number_].push_back(text);
          if (self->server_.answer) responder = self->server_.responder;
        }
        if (responder) {
          for (std::string& reply : responder(text)) self->act(Send{std::move(reply)});
        }
        self->read();
      });
    }
    void closed() {
      if (closed_) return;
      closed_ = true;
      std::lock_guard lock(server_.mu);
      --server_.open_now;
      server_.sessions.erase(number_);
    }
    void next_action() {
      if (actions_.empty() || closed_) {
        busy_ = false;
        return;
      }
      busy_ = true;
      Action a = std::move(actions_.front());
      actions_.pop_front();
      auto then = [self = shared_from_this()](beast::error_code ec, auto&&...) {
        if (ec) {
          self->busy_ = false;
          return;
        }
        self->next_action();
      };
      if (auto* s = std::get_if<Send>(&a)) {
        out_ = std::move(s->text);
        ws_.text(true);
        ws_.async_write(asio::buffer(out_), then);
      } else if (auto* p = std::get_if<Ping>(&a)) {
        ws_.async_ping(websocket::ping_data(p->payload), then);
      } else {
        beast::error_code ignored;
        beast::get_lowest_layer(ws_).shutdown(tcp::socket::shutdown_both, ignored);
        beast::get_lowest_layer(ws_).close(ignored);
        busy_ = false;
        closed();
      }
    }

    Impl& server_;
    websocket::stream<ssl::stream<tcp::socket>> ws_;
    beast::flat_buffer buffer_;
    beast::http::request<beast::http::string_body> request_;
    std::deque<Action> actions_;
    std::string out_;
    bool busy_ = false;
    bool closed_ = false;
    size_t number_ = 0;
  };

  void do_accept() {
    acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
      if (ec) return;
      bool refuse_it = false;
      {
        std::lock_guard lock(mu);
        if (refuse > 0) {
          --refuse;
          refuse_it = true;
          refused_at.push_back(std::chrono::steady_clock::now());
        }
      }
      if (refuse_it) {
        beast::error_code ignored;
        socket.close(ignored);
      } else {
        std::make_shared<Session>(*this, std::move(socket))->start();
      }
      do_accept();
    });
  }

  void on_session(size_t n, Action a) {
    asio::post(io, [this, n, a = std::move(a)]() mutable {
      std::shared_ptr<Session> s;
      {
        std::lock_guard lock(mu);
        auto it = sessions.find(n);
        if (it == sessions.end()) return;
        s = it->second;
      }
      s->act(std::move(a));
    });
  }
};

TlsWsServer::TlsWsServer() : impl_(std::make_unique<Impl>()) {
  sluice::testing::TestCertificates certs =
      sluice::testing::make_test_certificates("sluice test CA");
  static int counter = 0;
  impl_->dir = std::filesystem::temp_directory_path() /
               ("sluice_ws_server_" + std::to_string(::getpid()) + "_" + std::to_string(++counter));
  std::filesystem::create_directories(impl_->dir);
  impl_->ca_file = (impl_->dir / "ca.pem").string();
  std::ofstream(impl_->ca_file) << certs.ca_pem;
  impl_->tls.use_certificate_chain(asio::buffer(certs.cert_pem));
  impl_->tls.use_private_key(asio::buffer(certs.key_pem), ssl::context::pem);

  tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), 0);
  impl_->acceptor.open(endpoint.protocol());
  impl_->acceptor.set_option(tcp::acceptor::reuse_address(true));
  impl_->acceptor.bind(endpoint);
  impl_->acceptor.listen();
  impl_->port = impl_->acceptor.local_endpoint().port();
  impl_->do_accept();
  impl_->thread = std::thread([this] { impl_->io.run(); });
}

TlsWsServer::~TlsWsServer() {
  impl_->io.stop();
  impl_->thread.join();
  {
    std::lock_guard lock(impl_->mu);
    impl_->sessions.clear();
  }
  std::error_code ec;
  std::filesystem::remove_all(impl_->dir, ec);
}

uint16_t TlsWsServer::port() const { return impl_->port; }
std::string TlsWsServer::url(const std::string& target) const {
  return "wss://127.0.0.1:" + std::to_string(impl_->port) + target;
}
const std::string& TlsWsServer::ca_file() const { return impl_->ca_file; }

void TlsWsServer::send(size_t connection, std::string text) {
  impl_->on_session(connection, Send{std::move(text)});
}
void TlsWsServer::broadcast(std::string text) {
  std::vector<size_t> open;
  {
    std::lock_guard lock(impl_->mu);
    for (const auto& [n, s] : impl_->sessions) open.push_back(n);
  }
  for (size_t n : open) send(n, text);
}
void TlsWsServer::ping(size_t connection, std::string payload) {
  impl_->on_session(connection, Ping{std::move(payload)});
}
void TlsWsServer::drop(size_t connection) { impl_->on_session(connection, Drop{}); }
void TlsWsServer::refuse_next(size_t n) {
  std::lock_guard lock(impl_->mu);
  impl_->refuse = n;
}
void TlsWsServer::set_responder(Responder responder) {
  std::lock_guard lock(impl_->mu);
  impl_->responder = std::move(responder);
}
void TlsWsServer::answer(bool answer) {
  std::lock_guard lock(impl_->mu);
  impl_->answer = answer;
}

size_t TlsWsServer::opened() const {
  std::lock_guard lock(impl_->mu);
  return impl_->opened;
}
size_t TlsWsServer::open_now() const {
  std::lock_guard lock(impl_->mu);
  return impl_->open_now;
}
size_t TlsWsServer::max_open() const {
  std::lock_guard lock(impl_->mu);
  return impl_->max_open;
}
size_t TlsWsServer::refused() const {
  std::lock_guard lock(impl_->mu);
  return impl_->refused_at.size();
}
std::vector<std::string> TlsWsServer::targets() const {
  std::lock_guard lock(impl_->mu);
  return impl_->targets;
}
std::vector<std::string> TlsWsServer::received(size_t connection) const {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->received.find(connection);
  return it == impl_->received.end() ? std::vector<std::string>{} : it->second;
}
std::vector<std::string> TlsWsServer::pongs() const {
  std::lock_guard lock(impl_->mu);
  return impl_->pongs;
}
std::vector<std::chrono::steady_clock::time_point> TlsWsServer::refused_at() const {
  std::lock_guard lock(impl_->mu);
  return impl_->refused_at;
}

bool TlsWsServer::wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline) return pred();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

}  // namespace sluice::ws::testing
