// Tests of the `llm_classifier` processor through the real loader and host, against a scripted
// OpenAI-compatible server on 127.0.0.1: the exact request (body and headers), a good answer
// with tokens and cost, every failure class with its message (invalid or blank content, answers
// that do not match, 429 with retry-after, quota, 5xx, 401, 4xx, a reply slower than the
// timeout, a refused connection), HTTPS with a test CA, keep-alive reuse, metrics per model, and
// an API key that never reaches a message or a log.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "http_test_server.hpp"
#include "plugin_harness.hpp"
#include "sluice/event.hpp"

namespace {

using sluice::Status;
using sluice::testing::CallResult;
using sluice::testing::event_to_json;
using sluice::testing::HttpTestServer;
using sluice::testing::HttpTestServerOptions;
using sluice::testing::make_event;
using sluice::testing::PluginHarness;
using sluice::testing::Reply;
using Json = nlohmann::json;

constexpr const char* kKey = "sk-test-0123456789abcdef";

std::string options_for(const HttpTestServer& server, const std::string& extra = "") {
  return "base_url = \"" + server.url("/v1") + "\"\napi_key = \"" + kKey +
         "\"\nmodel = \"gpt-4o-mini\"\n" + extra;
}

// The message a harness constructor throws for the given options, or "" if none.
std::string create_error(const std::string& options) {
  try {
    PluginHarness llm("processor", "llm_classifier", options);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

// A /chat/completions reply whose message content is `content`.
std::string completion(const std::string& content, int prompt_tokens = 120,
                       int completion_tokens = 40, const std::string& finish = "stop") {
  return Json{{"id", "chatcmpl-1"},
              {"object", "chat.completion"},
              {"created", 1761125963},
              {"model", "gpt-4o-mini-2024-07-18"},
              {"choices",
               Json::array({{{"index", 0},
                             {"message", {{"role", "assistant"}, {"content", content}}},
                             {"finish_reason", finish}}})},
              {"usage",
               {{"prompt_tokens", prompt_tokens},
                {"completion_tokens", completion_tokens},
                {"total_tokens", prompt_tokens + completion_tokens}}}}
      .dump();
}

const std::string kVerdict =
    R"({"risk_level":"HIGH","summary":"$62.6K ETHUSDT long liquidated into a falling market.",)"
    R"("recommendation":"Tighten stops on ETH longs."})";

// Recorded 2025-10-22T09:39:23.368: ETHUSDT SELL 16.289 @ 3841.71.
std::vector<uint8_t> eth_liquidation() {
  return make_event({{"exchange", "binance"},
                     {"symbol", "ETHUSDT"},
                     {"side", "SELL"},
                     {"avg_price", 3841.71},
                     {"quantity", 16.289},
                     {"notional_usd", 62577.61419000001}},
                    "ETHUSDT", 7);
}

void expect_failure(const CallResult& r, Status status, const std::string& message) {
  EXPECT_EQ(r.outcome.status, status) << r.outcome.message;
  EXPECT_EQ(r.outcome.message, message);
  EXPECT_TRUE(r.emitted.empty());
}

void expect_no_key_in_logs(const PluginHarness& llm) {
  for (const auto& line : llm.logs()) {
    EXPECT_EQ(line.message.find(kKey), std::string::npos) << line.message;
  }
}

TEST(LlmClassifier, GoodAnswerAddsVerdictModelTokensLatencyAndCost) {
  HttpTestServer server;
  server.enqueue(Reply::json(200, completion(kVerdict)));
  PluginHarness llm("processor", "llm_classifier",
                    options_for(server, "price_per_mtok = { input = 0.15, output = 0.6 }"));
  auto input = eth_liquidation();
  CallResult r = llm.process(input);
  ASSERT_TRUE(r.outcome.ok()) << r.outcome.message;
  // 120 × $0.15 + 40 × $0.60 per million tokens.
  EXPECT_DOUBLE_EQ(r.outcome.cost_usd, 4.2e-5);
  ASSERT_EQ(r.emitted.size(), 1u);
  EXPECT_EQ(r.emitted[0].output, "");
  Json out = event_to_json(r.emitted[0].bytes);
  Json in = event_to_json(input);
  Json f = out["fields"];
  EXPECT_EQ(f["risk_level"], "HIGH");
  EXPECT_EQ(f["summary"], "$62.6K ETHUSDT long liquidated into a falling market.");
  EXPECT_EQ(f["recommendation"], "Tighten stops on ETH longs.");
  EXPECT_EQ(f["classifier"], "llm");
  EXPECT_EQ(f["llm_model"], "gpt-4o-mini-2024-07-18");
  EXPECT_EQ(f["llm_prompt_tokens"], 120);
  EXPECT_EQ(f["llm_completion_tokens"], 40);
  EXPECT_DOUBLE_EQ(f["llm_cost_usd"].get<double>(), 4.2e-5);
  EXPECT_GT(f["llm_latency_ms"].get<double>(), 0.0);
  for (const auto& [name, value] : in["fields"].items()) EXPECT_EQ(f[name], value) << name;
  EXPECT_EQ(f.size(), in["fields"].size() + 9);
  EXPECT_EQ(out["id"], 7);
  EXPECT_EQ(out["key"], "ETHUSDT");
  // Usage travels in the outcome too (ABI 1.2), for composites and limits.
  EXPECT_EQ(r.outcome.input_tokens, 120);
  EXPECT_EQ(r.outcome.output_tokens, 40);
  EXPECT_EQ(r.outcome.model, "gpt-4o-mini-2024-07-18");
}

TEST(LlmClassifier, SendsModelMessagesJsonModeAndBearerKey) {
  HttpTestServer server;
  server.enqueue(Reply::json(200, completion(kVerdict)));
  PluginHarness llm("processor", "llm_classifier",
                    options_for(server, "temperature = 0.2\nmax_tokens = 150"));
  ASSERT_TRUE(llm.process(eth_liquidation()).outcome.ok());
  ASSERT_EQ(server.request_count(), 1u);
  auto req = server.requests()[0];
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.target, "/v1/chat/completions");
  EXPECT_EQ(req.header("Authorization"), std::string("Bearer ") + kKey);
  EXPECT_EQ(req.header("Content-Type"), "application/json");
  Json body = Json::parse(req.body);
  EXPECT_EQ(body["model"], "gpt-4o-mini");
  EXPECT_EQ(body["response_format"], Json({{"type", "json_object"}}));
  EXPECT_EQ(body["temperature"], 0.2);
  EXPECT_EQ(body["max_tokens"], 150);
  ASSERT_EQ(body["messages"].size(), 2u);
  EXPECT_EQ(body["messages"][0]["role"], "system");
  EXPECT_EQ(body["messages"][0]["content"],
            "You are a risk analyst on a crypto derivatives trading desk. You judge one forced "
            "liquidation at a time for traders who must decide within seconds. Answer with a "
            "single JSON object and nothing else: {\"risk_level\": \"LOW\" | \"MEDIUM\" | "
            "\"HIGH\", \"summary\": one sentence a trader reads at a glance, "
            "\"recommendation\": one short actionable sentence}.");
  EXPECT_EQ(body["messages"][1]["role"], "user");
  EXPECT_EQ(body["messages"][1]["content"],
            "Liquidation on binance: ETHUSDT, forced SELL order (a SELL closes a long position, a "
            "BUY closes a short), notional 62577.61419000001 USD at average price 3841.71. Judge "
            "the market risk.");
}

TEST(LlmClassifier, PromptsAreTemplatesOverTheEventAndTextModeSendsNoResponseFormat) {
  HttpTestServer server;
  server.enqueue(Reply::json(200, completion(kVerdict)));
  PluginHarness llm("processor", "llm_classifier",
                    options_for(server, R"(response_format = "text"
system_prompt = "Rate liquidations on {{exchange}}."
user_prompt = "{{symbol}} {{side}} {{notional_usd}} <&> {{{symbol}}}")"));
  ASSERT_TRUE(llm.process(eth_liquidation()).outcome.ok());
  Json body = Json::parse(server.requests().at(0).body);
  EXPECT_FALSE(body.contains("response_format"));
  EXPECT_EQ(body["messages"][0]["content"], "Rate liquidations on binance.");
  EXPECT_EQ(body["messages"][1]["content"], "ETHUSDT SELL 62577.61419000001 <&> ETHUSDT");
}

// The body is written by hand around the prompts, so quotes, backslashes and control characters
// must be escaped, and bytes that are not UTF-8 replaced, for it to stay valid JSON.
TEST(LlmClassifier, PromptTextIsEscapedAndInvalidUtf8IsReplacedInTheJsonBody) {
  HttpTestServer server;
  server.enqueue(Reply::json(200, completion(kVerdict)));
  PluginHarness llm("processor", "llm_classifier",
                    options_for(server, R"(user_prompt = "{{symbol}} as JSON")"));
  sluice::EventBuilder b;
  b.key("X").field("symbol", std::string_view("A\"B\\C\nD\xff" "E\t\u5e01"));
  const auto bytes = b.finish();
  ASSERT_TRUE(llm.process(std::vector<uint8_t>(bytes.begin(), bytes.end())).outcome.ok());
  Json body = Json::parse(server.requests().at(0).body);
  EXPECT_EQ(body["messages"][1]["content"], "A\"B\\C\nD\uFFFD" "E\t\u5e01 as JSON");
  EXPECT_EQ(body["model"], "gpt-4o-mini");
  EXPECT_EQ(body["max_tokens"], 300);
  EXPECT_EQ(body["temperature"], 0.0);
}

TEST(LlmClassifier, AcceptsAFencedAnswerAndAnyCaseOfRiskLevel) {
  HttpTestServer server;
  server.enqueue(Reply::json(
      200, completion("```json\n{\"risk_level\":\"medium\",\"summary\":\"Sizable long "
                      "liquidation.\"}\n```")));
  PluginHarness llm("processor", "llm_classifier", options_for(server));
  CallResult r = llm.process(eth_liquidation());
  ASSERT_TRUE(r.outcome.ok()) << r.outcome.message;
  Json f = event_to_json(r.emitted.at(0).bytes)["fields"];
  EXPECT_EQ(f["risk_level"], "MEDIUM");
  EXPECT_EQ(f["summary"], "Sizable long liquidation.");
  EXPECT_EQ(f["recommendation"], "");
  // No price_per_mtok: tokens are counted, cost is zero.
  EXPECT_EQ(f["llm_cost_usd"], 0.0);
}

TEST(LlmClassifier, ContentThatIsNotJsonIsABadResponseThatStillReportsItsCost) {
  HttpTestServer server;
  server.enqueue(Reply::json(200, completion("HIGH risk: a large long liquidation.")));
  PluginHarness llm("processor", "llm_classifier",
                    options_for(server, "price_per_mtok = { input = 1.0, output = 2.0 }"));
  CallResult r = llm.process(eth_liquidation());
  expect_failure(r, Status::kBadResponse,
                 "gpt-4o-mini-2024-07-18 answered with something other than a JSON object: "
                 "HIGH risk: a large long liquidation.");
  EXPECT_DOUBLE_EQ(r.outcome.cost_usd, 2e-4);
}

TEST(LlmClassifier, ContentCutOffAtMaxTokensSaysSo) {
  HttpTestServer server;
  server.enqueue(Reply::json(200, completion(R"({"risk_level":"HIGH","summ)", 120, 8, "length")));
  PluginHarness llm("processor", "llm_classifier", options_for(server, "max_tokens = 8"));
  expect_failure(llm.process(eth_liquidation()), Status::kBadResponse,
                 "gpt-4o-mini-2024-07-18 answered with something other than a JSON object (cut "
                 "off at max_tokens = 8): {\"risk_level\":\"HIGH\",\"summ");
}

TEST(LlmClassifier, BlankContentIsABadResponse) {
  HttpTestServer server;
  server.enqueue(Reply::json(200, completion(" \n ")));
  PluginHarness llm("processor", "llm_classifier", options_for(server));
  expect_failure(llm.process(eth_liquidation()), Status::kBadResponse,
                 "gpt-4o-mini-2024-07-18 answered with empty content");
}

TEST(LlmClassifier, AnswersThatDoNotMatchAreBadResponses) {
  HttpTestServer server;
  PluginHarness llm("processor", "llm_classifier", options_for(server));
  server.enqueue(Reply::json(200, completion(R"({"risk_level":"SEVERE","summary":"x"})")));
  expect_failure(llm.process(eth_liquidation()), Status::kBadResponse,
                 "gpt-4o-mini-2024-07-18 answered risk_level \"SEVERE\", expected LOW, MEDIUM or "
                 "HIGH");
  server.enqueue(Reply::json(200, completion(R"({"risk":"HIGH","summary":"x"})")));
  expect_failure(llm.process(eth_liquidation()), Status::kBadResponse,
                 "gpt-4o-mini-2024-07-18 answered without a string risk_level: "
                 "{\"risk\":\"HIGH\",\"summary\":\"x\"}");
  server.enqueue(Reply::json(200, completion(R"({"risk_level":"LOW","summary":"  "})")));
  expect_failure(llm.process(eth_liquidation()), Status::kBadResponse,
                 "gpt-4o-mini-2024-07-18 answered without a summary: "
                 "{\"risk_level\":\"LOW\",\"summary\":\"  \"}");
  server.enqueue(Reply::json(
      200, completion(R"({"risk_level":"LOW","summary":"ok","recommendation":["a"]})")));
  expect_failure(llm.process(eth_liquidation()), Status::kBadResponse,
                 "gpt-4o-mini-2024-07-18 answered a recommendation that is not a string: "
                 "{\"risk_level\":\"LOW\",\"summary\":\"ok\",\"recommendation\":[\"a\"]}");
  server.enqueue(Reply::json(200, R"({"choices":[]})"));
  expect_failure(llm.process(eth_liquidation()), Status::kBadResponse,
                 "reply from 127.0.0.1:" + std::to_string(server.port()) +
                     " has no choices[0].message.content: {\"choices\":[]}");
  server.enqueue(Reply::text(200, "<html>gateway</html>"));
  expect_failure(llm.process(eth_liquidation()), Status::kBadResponse,
                 "reply from 127.0.0.1:" + std::to_string(server.port()) +
                     " is not a JSON object: <html>gateway</html>");
}

TEST(LlmClassifier, RateLimitCarriesTheServersRetryAfter) {
  HttpTestServer server;
  PluginHarness llm("processor", "llm_classifier", options_for(server));
  const std::string body =
      R"j({"error":{"message":"Rate limit reached for gpt-4o-mini on requests per min (RPM)",)j"
      R"j("type":"requests","code":"rate_limit_exceeded"}})j";
  server.enqueue(Reply::json(429, body, {{"retry-after-ms", "250"}, {"retry-after", "1"}}));
  CallResult r = llm.process(eth_liquidation());
  std::string origin = "127.0.0.1:" + std::to_string(server.port());
  expect_failure(r, Status::kRateLimited,
                 "HTTP 429 from " + origin +
                     ": Rate limit reached for gpt-4o-mini on requests per min (RPM)");
  EXPECT_EQ(r.outcome.retry_after_ns, 250'000'000);

  server.enqueue(Reply::json(429, body, {{"Retry-After", "2"}}));
  EXPECT_EQ(llm.process(eth_liquidation()).outcome.retry_after_ns, 2'000'000'000);
  server.enqueue(Reply::json(429, body));
  r = llm.process(eth_liquidation());
  EXPECT_EQ(r.outcome.status, Status::kRateLimited);
  EXPECT_EQ(r.outcome.retry_after_ns, 0);
  // One request per event: the node leaves retrying to whoever composes it.
  EXPECT_EQ(server.request_count(), 3u);
}

TEST(LlmClassifier, QuotaExhaustedIsNotARateLimit) {
  HttpTestServer server;
  server.enqueue(Reply::json(
      429,
      R"({"error":{"message":"You exceeded your current quota, please check your plan and )"
      R"(billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}})",
      {{"retry-after", "20"}}));
  PluginHarness llm("processor", "llm_classifier", options_for(server));
  CallResult r = llm.process(eth_liquidation());
  expect_failure(r, Status::kQuota,
                 "HTTP 429 from 127.0.0.1:" + std::to_string(server.port()) +
                     ": You exceeded your current quota, please check your plan and billing "
                     "details.");
  EXPECT_EQ(r.outcome.retry_after_ns, 0);
}

TEST(LlmClassifier, ServerErrorsAreClassified) {
  HttpTestServer server;
  PluginHarness llm("processor", "llm_classifier", options_for(server));
  std::string origin = "127.0.0.1:" + std::to_string(server.port());
  server.enqueue(Reply::json(500, R"({"error":{"message":"The server had an error"}})"));
  expect_failure(llm.process(eth_liquidation()), Status::kServerError,
                 "HTTP 500 from " + origin + ": The server had an error");
  server.enqueue(Reply::text(503, "upstream connect error"));
  expect_failure(llm.process(eth_liquidation()), Status::kServerError,
                 "HTTP 503 from " + origin + ": upstream connect error");
}

TEST(LlmClassifier, RefusedKeyIsAnAuthErrorWithTheKeyRedacted) {
  HttpTestServer server;
  // Servers echo the key they refused; it must not travel on in the message.
  server.enqueue(Reply::json(
      401, std::string(R"({"error":{"message":"Incorrect API key provided: )") + kKey +
               R"(.","type":"invalid_request_error","code":"invalid_api_key"}})"));
  server.enqueue(Reply::json(403, R"({"error":{"message":"Country not supported"}})"));
  PluginHarness llm("processor", "llm_classifier", options_for(server));
  std::string origin = "127.0.0.1:" + std::to_string(server.port());
  expect_failure(llm.process(eth_liquidation()), Status::kAuth,
                 "HTTP 401 from " + origin + ": Incorrect API key provided: <redacted>.");
  expect_failure(llm.process(eth_liquidation()), Status::kAuth,
                 "HTTP 403 from " + origin + ": Country not supported");
  expect_no_key_in_logs(llm);
}

TEST(LlmClassifier, RefusedRequestsAreBadRequests) {
  HttpTestServer server;
  PluginHarness llm("processor", "llm_classifier", options_for(server));
  std::string origin = "127.0.0.1:" + std::to_string(server.port());
  server.enqueue(Reply::json(400, R"({"error":{"message":"'messages' must contain the word )"
                                  R"('json' in some form"}})"));
  expect_failure(llm.process(eth_liquidation()), Status::kBadRequest,
                 "HTTP 400 from " + origin +
                     ": 'messages' must contain the word 'json' in some form");
  server.enqueue(Reply::json(404, R"({"error":{"message":"The model `gpt-5o` does not exist"}})"));
  expect_failure(llm.process(eth_liquidation()), Status::kBadRequest,
                 "HTTP 404 from " + origin + ": The model `gpt-5o` does not exist");
  server.enqueue(Reply::json(422, R"({"detail":"temperature out of range"})"));
  expect_failure(llm.process(eth_liquidation()), Status::kBadRequest,
                 "HTTP 422 from " + origin + ": {\"detail\":\"temperature out of range\"}");
}

TEST(LlmClassifier, ReplySlowerThanTheTimeoutIsATimeout) {
  HttpTestServer server;
  server.enqueue(Reply::json(200, completion(kVerdict)).after(std::chrono::milliseconds(2000)));
  PluginHarness llm("processor", "llm_classifier", options_for(server, R"(timeout = "100ms")"));
  expect_failure(llm.process(eth_liquidation()), Status::kTimeout,
                 "no answer from 127.0.0.1:" + std::to_string(server.port()) + " within 100ms");
}

TEST(LlmClassifier, ACallersDeadlineShorterThanTheTimeoutBoundsTheRequest) {
  HttpTestServer server;
  server.enqueue(Reply::json(200, completion(kVerdict)).after(std::chrono::milliseconds(3000)));
  PluginHarness llm("processor", "llm_classifier", options_for(server, R"(timeout = "20s")"));
  int64_t start = sluice::mono_ns();
  CallResult r = llm.process_as_child(eth_liquidation(), start + 150'000'000);
  int64_t took = sluice::mono_ns() - start;
  EXPECT_EQ(r.outcome.status, Status::kTimeout) << r.outcome.message;
  const std::string prefix =
      "no answer from 127.0.0.1:" + std::to_string(server.port()) + " within ";
  EXPECT_EQ(r.outcome.message.rfind(prefix, 0), 0u) << r.outcome.message;
  EXPECT_NE(r.outcome.message.find("(the caller's deadline)"), std::string::npos);
  EXPECT_GE(took, 140'000'000);
  EXPECT_LT(took, 2'500'000'000);  // never the server's 3 s, let alone the 20 s timeout
}

TEST(LlmClassifier, ADeadlineAlreadyPastSendsNoRequest) {
  HttpTestServer server;
  PluginHarness llm("processor", "llm_classifier", options_for(server));
  CallResult r = llm.process_as_child(eth_liquidation(), sluice::mono_ns() - 1);
  expect_failure(r, Status::kTimeout, "no time left before the caller's deadline");
  EXPECT_EQ(server.requests().size(), 0u);
}

TEST(LlmClassifier, ACallersCancelAbortsTheRequest) {
  HttpTestServer server;
  server.enqueue(Reply::json(200, completion(kVerdict)).after(std::chrono::milliseconds(5000)));
  server.enqueue(Reply::json(200, completion(kVerdict)));
  PluginHarness llm("processor", "llm_classifier", options_for(server, R"(timeout = "20s")"));
  int64_t start = sluice::mono_ns();
  CallResult r = llm.process_as_child(eth_liquidation(), 0, std::chrono::milliseconds(100));
  int64_t took = sluice::mono_ns() - start;
  EXPECT_EQ(r.outcome.status, Status::kCancelled) << r.outcome.message;
  EXPECT_EQ(r.outcome.message,
            "cancelled before 127.0.0.1:" + std::to_string(server.port()) + " answered");
  EXPECT_LT(took, 2'500'000'000);
  // The aborted request's connection is not reused: the next call still gets its answer.
  CallResult next = llm.process(eth_liquidation());
  EXPECT_TRUE(next.outcome.ok()) << next.outcome.message;
  // A cancelled call is not a model failure in the metrics.
  EXPECT_EQ(llm.counter("llm_requests_total"), 1);
}

TEST(LlmClassifier, RefusedConnectionIsAServerError) {
  uint16_t port = 0;
  {
    HttpTestServer gone;
    port = gone.port();
  }
  PluginHarness llm("processor", "llm_classifier",
                    "base_url = \"http://127.0.0.1:" + std::to_string(port) +
                        "/v1\"\nmodel = \"m\"\n");
  CallResult r = llm.process(eth_liquidation());
  EXPECT_EQ(r.outcome.status, Status::kServerError) << r.outcome.message;
  EXPECT_EQ(r.outcome.message.rfind("127.0.0.1:" + std::to_string(port) + ": ", 0), 0u)
      << r.outcome.message;
}

TEST(LlmClassifier, NoKeyMeansNoAuthorizationHeader) {
  HttpTestServer server;
  server.enqueue(Reply::json(200, completion(kVerdict)));
  PluginHarness llm("processor", "llm_classifier",
                    "base_url = \"" + server.url("/v1/") + "\"\nmodel = \"llama3.1\"\n");
  ASSERT_TRUE(llm.process(eth_liquidation()).outcome.ok());
  auto req = server.requests().at(0);
  EXPECT_EQ(req.target, "/v1/chat/completions");
  EXPECT_FALSE(req.header("Authorization").has_value());
}

TEST(LlmClassifier, VerifiesHttpsAgainstTheConfiguredCa) {
  HttpTestServer server(HttpTestServerOptions{.tls = true});
  server.enqueue(Reply::json(200, completion(kVerdict)));
  PluginHarness trusted("processor", "llm_classifier",
                        options_for(server, "ca_file = \"" + server.ca_file() + "\""));
  EXPECT_TRUE(trusted.process(eth_liquidation()).outcome.ok());
  // Without the test CA the server's certificate is not trusted.
  PluginHarness untrusted("processor", "llm_classifier", options_for(server));
  CallResult r = untrusted.process(eth_liquidation());
  EXPECT_EQ(r.outcome.status, Status::kServerError) << r.outcome.message;
  EXPECT_EQ(server.request_count(), 1u);
}

TEST(LlmClassifier, ConcurrentCallsShareKeptAliveConnections) {
  HttpTestServer server;
  server.set_handler([](const sluice::testing::RecordedRequest&) {
    return Reply::json(200, completion(kVerdict)).after(std::chrono::milliseconds(50));
  });
  PluginHarness llm("processor", "llm_classifier", options_for(server, "max_connections = 2"));
  std::vector<std::vector<uint8_t>> events(6, eth_liquidation());
  for (const CallResult& r : llm.process_all(events)) EXPECT_TRUE(r.outcome.ok());
  EXPECT_EQ(server.request_count(), 6u);
  EXPECT_LE(server.connection_count(), 2u);
}

TEST(LlmClassifier, CountsTokensCostAndRequestsPerModel) {
  HttpTestServer server;
  server.enqueue(Reply::json(200, completion(kVerdict, 100, 30)));
  server.enqueue(Reply::json(200, completion(kVerdict, 200, 50)));
  server.enqueue(Reply::json(500, "{}"));
  PluginHarness llm("processor", "llm_classifier",
                    options_for(server, "price_per_mtok = { input = 1.0, output = 10.0 }"));
  for (int i = 0; i < 3; ++i) llm.process(eth_liquidation());
  EXPECT_EQ(llm.counter("llm_prompt_tokens_total"), 300);
  EXPECT_EQ(llm.counter("llm_completion_tokens_total"), 80);
  EXPECT_DOUBLE_EQ(llm.counter("llm_cost_usd_total"), 300e-6 + 800e-6);
  EXPECT_EQ(llm.counter("llm_requests_total"), 3);
}

TEST(LlmClassifier, WarnsWhenTheKeyWouldCrossTheNetworkUnencrypted) {
  PluginHarness llm("processor", "llm_classifier",
                    std::string("base_url = \"http://llm.internal:8000/v1\"\nmodel = \"m\"\n") +
                        "api_key = \"" + kKey + "\"\n");
  auto logs = llm.logs();
  ASSERT_EQ(logs.size(), 1u);
  EXPECT_EQ(logs[0].level, SLUICE_LOG_WARN);
  EXPECT_EQ(logs[0].message,
            "base_url is plain http to llm.internal: the API key crosses the network "
            "unencrypted");
  expect_no_key_in_logs(llm);
}

TEST(LlmClassifier, RefusesOptionsItCannotUse) {
  const std::string base = "base_url = \"http://127.0.0.1:1/v1\"\nmodel = \"m\"\n";
  EXPECT_EQ(create_error(base + R"(system_prompt = "Rate it."
user_prompt = "{{symbol}}")"),
            "<options>:3:17: error: processors.test: option 'system_prompt': must mention JSON "
            "when response_format = \"json_object\"");
  EXPECT_EQ(create_error(base + R"(system_prompt = "Rate it."
response_format = "text")"),
            "");
  EXPECT_EQ(create_error(base + R"(user_prompt = "{{#symbol}}")"),
            "<options>:3:15: error: processors.test: option 'user_prompt': is not a valid "
            "mustache template: Unclosed section \"symbol\" at 0");
  EXPECT_EQ(create_error("base_url = \"ftp://x/v1\"\nmodel = \"m\"\n"),
            "<options>:1:12: error: processors.test: option 'base_url': must start with http:// "
            "or https://");
  EXPECT_EQ(create_error(base + "temperature = 2.5"),
            "<options>:3:15: error: processors.test: option 'temperature': must be between 0 "
            "and 2");
  EXPECT_EQ(create_error(base + "max_tokens = 0"),
            "<options>:3:14: error: processors.test: option 'max_tokens': must be at least 1");
  EXPECT_EQ(create_error(base + "price_per_mtok = { input = 0.15, ouput = 0.6 }"),
            "<options>:3:18: error: processors.test: option 'price_per_mtok': has unknown key "
            "'ouput' (expected input, output)");
  EXPECT_EQ(create_error(base + "price_per_mtok = { input = -1.0 }"),
            "<options>:3:18: error: processors.test: option 'price_per_mtok': 'input' must be a "
            "non-negative number of USD per million tokens");
  std::string err = create_error(base + "ca_file = \"/nonexistent/ca.pem\"");
  EXPECT_EQ(err.rfind("<options>:3:11: error: processors.test: option 'ca_file': ", 0), 0u)
      << err;
  EXPECT_NE(create_error("model = \"m\"").find("missing required option 'base_url'"),
            std::string::npos);
}

}  // namespace
