// The `discord` sink: posts each event to a Discord webhook as `content` rendered from a
// mustache template (cut to Discord's 2000 characters on a character boundary), optionally with
// an embed of chosen fields. Messages go one at a time, in order; 204 (or any 2xx) is success;
// a 429 pauses the webhook for the body's `retry_after` (float seconds) and resends the same
// message; 5xx and network errors are retried with backoff; other 4xx fail the event with
// Discord's message. Mentions in event text never ping anyone (allowed_mentions is empty). The
// webhook URL embeds a token: it is a secret and never appears in logs or errors.
#pragma once

#include <array>
#include <string>
#include <vector>

#include "message.hpp"
#include "poster.hpp"
#include "sluice/sdk.hpp"

namespace sluice::discord_sink {

// Discord's limits (https://discord.com/developers/docs/resources/message).
inline constexpr size_t kMaxContent = 2000;
inline constexpr size_t kMaxEmbedTitle = 256;
inline constexpr size_t kMaxFieldValue = 1024;
inline constexpr size_t kMaxEmbedFields = 25;

// clang-format off
inline constexpr auto kOptions = http::option_list(std::to_array<sluice_option_spec>({
    {.key = "url", .type = SLUICE_OPT_SECRET, .default_toml = nullptr, .required = 1,
     .description = "Webhook URL (https://discord.com/api/webhooks/ID/TOKEN)",
     .choices = nullptr},
    {.key = "template", .type = SLUICE_OPT_STRING,
     .default_toml = "\":rotating_light: **{{symbol}}** {{liquidated}} liquidated on "
                     "{{exchange}}: {{side}} {{quantity}} @ {{price}} (notional "
                     "${{notional_usd}})\"",
     .required = 0, .description = "Mustache template of the message content over the event's "
                                   "fields (markdown, values unescaped)",
     .choices = nullptr},
    {.key = "username", .type = SLUICE_OPT_STRING, .default_toml = nullptr, .required = 0,
     .description = "Overrides the webhook's display name", .choices = nullptr},
    {.key = "embed", .type = SLUICE_OPT_BOOL, .default_toml = "false", .required = 0,
     .description = "Add an embed with embed_title and one inline field per embed_fields entry",
     .choices = nullptr},
    {.key = "embed_title", .type = SLUICE_OPT_STRING,
     .default_toml = "\"{{symbol}} {{liquidated}} liquidation\"", .required = 0,
     .description = "Mustache template of the embed's title", .choices = nullptr},
    {.key = "embed_fields", .type = SLUICE_OPT_STRING_LIST,
     .default_toml = "[\"exchange\", \"side\", \"price\", \"quantity\", \"notional_usd\"]",
     .required = 0, .description = "Event fields shown in the embed (missing ones are skipped)",
     .choices = nullptr},
}), http::chat_webhook_options("\"0s\""));
// clang-format on

// Discord's answer classified: 429 waits the body's retry_after, other statuses as
// http::classify_http, with Discord's `message` as the reason.
http::Verdict classify(const http::Response& response);

class DiscordSink final : public Sink {
 public:
  DiscordSink(const Host& host, const Config& config);

  void consume(Call call) override;
  // On a stop: what waits to retry goes to `errors` (see http::Delivery::stop()).
  void flush() override { poster_.stop(); }

 private:
  http::EventTemplate content_;
  std::string username_;
  bool embed_;
  http::EventTemplate embed_title_;
  std::vector<std::string> embed_fields_;
  http::Poster poster_;
};

}  // namespace sluice::discord_sink
