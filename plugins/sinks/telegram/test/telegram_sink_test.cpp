// Tests of the `telegram` sink through the real loader and host, against the scripted HTTP test
// server: the exact sendMessage path and body, HTML escaping, the default alert text, several
// chats, 429 parameters.retry_after without loss or duplicates, 5xx retries, 400 with
// Telegram's description, the 4096-character limit, and the bot token kept out of logs.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "http_test_server.hpp"
#include "plugin_harness.hpp"
#include "sluice/event.hpp"

namespace {

using nlohmann::json;
using sluice::Status;
using sluice::testing::HttpTestServer;
using sluice::testing::make_event;
using sluice::testing::PluginHarness;
using sluice::testing::RecordedRequest;
using sluice::testing::Reply;

constexpr const char* kToken = "123:TESTTOKEN";
constexpr const char* kPath = "/bot123:TESTTOKEN/sendMessage";

// The server as api_base, the options in extra, and fast defaults for those extra leaves out.
std::string options(const HttpTestServer& server, const std::string& extra = "") {
  std::string out = "bot_token = \"" + std::string(kToken) + "\"\napi_base = \"" +
                    server.base_url() + "\"\n" + extra + "\n";
  if (extra.find("chat_ids =") == std::string::npos) out += "chat_ids = [42]\n";
  if (extra.find("min_interval =") == std::string::npos) out += "min_interval = \"0s\"\n";
  if (extra.find("max_per_second =") == std::string::npos) out += "max_per_second = 100000\n";
  if (extra.find("retry_backoff =") == std::string::npos) out += "retry_backoff = \"1ms\"\n";
  return out;
}

json liquidation_fields(const std::string& symbol = "BTCUSDT") {
  return {{"exchange", "binance"},   {"symbol", symbol}, {"side", "SELL"},
          {"liquidated", "long"},    {"price", 64250.5}, {"quantity", 2},
          {"notional_usd", 128501.4}};
}

std::vector<uint8_t> liquidation(const std::string& symbol = "BTCUSDT") {
  return make_event(liquidation_fields(symbol));
}

json body_of(const RecordedRequest& q) { return json::parse(q.body); }
std::string text_of(const RecordedRequest& q) { return body_of(q).at("text").get<std::string>(); }

TEST(TelegramSinkTest, PostsTheDefaultAlertToSendMessageWithAChartButton) {
  HttpTestServer server;
  server.enqueue(Reply::json(200, R"({"ok":true,"result":{"message_id":7}})"));
  PluginHarness sink("sink", "telegram", options(server));
  // Built without an event time, so the message has no time and latency line.
  sluice::EventBuilder b;
  b.field("exchange", "binance").field("symbol", "BTCUSDT").field("side", "SELL");
  b.field("liquidated", "long").field("price", 64250.5).field("quantity", int64_t{2});
  b.field("notional_usd", 128501.4).field("risk_level", "high");
  b.field("summary", "Cascade risk & <thin> book").field("recommendation", "reduce leverage");
  const auto bytes = b.finish();
  auto r = sink.process(std::vector<uint8_t>(bytes.begin(), bytes.end()));
  EXPECT_TRUE(r.outcome.ok()) << r.outcome.message;
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "POST");
  EXPECT_EQ(reqs[0].target, kPath);
  EXPECT_EQ(reqs[0].header("Content-Type").value_or(""), "application/json; charset=utf-8");
  const std::string text =
      "\xF0\x9F\x94\xB4 <b>BTCUSDT</b> long liquidated \xC2\xB7 <b>$128,501</b>\n"
      "SELL 2 @ 64250.5 on binance\n"
      "Risk: <b>high</b>\n"
      "Cascade risk &amp; &lt;thin&gt; book\n"
      "\xE2\x9E\xA1\xEF\xB8\x8F <i>reduce leverage</i>";
  EXPECT_EQ(body_of(reqs[0]),
            json({{"chat_id", 42},
                  {"text", text},
                  {"parse_mode", "HTML"},
                  {"link_preview_options", {{"is_disabled", true}}},
                  {"reply_markup",
                   {{"inline_keyboard",
                     {{{{"text", "\xF0\x9F\x93\x88 Chart"},
                        {"url", "https://www.binance.com/en/futures/BTCUSDT"}}}}}}}}));
}

TEST(TelegramSinkTest, MarksShortLiquidationsGreenAndShowsTradeTimeAndLatency) {
  HttpTestServer server;
  PluginHarness sink("sink", "telegram", options(server));
  json fields = liquidation_fields("ETHUSDT");
  fields["side"] = "BUY";
  fields["liquidated"] = "short";
  fields["trade_time_ms"] = int64_t{1700000000123};
  EXPECT_TRUE(sink.process(make_event(fields)).outcome.ok());
  const std::string text = text_of(server.requests().at(0));
  EXPECT_EQ(text.rfind("\xF0\x9F\x9F\xA2 <b>ETHUSDT</b> short liquidated", 0), 0u) << text;
  // The latency is now minus 2023-11-14T22:13:20.123Z: its value depends on the clock.
  const std::string time_line = "\n\xF0\x9F\x95\x92 22:13:20 UTC \xC2\xB7 latency ";
  EXPECT_NE(text.find(time_line), std::string::npos) << text;
  EXPECT_EQ(text.substr(text.size() - 2), " s") << text;
}

TEST(TelegramSinkTest, LeavesOutTimesAndAmountsThatAreNotRealWithoutFailing) {
  HttpTestServer server;
  PluginHarness sink("sink", "telegram",
                     options(server, "template = \"{{_notional}}|{{_time}}\"\nchart_url = \"\""));
  sluice::EventBuilder b;
  b.field("notional_usd", 1e300).field("trade_time_ms", 1e300);
  const auto bytes = b.finish();
  EXPECT_TRUE(sink.process(std::vector<uint8_t>(bytes.begin(), bytes.end())).outcome.ok());
  EXPECT_EQ(text_of(server.requests().at(0)), "?|");
}

TEST(TelegramSinkTest, EscapesHtmlInATemplateAndSendsThreadAndPreviewOptions) {
  HttpTestServer server;
  PluginHarness sink("sink", "telegram",
                     options(server,
                             "template = \"<b>{{symbol}}</b> {{{symbol}}}\"\nchart_url = \"\"\n"
                             "disable_link_preview = false\nmessage_thread_id = 9"));
  EXPECT_TRUE(sink.process(liquidation("<a&b>")).outcome.ok());
  EXPECT_EQ(body_of(server.requests().at(0)), json({{"chat_id", 42},
                                                    {"text", "<b>&lt;a&amp;b&gt;</b> <a&b>"},
                                                    {"parse_mode", "HTML"},
                                                    {"message_thread_id", 9}}));
}

// A `watch` (or any node) alerting about the pipeline itself: its text, HTML-escaped, with no
// chart or mute button and no liquidation template.
TEST(TelegramSinkTest, APipelineAlertIsSentAsItsTextWithoutButtons) {
  HttpTestServer server;
  PluginHarness sink("sink", "telegram", options(server, "commands = false"));
  EXPECT_TRUE(
      sink.process(make_event({{"alert", "firing"},
                               {"watch", "latency"},
                               {"text", "\xF0\x9F\x94\xB4 p95 latency is 182 ms (> 100 ms)"}}))
          .outcome.ok());
  EXPECT_EQ(body_of(server.requests().at(0)),
            json({{"chat_id", 42},
                  {"text", "\xF0\x9F\x94\xB4 p95 latency is 182 ms (&gt; 100 ms)"},
                  {"parse_mode", "HTML"},
                  {"link_preview_options", {{"is_disabled", true}}}}));
}

TEST(TelegramSinkTest, SendsEveryEventToEveryChat) {
  HttpTestServer server;
  PluginHarness sink("sink", "telegram",
                     options(server, "chat_ids = [1, -100200, 3]\ntemplate = \"{{symbol}}\""));
  for (const auto& r : sink.process_all({liquidation("A"), liquidation("B")})) {
    EXPECT_TRUE(r.outcome.ok()) << r.outcome.message;
  }
  std::map<int64_t, std::vector<std::string>> by_chat;
  for (const auto& q : server.requests()) {
    EXPECT_EQ(q.target, kPath);
    by_chat[body_of(q).at("chat_id").get<int64_t>()].push_back(text_of(q));
  }
  const std::vector<std::string> both = {"A", "B"};
  EXPECT_EQ(by_chat,
            (std::map<int64_t, std::vector<std::string>>{{1, both}, {-100200, both}, {3, both}}));
}

TEST(TelegramSinkTest, WaitsOutRetryAfterAndDeliversExactlyOneMessagePerChat) {
  HttpTestServer server;
  std::mutex mu;
  std::map<int64_t, int> seen;
  server.set_handler([&](const RecordedRequest& q) {
    const int64_t chat = json::parse(q.body).at("chat_id").get<int64_t>();
    std::lock_guard lock(mu);
    if (chat == 1 && seen[chat]++ == 0) {
      return Reply::json(429, R"({"ok":false,"error_code":429,)"
                              R"("description":"Too Many Requests: retry after 0",)"
                              R"("parameters":{"retry_after":0}})");
    }
    return Reply::json(200, R"({"ok":true,"result":{}})");
  });
  // An hour of backoff: only honouring parameters.retry_after lets this finish.
  PluginHarness sink("sink", "telegram",
                     options(server,
                             "chat_ids = [1, 2]\nretry_backoff = \"1h\"\n"
                             "retry_backoff_max = \"1h\"\ntemplate = \"{{symbol}}\""));
  auto results = sink.process_all({liquidation("A"), liquidation("B")});
  for (const auto& r : results) EXPECT_TRUE(r.outcome.ok()) << r.outcome.message;
  std::map<int64_t, std::vector<std::string>> by_chat;
  for (const auto& q : server.requests()) {
    by_chat[body_of(q).at("chat_id").get<int64_t>()].push_back(text_of(q));
  }
  // Chat 1 got "A" twice (the 429, then the delivery), then "B"; chat 2 each once.
  EXPECT_EQ(by_chat,
            (std::map<int64_t, std::vector<std::string>>{{1, {"A", "A", "B"}}, {2, {"A", "B"}}}));
  EXPECT_EQ(sink.counter("sink_retries_total"), 1);
}

TEST(TelegramSinkTest, StopEndsAWaitForRetryAfterAndFailsTheEventAsCancelled) {
  HttpTestServer server;
  server.enqueue(Reply::json(429, R"({"ok":false,"error_code":429,)"
                                  R"("description":"Too Many Requests: retry after 30",)"
                                  R"("parameters":{"retry_after":30}})"));
  PluginHarness sink("sink", "telegram", options(server));
  std::thread stopper([&] {
    ASSERT_TRUE(server.wait_for_requests(1));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the 429 is being waited out
    sink.flush();
  });
  const auto start = std::chrono::steady_clock::now();
  auto r = sink.process(liquidation(), std::chrono::seconds(20));
  const auto took = std::chrono::steady_clock::now() - start;
  stopper.join();
  EXPECT_EQ(r.outcome.status, Status::kCancelled) << r.outcome.message;
  EXPECT_NE(r.outcome.message.find("stopped while waiting to retry"), std::string::npos)
      << r.outcome.message;
  EXPECT_LT(took, std::chrono::seconds(15));  // not the 30 s Telegram asked for
  EXPECT_EQ(server.request_count(), 1u);
}

TEST(TelegramSinkTest, RetriesServerErrors) {
  HttpTestServer server;
  Reply error = Reply::json(502, R"({"ok":false,"error_code":502,"description":"Bad Gateway"})");
  error.close = true;
  server.enqueue(error);
  server.enqueue(Reply::drop());
  PluginHarness sink("sink", "telegram", options(server));
  auto r = sink.process(liquidation());
  EXPECT_TRUE(r.outcome.ok()) << r.outcome.message;
  EXPECT_EQ(server.request_count(), 3u);
  EXPECT_EQ(sink.counter("sink_retries_total"), 2);
}

TEST(TelegramSinkTest, FailsABadRequestWithTelegramsDescriptionWhenAnyChatRejectsIt) {
  HttpTestServer server;
  server.set_handler([](const RecordedRequest& q) {
    if (json::parse(q.body).at("chat_id") == 13) {
      return Reply::json(400, R"({"ok":false,"error_code":400,)"
                              R"("description":"Bad Request: chat not found"})");
    }
    return Reply::json(200, R"({"ok":true,"result":{}})");
  });
  PluginHarness sink("sink", "telegram", options(server, "chat_ids = [42, 13]"));
  auto r = sink.process(liquidation());
  EXPECT_EQ(r.outcome.status, Status::kBadRequest);
  EXPECT_EQ(r.outcome.message, "telegram: chat 13: HTTP 400: Bad Request: chat not found");
  EXPECT_EQ(server.request_count(), 2u);
  EXPECT_EQ(sink.counter("sink_drops_total"), 1);
}

TEST(TelegramSinkTest, FailsAnUnauthorizedTokenAsAuthWithoutRetrying) {
  HttpTestServer server;
  server.enqueue(Reply::json(401, R"({"ok":false,"error_code":401,"description":"Unauthorized"})"));
  PluginHarness sink("sink", "telegram", options(server));
  auto r = sink.process(liquidation());
  EXPECT_EQ(r.outcome.status, Status::kAuth);
  EXPECT_EQ(r.outcome.message, "telegram: chat 42: HTTP 401: Unauthorized");
  EXPECT_EQ(server.request_count(), 1u);
}

TEST(TelegramSinkTest, CutsLongTextTo4096CharactersKeepingEntitiesAndTagsWhole) {
  HttpTestServer server;
  PluginHarness sink("sink", "telegram",
                     options(server, "template = \"<b>{{summary}}</b>\"\nchart_url = \"\""));
  json fields = liquidation_fields();
  std::string summary;
  for (int i = 0; i < 3000; ++i) summary += "a&b";
  fields["summary"] = summary;
  EXPECT_TRUE(sink.process(make_event(fields)).outcome.ok());
  const std::string text = text_of(server.requests().at(0));
  const std::string tail = "\xE2\x80\xA6</b>";
  ASSERT_GT(text.size(), tail.size());
  EXPECT_LE(text.size(), 4096u);  // ASCII plus one 3-byte "…" that counts as one character
  EXPECT_EQ(text.substr(text.size() - tail.size()), tail);
  const std::string kept = text.substr(3, text.size() - 3 - tail.size());
  std::string escaped;
  for (int i = 0; i < 3000; ++i) escaped += "a&amp;b";
  EXPECT_EQ(escaped.rfind(kept, 0), 0u);
  const size_t amp = kept.rfind('&');
  ASSERT_NE(amp, std::string::npos);
  EXPECT_EQ(kept.substr(amp, 5), "&amp;");
}

TEST(TelegramSinkTest, KeepsTheBotTokenOutOfErrorsAndLogs) {
  uint16_t port;
  {
    HttpTestServer gone;
    port = gone.port();
  }
  PluginHarness sink("sink", "telegram",
                     "bot_token = \"" + std::string(kToken) +
                         "\"\napi_base = \"http://127.0.0.1:" + std::to_string(port) +
                         "\"\nchat_ids = [42]\nmax_retries = 1\nretry_backoff = \"1ms\"");
  auto r = sink.process(liquidation());
  EXPECT_EQ(r.outcome.status, Status::kServerError);
  EXPECT_EQ(r.outcome.message.find("TESTTOKEN"), std::string::npos) << r.outcome.message;
  ASSERT_FALSE(sink.logs().empty());
  for (const auto& line : sink.logs()) {
    EXPECT_EQ(line.message.find("TESTTOKEN"), std::string::npos) << line.message;
  }
}

TEST(TelegramSinkTest, RejectsBadOptionsNamingTheOption) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"chat_ids = []", "option 'chat_ids': must not be empty"},
      {"chat_ids = [5, 5]", "option 'chat_ids': lists chat 5 twice"},
      {"chat_ids = [5]\ntemplate = \"{{#open}}\"", "option 'template': Unclosed section \"open\""},
      {"chat_ids = [5]\nmax_per_second = 0", "option 'max_per_second': must be positive"},
  };
  for (const auto& [extra, expected] : cases) {
    try {
      PluginHarness sink("sink", "telegram", "bot_token = \"1:x\"\n" + extra);
      ADD_FAILURE() << "expected an error for " << extra;
    } catch (const std::exception& e) {
      EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
    }
  }
}

}  // namespace
