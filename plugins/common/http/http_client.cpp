// The HTTP client's Beast/Asio implementation and the retry helpers (see http_client.hpp).
//
// All connection and queue state lives on the io thread; send(), cancel(), schedule() and
// shutdown() only post to it, so nothing here needs a lock besides the shutdown handshake.
#include "http_client.hpp"

#include <openssl/hmac.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <cmath>
#include <ctime>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include "sluice/redact.hpp"

namespace sluice::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using boost::system::error_code;

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool is_ip_literal(const std::string& host) {
  error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

// One kept-alive connection: a plain socket, or a TLS stream over one.
struct Conn {
  explicit Conn(asio::io_context& io, ssl::context* tls_ctx)
      : plain(io),
        tls(tls_ctx ? std::make_unique<ssl::stream<tcp::socket>>(io, *tls_ctx) : nullptr) {}
  tcp::socket& socket() { return tls ? tls->next_layer() : plain; }
  void close() {
    error_code ec;
    socket().shutdown(tcp::socket::shutdown_both, ec);
    socket().close(ec);
  }
  // Runs f with the stream requests are written to and read from.
  template <class F>
  void with_stream(F&& f) {
    if (tls) {
      f(*tls);
    } else {
      f(plain);
    }
  }

  tcp::socket plain;
  std::unique_ptr<ssl::stream<tcp::socket>> tls;
  beast::flat_buffer buffer;
  Clock::time_point last_used;
};

}  // namespace

const char* error_kind_name(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kNone:
      return "none";
    case ErrorKind::kBadUrl:
      return "bad_url";
    case ErrorKind::kTimeout:
      return "timeout";
    case ErrorKind::kConnect:
      return "connect";
    case ErrorKind::kTls:
      return "tls";
    case ErrorKind::kProtocol:
      return "protocol";
    case ErrorKind::kTooLarge:
      return "too_large";
    case ErrorKind::kCancelled:
      return "cancelled";
  }
  return "unknown";
}

std::optional<std::string_view> find_header(const Headers& headers, std::string_view name) {
  for (const auto& [k, v] : headers) {
    if (iequals(k, name)) return std::string_view(v);
  }
  return std::nullopt;
}

std::optional<Url> parse_url(std::string_view s, std::string* error) {
  auto fail = [&](const char* msg) -> std::optional<Url> {
    if (error != nullptr) *error = msg;
    return std::nullopt;
  };
  Url url;
  if (s.starts_with("https://")) {
    url.tls = true;
    s.remove_prefix(8);
  } else if (s.starts_with("http://")) {
    s.remove_prefix(7);
  } else {
    return fail("must start with http:// or https://");
  }
  const size_t path_at = s.find_first_of("/?");
  std::string_view authority = s.substr(0, path_at);
  url.target = path_at == std::string_view::npos ? "/" : std::string(s.substr(path_at));
  if (url.target.front() == '?') url.target.insert(0, "/");
  if (authority.find('@') != std::string_view::npos) return fail("must not carry user:password@");
  std::string_view port_text;
  if (authority.starts_with('[')) {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return fail("has an unclosed '[' in its host");
    url.host = std::string(authority.substr(1, close - 1));
    std::string_view rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return fail("has text after its IPv6 host");
      port_text = rest.substr(1);
    }
  } else {
    const size_t colon = authority.rfind(':');
    url.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
  }
  if (url.host.empty()) return fail("has no host");
  url.port = url.tls ? 443 : 80;
  if (!port_text.empty()) {
    unsigned port = 0;
    auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || p != port_text.data() + port_text.size() || port == 0 ||
        port > 65535) {
      return fail("has an invalid port");
    }
    url.port = static_cast<uint16_t>(port);
  }
  return url;
}

struct Client::Impl {
  // One request from send() to its callback.
  struct Op {
    Op(asio::io_context& io) : timer(io), resolver(io) {}
    RequestId id = 0;
    Request req;
    Url url;
    std::string origin;  // scheme://host:port, the pool key and the text errors name
    Callback done;
    asio::steady_timer timer;
    tcp::resolver resolver;
    std::unique_ptr<Conn> conn;
    bhttp::request<bhttp::string_body> http_req;
    std::optional<bhttp::response_parser<bhttp::string_body>> parser;
    bool finished = false;
    bool holds_slot = false;  // counted in its pool's `active`
    bool timed_out = false;
    bool reused = false;
    bool retried_stale = false;
  };
  using OpPtr = std::shared_ptr<Op>;

  struct Pool {
    std::vector<std::unique_ptr<Conn>> idle;
    size_t active = 0;  // connections checked out by running requests
    std::deque<OpPtr> waiting;
  };

  struct Scheduled {
    explicit Scheduled(asio::io_context& io) : timer(io) {}
    asio::steady_timer timer;
    std::function<void(bool)> fn;
  };

  explicit Impl(ClientOptions o) : opts(std::move(o)), ssl_ctx(ssl::context::tls_client) {
    if (opts.max_connections == 0) opts.max_connections = 1;
    for (const std::string& secret : opts.redact) add_secret(secrets, secret);
    ssl_ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                        ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    if (opts.insecure_skip_verify) {
      ssl_ctx.set_verify_mode(ssl::verify_none);
    } else {
      ssl_ctx.set_verify_mode(ssl::verify_peer);
      error_code ec;
      if (!opts.ca_file.empty()) {
        ssl_ctx.load_verify_file(opts.ca_file, ec);
        if (ec) {
          throw std::runtime_error("cannot load CA file '" + opts.ca_file + "': " + ec.message());
        }
      } else {
        ssl_ctx.set_default_verify_paths(ec);
      }
    }
    thread = std::thread([this] { io.run(); });
  }

  std::string masked(std::string_view s) const { return redact_secrets(s, secrets, "<redacted>"); }

  // --- io thread ---

  void start(const OpPtr& op) {
    live.emplace(op->id, op);
    if (stopped) return finish(op, ErrorKind::kCancelled, "the HTTP client is shut down");
    std::string error;
    auto url = parse_url(op->req.url, &error);
    if (!url) return finish(op, ErrorKind::kBadUrl, "URL " + error);
    op->url = std::move(*url);
    op->origin = std::string(op->url.tls ? "https://" : "http://") + op->url.host + ":" +
                 std::to_string(op->url.port);
    op->timer.expires_after(op->req.timeout);
    op->timer.async_wait([this, op](error_code ec) {
      if (!ec) on_timeout(op);
    });
    Pool& pool = pools[op->origin];
    if (pool.active < opts.max_connections) {
      checkout(pool, op);
    } else {
      pool.waiting.push_back(op);
    }
  }

  // Gives op a connection slot: an idle kept-alive connection, or a new one.
  void checkout(Pool& pool, const OpPtr& op) {
    ++pool.active;
    op->holds_slot = true;
    const auto now = Clock::now();
    while (!pool.idle.empty()) {
      std::unique_ptr<Conn> c = std::move(pool.idle.back());
      pool.idle.pop_back();
      if (c->socket().is_open() && now - c->last_used < opts.idle_timeout) {
        op->conn = std::move(c);
        op->reused = true;
        return write(op);
      }
      c->close();
    }
    connect(op);
  }

  void release(const OpPtr& op, bool keep) {
    auto it = pools.find(op->origin);
    if (op->conn) {
      if (keep && !stopped && it != pools.end()) {
        op->conn->last_used = Clock::now();
        it->second.idle.push_back(std::move(op->conn));
      } else {
        op->conn->close();
        op->conn.reset();
      }
    }
    free_slot(op);
  }

  // Hands op's connection slot to the next queued request of its origin. Idempotent: a
  // cancelled request frees its slot at once and again when its aborted handler runs.
  void free_slot(const OpPtr& op) {
    auto it = pools.find(op->origin);
    if (it == pools.end()) return;
    Pool& pool = it->second;
    if (op->holds_slot && pool.active > 0) --pool.active;
    op->holds_slot = false;
    while (!stopped && pool.active < opts.max_connections && !pool.waiting.empty()) {
      OpPtr next = std::move(pool.waiting.front());
      pool.waiting.pop_front();
      if (!next->finished) checkout(pool, next);
    }
  }

  void on_timeout(const OpPtr& op) {
    if (op->finished) return;
    op->timed_out = true;
    auto it = pools.find(op->origin);
    if (it != pools.end()) {
      auto& w = it->second.waiting;
      auto q = std::find(w.begin(), w.end(), op);
      if (q != w.end()) {
        w.erase(q);
        return finish(op, ErrorKind::kTimeout, timeout_message(op));
      }
    }
    // Running: abort whatever step is pending; its handler reports the timeout.
    op->resolver.cancel();
    if (op->conn) op->conn->close();
  }

  void cancel(RequestId id) {
    auto found = live.find(id);
    if (found == live.end()) return;  // finished (its callback ran) or never sent
    const OpPtr op = found->second;
    auto it = pools.find(op->origin);
    if (it != pools.end()) {
      auto& w = it->second.waiting;
      auto q = std::find(w.begin(), w.end(), op);
      if (q != w.end()) w.erase(q);
    }
    // Running: the pending step still uses op->conn, so the connection is closed here (its
    // handler then sees `finished` and frees it) but not destroyed until that handler runs.
    op->resolver.cancel();
    if (op->conn) op->conn->close();
    free_slot(op);
    finish(op, ErrorKind::kCancelled, "cancelled by the caller");
  }

  std::string timeout_message(const OpPtr& op) const {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(op->req.timeout);
    return "no complete response from " + op->origin + " within " + std::to_string(ms.count()) +
           " ms";
  }

  void connect(const OpPtr& op) {
    op->reused = false;
    op->conn = std::make_unique<Conn>(io, op->url.tls ? &ssl_ctx : nullptr);
    ++opened;
    op->resolver.async_resolve(
        op->url.host, std::to_string(op->url.port),
        [this, op](error_code ec, const tcp::resolver::results_type& results) {
          if (op->finished) return release(op, false);
          // A lookup already under way when the deadline cancelled it still succeeds.
          if (ec || op->timed_out) return fail(op, ec, ErrorKind::kConnect, "resolve");
          asio::async_connect(op->conn->socket(), results,
                              [this, op](error_code ec, const tcp::endpoint&) {
                                if (op->finished) return release(op, false);
                                if (ec) return fail(op, ec, ErrorKind::kConnect, "connect to");
                                op->conn->socket().set_option(tcp::no_delay(true), ec);
                                if (op->url.tls) return handshake(op);
                                write(op);
                              });
        });
  }

  void handshake(const OpPtr& op) {
    SSL* native = op->conn->tls->native_handle();
    const std::string& host = op->url.host;
    const bool ip = is_ip_literal(host);
    if (!ip) SSL_set_tlsext_host_name(native, host.c_str());
    if (!opts.insecure_skip_verify) {
      if (ip) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(native), host.c_str());
      } else {
        SSL_set1_host(native, host.c_str());
      }
    }
    op->conn->tls->async_handshake(ssl::stream_base::client, [this, op](error_code ec) {
      if (op->finished) return release(op, false);
      if (ec) {
        // OpenSSL's error text for a refused certificate is often generic ("EVP lib"): the
        // verify result says what was wrong with it.
        const long verify = SSL_get_verify_result(op->conn->tls->native_handle());
        if (verify != X509_V_OK) {
          return finish_error(
              op, ErrorKind::kTls,
              "TLS handshake with " + op->origin +
                  " failed: certificate verify failed: " + X509_verify_cert_error_string(verify));
        }
        return fail(op, ec, ErrorKind::kTls, "TLS handshake with");
      }
      write(op);
    });
  }

  void write(const OpPtr& op) {
    const Request& r = op->req;
    auto& q = op->http_req;
    q = {};
    q.version(11);
    q.method_string(r.method);
    q.target(op->url.target);
    const bool default_port = op->url.port == (op->url.tls ? 443 : 80);
    std::string host =
        op->url.host.find(':') != std::string::npos ? "[" + op->url.host + "]" : op->url.host;
    if (!default_port) host += ":" + std::to_string(op->url.port);
    q.set(bhttp::field::host, host);
    q.set(bhttp::field::user_agent, opts.user_agent);
    for (const auto& [k, v] : r.headers) q.set(k, v);
    q.body() = r.body;
    q.keep_alive(true);
    q.prepare_payload();
    op->conn->with_stream([&](auto& stream) {
      bhttp::async_write(stream, op->http_req, [this, op](error_code ec, size_t) {
        if (op->finished) return release(op, false);
        if (ec) {
          if (retry_stale(op, ec)) return;
          return fail(op, ec, ErrorKind::kConnect, "sending to");
        }
        read(op);
      });
    });
  }

  // Reads the header first, so a declared Content-Length over the limit is refused before any
  // of the body is read; the parser's body limit and a final check cover chunked bodies.
  void read(const OpPtr& op) {
    op->parser.emplace();
    op->parser->body_limit(opts.max_body_bytes);
    op->conn->with_stream([&](auto& stream) {
      bhttp::async_read_header(stream, op->conn->buffer, *op->parser,
                               [this, op](error_code ec, size_t) {
                                 if (op->finished) return release(op, false);
                                 if (ec) return read_failed(op, ec);
                                 const auto length = op->parser->content_length();
                                 if (length && *length > opts.max_body_bytes) return too_large(op);
                                 op->conn->with_stream([&](auto& stream) {
                                   bhttp::async_read(stream, op->conn->buffer, *op->parser,
                                                     [this, op](error_code ec, size_t) {
                                                       if (op->finished) return release(op, false);
                                                       if (ec) return read_failed(op, ec);
                                                       read_done(op);
                                                     });
                                 });
                               });
    });
  }

  void read_done(const OpPtr& op) {
    auto msg = op->parser->release();
    if (msg.body().size() > opts.max_body_bytes) return too_large(op);
    Response res;
    res.status = static_cast<int>(msg.result_int());
    for (const auto& f : msg) {
      res.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    }
    res.body = std::move(msg.body());
    res.reused_connection = op->reused;
    // A body that ends at EOF (no Content-Length, not chunked) leaves a closed connection.
    release(op, msg.keep_alive() && !msg.need_eof());
    finish(op, std::move(res));
  }

  void too_large(const OpPtr& op) {
    finish_error(op, ErrorKind::kTooLarge,
                 "response body from " + op->origin + " exceeds " +
                     std::to_string(opts.max_body_bytes) + " bytes");
  }

  void read_failed(const OpPtr& op, error_code ec) {
    if (retry_stale(op, ec)) return;
    if (ec == bhttp::error::body_limit) return too_large(op);
    if (ec == bhttp::error::end_of_stream) {
      return finish_error(op, ErrorKind::kConnect,
                          op->origin + " closed the connection without answering");
    }
    if (ec == bhttp::error::partial_message) {
      return finish_error(op, ErrorKind::kProtocol,
                          "response from " + op->origin + " was cut short");
    }
    if (ec.category() == bhttp::make_error_code(bhttp::error::bad_version).category()) {
      return fail(op, ec, ErrorKind::kProtocol, "invalid HTTP response from");
    }
    fail(op, ec, ErrorKind::kConnect, "reading from");
  }

  // A kept-alive connection the server closed meanwhile fails on first use: retry the request
  // once on a fresh connection, as browsers do. Only when no byte of a response arrived.
  bool retry_stale(const OpPtr& op, error_code ec) {
    if (!op->reused || op->retried_stale || op->timed_out) return false;
    if (op->parser && op->parser->got_some()) return false;
    if (ec != bhttp::error::end_of_stream && ec != asio::error::eof &&
        ec != asio::error::connection_reset && ec != asio::error::broken_pipe) {
      return false;
    }
    op->retried_stale = true;
    op->conn->close();
    op->conn.reset();
    op->parser.reset();
    connect(op);
    return true;
  }

  void fail(const OpPtr& op, error_code ec, ErrorKind kind, const char* what) {
    finish_error(op, kind, std::string(what) + " " + op->origin + " failed: " + ec.message());
  }

  void finish_error(const OpPtr& op, ErrorKind kind, std::string message) {
    release(op, false);
    if (op->timed_out) return finish(op, ErrorKind::kTimeout, timeout_message(op));
    finish(op, kind, std::move(message));
  }

  void finish(const OpPtr& op, ErrorKind kind, const std::string& message) {
    Response res;
    res.error = kind;
    res.error_message = masked(message);
    finish(op, std::move(res));
  }

  void finish(const OpPtr& op, Response res) {
    if (op->finished) return;
    op->finished = true;
    op->timer.cancel();
    live.erase(op->id);
    Callback cb = std::move(op->done);
    try {
      cb(std::move(res));
    } catch (...) {
      // A callback's exception must not end the io thread that every other request needs.
    }
  }

  void cancel_all() {
    std::vector<OpPtr> ops;
    for (const auto& [id, op] : live) ops.push_back(op);
    for (const OpPtr& op : ops) {
      op->resolver.cancel();
      if (op->conn) op->conn->close();
      finish(op, ErrorKind::kCancelled, "the HTTP client shut down before a response");
    }
    for (auto& [origin, pool] : pools) {
      for (auto& c : pool.idle) c->close();
      pool.idle.clear();
      pool.waiting.clear();
    }
    for (const auto& s : scheduled) s->timer.cancel();
  }

  ClientOptions opts;
  std::vector<std::string> secrets;  // opts.redact in every form (sluice/redact.hpp)
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  ssl::context ssl_ctx;
  std::map<std::string, Pool> pools;
  std::unordered_map<RequestId, OpPtr> live;  // started and not finished
  std::set<std::shared_ptr<Scheduled>> scheduled;
  std::atomic<bool> stopped{false};
  std::atomic<uint64_t> opened{0};
  std::atomic<RequestId> last_id{0};
  std::mutex shutdown_mu;
  std::thread thread;
};

Client::Client(ClientOptions options) : impl_(std::make_shared<Impl>(std::move(options))) {}

Client::~Client() { shutdown(); }

RequestId Client::send(Request request, Callback done) {
  Impl* impl = impl_.get();
  const RequestId id = ++impl->last_id;
  if (impl->stopped) {
    Response res;
    res.error = ErrorKind::kCancelled;
    res.error_message = "the HTTP client is shut down";
    done(std::move(res));
    return id;
  }
  auto op = std::make_shared<Impl::Op>(impl->io);
  op->id = id;
  op->req = std::move(request);
  op->done = std::move(done);
  asio::post(impl->io, [impl, op] { impl->start(op); });
  return id;
}

// Posted like send(): a caller holding an id got it after send() posted the start, and the io
// thread runs posted handlers in order, so the request is already known when this one runs.
// Never run inline, even on the io thread: a callback calling cancel() must not have another
// callback run inside it.
void Client::cancel(RequestId id) {
  Impl* impl = impl_.get();
  if (impl->stopped) return;
  asio::post(impl->io, [impl, id] { impl->cancel(id); });
}

void Client::schedule(std::chrono::nanoseconds delay, std::function<void(bool)> fn) {
  Impl* impl = impl_.get();
  if (impl->stopped) {
    fn(true);
    return;
  }
  asio::post(impl->io, [impl, delay, fn = std::move(fn)]() mutable {
    if (impl->stopped) return fn(true);
    auto s = std::make_shared<Impl::Scheduled>(impl->io);
    s->fn = std::move(fn);
    impl->scheduled.insert(s);
    s->timer.expires_after(delay);
    s->timer.async_wait([impl, s](error_code ec) {
      impl->scheduled.erase(s);
      try {
        s->fn(ec == asio::error::operation_aborted || impl->stopped);
      } catch (...) {
        // As in finish(): the io thread must survive a throwing callback.
      }
    });
  });
}

void Client::shutdown() {
  Impl* impl = impl_.get();
  std::lock_guard lock(impl->shutdown_mu);
  if (!impl->thread.joinable()) return;
  impl->stopped = true;
  asio::post(impl->io, [impl] { impl->cancel_all(); });
  impl->work.reset();
  impl->thread.join();
}

std::string Client::redact(std::string_view s) const { return impl_->masked(s); }

uint64_t Client::connections_opened() const { return impl_->opened; }

std::optional<std::chrono::milliseconds> parse_retry_after(
    std::string_view value, std::chrono::system_clock::time_point now) {
  value = trim(value);
  if (value.empty()) return std::nullopt;
  if (std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    // A wait beyond kMaxRetryAfter (or past uint64) is taken as that much: the caller's cap
    // (max_retry_wait) then refuses it instead of mistaking it for no Retry-After at all.
    uint64_t seconds = 0;
    auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
    if (ec != std::errc() || seconds > static_cast<uint64_t>(kMaxRetryAfter.count())) {
      return kMaxRetryAfter;
    }
    return std::chrono::milliseconds(seconds * 1000);
  }
  std::tm tm{};
  const std::string text(value);
  const char* end = strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') return std::nullopt;
  // Compared in seconds first: a date centuries away does not fit the clock's nanoseconds.
  const std::time_t at_seconds = timegm(&tm);
  const std::time_t now_seconds = std::chrono::system_clock::to_time_t(now);
  if (at_seconds - now_seconds > kMaxRetryAfter.count()) return kMaxRetryAfter;
  if (at_seconds < now_seconds) return std::chrono::milliseconds(0);
  const auto at = std::chrono::system_clock::from_time_t(at_seconds);
  if (at <= now) return std::chrono::milliseconds(0);
  return std::chrono::duration_cast<std::chrono::milliseconds>(at - now);
}

std::optional<std::chrono::milliseconds> parse_retry_after_ms(std::string_view value) {
  value = trim(value);
  double ms = 0;
  auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), ms);
  if (value.empty() || ec != std::errc() || p != value.data() + value.size() || std::isnan(ms) ||
      ms < 0) {
    return std::nullopt;
  }
  const auto max_ms = std::chrono::duration_cast<std::chrono::milliseconds>(kMaxRetryAfter);
  if (ms > static_cast<double>(max_ms.count())) return max_ms;
  return std::chrono::milliseconds(static_cast<int64_t>(std::ceil(ms)));
}

std::chrono::nanoseconds backoff_delay(int attempt, std::chrono::nanoseconds base,
                                       std::chrono::nanoseconds cap, double unit) {
  if (base.count() <= 0 || cap.count() <= 0) return std::chrono::nanoseconds(0);
  int64_t ceiling = cap.count();
  if (attempt < 62 && base.count() <= (cap.count() >> std::max(attempt, 0))) {
    ceiling = base.count() << std::max(attempt, 0);
  }
  unit = std::clamp(unit, 0.0, 1.0);
  return std::chrono::nanoseconds(static_cast<int64_t>(static_cast<double>(ceiling) * unit));
}

std::chrono::nanoseconds backoff_delay(int attempt, std::chrono::nanoseconds base,
                                       std::chrono::nanoseconds cap) {
  thread_local std::mt19937_64 gen{std::random_device{}()};
  return backoff_delay(attempt, base, cap, std::uniform_real_distribution<double>(0, 1)(gen));
}

std::string hmac_sha256_hex(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    hex.push_back(kHex[out[i] >> 4]);
    hex.push_back(kHex[out[i] & 0xF]);
  }
  return hex;
}

std::string redact(std::string_view s, const std::vector<std::string>& secrets) {
  std::vector<std::string> forms;
  for (const std::string& secret : secrets) add_secret(forms, secret);
  return redact_secrets(s, forms, "<redacted>");
}

}  // namespace sluice::http
