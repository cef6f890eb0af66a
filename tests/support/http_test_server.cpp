// The scripted HTTP test server: one thread accepts, one thread per connection reads requests
// and plays replies (see http_test_server.hpp). Certificates are made with the OpenSSL API when
// a TLS server starts, so no key is ever committed.
#include "http_test_server.hpp"

#include "test_certificates.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <stdexcept>
#include <thread>

namespace sluice::testing {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

const char* reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 410:
      return "Gone";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    default:
      return "Status";
  }
}

std::string render(const Reply& r) {
  std::string out = "HTTP/1.1 " + std::to_string(r.status) + " " + reason(r.status) + "\r\n";
  for (const auto& [k, v] : r.headers) out += k + ": " + v + "\r\n";
  if (r.status != 204 && r.status != 304) {
    out += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
  }
  if (r.close) out += "Connection: close\r\n";
  out += "\r\n";
  out += r.body;
  return out;
}

}  // namespace

std::optional<std::string> RecordedRequest::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (iequals(k, name)) return v;
  }
  return std::nullopt;
}

Reply Reply::json(int status, std::string body,
                  std::vector<std::pair<std::string, std::string>> headers) {
  Reply r;
  r.status = status;
  r.body = std::move(body);
  r.headers = std::move(headers);
  r.headers.emplace_back("Content-Type", "application/json");
  return r;
}

Reply Reply::text(int status, std::string body,
                  std::vector<std::pair<std::string, std::string>> headers) {
  Reply r;
  r.status = status;
  r.body = std::move(body);
  r.headers = std::move(headers);
  r.headers.emplace_back("Content-Type", "text/plain; charset=utf-8");
  return r;
}

Reply Reply::drop() {
  Reply r;
  r.kind = Kind::kDrop;
  return r;
}

Reply Reply::raw_bytes(std::string bytes) {
  Reply r;
  r.kind = Kind::kRaw;
  r.raw = std::move(bytes);
  return r;
}

struct HttpTestServer::Impl {
  explicit Impl(HttpTestServerOptions o)
      : opts(o), acceptor(io), tls_ctx(ssl::context::tls_server) {
    if (opts.tls) setup_tls();
    tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), 0);
    acceptor.open(ep.protocol());
    acceptor.set_option(tcp::acceptor::reuse_address(true));
    acceptor.bind(ep);
    acceptor.listen();
    port = acceptor.local_endpoint().port();
    accept_thread = std::thread([this] { accept_loop(); });
  }

  ~Impl() {
    {
      std::lock_guard lock(mu);
      stopping = true;
      for (int fd : open_fds) ::shutdown(fd, SHUT_RDWR);
    }
    cv.notify_all();
    ::shutdown(acceptor.native_handle(), SHUT_RDWR);
    accept_thread.join();
    for (auto& t : conn_threads) t.join();
    if (!ca_path.empty()) std::remove(ca_path.c_str());
  }

  void setup_tls() {
    // A name of its own: a client trusting another test server's CA must not take it for this one.
    TestCertificates certs =
        make_test_certificates("Sluice Test CA " + std::to_string(std::random_device{}()));
    char path[] = "/tmp/sluice-test-ca-XXXXXX";
    const int fd = mkstemp(path);
    if (fd < 0) throw std::runtime_error("test certificate: mkstemp failed");
    const bool written = ::write(fd, certs.ca_pem.data(), certs.ca_pem.size()) ==
                         static_cast<ssize_t>(certs.ca_pem.size());
    ::close(fd);
    if (!written) throw std::runtime_error("test certificate: writing the CA failed");
    ca_path = path;
    tls_ctx.use_certificate_chain(asio::buffer(certs.cert_pem));
    tls_ctx.use_private_key(asio::buffer(certs.key_pem), ssl::context::pem);
  }

  void accept_loop() {
    for (;;) {
      tcp::socket sock(io);
      boost::system::error_code ec;
      acceptor.accept(sock, ec);
      std::lock_guard lock(mu);
      if (stopping) return;
      if (ec) continue;
      const size_t number = ++connections;
      open_fds.insert(sock.native_handle());
      conn_threads.emplace_back(
          [this, s = std::move(sock), number]() mutable { serve(std::move(s), number); });
    }
  }

  void serve(tcp::socket sock, size_t number) {
    const int fd = sock.native_handle();
    try {
      if (opts.tls) {
        ssl::stream<tcp::socket&> stream(sock, tls_ctx);
        boost::system::error_code ec;
        stream.handshake(ssl::stream_base::server, ec);
        if (!ec) serve_stream(stream, number);
      } else {
        serve_stream(sock, number);
      }
    } catch (const std::exception&) {
      // A client that goes away mid-reply ends only its own connection.
    }
    std::lock_guard lock(mu);
    open_fds.erase(fd);
    boost::system::error_code ec;
    sock.close(ec);
  }

  template <class Stream>
  void serve_stream(Stream& stream, size_t number) {
    beast::flat_buffer buffer;
    for (;;) {
      bhttp::request_parser<bhttp::string_body> parser;
      parser.body_limit(64 << 20);
      boost::system::error_code ec;
      bhttp::read(stream, buffer, parser, ec);
      if (ec) return;
      auto msg = parser.release();
      RecordedRequest req;
      req.method = std::string(msg.method_string());
      req.target = std::string(msg.target());
      for (const auto& f : msg) {
        req.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
      }
      req.body = std::move(msg.body());
      req.connection = number;
      Reply reply = next_reply(req);
      {
        std::lock_guard lock(mu);
        requests.push_back(std::move(req));
      }
      cv.notify_all();
      if (reply.delay.count() > 0 && !wait(reply.delay)) return;
      if (reply.kind == Reply::Kind::kDrop) return;
      const std::string bytes = reply.kind == Reply::Kind::kRaw ? reply.raw : render(reply);
      if (reply.trickle.count() > 0) {
        for (char c : bytes) {
          asio::write(stream, asio::buffer(&c, 1));
          if (!wait(reply.trickle)) return;
        }
      } else {
        asio::write(stream, asio::buffer(bytes));
      }
      if (reply.kind == Reply::Kind::kRaw || reply.close || !msg.keep_alive()) return;
    }
  }

  Reply next_reply(const RecordedRequest& req) {
    std::function<Reply(const RecordedRequest&)> h;
    {
      std::lock_guard lock(mu);
      if (!script.empty()) {
        Reply r = std::move(script.front());
        script.pop_front();
        return r;
      }
      h = handler;
    }
    return h ? h(req) : Reply{};
  }

  // Sleeps d; false when the server is stopping.
  bool wait(std::chrono::milliseconds d) {
    std::unique_lock lock(mu);
    return !cv.wait_for(lock, d, [this] { return stopping; });
  }

  HttpTestServerOptions opts;
  asio::io_context io;
  tcp::acceptor acceptor;
  ssl::context tls_ctx;
  std::string ca_path;
  uint16_t port = 0;

  mutable std::mutex mu;
  mutable std::condition_variable cv;
  bool stopping = false;
  std::deque<Reply> script;
  std::function<Reply(const RecordedRequest&)> handler;
  std::vector<RecordedRequest> requests;
  size_t connections = 0;
  std::set<int> open_fds;
  std::vector<std::thread> conn_threads;
  std::thread accept_thread;
};

HttpTestServer::HttpTestServer(HttpTestServerOptions options)
    : impl_(std::make_unique<Impl>(options)) {}

HttpTestServer::~HttpTestServer() = default;

uint16_t HttpTestServer::port() const { return impl_->port; }

std::string HttpTestServer::base_url() const {
  return std::string(impl_->opts.tls ? "https" : "http") +
         "://127.0.0.1:" + std::to_string(impl_->port);
}

const std::string& HttpTestServer::ca_file() const { return impl_->ca_path; }

void HttpTestServer::enqueue(Reply reply) {
  std::lock_guard lock(impl_->mu);
  impl_->script.push_back(std::move(reply));
}

void HttpTestServer::set_handler(std::function<Reply(const RecordedRequest&)> handler) {
  std::lock_guard lock(impl_->mu);
  impl_->handler = std::move(handler);
}

std::vector<RecordedRequest> HttpTestServer::requests() const {
  std::lock_guard lock(impl_->mu);
  return impl_->requests;
}

size_t HttpTestServer::request_count() const {
  std::lock_guard lock(impl_->mu);
  return impl_->requests.size();
}

bool HttpTestServer::wait_for_requests(size_t n, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(impl_->mu);
  return impl_->cv.wait_for(lock, timeout, [&] { return impl_->requests.size() >= n; });
}

size_t HttpTestServer::connection_count() const {
  std::lock_guard lock(impl_->mu);
  return impl_->connections;
}

}  // namespace sluice::testing
