#include "live_services.hpp"

#include <chrono>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace sluice::testing {
namespace {

using nlohmann::json;

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A chat completion whose content is the JSON object the classifier asks for.
std::string llm_answer(const std::string& symbol) {
  const json content = {{"risk_level", "HIGH"},
                        {"summary", "LLM: " + symbol + " longs flushed into thin books"},
                        {"recommendation", "cut leverage on " + symbol}};
  return json{
      {"id", "chatcmpl-test"},
      {"object", "chat.completion"},
      {"model", "gpt-4o-mini"},
      {"choices", json::array({{{"index", 0},
                                {"message", {{"role", "assistant"}, {"content", content.dump()}}},
                                {"finish_reason", "stop"}}})},
      {"usage", {{"prompt_tokens", 150}, {"completion_tokens", 40}, {"total_tokens", 190}}}}
      .dump();
}

}  // namespace

LiveServices::LiveServices() {
  // Binance answers {"method":"LIST_SUBSCRIPTIONS","id":N} with {"result":[...],"id":N}.
  binance.set_responder([](const std::string& message) -> std::vector<std::string> {
    const json m = json::parse(message, nullptr, false);
    if (!m.is_object() || !m.contains("id")) return {};
    return {json{{"result", json::array()}, {"id", m["id"]}}.dump()};
  });
  llm.set_handler([](const RecordedRequest& q) {
    const json body = json::parse(q.body, nullptr, false);
    std::string symbol = "?";
    if (body.is_object()) {
      const std::string user = body["messages"].back().value("content", "");
      for (const char* s : {"BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT"}) {
        if (user.find(s) != std::string::npos) symbol = s;
      }
    }
    return Reply::json(200, llm_answer(symbol));
  });
  telegram.set_handler([](const RecordedRequest&) {
    return Reply::json(200, R"({"ok":true,"result":{"message_id":1,"chat":{"id":4242}}})");
  });
  slack.set_handler([](const RecordedRequest&) { return Reply::text(200, "ok"); });

  std::string bundle;
  for (const std::string* ca :
       {&binance.ca_file(), &llm.ca_file(), &telegram.ca_file(), &slack.ca_file()}) {
    bundle += read_file(*ca);
  }
  ca_bundle_ = dir.write("test-ca-bundle.pem", bundle);
}

std::map<std::string, std::string> LiveServices::env() const {
  return {{"BINANCE_WS_URL", binance.url("/market/ws/!forceOrder@arr")},
          {"LLM_BASE_URL", llm.url("/v1")},
          {"LLM_API_KEY", kTestLlmKey},
          {"TELEGRAM_API_BASE", telegram.base_url()},
          {"TELEGRAM_BOT_TOKEN", kTestBotToken},
          {"TELEGRAM_CHAT_ID", kTestChatId},
          {"SLACK_WEBHOOK_URL", slack.url(kTestSlackPath)},
          {"SSL_CERT_FILE", ca_bundle_},
          {"SLUICE_OUT_DIR", dir.path()}};
}

std::string LiveServices::liquidation_frame(const std::string& symbol, const std::string& side,
                                            double price, double quantity) {
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  const std::string p = fmt::format("{:.2f}", price);
  const std::string q = fmt::format("{:.3f}", quantity);
  return json{{"e", "forceOrder"},
              {"E", now_ms + 5},
              {"o",
               {{"s", symbol},
                {"S", side},
                {"o", "LIMIT"},
                {"f", "IOC"},
                {"q", q},
                {"p", p},
                {"ap", p},
                {"X", "FILLED"},
                {"l", q},
                {"z", q},
                {"T", now_ms}}}}
      .dump();
}

std::vector<RecordedRequest> LiveServices::telegram_messages() const {
  std::vector<RecordedRequest> out;
  for (RecordedRequest& q : telegram.requests()) {
    if (q.target.size() >= 12 && q.target.ends_with("/sendMessage")) out.push_back(std::move(q));
  }
  return out;
}

}  // namespace sluice::testing
