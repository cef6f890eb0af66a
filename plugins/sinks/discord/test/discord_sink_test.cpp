// Tests of the `discord` sink through the real loader and host, against the scripted HTTP test
// server: the exact message and embed, the 2000-character cut, 429 with a JSON retry_after,
// permanent failures with Discord's message, and the secret webhook URL.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "http_test_server.hpp"
#include "plugin_harness.hpp"

namespace {

using nlohmann::json;
using sluice::Status;
using sluice::testing::HttpTestServer;
using sluice::testing::make_event;
using sluice::testing::PluginHarness;
using sluice::testing::Reply;

constexpr const char* kPath = "/api/webhooks/123/SECRETTOKEN456";

// The server's URL, the options in extra, and fast defaults for those extra leaves out.
std::string options(const HttpTestServer& server, const std::string& extra = "") {
  std::string out = "url = \"" + server.url(kPath) + "\"\n" + extra + "\n";
  if (extra.find("retry_backoff =") == std::string::npos) out += "retry_backoff = \"1ms\"\n";
  return out;
}

std::vector<uint8_t> liquidation(const std::string& symbol = "ETHUSDT") {
  return make_event({{"exchange", "binance"},
                     {"symbol", symbol},
                     {"side", "BUY"},
                     {"liquidated", "short"},
                     {"price", 2650.25},
                     {"quantity", 10},
                     {"notional_usd", 26502.5}});
}

Reply no_content() {
  Reply r;
  r.status = 204;
  return r;
}

TEST(DiscordSinkTest, PostsContentThatPingsNobodyAndTreats204AsSuccess) {
  HttpTestServer server;
  server.enqueue(no_content());
  PluginHarness sink("sink", "discord", options(server, "username = \"Sluice\""));
  auto r = sink.process(liquidation());
  EXPECT_TRUE(r.outcome.ok()) << r.outcome.message;
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "POST");
  EXPECT_EQ(reqs[0].target, kPath);
  EXPECT_EQ(reqs[0].header("Content-Type").value_or(""), "application/json");
  EXPECT_EQ(json::parse(reqs[0].body),
            json({{"content",
                   ":rotating_light: **ETHUSDT** short liquidated on binance: BUY 10 @ 2650.25 "
                   "(notional $26502.5)"},
                  {"allowed_mentions", {{"parse", json::array()}}},
                  {"username", "Sluice"}}));
}

TEST(DiscordSinkTest, AddsAnEmbedOfTheChosenFields) {
  HttpTestServer server;
  PluginHarness sink("sink", "discord",
                     options(server,
                             "template = \"{{symbol}}\"\nembed = true\n"
                             "embed_fields = [\"side\", \"price\", \"missing\"]"));
  EXPECT_TRUE(sink.process(liquidation()).outcome.ok());
  EXPECT_EQ(json::parse(server.requests().at(0).body),
            json({{"content", "ETHUSDT"},
                  {"allowed_mentions", {{"parse", json::array()}}},
                  {"embeds",
                   {{{"title", "ETHUSDT short liquidation"},
                     {"color", 0x2ECC71},
                     {"fields",
                      {{{"name", "side"}, {"value", "BUY"}, {"inline", true}},
                       {{"name", "price"}, {"value", "2650.25"}, {"inline", true}}}}}}}}));
}

// A `watch` (or any node) alerting about the pipeline itself: its text, and no embed.
TEST(DiscordSinkTest, APipelineAlertIsPostedAsItsTextWithoutAnEmbed) {
  HttpTestServer server;
  PluginHarness sink("sink", "discord", options(server, "embed = true\nembed_fields = [\"side\"]"));
  EXPECT_TRUE(sink.process(make_event({{"alert", "resolved"},
                                       {"watch", "failover"},
                                       {"text", "failover rate is back to 4%"}}))
                  .outcome.ok());
  EXPECT_EQ(json::parse(server.requests().at(0).body),
            json({{"content", "failover rate is back to 4%"},
                  {"allowed_mentions", {{"parse", json::array()}}}}));
}

TEST(DiscordSinkTest, CutsContentTo2000CharactersOnACharacterBoundary) {
  HttpTestServer server;
  PluginHarness sink("sink", "discord", options(server, "template = \"{{symbol}}\""));
  std::string long_symbol;
  for (int i = 0; i < 2500; ++i) long_symbol += "币";
  EXPECT_TRUE(sink.process(liquidation(long_symbol)).outcome.ok());
  std::string expected;
  for (int i = 0; i < 1999; ++i) expected += "币";
  expected += "…";
  EXPECT_EQ(json::parse(server.requests().at(0).body).at("content"), expected);
}

TEST(DiscordSinkTest, WaitsTheJsonRetryAfterOfA429AndResendsOnce) {
  HttpTestServer server;
  server.enqueue(Reply::json(
      429, R"({"message": "You are being rate limited.", "retry_after": 0.01, "global": false})"));
  server.enqueue(no_content());
  server.enqueue(no_content());
  // An hour of backoff: only honouring retry_after lets this finish.
  PluginHarness sink("sink", "discord",
                     options(server,
                             "retry_backoff = \"1h\"\nretry_backoff_max = \"1h\"\n"
                             "template = \"{{symbol}}\""));
  for (const auto& r : sink.process_all({liquidation("A"), liquidation("B")})) {
    EXPECT_TRUE(r.outcome.ok()) << r.outcome.message;
  }
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(json::parse(reqs[0].body).at("content"), "A");
  EXPECT_EQ(json::parse(reqs[1].body).at("content"), "A");
  EXPECT_EQ(json::parse(reqs[2].body).at("content"), "B");
  EXPECT_EQ(sink.counter("sink_retries_total"), 1);
}

TEST(DiscordSinkTest, RetriesServerErrors) {
  HttpTestServer server;
  server.enqueue(Reply::text(502, "bad gateway"));
  PluginHarness sink("sink", "discord", options(server));
  EXPECT_TRUE(sink.process(liquidation()).outcome.ok());
  EXPECT_EQ(server.request_count(), 2u);
}

TEST(DiscordSinkTest, FailsAnUnknownWebhookWithDiscordsMessage) {
  HttpTestServer server;
  server.enqueue(Reply::json(404, R"({"message": "Unknown Webhook", "code": 10015})"));
  PluginHarness sink("sink", "discord", options(server));
  auto r = sink.process(liquidation());
  EXPECT_EQ(r.outcome.status, Status::kBadRequest);
  EXPECT_EQ(r.outcome.message, "discord: HTTP 404: Unknown Webhook (code 10015)");
  EXPECT_EQ(server.request_count(), 1u);
  EXPECT_EQ(sink.counter("sink_drops_total"), 1);
}

TEST(DiscordSinkTest, FailsAnInvalidTokenAsAuth) {
  HttpTestServer server;
  server.enqueue(Reply::json(401, R"({"message": "Invalid Webhook Token", "code": 50027})"));
  PluginHarness sink("sink", "discord", options(server));
  auto r = sink.process(liquidation());
  EXPECT_EQ(r.outcome.status, Status::kAuth);
  EXPECT_EQ(r.outcome.message, "discord: HTTP 401: Invalid Webhook Token (code 50027)");
}

TEST(DiscordSinkTest, GivesUpOnPersistent429WithTheRetryHint) {
  HttpTestServer server;
  server.set_handler([](const auto&) {
    return Reply::json(429, R"({"message": "rate limited", "retry_after": 0.005})");
  });
  PluginHarness sink("sink", "discord", options(server, "max_retries = 1"));
  auto r = sink.process(liquidation());
  EXPECT_EQ(r.outcome.status, Status::kRateLimited);
  EXPECT_EQ(r.outcome.message, "discord: HTTP 429: rate limited (gave up after 2 attempts)");
  EXPECT_EQ(r.outcome.retry_after_ns, 5'000'000);
}

TEST(DiscordSinkTest, ARetryAfterLongerThanMaxRetryWaitFailsAtOnce) {
  HttpTestServer server;
  server.enqueue(Reply::json(429, R"({"message": "rate limited", "retry_after": 86400.5})"));
  server.enqueue(Reply::json(429, R"({"message": "rate limited", "retry_after": 1e300})"));
  PluginHarness sink("sink", "discord", options(server));
  auto first = sink.process(liquidation());
  EXPECT_EQ(first.outcome.status, Status::kRateLimited);
  EXPECT_EQ(first.outcome.message,
            "discord: HTTP 429: rate limited; the server asked to wait 86400.5 s, more than "
            "max_retry_wait (60 s)");
  // An absurd float is capped, not overflowed into a negative (or no) wait. (A sink of its
  // own: the first one keeps its webhook paused for the day it was asked to.)
  PluginHarness other("sink", "discord", options(server));
  auto second = other.process(liquidation());
  EXPECT_EQ(second.outcome.status, Status::kRateLimited);
  EXPECT_NE(second.outcome.message.find("asked to wait 100000000 s"), std::string::npos)
      << second.outcome.message;
  EXPECT_EQ(server.request_count(), 2u);
}

TEST(DiscordSinkTest, KeepsTheWebhookTokenOutOfErrorsAndLogs) {
  uint16_t port;
  {
    HttpTestServer gone;
    port = gone.port();
  }
  PluginHarness sink(
      "sink", "discord",
      "url = \"http://127.0.0.1:" + std::to_string(port) + kPath + "\"\nmax_retries = 0");
  auto r = sink.process(liquidation());
  EXPECT_EQ(r.outcome.status, Status::kServerError);
  EXPECT_EQ(r.outcome.message.find("SECRETTOKEN"), std::string::npos) << r.outcome.message;
  for (const auto& line : sink.logs()) {
    EXPECT_EQ(line.message.find("SECRETTOKEN"), std::string::npos) << line.message;
  }
}

}  // namespace
