// Live tests of `binance_liquidations` against a local TLS WebSocket server (test CA made at
// test time): delivery, pings, heartbeats, reconnects with backoff, no loss or duplicates when
// the server replays after a reconnect, and rollover to a fresh connection.
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <future>
#include <string>
#include <vector>

#include "plugin_harness.hpp"
#include "tls_ws_server.hpp"

namespace {

using sluice::EventView;
using sluice::testing::PluginHarness;
using sluice::ws::testing::TlsWsServer;
using Events = std::vector<std::vector<uint8_t>>;

// A liquidation frame for symbol number i (distinct symbol, trade time and quantity).
std::string frame(int i) {
  const std::string t = std::to_string(1761125802300LL + i * 1000);
  return R"({"e":"forceOrder","E":)" + t + R"(,"o":{"s":"SYM)" + std::to_string(i) +
         R"(USDT","S":"SELL","o":"LIMIT","f":"IOC","q":"1","p":"10.5","ap":"10.0","X":"FILLED",)"
         R"("l":"1","z":")" +
         std::to_string(i + 1) + R"(","T":)" + t + "}}";
}

std::string symbol_of(const std::vector<uint8_t>& bytes) {
  return std::string(*EventView(bytes.data(), bytes.size()).string("symbol"));
}

// Answers LIST_SUBSCRIPTIONS as Binance does: {"result":[…],"id":n} with the request's id.
void answer_list_subscriptions(TlsWsServer& server) {
  server.set_responder([](const std::string& text) -> std::vector<std::string> {
    const size_t at = text.find("\"id\":");
    if (text.find("LIST_SUBSCRIPTIONS") == std::string::npos || at == std::string::npos) return {};
    const std::string id = text.substr(at + 5, text.find('}', at) - at - 5);
    return {R"({"result":["!forceOrder@arr"],"id":)" + id + "}"};
  });
}

std::string options(TlsWsServer& server, const std::string& extra = "") {
  answer_list_subscriptions(server);
  return "url = \"" + server.url("/market/ws/!forceOrder@arr") + "\"\nca_file = \"" +
         server.ca_file() + "\"\n" + extra;
}

// Runs the source on its own thread until it has emitted n events.
std::future<Events> start(PluginHarness& source, size_t n) {
  return std::async(std::launch::async, [&source, n] { return source.run_source(n); });
}

std::vector<std::string> symbols(const Events& events) {
  std::vector<std::string> out;
  for (const auto& e : events) out.push_back(symbol_of(e));
  return out;
}

std::vector<std::string> expected_symbols(int from, int to) {
  std::vector<std::string> out;
  for (int i = from; i < to; ++i) out.push_back("SYM" + std::to_string(i) + "USDT");
  return out;
}

bool has_log(const PluginHarness& source, const std::string& part) {
  for (const auto& l : source.logs()) {
    if (l.message.find(part) != std::string::npos) return true;
  }
  return false;
}

TEST(BinanceLive, FramesArriveOverTlsAndControlRepliesAreNoEvents) {
  TlsWsServer server;
  PluginHarness source("source", "binance_liquidations", options(server));
  auto run = start(source, 3);
  ASSERT_TRUE(TlsWsServer::wait_until([&] { return server.opened() == 1; }));
  server.send(1, frame(0));
  server.send(1, R"({"result":null,"id":99})");
  server.send(1, R"({"stream":"!forceOrder@arr","data":)" + frame(1) + "}");
  server.send(1, frame(2));
  const Events events = run.get();
  EXPECT_EQ(symbols(events), expected_symbols(0, 3));
  EXPECT_EQ(server.targets().at(0), "/market/ws/!forceOrder@arr");
  EXPECT_EQ(source.counter("source_parse_errors_total"), 0);
  EventView ev(events[0].data(), events[0].size());
  EXPECT_EQ(ev.string("raw"), frame(0));
  EXPECT_EQ(ev.string("liquidated"), "long");
}

TEST(BinanceLive, SymbolsSubscribeTheCombinedStreamPath) {
  TlsWsServer server;
  PluginHarness source("source", "binance_liquidations",
                       options(server, "symbols = [\"BTCUSDT\", \"EthUsdt\"]"));
  auto run = start(source, 1);
  ASSERT_TRUE(TlsWsServer::wait_until([&] { return server.opened() == 1; }));
  server.send(1, R"({"stream":"btcusdt@forceOrder","data":)" + frame(0) + "}");
  EXPECT_EQ(run.get().size(), 1u);
  EXPECT_EQ(server.targets().at(0), "/market/stream?streams=btcusdt@forceOrder/ethusdt@forceOrder");
}

TEST(BinanceLive, UntrustedCertificateIsRefusedAndRetried) {
  TlsWsServer server;
  TlsWsServer other;  // its CA did not sign server's certificate
  PluginHarness source("source", "binance_liquidations",
                       "url = \"" + server.url("/market/ws/!forceOrder@arr") + "\"\nca_file = \"" +
                           other.ca_file() +
                           "\"\nreconnect_min = \"10ms\"\n"
                           "reconnect_max = \"20ms\"");
  Events events;
  // Nothing ever arrives: the harness stops the source after 600 ms, which it reports.
  EXPECT_NONFATAL_FAILURE_ON_ALL_THREADS(
      events = source.run_source(1, std::chrono::milliseconds(600)),
      "harness timeout: the source did not stop");
  EXPECT_TRUE(events.empty());
  EXPECT_EQ(server.opened(), 0u);
  EXPECT_TRUE(has_log(source, "TLS handshake failed: certificate verify failed"));
  EXPECT_GE(source.counter("source_reconnects_total"), 1);
}

TEST(BinanceLive, ServerPingIsAnswered) {
  TlsWsServer server;
  PluginHarness source("source", "binance_liquidations", options(server));
  auto run = start(source, 1);
  ASSERT_TRUE(TlsWsServer::wait_until([&] { return server.opened() == 1; }));
  server.ping(1, "are-you-there");
  ASSERT_TRUE(TlsWsServer::wait_until([&] { return !server.pongs().empty(); }));
  EXPECT_EQ(server.pongs().at(0), "are-you-there");
  server.send(1, frame(0));
  EXPECT_EQ(run.get().size(), 1u);
}

TEST(BinanceLive, HeartbeatsKeepASilentConnection) {
  TlsWsServer server;
  PluginHarness source("source", "binance_liquidations",
                       options(server, "heartbeat = \"30ms\"\nheartbeat_timeout = \"2s\""));
  auto run = start(source, 1);
  ASSERT_TRUE(TlsWsServer::wait_until([&] { return server.received(1).size() >= 3; }));
  server.send(1, frame(0));
  EXPECT_EQ(run.get().size(), 1u);
  const auto sent = server.received(1);
  EXPECT_EQ(sent.at(0), R"({"method":"LIST_SUBSCRIPTIONS","id":1})");
  EXPECT_EQ(sent.at(1), R"({"method":"LIST_SUBSCRIPTIONS","id":2})");
  EXPECT_EQ(server.opened(), 1u);
  EXPECT_EQ(source.counter("source_reconnects_total"), 0);
}

TEST(BinanceLive, UnansweredHeartbeatMeansADeadConnection) {
  TlsWsServer server;
  server.answer(false);
  PluginHarness source("source", "binance_liquidations",
                       options(server,
                               "heartbeat = \"30ms\"\nheartbeat_timeout = \"50ms\"\n"
                               "reconnect_min = \"10ms\"\nreconnect_max = \"20ms\""));
  auto run = start(source, 1);
  ASSERT_TRUE(TlsWsServer::wait_until([&] { return server.opened() >= 2; }));
  server.answer(true);
  server.send(server.opened(), frame(0));
  EXPECT_EQ(run.get().size(), 1u);
  EXPECT_GE(source.counter("source_reconnects_total"), 1);
  EXPECT_TRUE(
      has_log(source, "connection 1 to " + server.url("/market/ws/!forceOrder@arr") +
                          ": no reply to LIST_SUBSCRIPTIONS within 50 ms; reconnecting in"));
}

TEST(BinanceLive, ReconnectsWithBackoffWithoutLossOrDuplicates) {
  TlsWsServer server;
  PluginHarness source("source", "binance_liquidations",
                       options(server, "reconnect_min = \"40ms\"\nreconnect_max = \"1s\""));
  auto run = start(source, 10);
  ASSERT_TRUE(TlsWsServer::wait_until([&] { return server.opened() == 1; }));
  for (int i = 0; i < 5; ++i) server.send(1, frame(i));
  server.refuse_next(3);
  server.drop(1);
  ASSERT_TRUE(TlsWsServer::wait_until([&] { return server.opened() == 2; }));
  // The server replays from the last frame it sent before the drop.
  for (int i = 4; i < 10; ++i) server.send(2, frame(i));
  const Events events = run.get();
  EXPECT_EQ(symbols(events), expected_symbols(0, 10));
  EXPECT_EQ(server.refused(), 3u);
  EXPECT_EQ(source.counter("source_reconnects_total"), 4);
  EXPECT_EQ(source.counter("source_duplicates_total"), 1);
  // Each refused attempt waits at least half the doubled delay: 20, 40, 80 ms floors.
  const auto at = server.refused_at();
  ASSERT_EQ(at.size(), 3u);
  EXPECT_GE(at[1] - at[0], std::chrono::milliseconds(40));
  EXPECT_GE(at[2] - at[1], std::chrono::milliseconds(80));
  EXPECT_TRUE(has_log(source, "(attempt 4)"));
}

TEST(BinanceLive, RolloverOpensTheNewConnectionFirstAndLosesNothing) {
  TlsWsServer server;
  PluginHarness source("source", "binance_liquidations", options(server, "rollover = \"300ms\""));
  constexpr int kFrames = 40;
  auto run = start(source, kFrames);
  ASSERT_TRUE(TlsWsServer::wait_until([&] { return server.opened() == 1; }));
  // Every open connection gets every frame, like Binance's broadcast streams.
  for (int i = 0; i < kFrames; ++i) {
    server.broadcast(frame(i));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const Events events = run.get();
  EXPECT_EQ(symbols(events), expected_symbols(0, kFrames));
  EXPECT_GE(server.opened(), 2u);
  EXPECT_GE(server.max_open(), 2u);  // the new connection was up before the old one closed
  EXPECT_GE(source.counter("source_rollovers_total"), 1);
  EXPECT_EQ(source.counter("source_reconnects_total"), 0);
}

TEST(BinanceLive, StopsPromptlyWhileWaitingToReconnect) {
  TlsWsServer server;
  server.refuse_next(100);
  PluginHarness source("source", "binance_liquidations",
                       options(server, "reconnect_min = \"1h\"\nreconnect_max = \"1h\""));
  // The harness asks the source to stop after 300 ms; run() must return although a reconnect
  // is an hour away.
  EXPECT_NONFATAL_FAILURE_ON_ALL_THREADS(source.run_source(1, std::chrono::milliseconds(300)),
                                         "harness timeout: the source did not stop");
  EXPECT_EQ(server.refused(), 1u);
  EXPECT_TRUE(has_log(source, "reconnecting in"));
}

}  // namespace
