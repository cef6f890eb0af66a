// Tests of the `telegram` sink's bot (commands = true) against a scripted Bot API on the local
// HTTP test server: the getUpdates request, commands from an allowed and an unknown user,
// commands addressed to another bot (getMe) and what happens when getMe fails, commands in
// group chats (ignored unless listed in command_chat_ids), /setthreshold changing the pipeline
// setting (and, end to end, what a filter lets through) or telling why it could not, /mute and
// the mute button, /stats, the offset, mutes and unsent replies in the node state surviving a
// restart or a crash (neither applied twice nor lost), the move of an old state file, malformed
// getUpdates replies, and a stop that does not wait for the long poll.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "http_test_server.hpp"
#include "pipeline_runner.hpp"
#include "plugin_harness.hpp"
#include "sluice/core/state.hpp"

#include <sqlite3.h>

namespace {

using nlohmann::json;
using sluice::testing::HarnessOptions;
using sluice::testing::HttpTestServer;
using sluice::testing::make_event;
using sluice::testing::PluginHarness;
using sluice::testing::RecordedRequest;
using sluice::testing::Reply;
using sluice::testing::TempDir;

constexpr int64_t kAdmin = 1001;
constexpr int64_t kStranger = 666;
constexpr int64_t kCommandChat = 7;
constexpr int64_t kAlertChat = 42;
const std::string kBot = "/bot123:TESTTOKEN/";
const std::string kMuted = "\xF0\x9F\x94\x95";

// The Bot API: getUpdates answers from a queue of scripted replies, else with no updates after a
// short wait (a long poll that found nothing); getMe names the bot @SluiceAlertsBot unless told
// otherwise; sendMessage and answerCallbackQuery succeed.
class FakeBotApi {
 public:
  FakeBotApi() {
    server.set_handler([this](const RecordedRequest& q) { return answer(q); });
  }

  // Telegram's own behaviour: getUpdates returns the offered updates whose id is at least the
  // request's offset (and forgets the others), so an update not confirmed by a later offset is
  // fetched again, as after a crash.
  void offer(const std::vector<json>& updates) {
    std::lock_guard lock(mu_);
    offered_.insert(offered_.end(), updates.begin(), updates.end());
  }
  // While true, sendMessage and answerCallbackQuery are received but not answered for a minute:
  // the replies of a process that dies now never reach the chat.
  void hold_replies(bool hold) {
    std::lock_guard lock(mu_);
    hold_ = hold;
  }
  // Replies Telegram took (answered at once), as "method chat_or_query_id text".
  std::vector<std::string> delivered() const {
    std::lock_guard lock(mu_);
    return delivered_;
  }
  bool wait_delivered(size_t n) const {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (delivered().size() < n) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
  }

  void push_updates(const std::vector<json>& updates) {
    push(Reply::json(200, json({{"ok", true}, {"result", json(updates)}}).dump()));
  }
  void push(Reply reply) {
    std::lock_guard lock(mu_);
    polls_.push_back(std::move(reply));
  }
  // getMe answers with this from now on (by default: the bot is @SluiceAlertsBot).
  void set_get_me(Reply reply) {
    std::lock_guard lock(mu_);
    get_me_ = std::move(reply);
  }

  // Requests to one Bot API method, in arrival order.
  std::vector<RecordedRequest> calls(const std::string& method) const {
    std::vector<RecordedRequest> out;
    for (auto& q : server.requests()) {
      if (q.target == kBot + method) out.push_back(q);
    }
    return out;
  }
  std::vector<json> bodies(const std::string& method) const {
    std::vector<json> out;
    for (auto& q : calls(method)) out.push_back(json::parse(q.body));
    return out;
  }
  // sendMessage bodies to one chat.
  std::vector<json> messages_to(int64_t chat) const {
    std::vector<json> out;
    for (auto& b : bodies("sendMessage")) {
      if (b.at("chat_id") == chat) out.push_back(b);
    }
    return out;
  }
  bool wait_for(const std::string& method, size_t n) const {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (calls(method).size() < n) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
  }
  // The text of the next reply to kCommandChat after `before` replies.
  std::string reply_after(size_t before) const {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (messages_to(kCommandChat).size() <= before) {
      if (std::chrono::steady_clock::now() > deadline) return "<no reply>";
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return messages_to(kCommandChat)[before].at("text").get<std::string>();
  }

  HttpTestServer server;

 private:
  Reply answer(const RecordedRequest& q) {
    if (q.target == kBot + "getUpdates") {
      std::lock_guard lock(mu_);
      if (!polls_.empty()) {
        Reply r = std::move(polls_.front());
        polls_.pop_front();
        return r;
      }
      const json poll = json::parse(q.body, nullptr, false);
      const int64_t offset = poll.is_object() ? poll.value("offset", int64_t{0}) : 0;
      std::erase_if(offered_, [&](const json& u) { return u.at("update_id") < offset; });
      if (!offered_.empty()) {
        return Reply::json(200, json({{"ok", true}, {"result", offered_}}).dump());
      }
      return Reply::json(200, R"({"ok":true,"result":[]})").after(std::chrono::milliseconds(20));
    }
    if (q.target == kBot + "getMe") {
      std::lock_guard lock(mu_);
      if (get_me_) return *get_me_;
      return Reply::json(200, R"({"ok":true,"result":{"id":123,"is_bot":true,)"
                              R"("first_name":"Alerts","username":"SluiceAlertsBot"}})");
    }
    std::lock_guard lock(mu_);
    if (hold_) return Reply::json(200, R"({"ok":true,"result":true})").after(std::chrono::minutes(1));
    const json body = json::parse(q.body, nullptr, false);
    const std::string method = q.target.substr(kBot.size());
    const json to = body.contains("chat_id") ? body.at("chat_id") : body.value("callback_query_id", json());
    delivered_.push_back(method + " " + to.dump() + " " + body.value("text", ""));
    return Reply::json(200, R"({"ok":true,"result":true})");
  }

  mutable std::mutex mu_;
  std::vector<json> offered_;
  bool hold_ = false;
  std::vector<std::string> delivered_;
  std::deque<Reply> polls_;
  std::optional<Reply> get_me_;
};

json command(int64_t update_id, int64_t user, const std::string& text) {
  return {{"update_id", update_id},
          {"message",
           {{"message_id", update_id},
            {"from", {{"id", user}, {"is_bot", false}, {"first_name", "Trader"}}},
            {"chat", {{"id", kCommandChat}, {"type", "private"}}},
            {"date", 1700000000},
            {"text", text}}}};
}

json button(int64_t update_id, int64_t user, const std::string& data) {
  return {{"update_id", update_id},
          {"callback_query",
           {{"id", "cb" + std::to_string(update_id)},
            {"from", {{"id", user}, {"is_bot", false}, {"first_name", "Trader"}}},
            {"message", {{"message_id", 3}, {"chat", {{"id", kAlertChat}, {"type", "private"}}}}},
            {"chat_instance", "1"},
            {"data", data}}}};
}

// The API as api_base, commands on for kAdmin, fast defaults; keys in extra replace defaults.
std::string options(const FakeBotApi& api, const std::string& extra = "") {
  const std::vector<std::pair<std::string, std::string>> defaults = {
      {"chat_ids", "[42]"},         {"min_interval", "\"0s\""},     {"max_per_second", "100000"},
      {"retry_backoff", "\"1ms\""}, {"template", "\"{{symbol}}\""}, {"chart_url", "\"\""},
      {"commands", "true"},         {"allowed_user_ids", "[1001]"}, {"poll_timeout", "\"1s\""},
  };
  std::string out = "bot_token = \"123:TESTTOKEN\"\napi_base = \"" + api.server.base_url() +
                    "\"\n" + extra + "\n";
  for (const auto& [key, value] : defaults) {
    if (("\n" + extra).find("\n" + key + " =") == std::string::npos) {
      out += key + " = " + value + "\n";
    }
  }
  return out;
}

HarnessOptions with_threshold(std::string state_dir = "") {
  HarnessOptions o;
  o.settings = {{"min_alert_usd", 100000}};
  o.state_dir = std::move(state_dir);
  return o;
}

std::vector<uint8_t> alert(const std::string& symbol, double notional = 128501.4) {
  return make_event({{"symbol", symbol}, {"side", "SELL"}, {"notional_usd", notional}});
}

TEST(TelegramCommandsTest, LongPollsGetUpdatesAndMovesTheOffsetPastAnsweredUpdates) {
  FakeBotApi api;
  api.push_updates({command(5, kAdmin, "/start")});
  PluginHarness sink("sink", "telegram", options(api, "poll_timeout = \"25s\""), with_threshold());
  ASSERT_TRUE(api.wait_for("getUpdates", 2));
  const auto polls = api.bodies("getUpdates");
  EXPECT_EQ(polls[0], json({{"timeout", 25}, {"allowed_updates", {"message", "callback_query"}}}));
  EXPECT_EQ(
      polls[1],
      json({{"offset", 6}, {"timeout", 25}, {"allowed_updates", {"message", "callback_query"}}}));
  const std::string help = api.reply_after(0);
  EXPECT_NE(help.find("/setthreshold USD"), std::string::npos) << help;
  EXPECT_NE(help.find("/mute SYMBOL DURATION"), std::string::npos) << help;
  const json reply = api.messages_to(kCommandChat).at(0);
  EXPECT_EQ(reply.at("parse_mode"), "HTML");
}

TEST(TelegramCommandsTest, AllowedUserSetsTheThresholdSettingAndGetsOldAndNewValues) {
  FakeBotApi api;
  PluginHarness sink("sink", "telegram", options(api), with_threshold());
  api.push_updates({command(1, kAdmin, "/setthreshold 250000")});
  EXPECT_EQ(api.reply_after(0),
            "Threshold <code>min_alert_usd</code>: $100,000 \xE2\x86\x92 $250,000");
  EXPECT_EQ(sink.setting("min_alert_usd"), json(250000));
  // The "/cmd@BotName" form of groups, and amounts written the way traders write them.
  api.push_updates({command(2, kAdmin, "/setthreshold@SluiceAlertsBot $1.5M")});
  EXPECT_EQ(api.reply_after(1),
            "Threshold <code>min_alert_usd</code>: $250,000 \xE2\x86\x92 $1,500,000");
  EXPECT_EQ(sink.setting("min_alert_usd"), json(1500000));
}

TEST(TelegramCommandsTest, UnknownUserIsRefusedAndChangesNothing) {
  FakeBotApi api;
  PluginHarness sink("sink", "telegram", options(api), with_threshold());
  api.push_updates({command(1, kStranger, "/setthreshold 1")});
  const std::string refusal = api.reply_after(0);
  EXPECT_NE(refusal.find("Not authorised"), std::string::npos) << refusal;
  EXPECT_NE(refusal.find("<code>666</code>"), std::string::npos) << refusal;
  EXPECT_EQ(sink.setting("min_alert_usd"), json(100000));
  // A stranger's mute does nothing either (and a second refusal so soon is not sent).
  api.push_updates({command(2, kStranger, "/mute BTCUSDT 1h")});
  ASSERT_TRUE(api.wait_for("getUpdates", api.calls("getUpdates").size() + 2));
  EXPECT_TRUE(sink.process(alert("BTCUSDT")).outcome.ok());
  EXPECT_EQ(api.messages_to(kAlertChat).size(), 1u);
  EXPECT_EQ(api.messages_to(kCommandChat).size(), 1u);
  bool logged = false;
  for (const auto& line : sink.logs()) {
    if (line.message.find("refused /setthreshold from user 666") != std::string::npos) {
      logged = true;
    }
  }
  EXPECT_TRUE(logged);
}

TEST(TelegramCommandsTest, AnswersCommandsToThisBotAndIgnoresThoseToAnother) {
  FakeBotApi api;  // getMe: @SluiceAlertsBot
  PluginHarness sink("sink", "telegram", options(api), with_threshold());
  // Had the first been obeyed, the reply to the second would start from $5,000.
  api.push_updates({command(1, kAdmin, "/setthreshold@OtherBot 5000"),
                    command(2, kAdmin, "/setthreshold@sluicealertsbot 250000")});
  EXPECT_EQ(api.reply_after(0),
            "Threshold <code>min_alert_usd</code>: $100,000 \xE2\x86\x92 $250,000");
  // Not refused either, even for a stranger: the command is not this bot's business.
  api.push_updates(
      {command(3, kAdmin, "/mute@OtherBot BTCUSDT 1h"), command(4, kStranger, "/stats@OtherBot")});
  ASSERT_TRUE(api.wait_for("getUpdates", api.calls("getUpdates").size() + 2));
  EXPECT_EQ(api.messages_to(kCommandChat).size(), 1u);
  api.push_updates({command(5, kAdmin, "/symbols")});
  const std::string symbols = api.reply_after(1);
  EXPECT_NE(symbols.find("Nothing muted."), std::string::npos) << symbols;
  EXPECT_EQ(sink.setting("min_alert_usd"), json(250000));
  EXPECT_EQ(api.calls("getMe").size(), 1u);
  for (const auto& line : sink.logs()) {
    EXPECT_EQ(line.message.find("getMe"), std::string::npos) << line.message;
  }
}

TEST(TelegramCommandsTest, WhenGetMeFailsItIsLoggedOnceAndEveryAddresseeIsAnswered) {
  FakeBotApi api;
  api.set_get_me(Reply::json(401, R"({"ok":false,"error_code":401,"description":"Unauthorized"})"));
  PluginHarness sink("sink", "telegram", options(api), with_threshold());
  api.push_updates({command(1, kAdmin, "/setthreshold@OtherBot 5000")});
  EXPECT_EQ(api.reply_after(0),
            "Threshold <code>min_alert_usd</code>: $100,000 \xE2\x86\x92 $5,000");
  api.push_updates({command(2, kAdmin, "/start@SluiceAlertsBot")});
  const std::string help = api.reply_after(1);
  EXPECT_NE(help.find("/setthreshold USD"), std::string::npos) << help;
  EXPECT_EQ(api.calls("getMe").size(), 1u);
  int logged = 0;
  for (const auto& line : sink.logs()) {
    EXPECT_EQ(line.message.find("TESTTOKEN"), std::string::npos) << line.message;
    if (line.message.find("telegram: getMe: HTTP 401: Unauthorized") != std::string::npos) {
      EXPECT_EQ(line.level, SLUICE_LOG_WARN);
      ++logged;
    }
  }
  EXPECT_EQ(logged, 1);
}

TEST(TelegramCommandsTest, SetthresholdWithoutAPositiveAmountAnswersWithUsage) {
  FakeBotApi api;
  PluginHarness sink("sink", "telegram", options(api), with_threshold());
  const std::vector<std::string> bad = {"/setthreshold",       "/setthreshold abc",
                                        "/setthreshold -5",    "/setthreshold 0",
                                        "/setthreshold 1e400", "/setthreshold 5 6"};
  for (size_t i = 0; i < bad.size(); ++i) {
    api.push_updates({command(static_cast<int64_t>(i + 1), kAdmin, bad[i])});
    const std::string reply = api.reply_after(i);
    EXPECT_NE(reply.find("Usage: /setthreshold USD"), std::string::npos) << bad[i] << ": " << reply;
  }
  EXPECT_EQ(sink.setting("min_alert_usd"), json(100000));
}

TEST(TelegramCommandsTest, SetthresholdNamesAMissingSetting) {
  FakeBotApi api;
  PluginHarness sink("sink", "telegram", options(api, "threshold_setting = \"min_usd\""),
                     with_threshold());
  api.push_updates({command(1, kAdmin, "/setthreshold 5000")});
  const std::string reply = api.reply_after(0);
  EXPECT_NE(reply.find("no setting <code>min_usd</code>"), std::string::npos) << reply;
}

TEST(TelegramCommandsTest, MutedSymbolsAlertsAreCountedNotSentOthersStillAre) {
  FakeBotApi api;
  PluginHarness sink("sink", "telegram", options(api), with_threshold());
  api.push_updates({command(1, kAdmin, "/mute btcusdt 1h")});
  const std::string reply = api.reply_after(0);
  EXPECT_EQ(reply.rfind(kMuted + " <b>BTCUSDT</b> muted for 1h, until ", 0), 0u) << reply;

  EXPECT_TRUE(sink.process(alert("BTCUSDT")).outcome.ok());
  EXPECT_TRUE(sink.process(alert("ETHUSDT")).outcome.ok());
  auto alerts = api.messages_to(kAlertChat);
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].at("text"), "ETHUSDT");
  EXPECT_EQ(sink.counter("telegram_muted_total"), 1);

  api.push_updates({command(2, kAdmin, "/symbols")});
  const std::string symbols = api.reply_after(1);
  EXPECT_NE(symbols.find("BTCUSDT: 1\n"), std::string::npos) << symbols;
  EXPECT_NE(symbols.find("<b>Muted</b>\n" + kMuted + " BTCUSDT for "), std::string::npos)
      << symbols;

  api.push_updates({command(3, kAdmin, "/unmute BTCUSDT")});
  EXPECT_EQ(api.reply_after(2), "\xF0\x9F\x94\x94 <b>BTCUSDT</b> unmuted.");
  EXPECT_TRUE(sink.process(alert("BTCUSDT")).outcome.ok());
  EXPECT_EQ(api.messages_to(kAlertChat).size(), 2u);

  api.push_updates({command(4, kAdmin, "/mute BTCUSDT soon")});
  EXPECT_NE(api.reply_after(3).find("Usage: /mute SYMBOL DURATION"), std::string::npos);
}

TEST(TelegramCommandsTest, MuteButtonUnderAnAlertMutesForAnHourForAllowedUsersOnly) {
  FakeBotApi api;
  PluginHarness sink("sink", "telegram",
                     options(api, "chart_url = \"https://example.com/{{symbol}}\""),
                     with_threshold());
  EXPECT_TRUE(sink.process(alert("BTCUSDT")).outcome.ok());
  EXPECT_EQ(api.messages_to(kAlertChat).at(0).at("reply_markup"),
            json({{"inline_keyboard",
                   {{{{"text", "\xF0\x9F\x93\x88 Chart"}, {"url", "https://example.com/BTCUSDT"}},
                     {{"text", kMuted + " Mute 1h"}, {"callback_data", "mute:BTCUSDT:1h"}}}}}}));

  api.push_updates({button(1, kStranger, "mute:BTCUSDT:1h")});
  ASSERT_TRUE(api.wait_for("answerCallbackQuery", 1));
  EXPECT_EQ(api.bodies("answerCallbackQuery")[0],
            json({{"callback_query_id", "cb1"}, {"text", "\xE2\x9B\x94 Not authorised"}}));
  EXPECT_TRUE(sink.process(alert("BTCUSDT")).outcome.ok());
  EXPECT_EQ(api.messages_to(kAlertChat).size(), 2u);

  api.push_updates({button(2, kAdmin, "mute:BTCUSDT:1h")});
  ASSERT_TRUE(api.wait_for("answerCallbackQuery", 2));
  EXPECT_EQ(api.bodies("answerCallbackQuery")[1],
            json({{"callback_query_id", "cb2"}, {"text", kMuted + " BTCUSDT muted for 1h"}}));
  EXPECT_TRUE(sink.process(alert("BTCUSDT")).outcome.ok());
  EXPECT_EQ(api.messages_to(kAlertChat).size(), 2u);
  EXPECT_EQ(sink.counter("telegram_muted_total"), 1);
}

TEST(TelegramCommandsTest, NoMuteButtonWhenTurnedOff) {
  FakeBotApi api;
  PluginHarness sink("sink", "telegram", options(api, "mute_button = false"), with_threshold());
  EXPECT_TRUE(sink.process(alert("BTCUSDT")).outcome.ok());
  EXPECT_FALSE(api.messages_to(kAlertChat).at(0).contains("reply_markup"));
}

TEST(TelegramCommandsTest, OffsetAndMutesSurviveARestart) {
  TempDir state;
  FakeBotApi api;
  {
    PluginHarness sink("sink", "telegram", options(api), with_threshold(state.path()));
    api.push_updates({command(41, kAdmin, "/mute ETHUSDT 2h")});
    EXPECT_NE(api.reply_after(0).find("muted for 2h"), std::string::npos);
    // In the pipeline's state database, not in a file of the plugin's own.
    EXPECT_EQ(sink.node_state("offset"), std::optional<std::string>("42"));
    EXPECT_TRUE(json::parse(sink.node_state("mutes").value_or("")).contains("ETHUSDT"));
  }
  EXPECT_FALSE(std::filesystem::exists(state.path() + "/nodes/test/telegram.json"));
  const size_t polls_before = api.calls("getUpdates").size();
  PluginHarness sink("sink", "telegram", options(api), with_threshold(state.path()));
  ASSERT_TRUE(api.wait_for("getUpdates", polls_before + 1));
  EXPECT_EQ(api.bodies("getUpdates")[polls_before].value("offset", 0), 42);
  EXPECT_TRUE(sink.process(alert("ETHUSDT")).outcome.ok());
  EXPECT_TRUE(api.messages_to(kAlertChat).empty());
  EXPECT_EQ(sink.counter("telegram_muted_total"), 1);
  // The command was answered once, by the first instance only.
  EXPECT_EQ(api.messages_to(kCommandChat).size(), 1u);
}

json in_chat(json update, int64_t chat, const std::string& type) {
  json& message = update.contains("message") ? update["message"] : update["callback_query"]["message"];
  message["chat"] = {{"id", chat}, {"type", type}};
  return update;
}

bool logged(const PluginHarness& sink, sluice_log_level level, const std::string& text) {
  for (const auto& line : sink.logs()) {
    if (line.level == level && line.message.find(text) != std::string::npos) return true;
  }
  return false;
}

// The issue's crash: the process dies after the bot handled /setthreshold, /mute and a mute
// button, before any reply reached the chat (a stop without flush, replies cancelled). Before,
// the effect and the offset were separate writes, and the replies existed only in memory. Now
// each update is one commit (effect, offset past it, reply in the outbox): after the restart
// Telegram has nothing to send again, no command is applied a second time, and every reply goes
// out exactly once, from the outbox.
TEST(TelegramCommandsTest, ACrashAfterTheCommandsNeitherAppliesNorAnswersThemTwiceNorLosesThem) {
  TempDir state;
  FakeBotApi api;
  api.hold_replies(true);
  api.offer({command(10, kAdmin, "/setthreshold 250000"), command(11, kAdmin, "/mute BTCUSDT 1h"),
             button(12, kAdmin, "mute:ETHUSDT:1h")});
  {
    PluginHarness sink("sink", "telegram", options(api), with_threshold(state.path()));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (sink.node_state("offset") != std::optional<std::string>("13") &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    ASSERT_EQ(sink.node_state("offset"), std::optional<std::string>("13"));
    ASSERT_TRUE(api.wait_for("sendMessage", 1));  // the first reply is on its way, held
    EXPECT_TRUE(api.delivered().empty());
  }  // destroyed without flush: what a crash leaves
  api.hold_replies(false);
  PluginHarness sink("sink", "telegram", options(api), with_threshold(state.path()));
  ASSERT_TRUE(api.wait_delivered(3));
  // Several polls later, still one reply per command: nothing was fetched and handled again.
  ASSERT_TRUE(api.wait_for("getUpdates", api.calls("getUpdates").size() + 3));
  std::vector<std::string> replies = api.delivered();
  ASSERT_EQ(replies.size(), 3u);
  std::sort(replies.begin(), replies.end());  // two connections: any arrival order
  EXPECT_EQ(replies[0], "answerCallbackQuery \"cb12\" " + kMuted + " ETHUSDT muted for 1h");
  EXPECT_EQ(replies[1],
            "sendMessage 7 Threshold <code>min_alert_usd</code>: $100,000 \xE2\x86\x92 $250,000");
  EXPECT_EQ(replies[2].rfind("sendMessage 7 " + kMuted + " <b>BTCUSDT</b> muted for 1h, until ", 0),
            0u)
      << replies[2];
  EXPECT_EQ(api.bodies("getUpdates").back().value("offset", 0), 13);
  // Applied once, by the first instance: the second applied nothing and logged no change.
  EXPECT_EQ(sink.setting("min_alert_usd"), json(250000));
  EXPECT_FALSE(logged(sink, SLUICE_LOG_INFO, "telegram: muted BTCUSDT"));
  EXPECT_FALSE(logged(sink, SLUICE_LOG_INFO, "/setthreshold: min_alert_usd"));
  EXPECT_TRUE(logged(sink, SLUICE_LOG_INFO, "sending 3 reply(s) committed before the last stop"));
  EXPECT_TRUE(sink.process(alert("BTCUSDT")).outcome.ok());
  EXPECT_TRUE(sink.process(alert("ETHUSDT")).outcome.ok());
  EXPECT_TRUE(api.messages_to(kAlertChat).empty());
  EXPECT_EQ(sink.node_state("outbox"), std::optional<std::string>("{}"));
}

// Runs SQL on the pipeline's state database, as another process (or a failing disk) would.
void exec_sql(const std::string& state_dir, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((state_dir + "/state.db").c_str(), &db), SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  char* err = nullptr;
  EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
  sqlite3_free(err);
  sqlite3_close(db);
}

// The issue's case: a /setthreshold whose write to the state database fails was answered with
// a check mark while the database kept the old value. Now the reply tells the failure, the log
// has it, the setting and the mutes of the same commit keep their values, and the update is
// not handled again.
TEST(TelegramCommandsTest, SetthresholdWhoseWriteFailsRepliesWithTheFailureAndChangesNothing) {
  TempDir state;
  FakeBotApi api;
  PluginHarness sink("sink", "telegram", options(api), with_threshold(state.path()));
  exec_sql(state.path(),
           "CREATE TRIGGER refuse BEFORE INSERT ON settings "
           "BEGIN SELECT RAISE(ABORT, 'disk I/O error (test)'); END");
  api.push_updates({command(1, kAdmin, "/setthreshold 250000")});
  EXPECT_EQ(api.reply_after(0),
            "\xE2\x9D\x8C Could not change min_alert_usd: state database: disk I/O error (test)");
  EXPECT_EQ(sink.setting("min_alert_usd"), json(100000));
  EXPECT_TRUE(logged(sink, SLUICE_LOG_WARN,
                     "telegram: update 1: could not change min_alert_usd: state database: disk "
                     "I/O error (test)"));
  EXPECT_EQ(sink.node_state("offset"), std::optional<std::string>("2"));
  ASSERT_TRUE(api.wait_for("getUpdates", api.calls("getUpdates").size() + 2));
  EXPECT_EQ(api.bodies("getUpdates").back().value("offset", 0), 2);
  EXPECT_EQ(api.messages_to(kCommandChat).size(), 1u);
  // Once the database takes writes again, the same command works.
  exec_sql(state.path(), "DROP TRIGGER refuse");
  api.push_updates({command(2, kAdmin, "/setthreshold 250000")});
  EXPECT_EQ(api.reply_after(1),
            "Threshold <code>min_alert_usd</code>: $100,000 \xE2\x86\x92 $250,000");
  EXPECT_EQ(sink.setting("min_alert_usd"), json(250000));
}

// Anyone in a group reads the replies and can press buttons: commands and buttons count only in
// private chats and in the chats the operator lists, even from an allowed user.
TEST(TelegramCommandsTest, CommandsAndButtonsInGroupsAreIgnoredUnlessTheChatIsListed) {
  constexpr int64_t kGroup = -1001234567890;
  {
    FakeBotApi api;
    PluginHarness sink("sink", "telegram", options(api), with_threshold());
    api.push_updates({in_chat(command(1, kAdmin, "/setthreshold 5000"), kGroup, "supergroup"),
                      in_chat(command(2, kAdmin, "/stats"), -55, "group"),
                      in_chat(command(3, kAdmin, "/mute BTCUSDT 1h"), -100999, "channel"),
                      in_chat(button(4, kAdmin, "mute:BTCUSDT:1h"), kGroup, "supergroup"),
                      command(5, kAdmin, "/symbols")});
    const std::string symbols = api.reply_after(0);
    EXPECT_NE(symbols.find("Nothing muted."), std::string::npos) << symbols;
    EXPECT_EQ(api.calls("sendMessage").size(), 1u);
    EXPECT_TRUE(api.calls("answerCallbackQuery").empty());
    EXPECT_EQ(sink.setting("min_alert_usd"), json(100000));
    EXPECT_EQ(sink.counter("telegram_commands_ignored_total"), 4);
    EXPECT_EQ(sink.node_state("offset"), std::optional<std::string>("6"));
  }
  FakeBotApi api;
  PluginHarness sink("sink", "telegram",
                     options(api, "command_chat_ids = [" + std::to_string(kGroup) + "]"),
                     with_threshold());
  api.push_updates({in_chat(command(1, kAdmin, "/setthreshold 5000"), kGroup, "supergroup"),
                    in_chat(button(2, kAdmin, "mute:BTCUSDT:1h"), kGroup, "supergroup"),
                    in_chat(command(3, kAdmin, "/stats"), -55, "group")});
  ASSERT_TRUE(api.wait_for("answerCallbackQuery", 1));
  ASSERT_TRUE(api.wait_for("sendMessage", 1));
  const auto group = api.messages_to(kGroup);
  ASSERT_EQ(group.size(), 1u);
  EXPECT_EQ(group[0].at("text"),
            "Threshold <code>min_alert_usd</code>: $100,000 \xE2\x86\x92 $5,000");
  EXPECT_EQ(sink.setting("min_alert_usd"), json(5000));
  EXPECT_TRUE(sink.process(alert("BTCUSDT")).outcome.ok());
  EXPECT_TRUE(api.messages_to(kAlertChat).empty());
  ASSERT_TRUE(api.wait_for("getUpdates", api.calls("getUpdates").size() + 2));
  EXPECT_TRUE(api.messages_to(-55).empty());
  // A stranger in a listed group is refused there, as in a private chat.
  api.push_updates({in_chat(command(4, kStranger, "/stats"), kGroup, "supergroup")});
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (api.messages_to(kGroup).size() < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(api.messages_to(kGroup).size(), 2u);
  EXPECT_NE(api.messages_to(kGroup)[1].at("text").get<std::string>().find("Not authorised"),
            std::string::npos);
}

// State files of older versions (state_dir/telegram.json) are moved into the node state once.
TEST(TelegramCommandsTest, AnOldStateFileIsMovedIntoTheNodeStateAndRemoved) {
  TempDir state;
  const int64_t until = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count() +
                        7'200'000;
  std::filesystem::create_directories(state.path() + "/nodes/test");
  const std::string file = state.path() + "/nodes/test/telegram.json";
  std::ofstream(file) << json({{"offset", 77}, {"mutes", {{"SOLUSDT", until}}}}).dump();
  FakeBotApi api;
  PluginHarness sink("sink", "telegram", options(api), with_threshold(state.path()));
  ASSERT_TRUE(api.wait_for("getUpdates", 1));
  EXPECT_EQ(api.bodies("getUpdates")[0].value("offset", 0), 77);
  EXPECT_FALSE(std::filesystem::exists(file));
  EXPECT_EQ(sink.node_state("offset"), std::optional<std::string>("77"));
  EXPECT_EQ(sink.node_state("mutes"), std::optional<std::string>(
                                          json({{"SOLUSDT", until}}).dump()));
  EXPECT_TRUE(sink.process(alert("SOLUSDT")).outcome.ok());
  EXPECT_TRUE(api.messages_to(kAlertChat).empty());
}

TEST(TelegramCommandsTest, StatsShowsAlertsAndVolumePerSymbolAndLatency) {
  FakeBotApi api;
  PluginHarness sink("sink", "telegram", options(api), with_threshold());
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  auto traded = [&](const std::string& symbol, double notional) {
    return make_event(
        {{"symbol", symbol}, {"notional_usd", notional}, {"trade_time_ms", now_ms - 850}});
  };
  for (const auto& ev :
       {traded("BTCUSDT", 128501.4), traded("BTCUSDT", 128501.4), traded("ETHUSDT", 20000.0)}) {
    EXPECT_TRUE(sink.process(ev).outcome.ok());
  }
  api.push_updates({command(1, kAdmin, "/stats")});
  const std::string stats = api.reply_after(0);
  EXPECT_EQ(stats.rfind("<b>Alerts since start</b> (up ", 0), 0u) << stats;
  EXPECT_NE(stats.find("<b>BTCUSDT</b>: 2 alerts \xC2\xB7 $257,003\n"
                       "<b>ETHUSDT</b>: 1 alert \xC2\xB7 $20,000\n"
                       "Total: 3 alerts \xC2\xB7 $277,003\n"
                       "Latency exchange \xE2\x86\x92 alert: p50 "),
            std::string::npos)
      << stats;
  EXPECT_NE(stats.find(" \xC2\xB7 p95 "), std::string::npos) << stats;
  EXPECT_NE(stats.find(" \xC2\xB7 max "), std::string::npos) << stats;
}

TEST(TelegramCommandsTest, AnswersUnknownCommandsWithHelpAndIgnoresPlainText) {
  FakeBotApi api;
  PluginHarness sink("sink", "telegram", options(api), with_threshold());
  api.push_updates({command(1, kAdmin, "hello there"), command(2, kAdmin, "/frobnicate <x>")});
  const std::string reply = api.reply_after(0);
  EXPECT_EQ(reply.rfind("Unknown command <code>/frobnicate</code>. Commands:\n/stats", 0), 0u)
      << reply;
  EXPECT_EQ(api.messages_to(kCommandChat).size(), 1u);
}

TEST(TelegramCommandsTest, MalformedGetUpdatesRepliesAreLoggedAndPollingGoesOn) {
  FakeBotApi api;
  api.push(Reply::json(200, "this is not json"));
  api.push(Reply::json(200, R"({"ok":false,"error_code":500,"description":"Internal"})"));
  api.push(Reply::json(200, R"({"ok":true,"result":{"update_id":1}})"));
  api.push(Reply::json(502, R"({"ok":false,"error_code":502,"description":"Bad Gateway"})"));
  api.push(Reply::json(429, R"({"ok":false,"error_code":429,"description":"Too Many Requests",)"
                            R"("parameters":{"retry_after":0}})"));
  api.push(Reply::drop());
  api.push_updates({json("not an update"), json({{"update_id", 9}, {"message", "odd"}}),
                    command(10, kAdmin, "/start")});
  PluginHarness sink("sink", "telegram", options(api), with_threshold());
  EXPECT_NE(api.reply_after(0).find("Commands:"), std::string::npos);
  // The first poll with an offset follows the batch: past every update in it, odd ones too.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  json first_offset;
  while (first_offset.is_null() && std::chrono::steady_clock::now() < deadline) {
    for (const json& poll : api.bodies("getUpdates")) {
      if (poll.contains("offset")) {
        first_offset = poll.at("offset");
        break;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(first_offset, json(11));
  std::string warnings;
  for (const auto& line : sink.logs()) {
    EXPECT_EQ(line.message.find("TESTTOKEN"), std::string::npos) << line.message;
    if (line.level == SLUICE_LOG_WARN) warnings += line.message + "\n";
  }
  for (const char* expected :
       {"getUpdates: reply is not a JSON object: this is not json",
        "ok is not true: HTTP 200: Internal", "reply has no result list",
        "getUpdates: HTTP 502: Bad Gateway", "getUpdates: HTTP 429: Too Many Requests",
        "without an integer update_id"}) {
    EXPECT_NE(warnings.find(expected), std::string::npos) << expected << "\n" << warnings;
  }
}

TEST(TelegramCommandsTest, StopsAtOnceWhileALongPollIsOpen) {
  FakeBotApi api;
  api.push(Reply::json(200, R"({"ok":true,"result":[]})").after(std::chrono::seconds(60)));
  const auto start = std::chrono::steady_clock::now();
  {
    PluginHarness sink("sink", "telegram", options(api, "poll_timeout = \"50s\""),
                       with_threshold());
    ASSERT_TRUE(api.wait_for("getUpdates", 1));
  }
  // Far below the 50 s poll and its 10 s margin: the stop cancelled the request.
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
}

// `sluice validate` creates every node and drops it without calling start.
HarnessOptions created_only() {
  HarnessOptions o = with_threshold();
  o.start = false;
  return o;
}

TEST(TelegramCommandsTest, DoesNotPollWhenCreatedAndDroppedAtOnceAsValidateDoes) {
  FakeBotApi api;
  api.push_updates({command(1, kAdmin, "/start")});
  { PluginHarness sink("sink", "telegram", options(api), created_only()); }
  EXPECT_EQ(api.server.request_count(), 0u);
}

TEST(TelegramCommandsTest, PollsOnlyOnceStartedAndFindsTheUpdateStillThere) {
  FakeBotApi api;
  api.push_updates({command(1, kAdmin, "/start")});
  PluginHarness sink("sink", "telegram", options(api), created_only());
  // Long enough for a poll sent at creation to reach the server.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(api.server.request_count(), 0u);
  sink.start();
  const std::string help = api.reply_after(0);
  EXPECT_NE(help.find("/setthreshold USD"), std::string::npos) << help;
}

TEST(TelegramCommandsTest, RejectsCommandsWithoutUsersAndBadPollTimeouts) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"commands = true",
       "option 'allowed_user_ids': must list at least one Telegram user id when commands = true"},
      {"commands = true\nallowed_user_ids = []", "option 'allowed_user_ids': must list"},
      {"commands = true\nallowed_user_ids = [1]\npoll_timeout = \"0s\"",
       "option 'poll_timeout': must be between 1s and 1h"},
      {"commands = true\nallowed_user_ids = [1]\nthreshold_setting = \"\"",
       "option 'threshold_setting': must not be empty"},
  };
  for (const auto& [extra, expected] : cases) {
    try {
      PluginHarness sink("sink", "telegram", "bot_token = \"1:x\"\nchat_ids = [5]\n" + extra);
      ADD_FAILURE() << "expected an error for " << extra;
    } catch (const std::exception& e) {
      EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
    }
  }
}

// The issue's end-to-end case: a generator feeds a filter on `notional_usd >= $min_alert_usd`
// whose alerts go to the telegram sink. Until /setthreshold only notionals of at least 900,000
// reach Telegram; after it, smaller ones do too, and the new value is persisted.
TEST(TelegramCommandsTest, SetthresholdChangesWhatTheFilterLetsThrough) {
  TempDir dir;
  HttpTestServer server;
  std::mutex mu;
  std::vector<double> alerts;           // notionals sent to the alert chat, in arrival order
  size_t alerts_at_release = SIZE_MAX;  // how many had arrived when the command went out
  std::string reply;
  server.set_handler([&](const RecordedRequest& q) {
    std::lock_guard lock(mu);
    if (q.target == kBot + "getMe") {
      return Reply::json(200, R"({"ok":true,"result":{"id":123,"username":"SluiceAlertsBot"}})");
    }
    if (q.target == kBot + "getUpdates") {
      if (alerts_at_release == SIZE_MAX && alerts.size() >= 3) {
        alerts_at_release = alerts.size();
        return Reply::json(
            200, json({{"ok", true},
                       {"result", json::array({command(1, kAdmin, "/setthreshold 150000")})}})
                     .dump());
      }
      return Reply::json(200, R"({"ok":true,"result":[]})").after(std::chrono::milliseconds(20));
    }
    const json body = json::parse(q.body);
    if (body.at("chat_id") == kAlertChat) {
      alerts.push_back(std::stod(body.at("text").get<std::string>()));
    } else {
      reply = body.at("text").get<std::string>();
    }
    return Reply::json(200, R"({"ok":true,"result":{}})");
  });
  const std::string path = dir.write("alerts.toml", R"(
[pipeline]
name = "telegram-threshold"
state_dir = ")" + dir.file("state") + R"("

[settings]
min_alert_usd = 900000

[sources.gen]
type = "generator"
rate = 200.0
fields = { symbol = "BTCUSDT", notional_usd = "{float:100000:1000000}" }

[processors.big]
type = "filter"
inputs = ["gen"]
where = "notional_usd >= $min_alert_usd"

[sinks.telegram]
type = "telegram"
inputs = ["big"]
bot_token = "123:TESTTOKEN"
api_base = ")" + server.base_url() + R"("
chat_ids = [42]
min_interval = "0s"
max_per_second = 100000
retry_backoff = "1ms"
template = "{{notional_usd}}"
chart_url = ""
commands = true
allowed_user_ids = [1001]
poll_timeout = "1s"
)");
  sluice::core::PipelineSpec spec = sluice::testing::load_spec(path);
  sluice::core::RunOptions run;
  run.admin_port = -1;
  run.print_summary = false;
  sluice::core::Pipeline pipeline(spec, sluice::testing::test_registry(), run);
  std::thread runner([&] { pipeline.run(); });
  // Until an alert under the old threshold arrives after the command (or 30 s pass).
  auto small_after_release = [&] {  // with mu held
    if (alerts_at_release == SIZE_MAX) return false;
    for (size_t i = alerts_at_release; i < alerts.size(); ++i) {
      if (alerts[i] < 900000) return true;
    }
    return false;
  };
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    {
      std::lock_guard lock(mu);
      if (small_after_release()) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  pipeline.stop();
  runner.join();

  std::lock_guard lock(mu);
  ASSERT_NE(alerts_at_release, SIZE_MAX) << "the command was never released";
  for (size_t i = 0; i < alerts_at_release; ++i) EXPECT_GE(alerts[i], 900000) << i;
  EXPECT_TRUE(small_after_release()) << "no alert under 900,000 after /setthreshold 150000";
  for (size_t i = alerts_at_release; i < alerts.size(); ++i) EXPECT_GE(alerts[i], 150000) << i;
  EXPECT_EQ(reply, "Threshold <code>min_alert_usd</code>: $900,000 \xE2\x86\x92 $150,000");
  EXPECT_EQ(pipeline.settings().get("min_alert_usd").value_or(json()), json(150000));
  // Persisted: the next run of the pipeline starts from the new value.
  sluice::core::SettingsStore reopened(spec.state_dir, spec.settings);
  EXPECT_EQ(reopened.get("min_alert_usd").value_or(json()), json(150000));
}

}  // namespace
