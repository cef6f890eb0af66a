// Tests of the `webhook` sink through the real loader and host, against the scripted HTTP test
// server: the exact request, the signature, retries and Retry-After, permanent failures, many
// events in flight without loss or duplicates, HTTPS with a private CA, and option errors.
#include <gtest/gtest.h>

#include <chrono>
#include <ctime>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "http_client.hpp"
#include "http_test_server.hpp"
#include "plugin_harness.hpp"
#include "sink_pipeline.hpp"

namespace {

using sluice::Status;
using sluice::testing::HttpTestServer;
using sluice::testing::HttpTestServerOptions;
using sluice::testing::make_event;
using sluice::testing::PluginHarness;
using sluice::testing::RecordedRequest;
using sluice::testing::Reply;
using sluice::testing::run_sink_pipeline;
using sluice::testing::SinkPipelineRun;

constexpr const char* kPath = "/hook";

// The server's URL, the options in extra, and fast defaults for those extra leaves out.
std::string options(const HttpTestServer& server, const std::string& extra = "") {
  std::string out = "url = \"" + server.url(kPath) + "\"\n" + extra + "\n";
  if (extra.find("retry_backoff =") == std::string::npos) out += "retry_backoff = \"1ms\"\n";
  return out;
}

std::vector<uint8_t> liquidation() {
  return make_event({{"symbol", "BTCUSDT"}, {"side", "SELL"}, {"price", 64250.5}, {"quantity", 2}});
}

constexpr const char* kBody = R"({"price":64250.5,"quantity":2,"side":"SELL","symbol":"BTCUSDT"})";

TEST(WebhookSinkTest, PostsTheEventAsJsonWithHeadersAndSignature) {
  HttpTestServer server;
  PluginHarness sink("sink", "webhook",
                     options(server,
                             "metadata = false\nsecret = \"s3cr3t\"\n"
                             "headers = { Authorization = \"Bearer abc\", X-Team = \"desk\" }"));
  auto r = sink.process(liquidation());
  EXPECT_TRUE(r.outcome.ok()) << r.outcome.message;
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "POST");
  EXPECT_EQ(reqs[0].target, "/hook");
  EXPECT_EQ(reqs[0].body, kBody);
  EXPECT_EQ(reqs[0].header("Content-Type").value_or(""), "application/json");
  EXPECT_EQ(reqs[0].header("Authorization").value_or(""), "Bearer abc");
  EXPECT_EQ(reqs[0].header("X-Team").value_or(""), "desk");
  EXPECT_EQ(reqs[0].header("X-Sluice-Signature").value_or(""),
            "sha256=" + sluice::http::hmac_sha256_hex("s3cr3t", kBody));
}

TEST(WebhookSinkTest, SendsNoSignatureWithoutASecretAndMetadataByDefault) {
  HttpTestServer server;
  PluginHarness sink("sink", "webhook", options(server));
  sluice::EventBuilder b;
  b.id(42)
      .event_time_ns(1761125802306000000)
      .ingest_time_ns(1761125802306000000)
      .key("BTCUSDT")
      .source("binance")
      .field("price", 1.5);
  EXPECT_TRUE(sink.process(b.finish()).outcome.ok());
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_FALSE(reqs[0].header("X-Sluice-Signature"));
  EXPECT_EQ(reqs[0].body,
            R"({"price":1.5,"_sluice":{"id":42,"event_time":"2025-10-22T09:36:42.306Z",)"
            R"("ingest_time":"2025-10-22T09:36:42.306Z","source":"binance","key":"BTCUSDT"}})");
}

TEST(WebhookSinkTest, RetriesServerErrorsUntilTheServerAccepts) {
  HttpTestServer server;
  server.enqueue(Reply::text(500, "oops"));
  server.enqueue(Reply::text(503, "busy"));
  PluginHarness sink("sink", "webhook", options(server, "metadata = false"));
  auto r = sink.process(liquidation());
  EXPECT_TRUE(r.outcome.ok()) << r.outcome.message;
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 3u);
  for (const auto& q : reqs) EXPECT_EQ(q.body, kBody);
  EXPECT_EQ(sink.counter("sink_retries_total"), 2);
  EXPECT_EQ(sink.counter("sink_drops_total"), 0);
}

TEST(WebhookSinkTest, WaitsOutA429AsRetryAfterSays) {
  HttpTestServer server;
  server.enqueue(Reply::text(429, "slow down", {{"Retry-After", "0"}}));
  // A backoff of an hour: only honouring Retry-After lets this test finish.
  PluginHarness sink("sink", "webhook",
                     options(server, "retry_backoff = \"1h\"\nretry_backoff_max = \"1h\""));
  auto r = sink.process(liquidation());
  EXPECT_TRUE(r.outcome.ok()) << r.outcome.message;
  EXPECT_EQ(server.request_count(), 2u);
  EXPECT_EQ(sink.counter("sink_retries_total"), 1);
}

TEST(WebhookSinkTest, RetriesATimedOutAttempt) {
  HttpTestServer server;
  server.enqueue(Reply::text(200, "late").after(std::chrono::seconds(5)));
  PluginHarness sink("sink", "webhook", options(server, "timeout = \"100ms\""));
  auto r = sink.process(liquidation());
  EXPECT_TRUE(r.outcome.ok()) << r.outcome.message;
  EXPECT_EQ(server.request_count(), 2u);
}

TEST(WebhookSinkTest, FailsAClientErrorAtOnceWithTheServersReason) {
  HttpTestServer server;
  server.enqueue(Reply::text(422, "field 'price' is not allowed"));
  PluginHarness sink("sink", "webhook", options(server));
  auto r = sink.process(liquidation());
  EXPECT_EQ(r.outcome.status, Status::kBadRequest);
  EXPECT_EQ(r.outcome.message, "webhook: HTTP 422: field 'price' is not allowed");
  EXPECT_EQ(server.request_count(), 1u);
  EXPECT_EQ(sink.counter("sink_drops_total"), 1);
}

TEST(WebhookSinkTest, FailsUnauthorisedAsAuth) {
  HttpTestServer server;
  server.enqueue(Reply::text(401, ""));
  PluginHarness sink("sink", "webhook", options(server));
  auto r = sink.process(liquidation());
  EXPECT_EQ(r.outcome.status, Status::kAuth);
  EXPECT_EQ(r.outcome.message, "webhook: HTTP 401");
}

TEST(WebhookSinkTest, GivesUpAfterMaxRetries) {
  HttpTestServer server;
  server.set_handler([](const RecordedRequest&) { return Reply::text(502, "down"); });
  PluginHarness sink("sink", "webhook", options(server, "max_retries = 2"));
  auto r = sink.process(liquidation());
  EXPECT_EQ(r.outcome.status, Status::kServerError);
  EXPECT_EQ(r.outcome.message, "webhook: HTTP 502: down (gave up after 3 attempts)");
  EXPECT_EQ(server.request_count(), 3u);
  EXPECT_EQ(sink.counter("sink_retries_total"), 2);
  EXPECT_EQ(sink.counter("sink_drops_total"), 1);
}

TEST(WebhookSinkTest, DeliversManyEventsInFlightExactlyOnceEachDespiteFailures) {
  HttpTestServer server;
  std::mutex mu;
  std::map<std::string, int> seen;
  server.set_handler([&](const RecordedRequest& q) {
    std::lock_guard lock(mu);
    // Every event's first attempt fails: each must be retried once, none lost or repeated.
    return ++seen[q.body] == 1 ? Reply::text(503, "busy") : Reply::text(200, "ok");
  });
  PluginHarness sink("sink", "webhook", options(server, "metadata = false"));
  std::vector<std::vector<uint8_t>> events;
  for (int i = 0; i < 40; ++i) events.push_back(make_event({{"n", i}}));
  for (const auto& r : sink.process_all(events)) EXPECT_TRUE(r.outcome.ok()) << r.outcome.message;
  EXPECT_EQ(server.request_count(), 80u);
  std::lock_guard lock(mu);
  ASSERT_EQ(seen.size(), 40u);
  for (const auto& [body, n] : seen) EXPECT_EQ(n, 2) << body;
}

TEST(WebhookSinkTest, PostsOverHttpsTrustingTheGivenCa) {
  HttpTestServer server(HttpTestServerOptions{.tls = true});
  PluginHarness sink("sink", "webhook", options(server, "ca_file = \"" + server.ca_file() + "\""));
  auto r = sink.process(liquidation());
  EXPECT_TRUE(r.outcome.ok()) << r.outcome.message;
  EXPECT_EQ(server.request_count(), 1u);
}

TEST(WebhookSinkTest, RefusesAnUntrustedCertificateWithoutSendingTheEvent) {
  HttpTestServer server(HttpTestServerOptions{.tls = true});
  PluginHarness sink("sink", "webhook", options(server, "max_retries = 0"));
  auto r = sink.process(liquidation());
  EXPECT_EQ(r.outcome.status, Status::kServerError);
  EXPECT_NE(r.outcome.message.find("certificate verify failed"), std::string::npos)
      << r.outcome.message;
  EXPECT_EQ(server.request_count(), 0u);
}

TEST(WebhookSinkTest, KeepsTheSecretOutOfLogsAndErrors) {
  uint16_t port;
  {
    HttpTestServer gone;
    port = gone.port();
  }
  PluginHarness sink("sink", "webhook",
                     "url = \"http://127.0.0.1:" + std::to_string(port) +
                         "/hook\"\nsecret = \"hunter2-secret\"\nmax_retries = 1\n"
                         "retry_backoff = \"1ms\"");
  auto r = sink.process(liquidation());
  EXPECT_EQ(r.outcome.status, Status::kServerError);
  EXPECT_EQ(r.outcome.message, "webhook: connect to http://127.0.0.1:" + std::to_string(port) +
                                   " failed: Connection refused (gave up after 2 attempts)");
  for (const auto& line : sink.logs()) {
    EXPECT_EQ(line.message.find("hunter2"), std::string::npos) << line.message;
  }
}

void expect_option_error(const std::string& options, const std::string& expected) {
  try {
    PluginHarness sink("sink", "webhook", options);
    FAIL() << "expected an error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
  }
}

TEST(WebhookSinkTest, RejectsBadOptions) {
  expect_option_error("url = \"ftp://example.com\"",
                      "option 'url': must start with http:// or https://");
  expect_option_error("url = \"http://example.com\"\nheaders = { X-N = 5 }",
                      "option 'headers': 'X-N' must be a string");
  expect_option_error("url = \"http://example.com\"\nheaders = { \"Bad Name\" = \"v\" }",
                      "option 'headers': 'Bad Name' is not a header name");
  expect_option_error("url = \"http://example.com\"\nmax_retries = -1",
                      "option 'max_retries': must not be negative");
  expect_option_error("url = \"https://example.com\"\nca_file = \"/nonexistent.pem\"",
                      "option 'ca_file': cannot load CA file '/nonexistent.pem'");
  expect_option_error("url = \"http://example.com\"\nmax_retry_wait = \"0s\"",
                      "option 'max_retry_wait': must be positive");
}

// --- max_retry_wait: no wait longer than it, whatever the server asks ---

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(WebhookSinkTest, A429AskingToWaitLongerThanMaxRetryWaitFailsAtOnce) {
  HttpTestServer server;
  server.enqueue(Reply::text(429, "slow down", {{"Retry-After", "3600"}}));
  PluginHarness sink("sink", "webhook", options(server));
  auto r = sink.process(liquidation());
  EXPECT_EQ(r.outcome.status, Status::kRateLimited);
  EXPECT_EQ(r.outcome.message,
            "webhook: HTTP 429: slow down; the server asked to wait 3600 s, more than "
            "max_retry_wait (60 s)");
  EXPECT_EQ(r.outcome.retry_after_ns, 3600'000'000'000);
  EXPECT_EQ(server.request_count(), 1u);
  EXPECT_EQ(sink.counter("sink_drops_total"), 1);
}

TEST(WebhookSinkTest, ARetryAfterDateBeyondMaxRetryWaitFailsAtOnce) {
  // Two days ahead, as an HTTP date.
  const std::time_t at = std::time(nullptr) + 2 * 86400;
  std::tm tm{};
  gmtime_r(&at, &tm);
  char date[64];
  std::strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  HttpTestServer server;
  server.enqueue(Reply::text(429, "", {{"Retry-After", date}}));
  PluginHarness sink("sink", "webhook", options(server, "max_retry_wait = \"1h\""));
  auto r = sink.process(liquidation());
  EXPECT_EQ(r.outcome.status, Status::kRateLimited);
  EXPECT_TRUE(contains(r.outcome.message, "more than max_retry_wait (3600 s)"))
      << r.outcome.message;
  EXPECT_EQ(server.request_count(), 1u);
}

TEST(WebhookSinkTest, AnAbsurdRetryAfterIsNotMistakenForNone) {
  // Beyond what the parser takes literally: read as its maximum, so refused, not retried soon.
  HttpTestServer server;
  server.enqueue(Reply::text(429, "", {{"Retry-After", "99999999999999999999999"}}));
  PluginHarness sink("sink", "webhook", options(server));
  auto r = sink.process(liquidation());
  EXPECT_EQ(r.outcome.status, Status::kRateLimited);
  EXPECT_TRUE(contains(r.outcome.message, "the server asked to wait 100000000 s"))
      << r.outcome.message;
  EXPECT_EQ(server.request_count(), 1u);
}

TEST(WebhookSinkTest, ABackoffLongerThanMaxRetryWaitFailsAtOnce) {
  HttpTestServer server;
  server.enqueue(Reply::text(503, "busy"));
  // A backoff of up to 2 h (full jitter): only the cap lets this test finish.
  PluginHarness sink("sink", "webhook",
                     options(server,
                             "retry_backoff = \"2h\"\nretry_backoff_max = \"2h\"\n"
                             "max_retry_wait = \"1s\""));
  auto r = sink.process(liquidation());
  EXPECT_EQ(r.outcome.status, Status::kServerError);
  EXPECT_TRUE(contains(r.outcome.message, "webhook: HTTP 503: busy; the next retry would wait "))
      << r.outcome.message;
  EXPECT_TRUE(contains(r.outcome.message, "s, more than max_retry_wait (1 s)"))
      << r.outcome.message;
  EXPECT_EQ(server.request_count(), 1u);
}

TEST(WebhookSinkTest, AWaitWithinMaxRetryWaitIsWaitedOut) {
  HttpTestServer server;
  server.enqueue(Reply::text(429, "slow down", {{"Retry-After", "1"}}));
  PluginHarness sink("sink", "webhook", options(server, "max_retry_wait = \"2s\""));
  auto r = sink.process(liquidation());
  EXPECT_TRUE(r.outcome.ok()) << r.outcome.message;
  EXPECT_EQ(server.request_count(), 2u);
}

// --- a stop ends every retry wait: the event fails (to `errors`), it never vanishes ---

TEST(WebhookSinkTest, FlushFailsAnEventWaitingToRetry) {
  HttpTestServer server;
  server.enqueue(Reply::text(429, "slow down", {{"Retry-After", "30"}}));
  PluginHarness sink("sink", "webhook", options(server));
  std::thread stopper([&] {
    ASSERT_TRUE(server.wait_for_requests(1));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the 429 is being waited out
    sink.flush();
  });
  const auto start = std::chrono::steady_clock::now();
  auto r = sink.process(liquidation(), std::chrono::seconds(20));
  const auto took = std::chrono::steady_clock::now() - start;
  stopper.join();
  EXPECT_EQ(r.outcome.status, Status::kCancelled);
  EXPECT_EQ(r.outcome.message, "webhook: HTTP 429: slow down; stopped while waiting to retry");
  EXPECT_LT(took, std::chrono::seconds(15));  // not the 30 s the server asked for
  EXPECT_EQ(server.request_count(), 1u);
}

TEST(WebhookSinkTest, StoppingThePipelineSendsAnEventWaitingToRetryToErrors) {
  HttpTestServer server;
  server.enqueue(Reply::text(429, "slow down", {{"Retry-After", "30"}}));
  SinkPipelineRun run = run_sink_pipeline(
      "webhook", "url = \"" + server.url(kPath) + "\"", [&](sluice::core::Pipeline& p) {
        ASSERT_TRUE(server.wait_for_requests(1));
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        p.stop();
      });
  ASSERT_EQ(run.dead.size(), 1u) << run.logs;
  const auto& attrs = run.dead[0]["_sluice"]["attrs"];
  EXPECT_EQ(attrs["error.class"], "cancelled");
  EXPECT_EQ(attrs["error.message"], "webhook: HTTP 429: slow down; stopped while waiting to retry");
  EXPECT_EQ(attrs["error.node"], "out");
  EXPECT_LT(run.took, std::chrono::seconds(15));  // not the 30 s the server asked for
  EXPECT_EQ(server.request_count(), 1u);
}

// --- secrets: whatever the server echoes, no log, dead letter or metric carries them ---

constexpr const char* kSecretPath =
    "/hooks/T000/B000/XXXXSECRETPATHTOKEN42?token=QQQQSECRETQUERY42";
const std::vector<std::string> kSecretParts = {"XXXXSECRETPATHTOKEN42", "QQQQSECRETQUERY42",
                                               "T000%2FB000", "Bearer-SECRETHEADER",
                                               "SIGNINGSECRET"};

void expect_no_secret(const std::string& text, const std::string& where) {
  for (const auto& part : kSecretParts) {
    EXPECT_FALSE(contains(text, part)) << where << " carries '" << part << "':\n" << text;
  }
}

std::string echoing_options(const HttpTestServer& server) {
  return "url = \"" + server.url(kSecretPath) +
         "\"\nsecret = \"SIGNINGSECRET\"\nmax_retries = 0\n"
         "headers = { Authorization = \"Bearer-SECRETHEADER\" }";
}

// Echoes the target and the request's headers in a 404 page, as a careless server does.
Reply echo(const RecordedRequest& req) {
  std::string page = sluice::testing::echo_page(req.target);
  for (const auto& [name, value] : req.headers) page += " " + name + ": " + value;
  return Reply::text(404, page);
}

TEST(WebhookSinkTest, SecretsEchoedByTheServerStayOutOfMessagesLogsAndMetrics) {
  HttpTestServer server;
  server.set_handler(echo);
  PluginHarness sink("sink", "webhook", echoing_options(server));
  auto r = sink.process(liquidation());
  EXPECT_EQ(r.outcome.status, Status::kBadRequest);
  EXPECT_TRUE(contains(r.outcome.message, "webhook: HTTP 404: no route for <redacted>"))
      << r.outcome.message;
  expect_no_secret(r.outcome.message, "the outcome");
  std::string logs;
  for (const auto& line : sink.logs()) logs += line.message + "\n";
  EXPECT_FALSE(logs.empty());
  expect_no_secret(logs, "the log");
  expect_no_secret(sink.prometheus(), "the metrics");
}

TEST(WebhookSinkTest, SecretsEchoedByTheServerStayOutOfDeadLettersInAPipeline) {
  HttpTestServer server;
  server.set_handler(echo);
  SinkPipelineRun run = run_sink_pipeline("webhook", echoing_options(server));
  EXPECT_EQ(server.request_count(), 1u);
  ASSERT_EQ(run.dead.size(), 1u) << run.logs;
  const std::string message = run.dead[0]["_sluice"]["attrs"]["error.message"];
  EXPECT_TRUE(contains(message, "HTTP 404: no route for ")) << message;
  expect_no_secret(run.dead[0].dump(), "the dead letter");
  expect_no_secret(run.logs, "the log");
  expect_no_secret(run.metrics, "the metrics");
}

}  // namespace
