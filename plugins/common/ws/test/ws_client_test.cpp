// Tests of the shared WebSocket client directly (URL rules, subscription messages on every
// connection, heartbeats answered without an id, stop) against the local TLS WebSocket server,
// and of the de-duplicator. The exchange sources' live tests cover the rest through plugins.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include "dedup.hpp"
#include "sluice/testing.hpp"
#include "tls_ws_server.hpp"
#include "ws_client.hpp"

namespace {

using sluice::ws::Client;
using sluice::ws::ClientOptions;
using sluice::ws::Received;
using sluice::ws::testing::TlsWsServer;

// A source context whose stop flag the test raises.
class StopFlag {
 public:
  StopFlag() {
    raw_.host_data = this;
    raw_.emit = [](sluice_source_ctx*, const uint8_t*, size_t) { return 0; };
    raw_.stopping = [](sluice_source_ctx* c) {
      return static_cast<StopFlag*>(c->host_data)->stop_.load() ? 1 : 0;
    };
    raw_.sleep_ns = [](sluice_source_ctx*, int64_t) { return 0; };
  }
  sluice::SourceContext ctx() { return sluice::SourceContext(&raw_); }
  void stop() { stop_ = true; }

 private:
  sluice_source_ctx raw_{};
  std::atomic<bool> stop_{false};
};

// Subscribes to two topics, pings with {"op":"ping"} and stops after `wanted` data messages.
class TestHandler : public sluice::ws::Handler {
 public:
  explicit TestHandler(size_t wanted) : wanted_(wanted) {}
  std::vector<std::string> open_messages() override { return {"sub-a", "sub-b"}; }
  std::string heartbeat_message(int64_t) override { return R"({"op":"ping"})"; }
  Received on_message(std::string_view text, int64_t) override {
    Received r;
    if (text == "pong") {
      r.heartbeat_reply = true;
      return r;
    }
    std::lock_guard lock(mu_);
    data_.emplace_back(text);
    r.keep_going = data_.size() < wanted_;
    return r;
  }
  std::vector<std::string> data() const {
    std::lock_guard lock(mu_);
    return data_;
  }

 private:
  size_t wanted_;
  mutable std::mutex mu_;
  std::vector<std::string> data_;
};

ClientOptions options(const TlsWsServer& server) {
  ClientOptions o;
  o.url = server.url("/stream");
  o.ca_file = server.ca_file();
  o.reconnect_min = std::chrono::milliseconds(10);
  o.reconnect_max = std::chrono::milliseconds(20);
  return o;
}

TEST(WsUrl, SchemesHostsPortsAndTargets) {
  std::string error;
  auto u = sluice::ws::parse_url("wss://stream.bybit.com/v5/public/linear", &error);
  ASSERT_TRUE(u);
  EXPECT_TRUE(u->tls);
  EXPECT_EQ(u->host, "stream.bybit.com");
  EXPECT_EQ(u->port, "443");
  EXPECT_EQ(u->target, "/v5/public/linear");
  u = sluice::ws::parse_url("wss://ws.okx.com:8443/ws/v5/public", &error);
  ASSERT_TRUE(u);
  EXPECT_EQ(u->port, "8443");
  u = sluice::ws::parse_url("ws://[::1]:9000?x=1", &error);
  ASSERT_TRUE(u);
  EXPECT_FALSE(u->tls);
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, "9000");
  EXPECT_EQ(u->target, "/?x=1");
  u = sluice::ws::parse_url("ws://example.com", &error);
  ASSERT_TRUE(u);
  EXPECT_EQ(u->port, "80");
  EXPECT_EQ(u->target, "/");

  EXPECT_FALSE(sluice::ws::parse_url("https://example.com", &error));
  EXPECT_EQ(error, "must start with wss:// (or ws://)");
  EXPECT_FALSE(sluice::ws::parse_url("wss:///path", &error));
  EXPECT_EQ(error, "has no host");
  EXPECT_FALSE(sluice::ws::parse_url("wss://host:99999/", &error));
  EXPECT_EQ(error, "has a bad port '99999'");
  EXPECT_FALSE(sluice::ws::parse_url("wss://host:/", &error));
}

TEST(WsClient, BadUrlIsAnOptionError) {
  sluice::testkit::TestHost host;
  TestHandler handler(1);
  ClientOptions o;
  o.url = "http://example.com";
  try {
    Client client(o, handler, sluice::Host(host.raw()));
    FAIL() << "no error";
  } catch (const sluice::OptionError& e) {
    EXPECT_EQ(e.key(), "url");
    EXPECT_EQ(std::string(e.what()), "'http://example.com' must start with wss:// (or ws://)");
  }
}

TEST(WsClient, OpenMessagesAreSentOnEveryConnection) {
  TlsWsServer server;
  sluice::testkit::TestHost host;
  TestHandler handler(2);
  StopFlag stop;
  Client client(options(server), handler, sluice::Host(host.raw()));
  std::thread runner([&] {
    auto ctx = stop.ctx();
    client.run(ctx);
  });
  ASSERT_TRUE(TlsWsServer::wait_until([&] { return server.received(1).size() == 2; }));
  server.send(1, "one");
  server.drop(1);
  ASSERT_TRUE(TlsWsServer::wait_until([&] { return server.received(2).size() == 2; }));
  server.send(2, "two");
  runner.join();  // the handler stops the client after two data messages
  EXPECT_EQ(server.received(1), (std::vector<std::string>{"sub-a", "sub-b"}));
  EXPECT_EQ(server.received(2), (std::vector<std::string>{"sub-a", "sub-b"}));
  EXPECT_EQ(handler.data(), (std::vector<std::string>{"one", "two"}));
  EXPECT_EQ(client.stats().connections_opened, 2u);
  EXPECT_EQ(client.stats().reconnects, 1u);
  EXPECT_TRUE(host.logged(SLUICE_LOG_WARN, "reconnecting in"));
}

TEST(WsClient, HeartbeatRepliesWithoutAnIdKeepTheConnection) {
  TlsWsServer server;
  server.set_responder([](const std::string& m) -> std::vector<std::string> {
    if (m == R"({"op":"ping"})") return {"pong"};
    return {};
  });
  sluice::testkit::TestHost host;
  TestHandler handler(1);
  StopFlag stop;
  ClientOptions o = options(server);
  o.heartbeat = std::chrono::milliseconds(20);
  o.heartbeat_timeout = std::chrono::seconds(2);
  o.heartbeat_name = "ping";
  Client client(o, handler, sluice::Host(host.raw()));
  std::thread runner([&] {
    auto ctx = stop.ctx();
    client.run(ctx);
  });
  ASSERT_TRUE(TlsWsServer::wait_until([&] { return server.received(1).size() >= 6; }));
  server.send(1, "data");
  runner.join();
  EXPECT_EQ(server.opened(), 1u);
  EXPECT_EQ(client.stats().reconnects, 0u);
}

TEST(WsClient, UnansweredHeartbeatIsNamedInTheLog) {
  TlsWsServer server;
  sluice::testkit::TestHost host;
  TestHandler handler(1);
  StopFlag stop;
  ClientOptions o = options(server);
  o.heartbeat = std::chrono::milliseconds(20);
  o.heartbeat_timeout = std::chrono::milliseconds(30);
  o.heartbeat_name = "ping";
  Client client(o, handler, sluice::Host(host.raw()));
  std::thread runner([&] {
    auto ctx = stop.ctx();
    client.run(ctx);
  });
  ASSERT_TRUE(TlsWsServer::wait_until([&] { return server.opened() >= 2; }));
  stop.stop();
  runner.join();
  EXPECT_TRUE(host.logged(SLUICE_LOG_WARN, "no reply to ping within 30 ms; reconnecting in"));
}

// ws:// (no TLS): a one-connection plain WebSocket server that records the first message and
// answers with "plain".
TEST(WsClient, PlainWsUrlsConnectWithoutTls) {
  namespace asio = boost::asio;
  namespace websocket = boost::beast::websocket;
  asio::io_context server_io;
  asio::ip::tcp::acceptor acceptor(server_io, {asio::ip::make_address("127.0.0.1"), 0});
  const uint16_t port = acceptor.local_endpoint().port();
  std::string first_message;
  std::thread server([&] {
    websocket::stream<asio::ip::tcp::socket> ws(acceptor.accept());
    ws.accept();
    boost::beast::flat_buffer buffer;
    ws.read(buffer);
    first_message = boost::beast::buffers_to_string(buffer.data());
    ws.text(true);
    ws.write(asio::buffer(std::string("plain")));
    boost::system::error_code ignored;
    ws.read(buffer, ignored);  // until the client goes away
  });
  sluice::testkit::TestHost host;
  TestHandler handler(1);
  StopFlag stop;
  ClientOptions o;
  o.url = "ws://127.0.0.1:" + std::to_string(port) + "/plain";
  Client client(o, handler, sluice::Host(host.raw()));
  auto ctx = stop.ctx();
  client.run(ctx);
  server.join();
  EXPECT_EQ(first_message, "sub-a");
  EXPECT_EQ(handler.data(), (std::vector<std::string>{"plain"}));
}

TEST(Dedup, SameSymbolTimeAndQuantityIsSeenOnceWithinTheWindow) {
  sluice::ws::Deduplicator d(1000, 4);
  EXPECT_TRUE(d.first_sighting("BTCUSDT", 1, 0.5, 0));
  EXPECT_FALSE(d.first_sighting("BTCUSDT", 1, 0.5, 10));
  EXPECT_TRUE(d.first_sighting("ETHUSDT", 1, 0.5, 10));
  EXPECT_TRUE(d.first_sighting("BTCUSDT", 2, 0.5, 10));
  EXPECT_TRUE(d.first_sighting("BTCUSDT", 1, 0.6, 10));
  // Past the window the first sighting is forgotten.
  EXPECT_TRUE(d.first_sighting("BTCUSDT", 1, 0.5, 2000));
  EXPECT_LE(d.size(), 4u);
}

}  // namespace
