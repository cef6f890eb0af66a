// The bot side of the `telegram` sink (commands = true): long-polls getUpdates, answers /start,
// /stats, /symbols, /setthreshold, /mute and /unmute and the "mute 1h" button for the users in
// allowed_user_ids (anyone else gets a refusal). Commands count only in private chats and in
// the group chats listed in command_chat_ids; elsewhere they are ignored (logged at debug,
// counted), even from an allowed user.
//
// State lives in the host's node state (ABI 1.2) in the pipeline's state database, never in a
// private file: the update offset, the mutes and the replies not yet delivered (the outbox).
// Each update is handled in ONE commit: the offset past it, what it changed (mutes, and the
// /setthreshold setting) and its reply in the outbox. A crash before the commit leaves nothing
// applied and the update still on Telegram's side (it is fetched and handled again); a crash
// after it leaves the effect applied, the update confirmed, and the reply in the outbox, sent
// at the next start. A command is never applied twice and never lost; its reply is sent once,
// or twice only if the process dies while Telegram's answer to the reply is on its way.
// A commit that fails (a setting refused, the database unwritable) applies nothing: the user is
// told why instead. A state file of older versions (state_dir/telegram.json) is read once,
// moved into the node state at start, and removed. See docs/design/node-state.md.
//
// Polling starts with start() (the sink's start hook), never at construction: `sluice validate`
// creates and destroys every node, and a dry run must neither take and answer updates nor make
// the running pipeline's poll fail with 409 Conflict.
//
// start() first asks getMe for the bot's username: in a group, a command addressed to another
// bot ("/stats@OtherBot") is ignored; "/stats" and "/stats@ThisBot" are answered. When getMe
// fails that is logged once and every "/cmd@name" is answered.
//
// Polling, replies and commits run on the bot's own HTTP client thread; muted() and the
// record_*() calls come from the sink's stage and delivery threads. Destroying the bot waits up
// to 2 s for the outcome of replies in flight (so that one Telegram took is not sent again
// after the restart), then cancels the long poll and what is left (which stays in the outbox):
// a stop never waits for poll_timeout.
#pragma once

#include <chrono>
#include <condition_variable>
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
  std::vector<int64_t> command_chat_ids;  // groups whose commands count (private chats always)
  std::string threshold_setting;
  std::chrono::seconds poll_timeout{30};
  std::chrono::nanoseconds request_timeout{std::chrono::seconds(10)};  // replies
  std::chrono::nanoseconds backoff_base{std::chrono::milliseconds(500)};
  std::chrono::nanoseconds backoff_max{std::chrono::seconds(30)};
  http::ClientOptions client;  // redact holds the token
};

class Bot {
 public:
  // Loads the node state (reads only: `sluice validate` constructs too). Throws
  // std::runtime_error when the client cannot be set up (a bad ca_file), OptionError when the
  // node state cannot be read.
  Bot(const Host& host, BotOptions options);
  // Waits up to 2 s for replies in flight, cancels the long poll and the rest, then joins the
  // client thread.
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
  using Mutes = std::map<std::string, int64_t, std::less<>>;  // symbol → until, ms since epoch

  struct SymbolStats {
    uint64_t seen = 0;
    uint64_t sent = 0;
    uint64_t muted = 0;
    double volume_usd = 0;
  };
  struct Outgoing {
    std::string method;  // sendMessage, answerCallbackQuery
    nlohmann::json body;
  };
  // What handling one update changes, committed with the offset past it in one step.
  struct Effect {
    std::optional<Mutes> mutes;  // the mutes after the update, when it changed them
    std::vector<Host::SettingChange> settings;
    std::optional<Outgoing> reply;
    std::string failed;             // "change min_alert_usd": what a failed commit could not do
    std::vector<std::string> logs;  // info lines once committed
  };

  // On the client thread.
  void get_me();
  // True unless the command word ("/mute@OtherBot") names another bot than this one (any bot
  // when getMe failed).
  bool addressed_here(std::string_view command_word) const;
  // True for a private chat and a chat listed in command_chat_ids.
  bool command_chat(const nlohmann::json* chat) const;
  void ignore_chat(const nlohmann::json* chat, std::string_view what);
  void poll();
  void on_poll_response(const http::Response& response);
  void poll_failed(const std::string& what, std::chrono::nanoseconds retry_after);
  void handle_update(const nlohmann::json& update, Effect& effect);
  void handle_command(const nlohmann::json& message, Effect& effect);
  void handle_callback(const nlohmann::json& query, Effect& effect);
  std::string run_command(const std::string& command, const std::vector<std::string>& args,
                          Effect& effect);
  std::string cmd_stats();
  std::string cmd_symbols();
  std::string cmd_setthreshold(const std::vector<std::string>& args, Effect& effect);
  std::string cmd_mute(const std::vector<std::string>& args, Effect& effect);
  std::string cmd_unmute(const std::vector<std::string>& args, Effect& effect);
  // Adds a mute to the effect; returns the end as text.
  std::string mute(Effect& effect, const std::string& symbol, std::chrono::seconds duration);
  // Commits the offset past update_id with the effect and its reply (into the outbox), then
  // applies the effect in memory and sends the reply. When that commit fails, nothing of the
  // effect is applied: the reply tells why, and only the offset and it are committed.
  void commit_update(int64_t update_id, Effect effect);
  // One atomic write of node state keys and setting changes ("" = done, else why not).
  std::string commit(const std::vector<Host::StateWrite>& writes,
                     const std::vector<Host::SettingChange>& settings = {});
  // Sends outbox entry `id`, retrying 429, 5xx and network errors; removes it from the outbox
  // when Telegram took it or refused it for good (not when cancelled by a stop).
  void send(int64_t id, Outgoing outgoing, int attempt = 0);
  void sent(int64_t id);
  void reply_done();  // a reply request ended, whatever its outcome
  nlohmann::json outbox_value() const;  // with mu_ held
  static std::string mutes_json(const Mutes& mutes);

  // Node state: loaded at construction (reads only); start() migrates an old state file.
  void load_state();
  void migrate_state_file();

  bool allowed(int64_t user_id) const;

  Host host_;
  BotOptions opts_;
  const int64_t started_ns_;
  std::string legacy_file_;  // telegram.json of older versions, to move into the node state

  std::mutex mu_;  // everything below
  std::optional<int64_t> offset_;
  Mutes mutes_;
  std::map<int64_t, Outgoing> outbox_;  // replies committed, not yet delivered; by update id
  std::map<std::string, SymbolStats, std::less<>> symbols_;
  std::vector<int64_t> latencies_ns_;  // ring of the last kLatencySamples sent alerts
  size_t latency_next_ = 0;
  int64_t latency_max_ns_ = 0;
  std::map<int64_t, int64_t> refused_at_ns_;  // user → when last refused (monotonic)
  int replies_in_flight_ = 0;                  // reply requests sent, outcome not yet handled
  std::condition_variable replies_cv_;         // signalled when one ends

  std::string username_;                  // from getMe; "" when unknown (client thread)
  int failures_ = 0;                      // consecutive failed polls (client thread)
  std::unique_ptr<http::Client> client_;  // last: its thread stops before the rest goes
};

}  // namespace sluice::telegram_sink
