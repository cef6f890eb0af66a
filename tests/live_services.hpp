// Local stand-ins for every service pipelines/liquidation_alerts.toml talks to, each speaking the
// real protocol over TLS on 127.0.0.1: a Binance-style WebSocket stream, an OpenAI-compatible
// /chat/completions endpoint, the Telegram Bot API and a Slack incoming webhook. env() gives the
// variables that point the pipeline at them (SSL_CERT_FILE names a bundle of their test CAs, so
// the production TLS code verifies them like the real services).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "http_test_server.hpp"
#include "pipeline_runner.hpp"
#include "tls_ws_server.hpp"

namespace sluice::testing {

// The secrets the pipeline gets; tests check they never show up in its output.
inline constexpr const char* kTestLlmKey = "sk-test-LLMKEY-0123456789";
inline constexpr const char* kTestBotToken = "123456:TEST-BOT-TOKEN-abcdef";
inline constexpr const char* kTestChatId = "4242";
inline constexpr int64_t kTestAdminId = 777;  // TELEGRAM_ADMIN_ID: may use the bot's commands
inline constexpr const char* kTestSlackPath = "/services/T0TEST/B0TEST/SLACKSECRET42";

class LiveServices {
 public:
  LiveServices();

  ws::testing::TlsWsServer binance;
  ws::testing::TlsWsServer bybit;          // acks subscriptions, answers {"op":"ping"}
  ws::testing::TlsWsServer okx;            // acks the subscription, answers "ping" with "pong"
  HttpTestServer okx_rest{{.tls = true}};  // /api/v5/public/instruments
  HttpTestServer llm{{.tls = true}};
  HttpTestServer telegram{{.tls = true}};
  HttpTestServer slack{{.tls = true}};
  TempDir dir;  // working directory of the pipeline: state, SLUICE_OUT_DIR, the CA bundle

  std::map<std::string, std::string> env() const;

  // How the Telegram stand-in answers sendMessage (default: ok). getUpdates is answered from
  // the queue of pushed updates, else with an empty result after a short wait (a long poll).
  void on_telegram_send(std::function<Reply(const RecordedRequest&)> handler);
  // A user's message to the bot in the alert chat, delivered by the next getUpdates.
  void push_telegram_command(int64_t user_id, const std::string& text);

  // A Binance forceOrder frame (the real wire format) traded now.
  static std::string liquidation_frame(const std::string& symbol, const std::string& side,
                                       double price, double quantity);
  // A Bybit v5 allLiquidation push of one row (S = "Buy": a long was liquidated) traded now.
  static std::string bybit_push(const std::string& symbol, const std::string& side, double price,
                                double quantity);
  // An OKX liquidation-orders push of one detail, sz in contracts, traded now.
  static std::string okx_push(const std::string& instrument, const std::string& pos_side,
                              double bankruptcy_price, double contracts);
  // sendMessage requests the Telegram stand-in received, in arrival order.
  std::vector<RecordedRequest> telegram_messages() const;

 private:
  std::string ca_bundle_;
  std::mutex mu_;
  std::function<Reply(const RecordedRequest&)> on_send_;
  std::vector<nlohmann::json> updates_;
  int64_t next_update_id_ = 1000;
};

}  // namespace sluice::testing
