// The bot side of the `telegram` sink (commands = true): long-polls getUpdates, answers /start,
// /stats, /symbols, /setthreshold, /mute and /unmute and the "mute 1h" button for the users in
// allowed_user_ids (anyone else gets a refusal), and keeps the update offset and the mutes in
// the node's state directory so that a restart neither answers a command twice nor forgets a
// mute. The sink asks it which symbols are muted and tells it what it sent, for /stats.
//
// Polling starts with start() (the sink's start hook), never at construction: `sluice validate`
// creates and destroys every node, and a dry run must neither take and answer updates nor make
// the running pipeline's poll fail with 409 Conflict.
//
// start() first asks getMe for the bot's username: in a group, a command addressed to another
// bot ("/stats@OtherBot") is ignored; "/stats" and "/stats@ThisBot" are answered. When getMe
// fails that is logged once and every "/cmd@name" is answered.
//
// Polling and replies run on the bot's own HTTP client thread; muted() and the record_*()
// calls come from the sink's stage and delivery threads. Destroying the bot cancels the long
// poll at once, so a stop never waits for poll_timeout.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "http_client.hpp"
#include "sluice/sdk.hpp"

namespace sluice::telegram_sink {

// Longest mute a command or button can set.
inline constexpr std::chrono::seconds kMaxMute = std::chrono::hours(24 * 365);

// "30m", "1h", "2d", "1h30m", "45s", "1w" → the duration; nullopt when malformed, zero or over
// kMaxMute.
std::optional<std::chrono::seconds> parse_mute_duration(std::string_view text);

// "1h", "1h 30m", "2d 3h", "45s": the two largest units of a duration.
std::string duration_text(std::chrono::seconds d);

// "250000", "250,000", "$250k", "1.5M" → the amount; nullopt unless a positive finite number
// (at most 1e15).
std::optional<double> parse_usd(std::string_view text);

// 128501.4 → "128,501"; "?" beyond a quadrillion or when not finite.
std::string with_thousands(double value);

// 128501.4 → "128,501"; 0.25 → "0.25" (amounts under 1000 keep up to two decimals).
std::string usd_text(double value);

// 850 ms → "850 ms", 2345 ms → "2.3 s".
std::string latency_text(std::chrono::nanoseconds d);

// The mute button's callback_data ("mute:BTCUSDT:1h"); nullopt when the symbol is empty or too
// long for Telegram's 64 bytes.
std::optional<std::string> mute_callback_data(std::string_view symbol);

struct BotOptions {
  std::string api_url;  // {api_base}/bot<TOKEN>, no trailing slash
  std::vector<int64_t> allowed_user_ids;
  std::string threshold_setting;
  std::chrono::seconds poll_timeout{30};
  std::chrono::nanoseconds request_timeout{std::chrono::seconds(10)};  // replies
  std::chrono::nanoseconds backoff_base{std::chrono::milliseconds(500)};
  std::chrono::nanoseconds backoff_max{std::chrono::seconds(30)};
  http::ClientOptions client;  // redact holds the token
};

class Bot {
 public:
  // Loads the persisted state. Throws std::runtime_error when the client cannot be set up (a
  // bad ca_file).
  Bot(const Host& host, BotOptions options);
  // Cancels the long poll and any reply in flight, then joins the client thread.
  ~Bot();
  Bot(const Bot&) = delete;
  Bot& operator=(const Bot&) = delete;

  // Asks getMe for the bot's username, then sends the first getUpdates; call once.
  void start();

  // True while a mute of this symbol runs; counts the symbol as seen either way. Any thread.
  bool muted(std::string_view symbol);
  // An alert for the symbol reached every chat; latency_ns is exchange to delivery.
  void record_sent(std::string_view symbol, std::optional<double> notional_usd,
                   std::optional<int64_t> latency_ns);

 private:
  struct SymbolStats {
    uint64_t seen = 0;
    uint64_t sent = 0;
    uint64_t muted = 0;
    double volume_usd = 0;
  };
  // A reply to send once the batch it answers is handled and the offset saved.
  struct Outgoing {
    std::string method;  // sendMessage, answerCallbackQuery
    nlohmann::json body;
  };

  // On the client thread.
  void get_me();
  // True unless the command word ("/mute@OtherBot") names another bot than this one (any bot
  // when getMe failed).
  bool addressed_here(std::string_view command_word) const;
  void poll();
  void on_poll_response(const http::Response& response);
  void poll_failed(const std::string& what, std::chrono::nanoseconds retry_after);
  void handle_update(const nlohmann::json& update, std::vector<Outgoing>& out);
  void handle_command(const nlohmann::json& message, std::vector<Outgoing>& out);
  void handle_callback(const nlohmann::json& query, std::vector<Outgoing>& out);
  std::string run_command(const std::string& command, const std::vector<std::string>& args);
  std::string cmd_stats();
  std::string cmd_symbols();
  std::string cmd_setthreshold(const std::vector<std::string>& args);
  std::string cmd_mute(const std::vector<std::string>& args);
  std::string cmd_unmute(const std::vector<std::string>& args);
  std::string mute(const std::string& symbol, std::chrono::seconds duration);
  void send(Outgoing outgoing, int attempt = 0);

  // State file: any thread holding mu_ for the data, the client thread for the writes.
  void load_state();
  void save_state();

  bool allowed(int64_t user_id) const;

  Host host_;
  BotOptions opts_;
  std::string state_file_;  // "" = memory only
  const int64_t started_ns_;

  std::mutex mu_;  // everything below
  std::optional<int64_t> offset_;
  std::map<std::string, int64_t, std::less<>> mutes_;  // symbol → until, ms since the epoch
  std::map<std::string, SymbolStats, std::less<>> symbols_;
  std::vector<int64_t> latencies_ns_;  // ring of the last kLatencySamples sent alerts
  size_t latency_next_ = 0;
  int64_t latency_max_ns_ = 0;
  std::map<int64_t, int64_t> refused_at_ns_;  // user → when last refused (monotonic)

  std::string username_;                  // from getMe; "" when unknown (client thread)
  int failures_ = 0;                      // consecutive failed polls (client thread)
  std::unique_ptr<http::Client> client_;  // last: its thread stops before the rest goes
};

}  // namespace sluice::telegram_sink
