// The WebSocket client's Beast/Asio implementation (see ws_client.hpp).
//
// One Client::Impl owns the io_context, the TLS context and up to three kinds of connection:
// the current one, a rollover's next one (until it is open), and old ones retiring after an
// overlap. A connection that fails reports to the Impl, which reconnects with backoff; one that
// is retired on purpose reports nothing.
#include "ws_client.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <memory>
#include <random>
#include <stdexcept>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

namespace sluice::ws {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace ssl = asio::ssl;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

// How often run() notices that the pipeline is stopping.
constexpr auto kStopPoll = std::chrono::milliseconds(20);
// TCP connect and TLS handshake together; the WebSocket handshake has its own limit.
constexpr auto kConnectTimeout = std::chrono::seconds(10);
constexpr auto kWsHandshakeTimeout = std::chrono::seconds(10);

bool is_ip_literal(const std::string& host) {
  boost::system::error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

std::string millis_text(std::chrono::nanoseconds d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) + " ms";
}

}  // namespace

std::optional<Url> parse_url(std::string_view url, std::string* error) {
  Url u;
  std::string_view rest;
  if (url.starts_with("wss://")) {
    rest = url.substr(6);
  } else if (url.starts_with("ws://")) {
    u.tls = false;
    rest = url.substr(5);
  } else {
    if (error) *error = "must start with wss:// (or ws://)";
    return std::nullopt;
  }
  const size_t slash = rest.find_first_of("/?#");
  const std::string_view authority = rest.substr(0, slash);
  u.target = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (u.target.front() == '?') u.target.insert(0, "/");
  if (u.target.find('#') != std::string::npos) u.target.erase(u.target.find('#'));
  if (u.target.empty()) u.target = "/";
  u.port = u.tls ? "443" : "80";
  if (authority.starts_with('[')) {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      if (error) *error = "has an unclosed '[' in its host";
      return std::nullopt;
    }
    u.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        if (error) *error = "has text after its IPv6 host";
        return std::nullopt;
      }
      u.port = std::string(after.substr(1));
    }
  } else {
    const size_t colon = authority.rfind(':');
    u.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) u.port = std::string(authority.substr(colon + 1));
  }
  if (u.host.empty()) {
    if (error) *error = "has no host";
    return std::nullopt;
  }
  const bool digits = !u.port.empty() && u.port.size() <= 5 &&
                      u.port.find_first_not_of("0123456789") == std::string::npos;
  if (!digits || std::stoi(u.port) == 0 || std::stoi(u.port) > 65535) {
    if (error) *error = "has a bad port '" + u.port + "'";
    return std::nullopt;
  }
  return u;
}

// One connection's behaviour, whatever its stream type.
class Connection {
 public:
  virtual ~Connection() = default;
  virtual void start() = 0;
  // Closes the connection on purpose (rollover, stop): its end is no failure.
  virtual void retire() = 0;
  virtual void abort() = 0;
  virtual void heartbeat_reply(int64_t id) = 0;
  uint64_t number() const { return number_; }

 protected:
  explicit Connection(uint64_t number) : number_(number) {}
  uint64_t number_;
};

struct Client::Impl {
  Impl(ClientOptions o, Handler& h, const Host& hst)
      : options(std::move(o)),
        handler(h),
        host(hst),
        tls(ssl::context::tls_client),
        stop_timer(io),
        reconnect_timer(io),
        rollover_timer(io) {
    std::string error;
    std::optional<Url> u = parse_url(options.url, &error);
    if (!u) throw OptionError("url", "'" + options.url + "' " + error);
    url = *u;
    tls.set_verify_mode(ssl::verify_peer);
    if (options.ca_file.empty()) {
      tls.set_default_verify_paths();
    } else {
      boost::system::error_code ec;
      tls.load_verify_file(options.ca_file, ec);
      if (ec) {
        throw std::runtime_error("cannot load CA certificates from '" + options.ca_file +
                                 "': " + ec.message());
      }
    }
  }

  void run(SourceContext& c);
  std::shared_ptr<Connection> make_connection();
  void connect();
  void opened(const std::shared_ptr<Connection>& c);
  void failed(const std::shared_ptr<Connection>& c, const std::string& why);
  // False once the client is stopping.
  bool message(Connection& c, std::string_view text);
  void schedule_reconnect(const std::string& why);
  void schedule_rollover();
  void start_rollover_connection();
  void poll_stop();
  void stop();

  ClientOptions options;
  Handler& handler;
  Host host;
  Url url;
  ClientStats stats;
  SourceContext* ctx = nullptr;
  ssl::context tls;
  asio::io_context io;
  asio::steady_timer stop_timer;
  asio::steady_timer reconnect_timer;
  asio::steady_timer rollover_timer;
  std::shared_ptr<Connection> current;
  std::shared_ptr<Connection> next;  // the rollover's new connection, until it is open
  std::vector<std::shared_ptr<Connection>> retiring;
  uint64_t connections = 0;
  int attempt = 0;  // failed attempts since the last open connection
  int64_t next_request_id = 1;
  bool stopped = false;
  std::mt19937_64 rng{std::random_device{}()};
};

namespace {

template <bool Tls>
using StreamOf = std::conditional_t<Tls, websocket::stream<beast::ssl_stream<beast::tcp_stream>>,
                                    websocket::stream<beast::tcp_stream>>;

template <bool Tls>
class ConnectionT final : public Connection, public std::enable_shared_from_this<ConnectionT<Tls>> {
 public:
  ConnectionT(Client::Impl& live, uint64_t number) requires Tls : Connection(number),
                                                                  live_(live),
                                                                  resolver_(live.io),
                                                                  ws_(live.io, live.tls),
                                                                  heartbeat_timer_(live.io),
                                                                  reply_timer_(live.io) {}
  ConnectionT(Client::Impl& live, uint64_t number) requires(!Tls)
      : Connection(number),
        live_(live),
        resolver_(live.io),
        ws_(live.io),
        heartbeat_timer_(live.io),
        reply_timer_(live.io) {}

  void start() override {
    const Url& u = live_.url;
    if constexpr (Tls) {
      SSL* ssl = ws_.next_layer().native_handle();
      if (is_ip_literal(u.host)) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), u.host.c_str());
      } else {
        // SNI: without it the server's front end cannot pick the right certificate.
        SSL_set_tlsext_host_name(ssl, u.host.c_str());
        SSL_set1_host(ssl, u.host.c_str());
      }
      // OpenSSL reports the oldest queued error: leftovers must not stand in for this one's.
      ERR_clear_error();
    }
    resolver_.async_resolve(u.host, u.port, [self = self()](beast::error_code ec, auto results) {
      self->on_resolve(ec, std::move(results));
    });
  }

  void retire() override {
    if (finished_) return;
    finished_ = true;
    heartbeat_timer_.cancel();
    reply_timer_.cancel();
    if (writing_) return abort();
    ws_.async_close(websocket::close_code::normal,
                    [self = self()](beast::error_code) { self->abort(); });
  }

  void abort() override {
    finished_ = true;
    heartbeat_timer_.cancel();
    reply_timer_.cancel();
    resolver_.cancel();
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().shutdown(tcp::socket::shutdown_both, ignored);
    beast::get_lowest_layer(ws_).close();
  }

  void heartbeat_reply(int64_t id) override {
    if (awaited_reply_ < 0) return;
    if (id < 0 || id == awaited_reply_) {
      awaited_reply_ = -1;
      reply_timer_.cancel();
    }
  }

 private:
  std::shared_ptr<ConnectionT> self() { return this->shared_from_this(); }

  void on_resolve(beast::error_code ec, tcp::resolver::results_type results) {
    if (finished_) return;
    if (ec) return fail("cannot resolve " + live_.url.host + ": " + ec.message());
    beast::get_lowest_layer(ws_).expires_after(kConnectTimeout);
    beast::get_lowest_layer(ws_).async_connect(
        results,
        [self = self()](beast::error_code ec, const tcp::endpoint&) { self->on_connect(ec); });
  }

  void on_connect(beast::error_code ec) {
    if (finished_) return;
    if (ec) return fail("cannot connect: " + ec.message());
    if constexpr (Tls) {
      ws_.next_layer().async_handshake(
          ssl::stream_base::client,
          [self = self()](beast::error_code ec) { self->on_tls_handshake(ec); });
    } else {
      ws_handshake();
    }
  }

  void on_tls_handshake(beast::error_code ec) {
    if (finished_) return;
    if constexpr (Tls) {
      if (ec) {
        const long verify = SSL_get_verify_result(ws_.next_layer().native_handle());
        if (verify != X509_V_OK) {
          return fail(std::string("TLS handshake failed: certificate verify failed: ") +
                      X509_verify_cert_error_string(verify));
        }
        return fail("TLS handshake failed: " + ec.message());
      }
    }
    ws_handshake();
  }

  void ws_handshake() {
    beast::get_lowest_layer(ws_).expires_never();
    websocket::stream_base::timeout timeouts{};
    timeouts.handshake_timeout = kWsHandshakeTimeout;
    timeouts.idle_timeout = websocket::stream_base::none();  // silence is normal; heartbeats judge
    timeouts.keep_alive_pings = false;
    ws_.set_option(timeouts);
    ws_.read_message_max(live_.options.max_message_bytes);
    ws_.set_option(websocket::stream_base::decorator(
        [agent = live_.options.user_agent](websocket::request_type& req) {
          req.set(beast::http::field::user_agent, agent);
        }));
    // Beast answers pings by itself while a read is pending; this only keeps the log honest.
    ws_.control_callback([this](websocket::frame_type kind, beast::string_view) {
      if (kind == websocket::frame_type::ping) live_.host.debug("server ping answered");
    });
    const Url& u = live_.url;
    const bool default_port = u.port == (Tls ? "443" : "80");
    std::string host_header = u.host.find(':') != std::string::npos ? "[" + u.host + "]" : u.host;
    if (!default_port) host_header += ":" + u.port;
    ws_.async_handshake(host_header, u.target,
                        [self = self()](beast::error_code ec) { self->on_ws_handshake(ec); });
  }

  void on_ws_handshake(beast::error_code ec) {
    if (finished_) return;
    if (ec) return fail("WebSocket handshake failed: " + ec.message());
    for (std::string& m : live_.handler.open_messages()) send(std::move(m));
    live_.opened(self());
    if (finished_) return;
    if (live_.options.heartbeat.count() > 0) schedule_heartbeat();
    read();
  }

  void read() {
    ws_.async_read(buffer_,
                   [self = self()](beast::error_code ec, size_t n) { self->on_read(ec, n); });
  }

  void on_read(beast::error_code ec, size_t bytes) {
    if (finished_) return;
    if (ec == websocket::error::closed) {
      const auto& reason = ws_.reason();
      std::string why = "the server closed the connection (code " + std::to_string(reason.code);
      if (!reason.reason.empty())
        why += ": " + std::string(reason.reason.data(), reason.reason.size());
      return fail(why + ")");
    }
    if (ec) return fail("read failed: " + ec.message());
    const auto data = buffer_.cdata();
    const std::string_view text(static_cast<const char*>(data.data()), data.size());
    const bool go_on = live_.message(*this, text);
    buffer_.consume(bytes);
    if (go_on && !finished_) read();
  }

  void schedule_heartbeat() {
    heartbeat_timer_.expires_after(live_.options.heartbeat);
    heartbeat_timer_.async_wait([self = self()](beast::error_code ec) {
      if (ec || self->finished_) return;
      // Liquidations can be silent for minutes: a reply to the heartbeat, not traffic, proves
      // the connection alive.
      if (self->awaited_reply_ < 0) {
        const int64_t id = self->live_.next_request_id++;
        std::string text = self->live_.handler.heartbeat_message(id);
        if (!text.empty()) {
          self->awaited_reply_ = id;
          self->send(std::move(text));
          self->reply_timer_.expires_after(self->live_.options.heartbeat_timeout);
          self->reply_timer_.async_wait([self](beast::error_code ec) {
            if (ec || self->finished_ || self->awaited_reply_ < 0) return;
            self->fail("no reply to " + self->live_.options.heartbeat_name + " within " +
                       millis_text(self->live_.options.heartbeat_timeout));
          });
        }
      }
      self->schedule_heartbeat();
    });
  }

  void send(std::string text) {
    outbox_.push_back(std::move(text));
    if (!writing_) write_next();
  }

  void write_next() {
    if (outbox_.empty() || finished_) {
      writing_ = false;
      return;
    }
    writing_ = true;
    ws_.text(true);
    ws_.async_write(asio::buffer(outbox_.front()), [self = self()](beast::error_code ec, size_t) {
      self->outbox_.pop_front();
      if (self->finished_) {
        self->writing_ = false;
        return;
      }
      if (ec) return self->fail("write failed: " + ec.message());
      self->write_next();
    });
  }

  void fail(const std::string& why) {
    if (finished_) return;
    abort();
    live_.failed(self(), why);
  }

  Client::Impl& live_;
  tcp::resolver resolver_;
  StreamOf<Tls> ws_;
  beast::flat_buffer buffer_;
  asio::steady_timer heartbeat_timer_;
  asio::steady_timer reply_timer_;
  std::deque<std::string> outbox_;
  bool writing_ = false;
  bool finished_ = false;  // failed or retired: no more callbacks into the client
  int64_t awaited_reply_ = -1;
};

}  // namespace

std::shared_ptr<Connection> Client::Impl::make_connection() {
  if (url.tls) return std::make_shared<ConnectionT<true>>(*this, ++connections);
  return std::make_shared<ConnectionT<false>>(*this, ++connections);
}

void Client::Impl::run(SourceContext& c) {
  ctx = &c;
  poll_stop();
  if (!stopped) connect();
  io.run();
}

void Client::Impl::poll_stop() {
  if (ctx->stopping()) return stop();
  stop_timer.expires_after(kStopPoll);
  stop_timer.async_wait([this](beast::error_code ec) {
    if (!ec) poll_stop();
  });
}

void Client::Impl::stop() {
  if (stopped) return;
  stopped = true;
  for (auto* c : {&current, &next}) {
    if (*c) (*c)->abort();
  }
  for (auto& c : retiring) c->abort();
  stop_timer.cancel();
  reconnect_timer.cancel();
  rollover_timer.cancel();
  io.stop();
}

void Client::Impl::connect() {
  current = make_connection();
  current->start();
}

void Client::Impl::opened(const std::shared_ptr<Connection>& c) {
  attempt = 0;
  ++stats.connections_opened;
  if (c == next) {
    // Rollover: the new connection delivers from now on; the old one keeps reading for the
    // overlap so messages it already had in flight still arrive, then closes.
    std::shared_ptr<Connection> old = std::move(current);
    current = std::move(next);
    host.info("rollover: connection " + std::to_string(c->number()) + " replaces connection " +
              std::to_string(old ? old->number() : 0));
    ++stats.rollovers;
    host.counter_add("source_rollovers_total", 1);
    if (old) {
      retiring.push_back(old);
      auto overlap =
          std::min<std::chrono::nanoseconds>(options.rollover_overlap, options.rollover / 2);
      auto timer = std::make_shared<asio::steady_timer>(io, overlap);
      timer->async_wait([this, timer, old](beast::error_code ec) {
        if (ec || stopped) return;
        old->retire();
        std::erase(retiring, old);
      });
    }
  } else {
    host.info("connected to " + options.url + " (connection " + std::to_string(c->number()) + ")");
  }
  schedule_rollover();
}

void Client::Impl::failed(const std::shared_ptr<Connection>& c, const std::string& why) {
  if (stopped) return;
  const std::string what =
      "connection " + std::to_string(c->number()) + " to " + options.url + ": " + why;
  if (c == next) {
    // The old connection still works: try the rollover again later.
    next.reset();
    host.warn(what + "; keeping the current connection");
    rollover_timer.expires_after(options.reconnect_min);
    rollover_timer.async_wait([this](beast::error_code ec) {
      if (ec || stopped || next) return;
      start_rollover_connection();
    });
    return;
  }
  if (c != current) {
    std::erase(retiring, c);
    return;
  }
  current.reset();
  if (next) {
    // A rollover is under way: its connection takes over as soon as it is open.
    current = std::move(next);
    host.warn(what + "; continuing on connection " + std::to_string(current->number()));
    return;
  }
  schedule_reconnect(what);
}

void Client::Impl::schedule_reconnect(const std::string& why) {
  rollover_timer.cancel();
  const double base = static_cast<double>(options.reconnect_min.count());
  const double cap = static_cast<double>(options.reconnect_max.count());
  const double ceiling = std::min(cap, base * std::pow(2.0, std::min(attempt, 40)));
  // Jitter over the upper half keeps reconnecting clients apart and the delay above ceiling/2.
  std::uniform_real_distribution<double> jitter(0.5, 1.0);
  const auto delay = std::chrono::nanoseconds(static_cast<int64_t>(ceiling * jitter(rng)));
  ++attempt;
  ++stats.reconnects;
  host.warn(why + "; reconnecting in " + millis_text(delay) + " (attempt " +
            std::to_string(attempt) + ")");
  host.counter_add("source_reconnects_total", 1);
  reconnect_timer.expires_after(delay);
  reconnect_timer.async_wait([this](beast::error_code ec) {
    if (ec || stopped) return;
    connect();
  });
}

void Client::Impl::schedule_rollover() {
  if (options.rollover.count() <= 0) return;
  rollover_timer.expires_after(options.rollover);
  rollover_timer.async_wait([this](beast::error_code ec) {
    if (ec || stopped || next) return;
    host.info("rollover: opening a new connection after " + millis_text(options.rollover));
    start_rollover_connection();
  });
}

void Client::Impl::start_rollover_connection() {
  next = make_connection();
  next->start();
}

bool Client::Impl::message(Connection& c, std::string_view text) {
  if (stopped) return false;
  const Received r = handler.on_message(text, now_ns());
  if (r.heartbeat_reply) c.heartbeat_reply(r.reply_id);
  if (!r.keep_going) stop();
  return r.keep_going;
}

Client::Client(ClientOptions options, Handler& handler, const Host& host)
    : impl_(std::make_unique<Impl>(std::move(options), handler, host)) {}

Client::~Client() = default;

void Client::run(SourceContext& ctx) { impl_->run(ctx); }

const ClientStats& Client::stats() const { return impl_->stats; }

}  // namespace sluice::ws
