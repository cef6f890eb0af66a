// pipelines/liquidation_alerts.toml end to end, as a desk would run it, with every external
// service replaced by a local stand-in speaking its real protocol over TLS (live_services.hpp):
// Binance frames in; the filter, the LLM classifier and its rules fallback; Telegram and Slack
// out, through a Telegram 429, a Slack rejection, a malformed frame and a dropped exchange
// connection. The Grafana dashboard in docs/ is checked against the metrics this run exports.
#include <gtest/gtest.h>

#include <signal.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "live_services.hpp"
#include "loopback_http.hpp"
#include "process.hpp"

namespace sluice::testing {
namespace {

using nlohmann::json;
using ws::testing::TlsWsServer;

const std::string kPipeline = std::string(SLUICE_SOURCE_DIR) + "/pipelines/liquidation_alerts.toml";
const std::string kDashboard =
    std::string(SLUICE_SOURCE_DIR) + "/docs/grafana/liquidation-alerts.json";

// The port of the admin endpoint, from the line the runtime logs once it listens.
uint16_t admin_port(const ChildProcess& child) {
  uint16_t port = 0;
  TlsWsServer::wait_until([&] {
    static const std::regex re(R"(admin endpoint on http://127\.0\.0\.1:(\d+)/metrics)");
    std::smatch m;
    const std::string err = child.stderr_text();
    if (!std::regex_search(err, m, re)) return false;
    port = static_cast<uint16_t>(std::stoi(m[1]));
    return true;
  });
  return port;
}

std::set<std::string> dashboard_metric_families() {
  std::ifstream in(kDashboard);
  const json dash = json::parse(in);
  std::set<std::string> out;
  static const std::regex metric(R"(sluice_[a-z0-9_]+)");
  for (const json& panel : dash.at("panels")) {
    for (const json& target : panel.at("targets")) {
      const std::string expr = target.at("expr").get<std::string>();
      for (auto it = std::sregex_iterator(expr.begin(), expr.end(), metric);
           it != std::sregex_iterator(); ++it) {
        std::string name = it->str();
        for (const char* suffix : {"_bucket", "_count", "_sum"}) {
          if (name.ends_with(suffix)) name.resize(name.size() - std::strlen(suffix));
        }
        out.insert(name);
      }
    }
  }
  return out;
}

std::string text_of(const RecordedRequest& q) {
  return json::parse(q.body).value("text", std::string());
}

TEST(LiquidationAlerts, LiveBinanceToLlmOrRulesToTelegramAndSlackThroughFailures) {
  LiveServices services;
  // The LLM is down for ETHUSDT: those alerts take the rules fallback.
  services.llm.set_handler([](const RecordedRequest& q) {
    if (q.body.find("ETHUSDT") != std::string::npos) {
      return Reply::json(500, R"({"error":{"message":"overloaded","type":"server_error"}})");
    }
    const json content = {{"risk_level", "HIGH"},
                          {"summary", "LLM summary for the desk"},
                          {"recommendation", "cut leverage"}};
    return Reply::json(
        200, json{{"choices",
                   json::array({{{"index", 0},
                                 {"message", {{"role", "assistant"}, {"content", content.dump()}}},
                                 {"finish_reason", "stop"}}})},
                  {"usage", {{"prompt_tokens", 150}, {"completion_tokens", 40}}}}
                 .dump());
  });
  // Telegram rate-limits the first SOLUSDT message once; Slack's channel is archived for
  // ETHUSDT.
  std::atomic<int> sol_seen{0};
  services.on_telegram_send([&](const RecordedRequest& q) {
    if (q.body.find("SOLUSDT") != std::string::npos && sol_seen++ == 0) {
      return Reply::json(429, R"({"ok":false,"error_code":429,"description":"Too Many Requests: )"
                              R"(retry after 1","parameters":{"retry_after":1}})");
    }
    return Reply::json(200, R"({"ok":true,"result":{"message_id":7,"chat":{"id":4242}}})");
  });
  services.slack.set_handler([](const RecordedRequest& q) {
    if (q.body.find("ETHUSDT") != std::string::npos) return Reply::text(410, "channel_is_archived");
    return Reply::text(200, "ok");
  });

  ChildProcess child({sluice_binary(), "run", kPipeline, "--admin-port", "0"}, services.env(),
                     services.dir.path());
  ASSERT_TRUE(TlsWsServer::wait_until([&] { return services.binance.opened() >= 1; }))
      << child.stderr_text();
  const uint16_t port = admin_port(child);
  ASSERT_NE(port, 0) << child.stderr_text();
  // The stream subscribed to is the routed all-market one.
  EXPECT_EQ(services.binance.targets().at(0), "/market/ws/!forceOrder@arr");

  // $1.28M long liquidation (LLM), $320K short liquidation (LLM down → rules), a real
  // recorded $1K one (below the $100K threshold), and a frame that is not JSON.
  services.binance.send(1, LiveServices::liquidation_frame("BTCUSDT", "SELL", 64000, 20));
  services.binance.send(1, LiveServices::liquidation_frame("ETHUSDT", "BUY", 3200, 100));
  services.binance.send(1,
                        R"({"e":"forceOrder","E":1625030771364,"o":{"s":"BTCUSDT","S":)"
                        R"("SELL","o":"LIMIT","f":"IOC","q":"0.029","p":"34603.03","ap":)"
                        R"("34738.38","X":"FILLED","l":"0.023","z":"0.029","T":1625030771359}})");
  services.binance.send(1, "{not json");
  ASSERT_TRUE(TlsWsServer::wait_until([&] { return services.telegram_messages().size() >= 2; }))
      << child.stderr_text();

  // The exchange drops the connection; the source reconnects and the stream goes on.
  services.binance.drop(1);
  ASSERT_TRUE(TlsWsServer::wait_until([&] { return services.binance.opened() >= 2; }))
      << child.stderr_text();
  services.binance.send(2, LiveServices::liquidation_frame("SOLUSDT", "SELL", 150, 1000));

  // Telegram: BTC and ETH once each, SOL twice (429, then the same message again).
  ASSERT_TRUE(TlsWsServer::wait_until([&] { return services.telegram_messages().size() >= 4; },
                                      std::chrono::seconds(30)))
      << child.stderr_text();
  ASSERT_TRUE(TlsWsServer::wait_until([&] { return services.slack.request_count() >= 3; }))
      << child.stderr_text();
  const std::string undelivered = services.dir.file("undelivered.jsonl");
  ASSERT_TRUE(TlsWsServer::wait_until([&] { return !read_lines(undelivered).empty(); }))
      << child.stderr_text();
  const std::string metrics = loopback_http(port, "GET", "/metrics");

  child.signal(SIGTERM);
  ASSERT_EQ(child.wait(std::chrono::seconds(30)), 0) << child.stderr_text();
  const std::string err = child.stderr_text();
  EXPECT_NE(err.find("events/s"), std::string::npos) << err;

  std::map<std::string, std::vector<std::string>> telegram_by_symbol;
  for (const RecordedRequest& q : services.telegram_messages()) {
    EXPECT_EQ(q.target, std::string("/bot") + kTestBotToken + "/sendMessage");
    const json body = json::parse(q.body);
    EXPECT_EQ(body["chat_id"], 4242);
    EXPECT_EQ(body["parse_mode"], "HTML");
    for (const char* s : {"BTCUSDT", "ETHUSDT", "SOLUSDT"}) {
      if (body["text"].get<std::string>().find(s) != std::string::npos) {
        telegram_by_symbol[s].push_back(body["text"]);
      }
    }
  }
  ASSERT_EQ(telegram_by_symbol["BTCUSDT"].size(), 1u);  // the $1K BTCUSDT one was filtered out
  ASSERT_EQ(telegram_by_symbol["ETHUSDT"].size(), 1u);
  ASSERT_EQ(telegram_by_symbol["SOLUSDT"].size(), 2u);
  EXPECT_EQ(telegram_by_symbol["SOLUSDT"][0], telegram_by_symbol["SOLUSDT"][1]);
  EXPECT_NE(telegram_by_symbol["BTCUSDT"][0].find("LLM summary for the desk"), std::string::npos)
      << telegram_by_symbol["BTCUSDT"][0];
  EXPECT_NE(telegram_by_symbol["BTCUSDT"][0].find("1,280,000"), std::string::npos)
      << telegram_by_symbol["BTCUSDT"][0];
  // ETHUSDT was classified by the rules: no LLM text.
  EXPECT_EQ(telegram_by_symbol["ETHUSDT"][0].find("LLM summary"), std::string::npos);

  // Slack got all three; the ETHUSDT rejection went to undelivered.jsonl with its reason.
  std::set<std::string> slack_symbols;
  for (const RecordedRequest& q : services.slack.requests()) {
    EXPECT_EQ(q.target, kTestSlackPath);
    for (const char* s : {"BTCUSDT", "ETHUSDT", "SOLUSDT"}) {
      if (text_of(q).find(s) != std::string::npos) slack_symbols.insert(s);
    }
  }
  EXPECT_EQ(slack_symbols, (std::set<std::string>{"BTCUSDT", "ETHUSDT", "SOLUSDT"}));
  const auto lines = read_lines(undelivered);
  ASSERT_EQ(lines.size(), 1u);
  const json dead = json::parse(lines[0]);
  EXPECT_EQ(dead["symbol"], "ETHUSDT");
  EXPECT_EQ(dead["classifier"], "rules");
  EXPECT_NE(lines[0].find("channel_is_archived"), std::string::npos) << lines[0];

  // The LLM got the key as a bearer token, and a JSON-mode request for the model.
  const auto llm_requests = services.llm.requests();
  ASSERT_GE(llm_requests.size(), 3u);
  EXPECT_EQ(llm_requests[0].target, "/v1/chat/completions");
  EXPECT_EQ(llm_requests[0].header("Authorization").value_or(""),
            std::string("Bearer ") + kTestLlmKey);
  EXPECT_EQ(json::parse(llm_requests[0].body)["model"], "gpt-4o-mini");

  // Secrets never reach the log.
  for (const std::string& secret :
       {std::string(kTestLlmKey), std::string(kTestBotToken), std::string("SLACKSECRET42")}) {
    EXPECT_EQ(err.find(secret), std::string::npos) << "secret in the log: " << err;
    EXPECT_EQ(metrics.find(secret), std::string::npos);
  }

  // Every metric the Grafana dashboard queries was exported by this run.
  const auto families = dashboard_metric_families();
  EXPECT_GE(families.size(), 15u);
  for (const std::string& family : families) {
    EXPECT_NE(metrics.find("# TYPE " + family + " "), std::string::npos)
        << "the dashboard queries " << family << ", which /metrics does not export";
  }
  // Named series the desk watches.
  EXPECT_NE(metrics.find("sluice_alerts_delivered_total{node=\"telegram\",symbol=\"SOLUSDT\"} 1\n"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("sluice_source_reconnects_total{node=\"binance\"} 1\n"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("sluice_source_parse_errors_total{node=\"binance\""), std::string::npos);
  EXPECT_NE(metrics.find("sluice_alert_latency_seconds_count{node=\"telegram\"} 3\n"),
            std::string::npos)
      << metrics;
}

// The desk raises the threshold from Telegram while the pipeline runs: the filter reads the new
// value at once, and a stranger's attempt is refused.
TEST(LiquidationAlerts, SetthresholdFromTelegramChangesWhatTheLiveFilterLetsThrough) {
  LiveServices services;
  ChildProcess child({sluice_binary(), "run", kPipeline, "--admin-port", "0"}, services.env(),
                     services.dir.path());
  ASSERT_TRUE(TlsWsServer::wait_until([&] { return services.binance.opened() >= 1; }))
      << child.stderr_text();
  const uint16_t port = admin_port(child);
  ASSERT_NE(port, 0) << child.stderr_text();
  auto texts = [&] {
    std::vector<std::string> out;
    for (const RecordedRequest& q : services.telegram_messages()) out.push_back(text_of(q));
    return out;
  };
  auto count_with = [&](const std::string& needle) {
    size_t n = 0;
    for (const std::string& t : texts()) n += t.find(needle) != std::string::npos ? 1 : 0;
    return n;
  };

  // $1.28M passes the $100K threshold.
  services.binance.send(1, LiveServices::liquidation_frame("BTCUSDT", "SELL", 64000, 20));
  ASSERT_TRUE(TlsWsServer::wait_until([&] { return count_with("BTCUSDT") == 1; }))
      << child.stderr_text();

  services.push_telegram_command(31337, "/setthreshold 1");
  services.push_telegram_command(kTestAdminId, "/setthreshold 2000000");
  ASSERT_TRUE(TlsWsServer::wait_until([&] { return count_with("2,000,000") >= 1; }))
      << child.stderr_text();
  EXPECT_EQ(count_with("Not authorised"), 1u);
  const std::string settings = loopback_http(port, "GET", "/settings");
  EXPECT_NE(settings.find("\"min_alert_usd\":2000000"), std::string::npos) << settings;

  // Now $1.28M is below the threshold and $2.5M is not.
  services.binance.send(1, LiveServices::liquidation_frame("BTCUSDT", "SELL", 64000, 20));
  services.binance.send(1, LiveServices::liquidation_frame("SOLUSDT", "SELL", 250, 10000));
  ASSERT_TRUE(TlsWsServer::wait_until([&] { return count_with("SOLUSDT") == 1; }))
      << child.stderr_text();
  EXPECT_EQ(count_with("BTCUSDT"), 1u);

  child.signal(SIGTERM);
  ASSERT_EQ(child.wait(std::chrono::seconds(30)), 0) << child.stderr_text();
  EXPECT_EQ(child.stderr_text().find(kTestBotToken), std::string::npos);
}

// With BYBIT=true and OKX=true the same pipeline takes their liquidations too, normalised to the
// same fields: Bybit's S = "Buy" is a long liquidated; OKX's size is in contracts, valued with
// the ctVal its instruments endpoint gives.
TEST(LiquidationAlerts, OptionalBybitAndOkxSourcesFeedTheSameAlerts) {
  LiveServices services;
  auto env = services.env();
  env["BYBIT"] = "true";
  env["OKX"] = "true";
  ChildProcess child({sluice_binary(), "run", kPipeline, "--admin-port", "0"}, env,
                     services.dir.path());
  ASSERT_TRUE(TlsWsServer::wait_until([&] {
    return services.binance.opened() >= 1 && services.bybit.opened() >= 1 &&
           services.okx.opened() >= 1;
  })) << "opened: binance " << services.binance.opened() << ", bybit " << services.bybit.opened()
      << " (refused " << services.bybit.refused() << "), okx " << services.okx.opened() << "\n"
      << child.stderr_text();
  // Subscribed only once the sources asked for their topics.
  ASSERT_TRUE(TlsWsServer::wait_until([&] {
    return !services.bybit.received(1).empty() && !services.okx.received(1).empty();
  })) << child.stderr_text();
  EXPECT_NE(services.bybit.received(1)[0].find("allLiquidation.SOLUSDT"), std::string::npos);
  EXPECT_NE(services.okx.received(1)[0].find("liquidation-orders"), std::string::npos);

  // Bybit: $450K of SOLUSDT longs. OKX: 2000 BTC-USDT-SWAP contracts × 0.01 BTC × $64,000 =
  // $1.28M of shorts.
  services.bybit.send(1, LiveServices::bybit_push("SOLUSDT", "Buy", 150, 3000));
  ASSERT_TRUE(TlsWsServer::wait_until([&] { return services.okx_rest.request_count() >= 1; }))
      << child.stderr_text();
  services.okx.send(1, LiveServices::okx_push("BTC-USDT-SWAP", "short", 64000, 2000));
  ASSERT_TRUE(TlsWsServer::wait_until([&] { return services.telegram_messages().size() >= 2; }))
      << child.stderr_text();
  child.signal(SIGTERM);
  ASSERT_EQ(child.wait(std::chrono::seconds(30)), 0) << child.stderr_text();

  std::map<std::string, std::string> by_symbol;
  for (const RecordedRequest& q : services.telegram_messages()) {
    const std::string text = text_of(q);
    for (const char* s : {"SOLUSDT", "BTCUSDT"}) {
      if (text.find(s) != std::string::npos) by_symbol[s] = text;
    }
  }
  ASSERT_EQ(by_symbol.size(), 2u);
  EXPECT_NE(by_symbol["SOLUSDT"].find("long liquidated"), std::string::npos)
      << by_symbol["SOLUSDT"];
  EXPECT_NE(by_symbol["SOLUSDT"].find("450,000"), std::string::npos) << by_symbol["SOLUSDT"];
  EXPECT_NE(by_symbol["SOLUSDT"].find("bybit"), std::string::npos) << by_symbol["SOLUSDT"];
  EXPECT_NE(by_symbol["BTCUSDT"].find("short liquidated"), std::string::npos)
      << by_symbol["BTCUSDT"];
  EXPECT_NE(by_symbol["BTCUSDT"].find("1,280,000"), std::string::npos) << by_symbol["BTCUSDT"];
  EXPECT_NE(by_symbol["BTCUSDT"].find("okx"), std::string::npos) << by_symbol["BTCUSDT"];
}

}  // namespace
}  // namespace sluice::testing
