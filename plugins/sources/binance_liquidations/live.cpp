// The live side of `binance_liquidations`: WebSocket over TLS with Boost.Beast, heartbeats with
// LIST_SUBSCRIPTIONS, reconnects with capped exponential backoff and jitter, and the rollover
// that replaces a connection before Binance's 24-hour cut without a gap.
//
// Everything runs on the source's thread in one io_context. Frames go to
// BinanceSource::handle_frame, whose de-duplication makes an overlap of two connections (during
// a rollover) or a server that repeats frames after a reconnect harmless.
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <memory>
#include <random>
#include <string>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include "binance_liquidations.hpp"

namespace sluice::binance {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace ssl = asio::ssl;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

// How often run() notices that the pipeline is stopping.
constexpr auto kStopPoll = std::chrono::milliseconds(20);
// TCP connect and TLS handshake together; the WebSocket handshake has its own limit.
constexpr auto kConnectTimeout = std::chrono::seconds(10);
constexpr auto kWsHandshakeTimeout = std::chrono::seconds(10);
// During a rollover both connections deliver for this long (at most half the rollover period),
// so frames already in flight on the old one are not lost; duplicates are dropped.
constexpr auto kRolloverOverlap = std::chrono::seconds(2);
constexpr size_t kMaxMessageBytes = 1 << 20;

struct Endpoint {
  std::string host;
  std::string port;
  std::string target;
};

Endpoint parse_wss(const std::string& url) {
  Endpoint e;
  const std::string rest = url.substr(6);  // after "wss://", checked by the constructor
  const size_t slash = rest.find_first_of("/?");
  std::string authority = rest.substr(0, slash);
  e.target = slash == std::string::npos ? "/" : rest.substr(slash);
  if (e.target.front() == '?') e.target.insert(0, "/");
  const size_t colon = authority.rfind(':');
  if (colon != std::string::npos && authority.find(']') == std::string::npos) {
    e.host = authority.substr(0, colon);
    e.port = authority.substr(colon + 1);
  } else {
    e.host = authority;
    e.port = "443";
  }
  if (e.host.size() > 2 && e.host.front() == '[' && e.host.back() == ']') {
    e.host = e.host.substr(1, e.host.size() - 2);
  }
  return e;
}

bool is_ip_literal(const std::string& host) {
  boost::system::error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

std::string millis_text(std::chrono::nanoseconds d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) + " ms";
}

class Live;

// One WebSocket connection: connect, handshake, read until it fails or is retired.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Live& live, uint64_t number);
  void start();
  // Closes the connection on purpose (rollover, stop): its end is no failure.
  void retire();
  void abort();
  uint64_t number() const { return number_; }
  void on_control_reply(int64_t id);

 private:
  void on_resolve(beast::error_code ec, tcp::resolver::results_type results);
  void on_connect(beast::error_code ec);
  void on_tls_handshake(beast::error_code ec);
  void on_ws_handshake(beast::error_code ec);
  void read();
  void on_read(beast::error_code ec, size_t bytes);
  void send(std::string text);
  void write_next();
  void schedule_heartbeat();
  void fail(const std::string& why);

  Live& live_;
  uint64_t number_;
  tcp::resolver resolver_;
  websocket::stream<beast::ssl_stream<beast::tcp_stream>> ws_;
  beast::flat_buffer buffer_;
  asio::steady_timer heartbeat_timer_;
  asio::steady_timer reply_timer_;
  std::deque<std::string> outbox_;
  bool writing_ = false;
  bool finished_ = false;  // failed or retired: no more callbacks into Live
  int64_t awaited_reply_ = -1;
};

class Live {
 public:
  Live(BinanceSource& source, SourceContext& ctx, const LiveOptions& options);
  void run();

  // Connection callbacks.
  void opened(const std::shared_ptr<Connection>& c);
  void failed(const std::shared_ptr<Connection>& c, const std::string& why);
  // False once the pipeline is stopping.
  bool frame(Connection& c, std::string_view text);

  asio::io_context& io() { return io_; }
  ssl::context& tls() { return tls_; }
  const Endpoint& endpoint() const { return endpoint_; }
  const LiveOptions& options() const { return options_; }
  int64_t next_request_id() { return next_request_id_++; }
  const Host& host() const { return source_.host(); }

 private:
  void connect();
  void schedule_reconnect(const std::string& why);
  void schedule_rollover();
  void poll_stop();
  void stop();

  BinanceSource& source_;
  SourceContext& ctx_;
  LiveOptions options_;
  Endpoint endpoint_;
  ssl::context tls_;
  asio::io_context io_;
  asio::steady_timer stop_timer_;
  asio::steady_timer reconnect_timer_;
  asio::steady_timer rollover_timer_;
  std::shared_ptr<Connection> current_;
  std::shared_ptr<Connection> next_;  // the rollover's new connection, until it is open
  std::vector<std::shared_ptr<Connection>> retiring_;
  uint64_t connections_ = 0;
  int attempt_ = 0;  // failed attempts since the last open connection
  int64_t next_request_id_ = 1;
  bool stopped_ = false;
  std::mt19937_64 rng_{std::random_device{}()};
};

Connection::Connection(Live& live, uint64_t number)
    : live_(live),
      number_(number),
      resolver_(live.io()),
      ws_(live.io(), live.tls()),
      heartbeat_timer_(live.io()),
      reply_timer_(live.io()) {}

void Connection::start() {
  const Endpoint& e = live_.endpoint();
  SSL* ssl = ws_.next_layer().native_handle();
  if (is_ip_literal(e.host)) {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), e.host.c_str());
  } else {
    // SNI: without it the server's front end cannot pick the right certificate.
    SSL_set_tlsext_host_name(ssl, e.host.c_str());
    SSL_set1_host(ssl, e.host.c_str());
  }
  // OpenSSL reports the oldest queued error: leftovers must not stand in for this handshake's.
  ERR_clear_error();
  resolver_.async_resolve(e.host, e.port,
                          [self = shared_from_this()](beast::error_code ec, auto results) {
                            self->on_resolve(ec, std::move(results));
                          });
}

void Connection::on_resolve(beast::error_code ec, tcp::resolver::results_type results) {
  if (finished_) return;
  if (ec) return fail("cannot resolve " + live_.endpoint().host + ": " + ec.message());
  beast::get_lowest_layer(ws_).expires_after(kConnectTimeout);
  beast::get_lowest_layer(ws_).async_connect(
      results, [self = shared_from_this()](beast::error_code ec, const tcp::endpoint&) {
        self->on_connect(ec);
      });
}

void Connection::on_connect(beast::error_code ec) {
  if (finished_) return;
  if (ec) return fail("cannot connect: " + ec.message());
  ws_.next_layer().async_handshake(
      ssl::stream_base::client,
      [self = shared_from_this()](beast::error_code ec) { self->on_tls_handshake(ec); });
}

void Connection::on_tls_handshake(beast::error_code ec) {
  if (finished_) return;
  if (ec) {
    const long verify = SSL_get_verify_result(ws_.next_layer().native_handle());
    if (verify != X509_V_OK) {
      return fail(std::string("TLS handshake failed: certificate verify failed: ") +
                  X509_verify_cert_error_string(verify));
    }
    return fail("TLS handshake failed: " + ec.message());
  }
  beast::get_lowest_layer(ws_).expires_never();
  websocket::stream_base::timeout timeouts{};
  timeouts.handshake_timeout = kWsHandshakeTimeout;
  timeouts.idle_timeout = websocket::stream_base::none();  // silence is normal; heartbeats judge
  timeouts.keep_alive_pings = false;
  ws_.set_option(timeouts);
  ws_.read_message_max(kMaxMessageBytes);
  ws_.set_option(websocket::stream_base::decorator([](websocket::request_type& req) {
    req.set(beast::http::field::user_agent, "sluice-binance-liquidations");
  }));
  // Beast answers pings by itself while a read is pending; this only keeps the log honest.
  ws_.control_callback([this](websocket::frame_type kind, beast::string_view) {
    if (kind == websocket::frame_type::ping) live_.host().debug("server ping answered");
  });
  const Endpoint& e = live_.endpoint();
  const std::string host_header = e.port == "443" ? e.host : e.host + ":" + e.port;
  ws_.async_handshake(host_header, e.target, [self = shared_from_this()](beast::error_code ec) {
    self->on_ws_handshake(ec);
  });
}

void Connection::on_ws_handshake(beast::error_code ec) {
  if (finished_) return;
  if (ec) return fail("WebSocket handshake failed: " + ec.message());
  live_.opened(shared_from_this());
  if (finished_) return;
  schedule_heartbeat();
  read();
}

void Connection::read() {
  ws_.async_read(buffer_, [self = shared_from_this()](beast::error_code ec, size_t n) {
    self->on_read(ec, n);
  });
}

void Connection::on_read(beast::error_code ec, size_t bytes) {
  if (finished_) return;
  if (ec == websocket::error::closed) {
    const auto& reason = ws_.reason();
    return fail("the server closed the connection (code " + std::to_string(reason.code) +
                (reason.reason.empty() ? "" : ": " + std::string(reason.reason.data(), reason.reason.size())) +
                ")");
  }
  if (ec) return fail("read failed: " + ec.message());
  const auto data = buffer_.cdata();
  const std::string_view text(static_cast<const char*>(data.data()), data.size());
  const bool go_on = live_.frame(*this, text);
  buffer_.consume(bytes);
  if (go_on && !finished_) read();
}

void Connection::on_control_reply(int64_t id) {
  if (id >= 0 && id == awaited_reply_) {
    awaited_reply_ = -1;
    reply_timer_.cancel();
  }
}

void Connection::schedule_heartbeat() {
  heartbeat_timer_.expires_after(live_.options().heartbeat);
  heartbeat_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
    if (ec || self->finished_) return;
    // Liquidations can be silent for minutes: a reply to LIST_SUBSCRIPTIONS, not traffic,
    // proves the connection alive.
    if (self->awaited_reply_ < 0) {
      self->awaited_reply_ = self->live_.next_request_id();
      self->send("{\"method\":\"LIST_SUBSCRIPTIONS\",\"id\":" +
                 std::to_string(self->awaited_reply_) + "}");
      self->reply_timer_.expires_after(self->live_.options().heartbeat_timeout);
      self->reply_timer_.async_wait([self](beast::error_code ec) {
        if (ec || self->finished_ || self->awaited_reply_ < 0) return;
        self->fail("no reply to LIST_SUBSCRIPTIONS within " +
                   millis_text(self->live_.options().heartbeat_timeout));
      });
    }
    self->schedule_heartbeat();
  });
}

void Connection::send(std::string text) {
  outbox_.push_back(std::move(text));
  if (!writing_) write_next();
}

void Connection::write_next() {
  if (outbox_.empty() || finished_) {
    writing_ = false;
    return;
  }
  writing_ = true;
  ws_.text(true);
  ws_.async_write(asio::buffer(outbox_.front()),
                  [self = shared_from_this()](beast::error_code ec, size_t) {
                    self->outbox_.pop_front();
                    if (self->finished_) {
                      self->writing_ = false;
                      return;
                    }
                    if (ec) return self->fail("write failed: " + ec.message());
                    self->write_next();
                  });
}

void Connection::retire() {
  if (finished_) return;
  finished_ = true;
  heartbeat_timer_.cancel();
  reply_timer_.cancel();
  if (writing_) return abort();
  ws_.async_close(websocket::close_code::normal,
                  [self = shared_from_this()](beast::error_code) { self->abort(); });
}

void Connection::abort() {
  finished_ = true;
  heartbeat_timer_.cancel();
  reply_timer_.cancel();
  resolver_.cancel();
  beast::error_code ignored;
  beast::get_lowest_layer(ws_).socket().shutdown(tcp::socket::shutdown_both, ignored);
  beast::get_lowest_layer(ws_).close();
}

void Connection::fail(const std::string& why) {
  if (finished_) return;
  abort();
  live_.failed(shared_from_this(), why);
}

Live::Live(BinanceSource& source, SourceContext& ctx, const LiveOptions& options)
    : source_(source),
      ctx_(ctx),
      options_(options),
      endpoint_(parse_wss(options.url)),
      tls_(ssl::context::tls_client),
      stop_timer_(io_),
      reconnect_timer_(io_),
      rollover_timer_(io_) {
  tls_.set_verify_mode(ssl::verify_peer);
  if (options_.ca_file.empty()) {
    tls_.set_default_verify_paths();
  } else {
    tls_.load_verify_file(options_.ca_file);
  }
}

void Live::run() {
  poll_stop();
  connect();
  io_.run();
}

void Live::poll_stop() {
  if (ctx_.stopping()) return stop();
  stop_timer_.expires_after(kStopPoll);
  stop_timer_.async_wait([this](beast::error_code ec) {
    if (!ec) poll_stop();
  });
}

void Live::stop() {
  if (stopped_) return;
  stopped_ = true;
  for (auto* c : {&current_, &next_}) {
    if (*c) (*c)->abort();
  }
  for (auto& c : retiring_) c->abort();
  stop_timer_.cancel();
  reconnect_timer_.cancel();
  rollover_timer_.cancel();
  io_.stop();
}

void Live::connect() {
  auto c = std::make_shared<Connection>(*this, ++connections_);
  current_ = c;
  c->start();
}

void Live::opened(const std::shared_ptr<Connection>& c) {
  attempt_ = 0;
  if (c == next_) {
    // Rollover: the new connection delivers from now on; the old one keeps reading for the
    // overlap so frames it already had in flight still arrive, then closes.
    std::shared_ptr<Connection> old = std::move(current_);
    current_ = std::move(next_);
    host().info("rollover: connection " + std::to_string(c->number()) + " replaces connection " +
                std::to_string(old ? old->number() : 0));
    source_.host().counter_add("source_rollovers_total", 1);
    if (old) {
      retiring_.push_back(old);
      auto overlap = std::min<std::chrono::nanoseconds>(kRolloverOverlap, options_.rollover / 2);
      auto timer = std::make_shared<asio::steady_timer>(io_, overlap);
      timer->async_wait([this, timer, old](beast::error_code ec) {
        if (ec || stopped_) return;
        old->retire();
        std::erase(retiring_, old);
      });
    }
  } else {
    host().info("connected to " + options_.url + " (connection " + std::to_string(c->number()) +
                ")");
  }
  schedule_rollover();
}

void Live::failed(const std::shared_ptr<Connection>& c, const std::string& why) {
  if (stopped_) return;
  const std::string what = "connection " + std::to_string(c->number()) + " to " + options_.url +
                           ": " + why;
  if (c == next_) {
    // The old connection still works: try the rollover again later.
    next_.reset();
    host().warn(what + "; keeping the current connection");
    rollover_timer_.expires_after(options_.reconnect_min);
    rollover_timer_.async_wait([this](beast::error_code ec) {
      if (ec || stopped_ || next_) return;
      next_ = std::make_shared<Connection>(*this, ++connections_);
      next_->start();
    });
    return;
  }
  if (c != current_) {
    std::erase(retiring_, c);
    return;
  }
  current_.reset();
  if (next_) {
    // A rollover is under way: its connection takes over as soon as it is open.
    current_ = std::move(next_);
    host().warn(what + "; continuing on connection " + std::to_string(current_->number()));
    return;
  }
  schedule_reconnect(what);
}

void Live::schedule_reconnect(const std::string& why) {
  rollover_timer_.cancel();
  const double base = static_cast<double>(options_.reconnect_min.count());
  const double cap = static_cast<double>(options_.reconnect_max.count());
  const double ceiling = std::min(cap, base * std::pow(2.0, std::min(attempt_, 40)));
  // Jitter over the upper half keeps reconnecting clients apart and the delay above ceiling/2.
  std::uniform_real_distribution<double> jitter(0.5, 1.0);
  const auto delay = std::chrono::nanoseconds(static_cast<int64_t>(ceiling * jitter(rng_)));
  ++attempt_;
  host().warn(why + "; reconnecting in " + millis_text(delay) + " (attempt " +
              std::to_string(attempt_) + ")");
  source_.host().counter_add("source_reconnects_total", 1);
  reconnect_timer_.expires_after(delay);
  reconnect_timer_.async_wait([this](beast::error_code ec) {
    if (ec || stopped_) return;
    connect();
  });
}

void Live::schedule_rollover() {
  rollover_timer_.expires_after(options_.rollover);
  rollover_timer_.async_wait([this](beast::error_code ec) {
    if (ec || stopped_ || next_) return;
    host().info("rollover: opening a new connection after " + millis_text(options_.rollover));
    next_ = std::make_shared<Connection>(*this, ++connections_);
    next_->start();
  });
}

bool Live::frame(Connection& c, std::string_view text) {
  if (stopped_) return false;
  const Handled h = source_.handle_frame(ctx_, text, now_ns());
  if (h.kind == FrameKind::kControl) c.on_control_reply(h.control_id);
  if (!h.keep_going) stop();
  return h.keep_going;
}

}  // namespace

void run_live(BinanceSource& source, SourceContext& ctx, const LiveOptions& options) {
  Live live(source, ctx, options);
  live.run();
}

}  // namespace sluice::binance
