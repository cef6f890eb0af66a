// The `webhook` sink: POSTs every event as a JSON object to a URL, optionally signed with
// HMAC-SHA256, retrying timeouts, connection errors, 5xx and 429 (after Retry-After) with capped
// full-jitter backoff. Other 4xx answers fail the event at once (kBadRequest, or kAuth for
// 401/403). A call completes only once its request is answered for good; many are in flight at
// once (the runtime's max_in_flight caps them).
#pragma once

#include <memory>
#include <string>

#include "delivery.hpp"
#include "sluice/event_json.hpp"
#include "sluice/sdk.hpp"

namespace sluice::webhook_sink {

// clang-format off
inline constexpr sluice_option_spec kOptions[] = {
    {.key = "url", .type = SLUICE_OPT_STRING, .default_toml = nullptr, .required = 1,
     .description = "http:// or https:// URL the events are POSTed to", .choices = nullptr},
    {.key = "headers", .type = SLUICE_OPT_TABLE, .default_toml = nullptr, .required = 0,
     .description = "Extra request headers, name = \"value\"", .choices = nullptr},
    {.key = "secret", .type = SLUICE_OPT_SECRET, .default_toml = nullptr, .required = 0,
     .description = "Signs each body: X-Sluice-Signature: sha256=<hex HMAC-SHA256 of the body>",
     .choices = nullptr},
    {.key = "metadata", .type = SLUICE_OPT_BOOL, .default_toml = "true", .required = 0,
     .description = "Include id, times, source, key, attrs and hops under \"_sluice\"",
     .choices = nullptr},
    {.key = "timeout", .type = SLUICE_OPT_DURATION, .default_toml = "\"10s\"", .required = 0,
     .description = "Deadline of one attempt: connect, TLS, send and the whole response",
     .choices = nullptr},
    {.key = "max_retries", .type = SLUICE_OPT_INT, .default_toml = "3", .required = 0,
     .description = "Retries after the first attempt (timeouts, connection errors, 5xx, 429)",
     .choices = nullptr},
    {.key = "retry_backoff", .type = SLUICE_OPT_DURATION, .default_toml = "\"200ms\"",
     .required = 0, .description = "Backoff base: retry n waits up to base * 2^n (full jitter)",
     .choices = nullptr},
    {.key = "retry_backoff_max", .type = SLUICE_OPT_DURATION, .default_toml = "\"10s\"",
     .required = 0, .description = "Longest backoff between retries", .choices = nullptr},
    {.key = "max_connections", .type = SLUICE_OPT_INT, .default_toml = "4", .required = 0,
     .description = "Kept-alive connections to the server at most", .choices = nullptr},
    {.key = "ca_file", .type = SLUICE_OPT_STRING, .default_toml = nullptr, .required = 0,
     .description = "PEM file of CAs trusted instead of the system store", .choices = nullptr},
    {.key = "insecure_skip_verify", .type = SLUICE_OPT_BOOL, .default_toml = "false",
     .required = 0, .description = "Skip TLS certificate checks (testing only)",
     .choices = nullptr},
};
// clang-format on

class WebhookSink final : public Sink {
 public:
  WebhookSink(const Host& host, const Config& config);

  void consume(Call call) override;

 private:
  Host host_;
  std::string url_;
  http::Headers headers_;
  std::string secret_;
  JsonOptions json_;
  std::chrono::nanoseconds timeout_;
  std::unique_ptr<http::Delivery> delivery_;
};

}  // namespace sluice::webhook_sink
