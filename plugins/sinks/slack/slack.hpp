// The `slack` sink: posts each event to a Slack incoming webhook as text plus a mrkdwn section
// block rendered from a mustache template. Messages go one at a time, in order, at most about
// one per min_interval (Slack allows ~1/s per webhook); a 429 pauses the webhook for its
// Retry-After and resends the same message, 5xx and network errors are retried with backoff,
// and 400/403/404/410 fail the event with Slack's error text (invalid_payload,
// action_prohibited, channel_not_found, channel_is_archived). The webhook URL embeds a token:
// it is a secret and never appears in logs or errors.
#pragma once

#include <array>

#include "message.hpp"
#include "poster.hpp"
#include "sluice/sdk.hpp"

namespace sluice::slack_sink {

// Slack's limit for a section block's text.
inline constexpr size_t kMaxSectionText = 3000;
// Slack truncates a message's text beyond this.
inline constexpr size_t kMaxText = 40000;

// clang-format off
inline constexpr auto kOptions = http::option_list(std::to_array<sluice_option_spec>({
    {.key = "url", .type = SLUICE_OPT_SECRET, .default_toml = nullptr, .required = 1,
     .description = "Incoming webhook URL (https://hooks.slack.com/services/...)",
     .choices = nullptr},
    {.key = "template", .type = SLUICE_OPT_STRING,
     .default_toml = "\":rotating_light: *{{symbol}}* {{liquidated}} liquidated on {{exchange}}: "
                     "{{side}} {{quantity}} @ {{price}} (notional ${{notional_usd}})\"",
     .required = 0,
     .description = "Mustache template of the message over the event's fields (mrkdwn; values "
                    "are escaped for Slack)",
     .choices = nullptr},
    {.key = "blocks", .type = SLUICE_OPT_BOOL, .default_toml = "true", .required = 0,
     .description = "Also send the text as a section block (text stays the notification)",
     .choices = nullptr},
}), http::chat_webhook_options("\"1s\""));
// clang-format on

class SlackSink final : public Sink {
 public:
  SlackSink(const Host& host, const Config& config);

  void consume(Call call) override;
  // On a stop: what waits to retry goes to `errors` (see http::Delivery::stop()).
  void flush() override { poster_.stop(); }

 private:
  http::EventTemplate template_;
  bool blocks_;
  http::Poster poster_;
};

}  // namespace sluice::slack_sink
