// The `webhook` sink: POSTs every event as a JSON object to a URL, optionally signed with
// HMAC-SHA256, retrying timeouts, connection errors, 5xx and 429 (after Retry-After) with capped
// full-jitter backoff, no single wait longer than max_retry_wait. Other 4xx answers fail the
// event at once (kBadRequest, or kAuth for 401/403). A call completes only once its request is
// answered for good; many are in flight at once (the runtime's max_in_flight caps them). The URL
// (webhook URLs often embed a token), the signing secret and the extra headers' values are
// secrets: never in a log line, an error or a metric, whatever the server echoes.
#pragma once

#include <array>
#include <string>

#include "poster.hpp"
#include "sluice/event_json.hpp"
#include "sluice/sdk.hpp"

namespace sluice::webhook_sink {

// clang-format off
inline constexpr auto kOptions = http::option_list(
    std::to_array<sluice_option_spec>({
        {.key = "url", .type = SLUICE_OPT_SECRET, .default_toml = nullptr, .required = 1,
         .description = "http:// or https:// URL the events are POSTed to (a secret: its path "
                        "and query never appear in logs or errors)",
         .choices = nullptr},
        {.key = "headers", .type = SLUICE_OPT_TABLE, .default_toml = nullptr, .required = 0,
         .description = "Extra request headers, name = \"value\"", .choices = nullptr},
        {.key = "secret", .type = SLUICE_OPT_SECRET, .default_toml = nullptr, .required = 0,
         .description = "Signs each body: X-Sluice-Signature: sha256=<hex HMAC-SHA256 of the body>",
         .choices = nullptr},
        {.key = "metadata", .type = SLUICE_OPT_BOOL, .default_toml = "true", .required = 0,
         .description = "Include id, times, source, key, attrs and hops under \"_sluice\"",
         .choices = nullptr},
    }),
    http::retry_options({
        .timeout_description = "Deadline of one attempt: connect, TLS, send and the whole response",
        .max_retries = "3",
        .max_retries_description =
            "Retries after the first attempt (timeouts, connection errors, 5xx, 429)",
        .retry_backoff = "\"200ms\"",
        .retry_backoff_max = "\"10s\"",
    }),
    std::to_array<sluice_option_spec>({
        {.key = "max_connections", .type = SLUICE_OPT_INT, .default_toml = "4", .required = 0,
         .description = "Kept-alive connections to the server at most", .choices = nullptr},
    }),
    http::tls_options());
// clang-format on

class WebhookSink final : public Sink {
 public:
  WebhookSink(const Host& host, const Config& config);

  void consume(Call call) override;
  // On a stop: what waits to retry goes to `errors` (see http::Delivery::stop()).
  void flush() override { poster_.stop(); }

 private:
  std::string secret_;
  JsonOptions json_;
  http::Headers headers_;
  http::Poster poster_;
};

}  // namespace sluice::webhook_sink
