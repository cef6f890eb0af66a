// The scripted HTTP test server: one thread accepts, one thread per connection reads requests
// and plays replies (see http_test_server.hpp). Certificates are made with the OpenSSL API when
// a TLS server starts, so no key is ever committed.
#include "http_test_server.hpp"

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
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

template <class T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using KeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using CertPtr = std::unique_ptr<X509, Deleter<X509, X509_free>>;

void check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("test certificate: ") + what + " failed");
}

KeyPtr make_key() {
  KeyPtr key(EVP_EC_gen("P-256"));
  check(key != nullptr, "EVP_EC_gen");
  return key;
}

void add_ext(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  check(ext != nullptr, "X509V3_EXT_conf_nid");
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

// A certificate for `key` named `cn`, signed by issuer_key (self-signed when issuer is null).
CertPtr make_cert(EVP_PKEY* key, const char* cn, X509* issuer, EVP_PKEY* issuer_key, long serial,
                  bool ca) {
  CertPtr cert(X509_new());
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24 * 3600);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn),
                             -1, -1, 0);
  X509* signer = issuer != nullptr ? issuer : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(signer));
  if (ca) {
    add_ext(cert.get(), signer, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add_ext(cert.get(), signer, NID_basic_constraints, "CA:FALSE");
    add_ext(cert.get(), signer, NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost");
    add_ext(cert.get(), signer, NID_ext_key_usage, "serverAuth");
  }
  check(X509_sign(cert.get(), issuer_key != nullptr ? issuer_key : key, EVP_sha256()) > 0,
        "X509_sign");
  return cert;
}

std::string to_pem(X509* cert) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, cert);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(n));
  BIO_free(bio);
  return pem;
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
    KeyPtr ca_key = make_key();
    // A name of its own: a client trusting another test server's CA must not take it for this one.
    const std::string ca_name = "Sluice Test CA " + std::to_string(std::random_device{}());
    CertPtr ca = make_cert(ca_key.get(), ca_name.c_str(), nullptr, nullptr, 1, true);
    KeyPtr key = make_key();
    CertPtr cert = make_cert(key.get(), "127.0.0.1", ca.get(), ca_key.get(), 2, false);
    char path[] = "/tmp/sluice-test-ca-XXXXXX";
    const int fd = mkstemp(path);
    check(fd >= 0, "mkstemp");
    const std::string pem = to_pem(ca.get());
    check(::write(fd, pem.data(), pem.size()) == static_cast<ssize_t>(pem.size()), "write CA");
    ::close(fd);
    ca_path = path;
    SSL_CTX* ctx = tls_ctx.native_handle();
    check(SSL_CTX_use_certificate(ctx, cert.get()) == 1, "SSL_CTX_use_certificate");
    check(SSL_CTX_use_PrivateKey(ctx, key.get()) == 1, "SSL_CTX_use_PrivateKey");
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
