// The `llm_classifier` processor: asks an OpenAI-compatible /chat/completions endpoint to judge a
// liquidation and adds its answer (risk_level, summary, recommendation) with the call's model,
// latency, token counts and cost. One request per event, never retried here: a failure becomes a
// classified outcome (timeout, rate_limited with the server's retry-after, server_error, auth,
// bad_request, insufficient_quota, bad_response) for a composite such as `fallback` to act on.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "http_client.hpp"
#include "message.hpp"
#include "sluice/event.hpp"
#include "sluice/sdk.hpp"

namespace sluice::llm_classifier {

inline constexpr const char* kDefaultSystemPrompt =
    "You are a risk analyst on a crypto derivatives trading desk. You judge one forced "
    "liquidation at a time for traders who must decide within seconds. Answer with a single JSON "
    "object and nothing else: {\"risk_level\": \"LOW\" | \"MEDIUM\" | \"HIGH\", \"summary\": "
    "one sentence a trader reads at a glance, \"recommendation\": one short actionable sentence}.";

inline constexpr const char* kDefaultUserPrompt =
    "Liquidation on {{exchange}}: {{symbol}}, forced {{side}} order (a SELL closes a long "
    "position, a BUY closes a short), notional {{notional_usd}} USD at average price "
    "{{avg_price}}. Judge the market risk.";

inline constexpr sluice_option_spec kOptions[] = {
    {.key = "base_url", .type = SLUICE_OPT_STRING, .default_toml = nullptr, .required = 1,
     .description = "API root; requests go to <base_url>/chat/completions, e.g. "
                    "\"https://api.openai.com/v1\"",
     .choices = nullptr},
    {.key = "api_key", .type = SLUICE_OPT_SECRET, .default_toml = "\"\"", .required = 0,
     .description = "Sent as `Authorization: Bearer …`; \"\" sends none (local servers)",
     .choices = nullptr},
    {.key = "model", .type = SLUICE_OPT_STRING, .default_toml = nullptr, .required = 1,
     .description = "Model name, e.g. \"gpt-4o-mini\" or \"deepseek-chat\"", .choices = nullptr},
    {.key = "system_prompt", .type = SLUICE_OPT_STRING, .default_toml = nullptr, .required = 0,
     .description = "System message, a mustache template over the event's fields (default: a "
                    "risk analyst asked for a JSON object)",
     .choices = nullptr},
    {.key = "user_prompt", .type = SLUICE_OPT_STRING, .default_toml = nullptr, .required = 0,
     .description = "User message, a mustache template over the event's fields, e.g. "
                    "\"{{symbol}} {{side}} {{notional_usd}} USD\"",
     .choices = nullptr},
    {.key = "temperature", .type = SLUICE_OPT_DOUBLE, .default_toml = "0.0", .required = 0,
     .description = "Sampling temperature, 0 to 2", .choices = nullptr},
    {.key = "max_tokens", .type = SLUICE_OPT_INT, .default_toml = "300", .required = 0,
     .description = "Upper bound on the completion's tokens", .choices = nullptr},
    {.key = "response_format", .type = SLUICE_OPT_STRING, .default_toml = "\"json_object\"",
     .required = 0,
     .description = "json_object: ask for JSON mode (a prompt must then mention JSON); text: "
                    "send no response_format, for servers without JSON mode",
     .choices = "json_object,text"},
    {.key = "timeout", .type = SLUICE_OPT_DURATION, .default_toml = "\"10s\"", .required = 0,
     .description = "Deadline of one request, connect to last byte", .choices = nullptr},
    {.key = "price_per_mtok", .type = SLUICE_OPT_TABLE, .default_toml = nullptr, .required = 0,
     .description = "USD per million tokens, { input = 0.15, output = 0.6 }, for llm_cost_usd",
     .choices = nullptr},
    {.key = "ca_file", .type = SLUICE_OPT_STRING, .default_toml = "\"\"", .required = 0,
     .description = "PEM bundle trusted instead of the system store (\"\" = system store)",
     .choices = nullptr},
    {.key = "max_connections", .type = SLUICE_OPT_INT, .default_toml = "16", .required = 0,
     .description = "Kept-alive connections to the endpoint at most; further requests queue",
     .choices = nullptr},
};

class LlmClassifier final : public Processor {
 public:
  LlmClassifier(const Host& host, const Config& config);
  // Fails calls still waiting for an answer with `cancelled`.
  ~LlmClassifier() override;
  void process(Call call) override;

 private:
  struct Pending;
  struct CancelState;
  void complete(Pending& pending, const http::Response& response);
  // The event to emit, or a failed outcome.
  Outcome answer(Pending& pending, const http::Response& response, std::span<const uint8_t>* out);

  Host host_;
  std::string url_;
  std::string origin_;  // host:port, for messages
  std::string api_key_;
  std::string model_;
  http::EventTemplate system_prompt_;
  http::EventTemplate user_prompt_;
  // A prompt without mustache tags is the same for every event: escaped once, never rendered.
  std::optional<std::string> system_text_;
  std::optional<std::string> user_text_;
  // The request body around the two prompts, written once (JSON-encoding the whole body per
  // event through a DOM cost more than everything else the node does):
  // head + system prompt + middle + user prompt + tail.
  std::string body_head_;
  std::string body_middle_;
  std::string body_tail_;
  double temperature_;
  int64_t max_tokens_;
  bool json_mode_;
  std::chrono::nanoseconds timeout_;
  double usd_per_input_token_ = 0;
  double usd_per_output_token_ = 0;
  std::string model_labels_;
  // Used only on the client's thread, where every response callback runs.
  EventBuilder builder_;
  // Last member: destroyed (and its callbacks finished) before everything they use.
  std::unique_ptr<http::Client> client_;
};

}  // namespace sluice::llm_classifier
