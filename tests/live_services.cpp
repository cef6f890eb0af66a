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
  bybit.set_responder([](const std::string& m) -> std::vector<std::string> {
    if (m == R"({"op":"ping"})") {
      return {R"({"success":true,"ret_msg":"pong","conn_id":"t","req_id":"","op":"ping"})"};
    }
    if (m.find(R"("op":"subscribe")") != std::string::npos) {
      return {R"({"success":true,"ret_msg":"","conn_id":"t","req_id":"","op":"subscribe"})"};
    }
    return {};
  });
  okx.set_responder([](const std::string& m) -> std::vector<std::string> {
    if (m == "ping") return {"pong"};
    if (m.find(R"("op":"subscribe")") != std::string::npos) {
      return {R"({"event":"subscribe","arg":{"channel":"liquidation-orders","instType":"SWAP"},)"
              R"("connId":"t"})"};
    }
    return {};
  });
  okx_rest.set_handler([](const RecordedRequest&) {
    return Reply::json(200, R"({"code":"0","msg":"","data":[)"
                            R"({"instId":"BTC-USDT-SWAP","ctVal":"0.01","ctType":"linear"},)"
                            R"({"instId":"ETH-USDT-SWAP","ctVal":"0.1","ctType":"linear"}]})");
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
  on_send_ = [](const RecordedRequest&) {
    return Reply::json(200, R"({"ok":true,"result":{"message_id":1,"chat":{"id":4242}}})");
  };
  telegram.set_handler([this](const RecordedRequest& q) {
    std::unique_lock lock(mu_);
    if (q.target.ends_with("/getUpdates")) {
      const json body = json::parse(q.body, nullptr, false);
      const int64_t offset = body.is_object() ? body.value("offset", int64_t{0}) : 0;
      json result = json::array();
      for (const json& u : updates_) {
        if (u["update_id"].get<int64_t>() >= offset) result.push_back(u);
      }
      const json reply = {{"ok", true}, {"result", result}};
      if (result.empty()) {
        return Reply::json(200, reply.dump()).after(std::chrono::milliseconds(150));
      }
      return Reply::json(200, reply.dump());
    }
    if (q.target.ends_with("/getMe")) {
      return Reply::json(200, R"({"ok":true,"result":{"id":123456,"is_bot":true,)"
                              R"("first_name":"Sluice","username":"SluiceTestBot"}})");
    }
    if (!q.target.ends_with("/sendMessage")) {
      return Reply::json(200, R"({"ok":true,"result":true})");
    }
    auto handler = on_send_;
    lock.unlock();
    return handler(q);
  });
  slack.set_handler([](const RecordedRequest&) { return Reply::text(200, "ok"); });

  std::string bundle;
  for (const std::string* ca :
       {&binance.ca_file(), &bybit.ca_file(), &okx.ca_file(), &okx_rest.ca_file(), &llm.ca_file(),
        &telegram.ca_file(), &slack.ca_file()}) {
    bundle += read_file(*ca);
  }
  ca_bundle_ = dir.write("test-ca-bundle.pem", bundle);
}

void LiveServices::on_telegram_send(std::function<Reply(const RecordedRequest&)> handler) {
  std::lock_guard lock(mu_);
  on_send_ = std::move(handler);
}

void LiveServices::push_telegram_command(int64_t user_id, const std::string& text) {
  std::lock_guard lock(mu_);
  const int64_t now_s = std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
  const int64_t id = next_update_id_++;
  updates_.push_back({{"update_id", id},
                      {"message",
                       {{"message_id", id},
                        {"from", {{"id", user_id}, {"is_bot", false}, {"first_name", "Desk"}}},
                        {"chat", {{"id", 4242}, {"type", "private"}}},
                        {"date", now_s},
                        {"text", text}}}});
}

std::map<std::string, std::string> LiveServices::env() const {
  return {{"BINANCE_WS_URL", binance.url("/market/ws/!forceOrder@arr")},
          {"BYBIT_WS_URL", bybit.url("/v5/public/linear")},
          {"OKX_WS_URL", okx.url("/ws/v5/public")},
          {"OKX_REST_BASE", okx_rest.base_url()},
          {"LLM_BASE_URL", llm.url("/v1")},
          {"LLM_API_KEY", kTestLlmKey},
          {"TELEGRAM_API_BASE", telegram.base_url()},
          {"TELEGRAM_BOT_TOKEN", kTestBotToken},
          {"TELEGRAM_CHAT_ID", kTestChatId},
          {"TELEGRAM_ADMIN_ID", std::to_string(kTestAdminId)},
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

namespace {
int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}
}  // namespace

std::string LiveServices::bybit_push(const std::string& symbol, const std::string& side,
                                     double price, double quantity) {
  const int64_t t = now_ms();
  return json{{"topic", "allLiquidation." + symbol},
              {"type", "snapshot"},
              {"ts", t + 3},
              {"data", json::array({{{"T", t},
                                     {"s", symbol},
                                     {"S", side},
                                     {"v", fmt::format("{:.3f}", quantity)},
                                     {"p", fmt::format("{:.2f}", price)}}})}}
      .dump();
}

std::string LiveServices::okx_push(const std::string& instrument, const std::string& pos_side,
                                   double bankruptcy_price, double contracts) {
  return json{
      {"arg", {{"channel", "liquidation-orders"}, {"instType", "SWAP"}}},
      {"data",
       json::array({{{"instId", instrument},
                     {"instType", "SWAP"},
                     {"instFamily", instrument.substr(0, instrument.rfind('-'))},
                     {"details", json::array({{{"bkLoss", "0"},
                                               {"bkPx", fmt::format("{:.2f}", bankruptcy_price)},
                                               {"ccy", ""},
                                               {"posSide", pos_side},
                                               {"side", pos_side == "long" ? "sell" : "buy"},
                                               {"sz", fmt::format("{:.0f}", contracts)},
                                               {"ts", std::to_string(now_ms())}}})}}})}}
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
