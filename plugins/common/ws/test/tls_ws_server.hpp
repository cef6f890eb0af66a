// A TLS WebSocket server on 127.0.0.1 that plays the exchange's part in the live tests of
// streaming sources: it pushes frames, pings, answers client messages through a responder
// (subscription acks, heartbeat replies), drops connections abruptly and refuses reconnects for
// a while. Its certificate is signed by a CA generated when the server starts; ca_file() is that
// CA's PEM, for the source's ca_file option.
//
// Connections are numbered from 1 in the order their WebSocket handshakes complete. Actions on
// one connection (send, ping, drop) run in the order they were asked for.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace sluice::ws::testing {

class TlsWsServer {
 public:
  TlsWsServer();
  ~TlsWsServer();
  TlsWsServer(const TlsWsServer&) = delete;
  TlsWsServer& operator=(const TlsWsServer&) = delete;

  uint16_t port() const;
  std::string url(const std::string& target) const;  // wss://127.0.0.1:PORT/target
  const std::string& ca_file() const;

  void send(size_t connection, std::string text);
  // Sends to every connection open now.
  void broadcast(std::string text);
  void ping(size_t connection, std::string payload);
  // Closes the TCP connection without a WebSocket close, after the actions queued before it.
  void drop(size_t connection);
  // The next n TCP connections are accepted and closed at once, before any TLS.
  void refuse_next(size_t n);
  // Computes the replies to each text message from a client (none by default); runs on the
  // server thread.
  using Responder = std::function<std::vector<std::string>(const std::string& message)>;
  void set_responder(Responder responder);
  // Whether the responder is consulted (default yes): false plays a server that stops answering.
  void answer(bool answer);

  size_t opened() const;    // WebSocket handshakes completed
  size_t open_now() const;  // connections not yet closed
  size_t max_open() const;  // most connections open at the same time
  size_t refused() const;
  std::vector<std::string> targets() const;                    // request target of each connection
  std::vector<std::string> received(size_t connection) const;  // text messages from the client
  std::vector<std::string> pongs() const;                      // payloads of pongs received
  // Times (steady clock) at which refused connections arrived.
  std::vector<std::chrono::steady_clock::time_point> refused_at() const;

  // Polls pred until it holds or the timeout passes; returns its last value.
  static bool wait_until(const std::function<bool()>& pred,
                         std::chrono::milliseconds timeout = std::chrono::seconds(15));

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::ws::testing
