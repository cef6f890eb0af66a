// What the sinks that POST each event to one URL share (webhook, slack, discord): the schema
// entries of their common options, reading those options into DeliveryOptions, and a Poster
// that sends a request per event through a Delivery. A sink keeps only what differs: its own
// options, the body it builds and, where the service answers in its own way, its classifier.
//
// The option schema is declared once per plugin, as one array; a sink writes its own entries
// and joins the shared fragments in the order its reference page lists them:
//
//   inline constexpr auto kOptions = http::option_list(
//       std::to_array<sluice_option_spec>({{.key = "url", ...}, {.key = "template", ...}}),
//       http::chat_webhook_options("\"1s\""));
//   SLUICE_PLUGIN(MySink, "my_sink", "1.0.0", "...", kOptions.specs);
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "delivery.hpp"
#include "http_client.hpp"
#include "sluice/sdk.hpp"

namespace sluice::http {

// Fragments join with the SDK's sluice::option_list (sdk.hpp), spelled http::option_list here.
using sluice::option_list;
using sluice::OptionList;

// Defaults and wording of the retry options; the chat webhooks' unless a sink says otherwise.
struct RetryOptionDefaults {
  const char* timeout_description = "Deadline of one attempt";
  const char* max_retries = "5";
  const char* max_retries_description =
      "Retries after the first attempt (429, 5xx, timeouts, connection errors)";
  const char* retry_backoff = "\"500ms\"";
  const char* retry_backoff_max = "\"30s\"";
};

// clang-format off
// timeout, max_retries, retry_backoff, retry_backoff_max, max_retry_wait (see
// delivery_options()).
constexpr std::array<sluice_option_spec, 5> retry_options(RetryOptionDefaults d = {}) {
  return {{
      {.key = "timeout", .type = SLUICE_OPT_DURATION, .default_toml = "\"10s\"", .required = 0,
       .description = d.timeout_description, .choices = nullptr},
      {.key = "max_retries", .type = SLUICE_OPT_INT, .default_toml = d.max_retries,
       .required = 0, .description = d.max_retries_description, .choices = nullptr},
      {.key = "retry_backoff", .type = SLUICE_OPT_DURATION, .default_toml = d.retry_backoff,
       .required = 0, .description = "Backoff base: retry n waits up to base * 2^n (full jitter)",
       .choices = nullptr},
      {.key = "retry_backoff_max", .type = SLUICE_OPT_DURATION,
       .default_toml = d.retry_backoff_max, .required = 0,
       .description = "Longest backoff between retries", .choices = nullptr},
      {.key = "max_retry_wait", .type = SLUICE_OPT_DURATION, .default_toml = "\"60s\"",
       .required = 0,
       .description = "Longest wait before one retry (the server's Retry-After or the "
                      "backoff); an event that would wait longer goes to `errors` at once",
       .choices = nullptr},
  }};
}

// ca_file, insecure_skip_verify.
constexpr std::array<sluice_option_spec, 2> tls_options() {
  return {{
      {.key = "ca_file", .type = SLUICE_OPT_STRING, .default_toml = nullptr, .required = 0,
       .description = "PEM file of CAs trusted instead of the system store", .choices = nullptr},
      {.key = "insecure_skip_verify", .type = SLUICE_OPT_BOOL, .default_toml = "false",
       .required = 0, .description = "Skip TLS certificate checks (testing only)",
       .choices = nullptr},
  }};
}

// What a chat_webhook() Poster reads besides `url`: min_interval (its default a TOML duration
// literal), then retry_options() and tls_options().
constexpr OptionList<8> chat_webhook_options(const char* min_interval) {
  const std::array<sluice_option_spec, 1> pacing = {{
      {.key = "min_interval", .type = SLUICE_OPT_DURATION, .default_toml = min_interval,
       .required = 0, .description = "Least time between two messages to the webhook",
       .choices = nullptr},
  }};
  return option_list(pacing, retry_options(), tls_options());
}
// clang-format on

// max_retries (checked not negative), retry_backoff, retry_backoff_max, max_retry_wait
// (checked positive), ca_file and insecure_skip_verify read into DeliveryOptions; `service`
// prefixes its messages. Throws OptionError naming the option at fault.
DeliveryOptions delivery_options(const Config& config, std::string service);

// How a Poster delivers; the rest comes from the options.
struct PostSetup {
  std::string service;  // prefixes error messages: "slack: HTTP 404: …"
  std::string content_type = "application/json";
  // The URL embeds a token: the URL, its path and its query are kept out of every message.
  bool url_is_secret = false;
  // One request at a time in arrival order, the `min_interval` option apart.
  bool ordered = false;
  size_t max_connections = 1;
  std::vector<std::string> redact;  // further secrets kept out of messages
  Classifier classify;              // empty: classify_http() with `service`
};

// A chat service's incoming webhook: a secret URL, messages one at a time in order at least
// min_interval apart, over one connection. Options: chat_webhook_options().
PostSetup chat_webhook(std::string service, std::string content_type, Classifier classify = {});

// POSTs one request per event to the `url` option, each attempt bounded by `timeout`, through
// a Delivery set up from delivery_options() and the setup.
class Poster {
 public:
  // Throws OptionError naming the option at fault (url, timeout, max_retries, ca_file, …).
  Poster(const Host& host, const Config& config, PostSetup setup);

  // Sends body with the Content-Type and then `headers`; completes the call once the request is
  // delivered or given up.
  void post(Call call, std::string body, Headers headers = {});
  // The same with body as JSON text (invalid UTF-8 replaced, so any event text can be sent).
  void post(Call call, const Json& body);

  // For the sink's flush: see Delivery::stop().
  void stop() { delivery_->stop(); }

 private:
  std::string url_;
  std::chrono::nanoseconds timeout_;
  std::string content_type_;
  std::unique_ptr<Delivery> delivery_;
};

}  // namespace sluice::http
