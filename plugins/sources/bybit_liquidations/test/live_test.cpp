// Live tests of `bybit_liquidations` against the local TLS WebSocket server (test CA made at test
// time): subscription messages, multi-row pushes, app-level pings and server pings, a dead
// connection, and reconnects with backoff without loss or duplicates when the server replays.
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

constexpr const char* kPong =
    R"({"success":true,"ret_msg":"pong","conn_id":"test","req_id":"","op":"ping"})";

// Push number i: two rows, symbols SYM<2i>USDT and SYM<2i+1>USDT.
std::string push(int i) {
  std::string rows;
  for (int r = 0; r < 2; ++r) {
    const int n = 2 * i + r;
    rows += std::string(r ? "," : "") + R"({"T":)" + std::to_string(1761125802300LL + n) +
            R"(,"s":"SYM)" + std::to_string(n) + R"(USDT","S":"Buy","v":")" +
            std::to_string(n + 1) + R"(","p":"10.5"})";
  }
  return R"({"topic":"allLiquidation.SYMUSDT","type":"snapshot","ts":)" +
         std::to_string(1761125803000LL + i) + R"(,"data":[)" + rows + "]}";
}

// Plays Bybit: acks subscriptions and answers {"op":"ping"} with the linear stream's pong.
void play_bybit(TlsWsServer& server) {
  server.set_responder([](const std::string& m) -> std::vector<std::string> {
    if (m == R"({"op":"ping"})") return {kPong};
    if (m.find(R"("op":"subscribe")") != std::string::npos) {
      return {R"({"success":true,"ret_msg":"","conn_id":"test","req_id":"","op":"subscribe"})"};
    }
    return {};
  });
}

std::string options(TlsWsServer& server, const std::string& extra = "") {
  play_bybit(server);
  return "url = \"" + server.url("/v5/public/linear") + "\"\nca_file = \"" + server.ca_file() +
         "\"\nsymbols = [\"BTCUSDT\", \"ETHUSDT\"]\n" + extra;
}

std::future<Events> start(PluginHarness& source, size_t n) {
  return std::async(std::launch::async, [&source, n] { return source.run_source(n); });
}

std::vector<std::string> symbols(const Events& events) {
  std::vector<std::string> out;
  for (const auto& e : events) {
    out.emplace_back(*EventView(e.data(), e.size()).string("symbol"));
  }
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

TEST(BybitLive, SubscribesThenEveryRowOfAPushBecomesAnEvent) {
  TlsWsServer server;
  PluginHarness source("source", "bybit_liquidations", options(server));
  auto run = start(source, 4);
  ASSERT_TRUE(TlsWsServer::wait_until([&] { return !server.received(1).empty(); }));
  server.send(1, push(0));
  server.send(1, push(1));
  const Events events = run.get();
  EXPECT_EQ(symbols(events), expected_symbols(0, 4));
  EXPECT_EQ(server.targets().at(0), "/v5/public/linear");
  EXPECT_EQ(server.received(1).at(0),
            R"({"op":"subscribe","args":["allLiquidation.BTCUSDT","allLiquidation.ETHUSDT"]})");
  EXPECT_EQ(source.counter("source_parse_errors_total"), 0);
  EventView ev(events[0].data(), events[0].size());
  EXPECT_EQ(ev.string("raw"), push(0));
  EXPECT_EQ(ev.string("liquidated"), "long");
  EXPECT_EQ(ev.string("side"), "SELL");
  EXPECT_DOUBLE_EQ(*ev.number("notional_usd"), 10.5);
}

TEST(BybitLive, ManySymbolsAreSubscribedTenTopicsPerRequest) {
  TlsWsServer server;
  play_bybit(server);
  std::string list;
  for (int i = 0; i < 25; ++i)
    list += std::string(i ? ", " : "") + "\"S" + std::to_string(i) + "\"";
  PluginHarness source("source", "bybit_liquidations",
                       "url = \"" + server.url("/v5/public/linear") + "\"\nca_file = \"" +
                           server.ca_file() + "\"\nsymbols = [" + list + "]");
  auto run = start(source, 2);
  ASSERT_TRUE(TlsWsServer::wait_until([&] { return server.received(1).size() >= 3; }));
  server.send(1, push(0));
  EXPECT_EQ(run.get().size(), 2u);
  const auto sent = server.received(1);
  for (int m = 0; m < 3; ++m) {
    auto j = nlohmann::json::parse(sent.at(m));
    EXPECT_EQ(j["op"], "subscribe");
    EXPECT_EQ(j["args"].size(), m < 2 ? 10u : 5u);
  }
}

TEST(BybitLive, AppPingsGetPongsAndServerPingsAreAnswered) {
  TlsWsServer server;
  PluginHarness source("source", "bybit_liquidations",
                       options(server, "heartbeat = \"30ms\"\nheartbeat_timeout = \"2s\""));
  auto run = start(source, 2);
  ASSERT_TRUE(TlsWsServer::wait_until([&] { return server.received(1).size() >= 4; }));
  server.ping(1, "are-you-there");
  ASSERT_TRUE(TlsWsServer::wait_until([&] { return !server.pongs().empty(); }));
  EXPECT_EQ(server.pongs().at(0), "are-you-there");
  server.send(1, push(0));
  EXPECT_EQ(run.get().size(), 2u);
  const auto sent = server.received(1);
  EXPECT_EQ(sent.at(1), R"({"op":"ping"})");
  EXPECT_EQ(sent.at(2), R"({"op":"ping"})");
  EXPECT_EQ(server.opened(), 1u);
  EXPECT_EQ(source.counter("source_reconnects_total"), 0);
  EXPECT_EQ(source.counter("source_parse_errors_total"), 0);
}

TEST(BybitLive, UnansweredPingMeansADeadConnection) {
  TlsWsServer server;
  PluginHarness source("source", "bybit_liquidations",
                       options(server,
                               "heartbeat = \"30ms\"\nheartbeat_timeout = \"50ms\"\n"
                               "reconnect_min = \"10ms\"\nreconnect_max = \"20ms\""));
  server.answer(false);
  auto run = start(source, 2);
  ASSERT_TRUE(TlsWsServer::wait_until([&] { return server.opened() >= 2; }));
  server.answer(true);
  server.send(server.opened(), push(0));
  EXPECT_EQ(run.get().size(), 2u);
  EXPECT_GE(source.counter("source_reconnects_total"), 1);
  EXPECT_TRUE(has_log(source, "connection 1 to " + server.url("/v5/public/linear") +
                                  ": no reply to ping within 50 ms; reconnecting in"));
}

TEST(BybitLive, RefusedSubscriptionIsLoggedNotCounted) {
  TlsWsServer server;
  PluginHarness source("source", "bybit_liquidations", options(server));
  auto run = start(source, 2);
  ASSERT_TRUE(TlsWsServer::wait_until([&] { return !server.received(1).empty(); }));
  server.send(1, R"({"success":false,"ret_msg":"error:handler not found,topic:allLiquidation.X",)"
                 R"("conn_id":"test","op":"subscribe"})");
  server.send(1, push(0));
  EXPECT_EQ(run.get().size(), 2u);
  EXPECT_TRUE(has_log(source,
                      "the server refused a request: subscribe refused: error:handler "
                      "not found,topic:allLiquidation.X"));
  EXPECT_EQ(source.counter("source_parse_errors_total"), 0);
}

TEST(BybitLive, ReconnectsWithBackoffWithoutLossOrDuplicates) {
  TlsWsServer server;
  PluginHarness source("source", "bybit_liquidations",
                       options(server, "reconnect_min = \"40ms\"\nreconnect_max = \"1s\""));
  auto run = start(source, 20);
  ASSERT_TRUE(TlsWsServer::wait_until([&] { return server.received(1).size() == 1; }));
  for (int i = 0; i < 5; ++i) server.send(1, push(i));
  server.send(1, "{\"topic\":");  // a malformed message: counted, the stream goes on
  server.refuse_next(3);
  server.drop(1);
  ASSERT_TRUE(TlsWsServer::wait_until([&] { return server.received(2).size() == 1; }));
  // The server replays from the last push it sent before the drop.
  for (int i = 4; i < 10; ++i) server.send(2, push(i));
  const Events events = run.get();
  EXPECT_EQ(symbols(events), expected_symbols(0, 20));
  EXPECT_EQ(server.refused(), 3u);
  EXPECT_EQ(server.received(2).at(0), server.received(1).at(0));  // subscribed again
  EXPECT_EQ(source.counter("source_reconnects_total"), 4);
  EXPECT_EQ(source.counter("source_duplicates_total"), 2);
  EXPECT_EQ(source.counter("source_parse_errors_total"), 1);
  const auto at = server.refused_at();
  ASSERT_EQ(at.size(), 3u);
  EXPECT_GE(at[1] - at[0], std::chrono::milliseconds(40));
  EXPECT_GE(at[2] - at[1], std::chrono::milliseconds(80));
}

TEST(BybitLive, StopsPromptlyWhileWaitingToReconnect) {
  TlsWsServer server;
  server.refuse_next(100);
  PluginHarness source("source", "bybit_liquidations",
                       options(server, "reconnect_min = \"1h\"\nreconnect_max = \"1h\""));
  EXPECT_NONFATAL_FAILURE_ON_ALL_THREADS(source.run_source(1, std::chrono::milliseconds(300)),
                                         "harness timeout: the source did not stop");
  EXPECT_EQ(server.refused(), 1u);
}

}  // namespace
