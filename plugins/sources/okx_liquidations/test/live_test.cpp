// Live tests of `okx_liquidations` against the local TLS WebSocket server and a local HTTPS
// server for the instruments endpoint (test CAs made at test time): the subscription, contract
// values fetched at start and again for a new listing, text pings, a dead connection, and
// reconnects with backoff without loss or duplicates when the server replays.
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <fstream>
#include <future>
#include <sstream>
#include <string>
#include <vector>

#include "http_test_server.hpp"
#include "pipeline_runner.hpp"
#include "plugin_harness.hpp"
#include "tls_ws_server.hpp"

namespace {

using sluice::EventView;
using sluice::testing::HttpTestServer;
using sluice::testing::PluginHarness;
using sluice::testing::Reply;
using sluice::ws::testing::TlsWsServer;
using Events = std::vector<std::vector<uint8_t>>;

const std::string kInstruments =
    SLUICE_SOURCE_DIR "/plugins/sources/okx_liquidations/test/data/instruments_swap.json";
constexpr const char* kSubscribe =
    R"({"op":"subscribe","args":[{"channel":"liquidation-orders","instType":"SWAP"}]})";

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Push number i: one BTC-USDT-SWAP detail of i + 1 contracts (distinct ts and size).
std::string push(int i, const std::string& instrument = "BTC-USDT-SWAP") {
  return R"({"arg":{"channel":"liquidation-orders","instType":"SWAP"},"data":[{"details":[)"
         R"({"bkLoss":"0","bkPx":"100","ccy":"","posSide":"long","side":"sell","sz":")" +
         std::to_string(i + 1) + R"(","ts":")" + std::to_string(1761125802300LL + i) +
         R"("}],"instFamily":"X","instId":")" + instrument + R"(","instType":"SWAP"}]})";
}

// The local exchange: a WebSocket server that acks the subscription and answers "ping" with
// "pong", an HTTPS server with the instruments, and one CA bundle trusting both.
struct Exchange {
  TlsWsServer ws;
  HttpTestServer rest{{.tls = true}};
  sluice::testing::TempDir dir;
  std::string ca_bundle;

  Exchange() {
    ws.set_responder([](const std::string& m) -> std::vector<std::string> {
      if (m == "ping") return {"pong"};
      if (m == kSubscribe) {
        return {R"({"event":"subscribe","arg":{"channel":"liquidation-orders",)"
                R"("instType":"SWAP"},"connId":"test"})"};
      }
      return {};
    });
    ca_bundle = dir.write("ca.pem", slurp(ws.ca_file()) + slurp(rest.ca_file()));
  }
  void serve_instruments(const std::string& body) {
    rest.set_handler(
        [body](const sluice::testing::RecordedRequest&) { return Reply::json(200, body); });
  }
  std::string options(const std::string& extra = "") const {
    return "url = \"" + ws.url("/ws/v5/public") + "\"\nrest_base = \"" + rest.base_url() +
           "\"\nca_file = \"" + ca_bundle + "\"\n" + extra;
  }
};

std::future<Events> start(PluginHarness& source, size_t n) {
  return std::async(std::launch::async, [&source, n] { return source.run_source(n); });
}

std::vector<double> contracts(const Events& events) {
  std::vector<double> out;
  for (const auto& e : events) out.push_back(*EventView(e.data(), e.size()).number("contracts"));
  return out;
}

std::vector<double> expected_contracts(int from, int to) {
  std::vector<double> out;
  for (int i = from; i < to; ++i) out.push_back(i + 1);
  return out;
}

bool has_log(const PluginHarness& source, const std::string& part) {
  for (const auto& l : source.logs()) {
    if (l.message.find(part) != std::string::npos) return true;
  }
  return false;
}

TEST(OkxLive, FetchesInstrumentsSubscribesAndValuesEveryDetail) {
  Exchange ex;
  ex.serve_instruments(slurp(kInstruments));
  PluginHarness source("source", "okx_liquidations", ex.options());
  auto run = start(source, 2);
  ASSERT_TRUE(TlsWsServer::wait_until([&] { return !ex.ws.received(1).empty(); }));
  ex.ws.send(1, push(0));
  ex.ws.send(1, push(1, "BTC-USD-SWAP"));
  const Events events = run.get();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(ex.ws.received(1).at(0), kSubscribe);
  EXPECT_EQ(ex.ws.targets().at(0), "/ws/v5/public");
  ASSERT_GE(ex.rest.requests().size(), 1u);
  EXPECT_EQ(ex.rest.requests()[0].method, "GET");
  EXPECT_EQ(ex.rest.requests()[0].target, "/api/v5/public/instruments?instType=SWAP");
  EventView linear(events[0].data(), events[0].size());
  EXPECT_EQ(linear.string("symbol"), "BTCUSDT");
  EXPECT_EQ(linear.string("instrument"), "BTC-USDT-SWAP");
  EXPECT_DOUBLE_EQ(*linear.number("notional_usd"), 1 * 0.01 * 100);
  EventView inverse(events[1].data(), events[1].size());
  EXPECT_EQ(inverse.string("symbol"), "BTCUSD");
  EXPECT_DOUBLE_EQ(*inverse.number("notional_usd"), 2 * 100.0);
  EXPECT_TRUE(has_log(source, "loaded the contract values of 4 OKX SWAP instruments"));
}

TEST(OkxLive, ANewListingIsFetchedAgainAndNeverValuedWrongly) {
  Exchange ex;
  // The first reply lacks ETH-USDT-SWAP; the next one has it.
  ex.rest.enqueue(Reply::json(
      200, R"({"code":"0","msg":"","data":[{"instId":"BTC-USDT-SWAP","ctVal":"0.01"}]})"));
  ex.serve_instruments(slurp(kInstruments));
  PluginHarness source("source", "okx_liquidations", ex.options());
  auto run = start(source, 2);
  ASSERT_TRUE(TlsWsServer::wait_until([&] { return !ex.ws.received(1).empty(); }));
  ex.ws.send(1, push(0, "ETH-USDT-SWAP"));  // unknown: skipped, counted, fetched again
  ASSERT_TRUE(ex.rest.wait_for_requests(2));
  ASSERT_TRUE(
      TlsWsServer::wait_until([&] { return has_log(source, "loaded the contract values of 4"); }));
  ex.ws.send(1, push(1, "ETH-USDT-SWAP"));
  ex.ws.send(1, push(2));
  const Events events = run.get();
  EXPECT_EQ(contracts(events), expected_contracts(1, 3));
  EXPECT_DOUBLE_EQ(*EventView(events[0].data(), events[0].size()).number("notional_usd"),
                   2 * 0.1 * 100);
  EXPECT_EQ(source.counter("source_unknown_instruments_total"), 1);
  EXPECT_TRUE(has_log(source, "no contract value for ETH-USDT-SWAP"));
}

TEST(OkxLive, FailedInstrumentsFetchFallsBackToConfiguredValues) {
  Exchange ex;
  ex.rest.set_handler([](const sluice::testing::RecordedRequest&) {
    return Reply::json(503, R"({"code":"50001","msg":"Service temporarily unavailable"})");
  });
  PluginHarness source("source", "okx_liquidations",
                       ex.options("contract_values = { \"BTC-USDT-SWAP\" = 0.01 }"));
  auto run = start(source, 1);
  ASSERT_TRUE(TlsWsServer::wait_until([&] { return !ex.ws.received(1).empty(); }));
  ex.ws.send(1, push(0, "ETH-USDT-SWAP"));
  ex.ws.send(1, push(1));
  const Events events = run.get();
  EXPECT_EQ(contracts(events), expected_contracts(1, 2));
  EXPECT_EQ(source.counter("source_unknown_instruments_total"), 1);
  EXPECT_TRUE(has_log(source, "cannot load OKX instruments from " + ex.rest.base_url() +
                                  "/api/v5/public/instruments?instType=SWAP: HTTP 503: "));
}

TEST(OkxLive, TextPingsGetPongsAndServerPingsAreAnswered) {
  Exchange ex;
  ex.serve_instruments(slurp(kInstruments));
  PluginHarness source("source", "okx_liquidations",
                       ex.options("heartbeat = \"30ms\"\nheartbeat_timeout = \"2s\""));
  auto run = start(source, 1);
  ASSERT_TRUE(TlsWsServer::wait_until([&] { return ex.ws.received(1).size() >= 4; }));
  ex.ws.ping(1, "are-you-there");
  ASSERT_TRUE(TlsWsServer::wait_until([&] { return !ex.ws.pongs().empty(); }));
  ex.ws.send(1, push(0));
  EXPECT_EQ(run.get().size(), 1u);
  EXPECT_EQ(ex.ws.received(1).at(1), "ping");
  EXPECT_EQ(ex.ws.pongs().at(0), "are-you-there");
  EXPECT_EQ(ex.ws.opened(), 1u);
  EXPECT_EQ(source.counter("source_reconnects_total"), 0);
  EXPECT_EQ(source.counter("source_parse_errors_total"), 0);
}

TEST(OkxLive, UnansweredPingMeansADeadConnection) {
  Exchange ex;
  ex.serve_instruments(slurp(kInstruments));
  ex.ws.answer(false);
  PluginHarness source("source", "okx_liquidations",
                       ex.options("heartbeat = \"30ms\"\nheartbeat_timeout = \"50ms\"\n"
                                  "reconnect_min = \"10ms\"\nreconnect_max = \"20ms\""));
  auto run = start(source, 1);
  ASSERT_TRUE(TlsWsServer::wait_until([&] { return ex.ws.opened() >= 2; }));
  ex.ws.answer(true);
  ex.ws.send(ex.ws.opened(), push(0));
  EXPECT_EQ(run.get().size(), 1u);
  EXPECT_TRUE(has_log(source, "no reply to ping within 50 ms; reconnecting in"));
}

TEST(OkxLive, ReconnectsWithBackoffWithoutLossOrDuplicates) {
  Exchange ex;
  ex.serve_instruments(slurp(kInstruments));
  PluginHarness source("source", "okx_liquidations",
                       ex.options("reconnect_min = \"40ms\"\nreconnect_max = \"1s\""));
  auto run = start(source, 10);
  ASSERT_TRUE(TlsWsServer::wait_until([&] { return !ex.ws.received(1).empty(); }));
  for (int i = 0; i < 5; ++i) ex.ws.send(1, push(i));
  ex.ws.send(1, "not json");  // counted, the stream goes on
  ex.ws.refuse_next(3);
  ex.ws.drop(1);
  ASSERT_TRUE(TlsWsServer::wait_until([&] { return !ex.ws.received(2).empty(); }));
  for (int i = 4; i < 10; ++i) ex.ws.send(2, push(i));
  const Events events = run.get();
  EXPECT_EQ(contracts(events), expected_contracts(0, 10));
  EXPECT_EQ(ex.ws.received(2).at(0), kSubscribe);
  EXPECT_EQ(ex.ws.refused(), 3u);
  EXPECT_EQ(source.counter("source_reconnects_total"), 4);
  EXPECT_EQ(source.counter("source_duplicates_total"), 1);
  EXPECT_EQ(source.counter("source_parse_errors_total"), 1);
  const auto at = ex.ws.refused_at();
  ASSERT_EQ(at.size(), 3u);
  EXPECT_GE(at[1] - at[0], std::chrono::milliseconds(40));
  EXPECT_GE(at[2] - at[1], std::chrono::milliseconds(80));
}

TEST(OkxLive, StopsPromptlyWhileTheInstrumentsServerHangs) {
  Exchange ex;
  ex.rest.set_handler([](const sluice::testing::RecordedRequest&) {
    return Reply::json(200, "{}").after(std::chrono::seconds(5));
  });
  PluginHarness source("source", "okx_liquidations", ex.options());
  const auto start_time = std::chrono::steady_clock::now();
  EXPECT_NONFATAL_FAILURE_ON_ALL_THREADS(source.run_source(1, std::chrono::milliseconds(300)),
                                         "harness timeout: the source did not stop");
  EXPECT_LT(std::chrono::steady_clock::now() - start_time, std::chrono::seconds(4));
  EXPECT_EQ(ex.ws.opened(), 0u);
}

}  // namespace
