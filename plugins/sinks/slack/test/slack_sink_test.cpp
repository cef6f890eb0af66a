// Tests of the `slack` sink through the real loader and host, against the scripted HTTP test
// server: the exact message, Slack escaping, 429 Retry-After without loss or duplicates, 5xx
// retries, permanent failures with Slack's error text, pacing, the secret webhook URL (also when
// the server echoes it), max_retry_wait and a stop while a retry waits.
#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "http_test_server.hpp"
#include "plugin_harness.hpp"
#include "sink_pipeline.hpp"

namespace {

using nlohmann::json;
using sluice::Status;
using sluice::testing::HttpTestServer;
using sluice::testing::make_event;
using sluice::testing::PluginHarness;
using sluice::testing::Reply;

constexpr const char* kPath = "/services/T0001/B0002/SECRETTOKEN123";

// The server's URL, the options in extra, and fast defaults for those extra leaves out.
std::string options(const HttpTestServer& server, const std::string& extra = "") {
  std::string out = "url = \"" + server.url(kPath) + "\"\n" + extra + "\n";
  if (extra.find("min_interval =") == std::string::npos) out += "min_interval = \"0s\"\n";
  if (extra.find("retry_backoff =") == std::string::npos) out += "retry_backoff = \"1ms\"\n";
  return out;
}

std::vector<uint8_t> liquidation(const std::string& symbol = "BTCUSDT") {
  return make_event({{"exchange", "binance"},
                     {"symbol", symbol},
                     {"side", "SELL"},
                     {"liquidated", "long"},
                     {"price", 64250.5},
                     {"quantity", 2},
                     {"notional_usd", 128501.0}});
}

std::string text_of(const sluice::testing::RecordedRequest& q) {
  return json::parse(q.body).at("text").get<std::string>();
}

TEST(SlackSinkTest, PostsTextAndASectionBlockFromTheDefaultTemplate) {
  HttpTestServer server;
  server.enqueue(Reply::text(200, "ok"));
  PluginHarness sink("sink", "slack", options(server));
  auto r = sink.process(liquidation());
  EXPECT_TRUE(r.outcome.ok()) << r.outcome.message;
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "POST");
  EXPECT_EQ(reqs[0].target, kPath);
  EXPECT_EQ(reqs[0].header("Content-Type").value_or(""), "application/json; charset=utf-8");
  const std::string text =
      ":rotating_light: *BTCUSDT* long liquidated on binance: SELL 2 @ 64250.5 (notional "
      "$128501)";
  EXPECT_EQ(
      json::parse(reqs[0].body),
      json({{"text", text},
            {"blocks", {{{"type", "section"}, {"text", {{"type", "mrkdwn"}, {"text", text}}}}}}}));
}

// A `watch` (or any node) alerting about the pipeline itself: its text, escaped for mrkdwn.
TEST(SlackSinkTest, APipelineAlertIsPostedAsItsTextNotThroughTheTemplate) {
  HttpTestServer server;
  server.enqueue(Reply::text(200, "ok"));
  PluginHarness sink("sink", "slack", options(server));
  auto r = sink.process(make_event({{"alert", "firing"},
                                    {"watch", "latency"},
                                    {"text", "p95 latency is 182 ms (> 100 ms) <ok>"}}));
  EXPECT_TRUE(r.outcome.ok()) << r.outcome.message;
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(text_of(reqs[0]), "p95 latency is 182 ms (&gt; 100 ms) &lt;ok&gt;");
}

TEST(SlackSinkTest, CountsDeliveredAlertsPerSymbolAndTheirExchangeToAlertLatency) {
  HttpTestServer server;
  server.enqueue(Reply::text(500, "oops"));
  server.enqueue(Reply::text(200, "ok"));
  server.enqueue(Reply::text(200, "ok"));
  PluginHarness sink("sink", "slack", options(server));
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  auto ev = [&](const std::string& symbol) {
    return make_event(
        {{"symbol", symbol}, {"notional_usd", 1.0e6}, {"trade_time_ms", now_ms - 2000}});
  };
  EXPECT_TRUE(sink.process(ev("BTCUSDT")).outcome.ok());
  EXPECT_TRUE(sink.process(ev("ETH\"USDT")).outcome.ok());
  const std::string text = sink.prometheus();
  // The retried alert counts once, when it is delivered.
  EXPECT_NE(text.find("sluice_alerts_delivered_total{node=\"test\",symbol=\"BTCUSDT\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("sluice_alerts_delivered_total{node=\"test\",symbol=\"ETH\\\"USDT\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("sluice_alert_latency_seconds_count{node=\"test\"} 2\n"), std::string::npos)
      << text;
  // Both were two seconds old: none in the buckets up to 1 s, both by 2.5 s.
  EXPECT_NE(text.find("sluice_alert_latency_seconds_bucket{node=\"test\",le=\"1\"} 0\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("sluice_alert_latency_seconds_bucket{node=\"test\",le=\"2.5\"} 2\n"),
            std::string::npos)
      << text;
}

TEST(SlackSinkTest, EscapesEventTextAndCanLeaveBlocksOut) {
  HttpTestServer server;
  PluginHarness sink("sink", "slack",
                     options(server, "template = \"{{symbol}} <{{{symbol}}}>\"\nblocks = false"));
  EXPECT_TRUE(sink.process(liquidation("<!channel> & co")).outcome.ok());
  EXPECT_EQ(json::parse(server.requests().at(0).body),
            json({{"text", "&lt;!channel&gt; &amp; co <<!channel> & co>"}}));
}

TEST(SlackSinkTest, WaitsOutA429AndResendsTheSameMessageWithoutLossOrDuplicates) {
  HttpTestServer server;
  server.enqueue(Reply::text(429, "rate_limited", {{"Retry-After", "0"}}));
  // An hour of backoff: only honouring Retry-After lets this finish.
  PluginHarness sink("sink", "slack",
                     options(server,
                             "retry_backoff = \"1h\"\nretry_backoff_max = \"1h\"\n"
                             "template = \"{{symbol}}\""));
  auto results = sink.process_all({liquidation("A"), liquidation("B"), liquidation("C")});
  for (const auto& r : results) EXPECT_TRUE(r.outcome.ok()) << r.outcome.message;
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 4u);
  EXPECT_EQ(text_of(reqs[0]), "A");
  EXPECT_EQ(text_of(reqs[1]), "A");
  EXPECT_EQ(text_of(reqs[2]), "B");
  EXPECT_EQ(text_of(reqs[3]), "C");
  EXPECT_EQ(sink.counter("sink_retries_total"), 1);
}

TEST(SlackSinkTest, RetriesServerErrors) {
  HttpTestServer server;
  // The 500 closes its connection, so the drop hits a fresh one: a dropped kept-alive
  // connection would be retried at once as stale, without counting as a retry.
  Reply error = Reply::text(500, "internal_error");
  error.close = true;
  server.enqueue(error);
  server.enqueue(Reply::drop());
  PluginHarness sink("sink", "slack", options(server));
  auto r = sink.process(liquidation());
  EXPECT_TRUE(r.outcome.ok()) << r.outcome.message;
  EXPECT_EQ(server.request_count(), 3u);
  EXPECT_EQ(sink.counter("sink_retries_total"), 2);
}

TEST(SlackSinkTest, FailsPermanentErrorsAtOnceWithSlacksErrorText) {
  const std::vector<std::tuple<int, std::string, Status>> cases = {
      {400, "invalid_payload", Status::kBadRequest},
      {403, "action_prohibited", Status::kAuth},
      {404, "channel_not_found", Status::kBadRequest},
      {410, "channel_is_archived", Status::kBadRequest},
  };
  for (const auto& [status, error, expected] : cases) {
    HttpTestServer server;
    server.enqueue(Reply::text(status, error));
    PluginHarness sink("sink", "slack", options(server));
    auto r = sink.process(liquidation());
    EXPECT_EQ(r.outcome.status, expected) << error;
    EXPECT_EQ(r.outcome.message, "slack: HTTP " + std::to_string(status) + ": " + error);
    EXPECT_EQ(server.request_count(), 1u);
    EXPECT_EQ(sink.counter("sink_drops_total"), 1);
  }
}

TEST(SlackSinkTest, PacesMessagesToTheWebhook) {
  HttpTestServer server;
  PluginHarness sink("sink", "slack", options(server, "min_interval = \"60ms\""));
  const auto start = std::chrono::steady_clock::now();
  for (const auto& r : sink.process_all({liquidation(), liquidation(), liquidation()})) {
    EXPECT_TRUE(r.outcome.ok()) << r.outcome.message;
  }
  // Three messages are at least two intervals apart from first to last.
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(120));
  EXPECT_EQ(server.request_count(), 3u);
}

TEST(SlackSinkTest, KeepsTheWebhookTokenOutOfErrorsAndLogs) {
  uint16_t port;
  {
    HttpTestServer gone;
    port = gone.port();
  }
  PluginHarness sink("sink", "slack",
                     "url = \"http://127.0.0.1:" + std::to_string(port) + kPath +
                         "\"\nmax_retries = 1\nretry_backoff = \"1ms\"");
  auto r = sink.process(liquidation());
  EXPECT_EQ(r.outcome.status, Status::kServerError);
  EXPECT_EQ(r.outcome.message.find("SECRETTOKEN"), std::string::npos) << r.outcome.message;
  ASSERT_FALSE(sink.logs().empty());
  for (const auto& line : sink.logs()) {
    EXPECT_EQ(line.message.find("SECRETTOKEN"), std::string::npos) << line.message;
  }
}

// A webhook URL with a token in its path and its query, echoed by the server in its error page
// raw, %-encoded and JSON-escaped: none of it reaches the outcome, a log line, a dead letter or
// the metrics.
constexpr const char* kSecretUrlPath =
    "/services/T0001/B0002/SECRETPATHTOKEN99?key=SECRETQUERYKEY99";
const std::vector<std::string> kSecretParts = {"SECRETPATHTOKEN99", "SECRETQUERYKEY99",
                                               "T0001%2FB0002", "T0001\\/B0002"};

void expect_no_secret(const std::string& text, const std::string& where) {
  for (const auto& part : kSecretParts) {
    EXPECT_EQ(text.find(part), std::string::npos) << where << " carries '" << part << "'";
  }
}

Reply echo(const sluice::testing::RecordedRequest& req) {
  return Reply::text(404, sluice::testing::echo_page(req.target));
}

TEST(SlackSinkTest, KeepsAnEchoedWebhookUrlOutOfErrorsLogsAndMetrics) {
  HttpTestServer server;
  server.set_handler(echo);
  PluginHarness sink("sink", "slack",
                     "url = \"" + server.url(kSecretUrlPath) + "\"\nmin_interval = \"0s\"");
  auto r = sink.process(liquidation());
  EXPECT_EQ(r.outcome.status, Status::kBadRequest);
  EXPECT_NE(r.outcome.message.find("slack: HTTP 404: no route for <redacted> (<redacted>)"),
            std::string::npos)
      << r.outcome.message;
  expect_no_secret(r.outcome.message, "the outcome");
  ASSERT_FALSE(sink.logs().empty());
  for (const auto& line : sink.logs()) expect_no_secret(line.message, "the log");
  expect_no_secret(sink.prometheus(), "the metrics");
}

TEST(SlackSinkTest, KeepsAnEchoedWebhookUrlOutOfDeadLettersInAPipeline) {
  HttpTestServer server;
  server.set_handler(echo);
  auto run = sluice::testing::run_sink_pipeline(
      "slack", "url = \"" + server.url(kSecretUrlPath) + "\"\nmin_interval = \"0s\"");
  ASSERT_EQ(run.dead.size(), 1u) << run.logs;
  EXPECT_EQ(run.dead[0]["_sluice"]["attrs"]["error.class"], "bad_request");
  expect_no_secret(run.dead[0].dump(), "the dead letter");
  expect_no_secret(run.logs, "the log");
  expect_no_secret(run.metrics, "the metrics");
}

TEST(SlackSinkTest, A429LongerThanMaxRetryWaitFailsItAndWhatQueuesBehindIt) {
  HttpTestServer server;
  server.enqueue(Reply::text(429, "rate_limited", {{"Retry-After", "600"}}));
  PluginHarness sink("sink", "slack", options(server, "max_retry_wait = \"10s\""));
  auto results = sink.process_all({liquidation("BTCUSDT"), liquidation("ETHUSDT")});
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].outcome.status, Status::kRateLimited);
  EXPECT_EQ(results[0].outcome.message,
            "slack: HTTP 429: rate_limited; the server asked to wait 600 s, more than "
            "max_retry_wait (10 s)");
  // The webhook is paused for 600 s: the next message is not sent into the pause either.
  EXPECT_EQ(results[1].outcome.status, Status::kRateLimited);
  EXPECT_NE(results[1].outcome.message.find("slack: the server asked to pause for "),
            std::string::npos)
      << results[1].outcome.message;
  EXPECT_EQ(server.request_count(), 1u);
}

TEST(SlackSinkTest, FlushFailsWhatWaitsToRetryOrQueuesBehindIt) {
  HttpTestServer server;
  server.enqueue(Reply::text(429, "rate_limited", {{"Retry-After", "30"}}));
  PluginHarness sink("sink", "slack", options(server));
  std::thread stopper([&] {
    ASSERT_TRUE(server.wait_for_requests(1));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    sink.flush();
  });
  auto results =
      sink.process_all({liquidation("BTCUSDT"), liquidation("ETHUSDT")}, std::chrono::seconds(20));
  stopper.join();
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].outcome.status, Status::kCancelled);
  EXPECT_EQ(results[0].outcome.message,
            "slack: HTTP 429: rate_limited; stopped while waiting to retry");
  EXPECT_EQ(results[1].outcome.status, Status::kCancelled);
  EXPECT_EQ(results[1].outcome.message, "slack: stopped before the event was delivered");
  EXPECT_EQ(server.request_count(), 1u);
}

TEST(SlackSinkTest, RejectsAMalformedTemplate) {
  try {
    PluginHarness sink("sink", "slack",
                       "url = \"https://hooks.slack.com/x\"\ntemplate = \"{{#open}}\"");
    FAIL() << "expected an error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("option 'template': Unclosed section \"open\""),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
