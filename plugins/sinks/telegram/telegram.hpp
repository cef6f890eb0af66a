// The `telegram` sink: sends each event as an HTML message through the Telegram Bot API
// (sendMessage) to every configured chat, rendered from a mustache template, with an optional
// chart button. Each chat has its own ordered, paced queue (Telegram allows about one message
// per second per chat and about 30 per second overall); a 429 pauses that chat for the
// parameters.retry_after Telegram asks and resends the same message, 5xx and network errors are
// retried with backoff, and other errors fail with Telegram's description. An event succeeds
// only when every chat got it. The bot token is a secret: it never appears in logs or errors.
// With commands = true a Bot (bot.hpp) answers commands, and alerts for muted symbols are
// counted and skipped.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bot.hpp"
#include "delivery.hpp"
#include "message.hpp"
#include "poster.hpp"
#include "sluice/sdk.hpp"

namespace sluice::telegram_sink {

// Telegram's limit for a message's text.
inline constexpr size_t kMaxText = 4096;

// Label of the mute button.
inline constexpr std::string_view kMuteButtonText = "\xF0\x9F\x94\x95 Mute 1h";

// clang-format off
inline constexpr auto kOptions = http::option_list(
    std::to_array<sluice_option_spec>({
    {.key = "bot_token", .type = SLUICE_OPT_SECRET, .default_toml = nullptr, .required = 1,
     .description = "Bot token from @BotFather (123456:ABC...)", .choices = nullptr},
    {.key = "chat_ids", .type = SLUICE_OPT_INT_LIST, .default_toml = nullptr, .required = 1,
     .description = "Chats to alert (users, groups, channels)", .choices = nullptr},
    {.key = "api_base", .type = SLUICE_OPT_STRING, .default_toml = "\"https://api.telegram.org\"",
     .required = 0, .description = "Bot API base URL", .choices = nullptr},
    {.key = "template", .type = SLUICE_OPT_STRING, .default_toml = nullptr, .required = 0,
     .description = "Mustache template of the message in Telegram HTML (values are escaped); "
                    "default: side marker, symbol, notional, price, time, latency and the "
                    "classifier's verdict",
     .choices = nullptr},
    {.key = "chart_url", .type = SLUICE_OPT_STRING,
     .default_toml = "\"https://www.binance.com/en/futures/{{symbol}}\"", .required = 0,
     .description = "Mustache template of the chart button's URL; \"\" for no button",
     .choices = nullptr},
    {.key = "chart_button_text", .type = SLUICE_OPT_STRING,
     .default_toml = "\"\xF0\x9F\x93\x88 Chart\"", .required = 0,
     .description = "Label of the chart button", .choices = nullptr},
    {.key = "disable_link_preview", .type = SLUICE_OPT_BOOL, .default_toml = "true",
     .required = 0, .description = "Send without link previews", .choices = nullptr},
    {.key = "message_thread_id", .type = SLUICE_OPT_INT, .default_toml = nullptr, .required = 0,
     .description = "Forum topic to post in", .choices = nullptr},
    {.key = "min_interval", .type = SLUICE_OPT_DURATION, .default_toml = "\"1s\"", .required = 0,
     .description = "Least time between two messages to one chat", .choices = nullptr},
    {.key = "max_per_second", .type = SLUICE_OPT_INT, .default_toml = "30", .required = 0,
     .description = "Most messages per second over all chats", .choices = nullptr},
    }),
    http::retry_options(), http::tls_options(),
    std::to_array<sluice_option_spec>({
    {.key = "commands", .type = SLUICE_OPT_BOOL, .default_toml = "false", .required = 0,
     .description = "Long-poll getUpdates and answer /start, /stats, /symbols, /setthreshold, "
                    "/mute and /unmute from allowed_user_ids",
     .choices = nullptr},
    {.key = "allowed_user_ids", .type = SLUICE_OPT_INT_LIST, .default_toml = nullptr,
     .required = 0,
     .description = "Telegram user ids whose commands and buttons are obeyed (required with "
                    "commands = true); anyone else is refused",
     .choices = nullptr},
    {.key = "command_chat_ids", .type = SLUICE_OPT_INT_LIST, .default_toml = "[]",
     .required = 0,
     .description = "Group, supergroup or channel chat ids whose commands and buttons are obeyed "
                    "(from allowed_user_ids); commands elsewhere than in a private chat or a chat "
                    "listed here are ignored",
     .choices = nullptr},
    {.key = "threshold_setting", .type = SLUICE_OPT_STRING, .default_toml = "\"min_alert_usd\"",
     .required = 0,
     .description = "Pipeline [settings] name that /setthreshold changes (persisted)",
     .choices = nullptr},
    {.key = "poll_timeout", .type = SLUICE_OPT_DURATION, .default_toml = "\"30s\"", .required = 0,
     .description = "getUpdates long-poll timeout (whole seconds, 1s to 1h)", .choices = nullptr},
    {.key = "mute_button", .type = SLUICE_OPT_BOOL, .default_toml = "true", .required = 0,
     .description = "With commands = true, add a \"Mute 1h\" button for the alert's symbol",
     .choices = nullptr},
    }));
// clang-format on

// The default message: a trader's at-a-glance view of a normalised liquidation.
inline constexpr std::string_view kDefaultTemplate =
    "{{_marker}} <b>{{symbol}}</b> {{liquidated}} liquidated \xC2\xB7 <b>${{_notional}}</b>\n"
    "{{side}} {{quantity}} @ {{price}} on {{exchange}}"
    "{{#_time}}\n\xF0\x9F\x95\x92 {{_time}}{{/_time}}"
    "{{#_latency}} \xC2\xB7 latency {{_latency}}{{/_latency}}"
    "{{#risk_level}}\nRisk: <b>{{risk_level}}</b>{{/risk_level}}"
    "{{#summary}}\n{{summary}}{{/summary}}"
    "{{#recommendation}}\n\xE2\x9E\xA1\xEF\xB8\x8F <i>{{recommendation}}</i>{{/recommendation}}";

// The exchange's time of an event: the trade_time_ms field when it holds a plausible time, else
// the event's own time (0 when it has none).
int64_t alert_time_ns(const EventView& event);

// The event's fields plus what the templates add: _marker (red circle when a long was
// liquidated, green for a short), _notional (notional_usd rounded, with thousands separators),
// _time (event time as HH:MM:SS UTC) and _latency (now minus event time), the event time being
// the trade_time_ms field or else the event's own time.
std::vector<uint8_t> alert_event(const EventView& event, std::chrono::system_clock::time_point now);

// Text cut to Telegram's limit without leaving a broken tag or entity or an unclosed tag.
std::string fit_html(std::string_view html, size_t max_units = kMaxText);

// How long a 429 answer asks to wait: parameters.retry_after (capped at a day), else the
// Retry-After header; negative when it says neither.
std::chrono::nanoseconds retry_after_of(const http::Response& response, const nlohmann::json& body);

// The classification of one sendMessage answer for one chat: 429 retries after
// parameters.retry_after, 5xx and network errors retry, 401/403 fail as kAuth and other errors
// as kBadRequest, all with Telegram's description.
http::Verdict classify_telegram(const http::Response& response, int64_t chat_id);

class TelegramSink final : public Sink {
 public:
  TelegramSink(const Host& host, const Config& config);

  // Starts the bot's long polling (commands = true).
  void start() override;
  void consume(Call call) override;
  // A stop does not wait out retries: every chat's delivery fails what waits to retry
  // ("stopped while waiting to retry"), so those events reach `errors`.
  void flush() override {
    for (Chat& c : chats_) c.delivery->stop();
  }

 private:
  struct Chat {
    int64_t id;
    std::unique_ptr<http::Delivery> delivery;
  };

  Host host_;
  std::string url_;  // .../bot<TOKEN>/sendMessage
  http::EventTemplate template_;
  std::optional<http::EventTemplate> chart_url_;
  std::string chart_button_text_;
  bool disable_link_preview_;
  std::optional<int64_t> thread_id_;
  std::chrono::nanoseconds timeout_;
  bool mute_button_ = false;
  // Before chats_: the deliveries, which report sent alerts to it, stop first.
  std::unique_ptr<Bot> bot_;
  std::vector<Chat> chats_;
};

}  // namespace sluice::telegram_sink
