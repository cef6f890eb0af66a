// A WebSocket client for streaming sources, exchange-agnostic: wss:// (TLS with SNI, peer and
// host name verification, optional ca_file) or ws://, subscription messages after every
// connect, an application heartbeat judged by its replies, reconnects with capped exponential
// backoff and jitter, and a rollover that opens a fresh connection before the old one is cut,
// with a short overlap so nothing in flight is lost (the source de-duplicates the overlap).
//
// Everything runs on the caller's thread (run() blocks) in one io_context, so a Handler needs no
// locks. Beast and Asio stay inside ws_client.cpp.
//
//   class MyHandler : public sluice::ws::Handler { ... };
//   sluice::ws::Client client(options, handler, host);
//   client.run(ctx);  // until the pipeline stops or a handler says so
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/sdk.hpp"

namespace sluice::ws {

struct Url {
  bool tls = true;
  std::string host;    // without brackets for IPv6
  std::string port;    // "443" / "80" unless given
  std::string target;  // path and query, at least "/"
};

// Parses wss://host[:port][/path][?query] and ws://…; nullopt with *error set otherwise.
std::optional<Url> parse_url(std::string_view url, std::string* error);

struct ClientOptions {
  std::string url;
  std::string ca_file;  // PEM bundle trusted instead of the system store ("" = system)
  std::string user_agent = "sluice";
  // Every `heartbeat` the handler's heartbeat message is sent; without a reply the handler
  // recognises within heartbeat_timeout the connection counts as dead. 0 = no heartbeat.
  std::chrono::nanoseconds heartbeat{0};
  std::chrono::nanoseconds heartbeat_timeout{std::chrono::seconds(10)};
  // Named in logs: "no reply to <heartbeat_name> within 10000 ms".
  std::string heartbeat_name = "heartbeat";
  std::chrono::nanoseconds reconnect_min{std::chrono::seconds(1)};
  std::chrono::nanoseconds reconnect_max{std::chrono::seconds(60)};
  // Replace the connection after this long (0 = never); both deliver for rollover_overlap
  // (at most half of rollover) before the old one closes.
  std::chrono::nanoseconds rollover{0};
  std::chrono::nanoseconds rollover_overlap{std::chrono::seconds(2)};
  size_t max_message_bytes = 1 << 20;
};

// What the handler made of one received message.
struct Received {
  bool keep_going = true;        // false: stop the client (the pipeline is stopping)
  bool heartbeat_reply = false;  // this message answers a heartbeat
  int64_t reply_id = -1;         // the request id it answers; -1 = any outstanding heartbeat
};

// The exchange-specific part of a connection.
class Handler {
 public:
  virtual ~Handler() = default;
  // Sent in order right after each connection opens (subscriptions).
  virtual std::vector<std::string> open_messages() { return {}; }
  // The heartbeat to send now; request_id is unique per client, for protocols that echo it.
  virtual std::string heartbeat_message(int64_t request_id) { return {}; }
  // One text or binary message, received at recv_ns (wall clock).
  virtual Received on_message(std::string_view text, int64_t recv_ns) = 0;
};

// Counters of one client's life, also reported as source_reconnects_total and
// source_rollovers_total through the host.
struct ClientStats {
  uint64_t connections_opened = 0;
  uint64_t reconnects = 0;
  uint64_t rollovers = 0;
};

class Client {
 public:
  // Throws OptionError("url") for a bad URL and std::runtime_error for an unreadable ca_file.
  Client(ClientOptions options, Handler& handler, const Host& host);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Connects and delivers messages until ctx is stopping or the handler returns keep_going =
  // false; notices a stopping pipeline within ~20 ms, also while waiting to reconnect.
  void run(SourceContext& ctx);
  const ClientStats& stats() const;

  struct Impl;  // ws_client.cpp; public only so its connection classes can name it

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::ws
