// The `llm_classifier` processor (see llm_classifier.hpp).
#include "llm_classifier.hpp"

#include <cctype>
#include <charconv>
#include <cmath>
#include <optional>
#include <stdexcept>
#include <utility>

#include "sluice/event_json.hpp"

namespace sluice::llm_classifier {
namespace {

constexpr size_t kSnippetChars = 200;

bool contains_json(std::string_view text) {
  for (size_t i = 0; i + 4 <= text.size(); ++i) {
    auto lower = [&](size_t k) { return static_cast<char>(std::tolower(text[i + k])); };
    if (lower(0) == 'j' && lower(1) == 's' && lower(2) == 'o' && lower(3) == 'n') return true;
  }
  return false;
}

std::string shortest(double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  return ec == std::errc{} ? std::string(buf, end) : std::string("?");
}

// "2.5s", "250ms": how long the deadline was, for timeout messages.
std::string format_duration(std::chrono::nanoseconds d) {
  if (d >= std::chrono::seconds(1)) return shortest(static_cast<double>(d.count()) / 1e9) + "s";
  return shortest(static_cast<double>(d.count()) / 1e6) + "ms";
}

// Up to kSnippetChars of untrusted text on one line, for messages.
std::string snippet(std::string_view text) {
  std::string one_line(text);
  for (char& c : one_line) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  return http::truncate_text(one_line, kSnippetChars);
}

// Prometheus label value: backslash, quote and newline escaped.
std::string label_value(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

// What an OpenAI-style error body says ({"error":{"message":…,"code":…}}), else the body.
struct ApiError {
  std::string message;
  std::string code;
};

ApiError api_error(std::string_view body) {
  ApiError e;
  Json j = Json::parse(body, nullptr, false);
  if (j.is_object()) {
    const Json* err = j.contains("error") ? &j["error"] : nullptr;
    if (err != nullptr && err->is_object()) {
      if (err->contains("message") && (*err)["message"].is_string()) {
        e.message = (*err)["message"].get<std::string>();
      }
      for (const char* key : {"code", "type"}) {
        if (err->contains(key) && (*err)[key].is_string() && e.code.empty()) {
          e.code = (*err)[key].get<std::string>();
        }
      }
    } else if (err != nullptr && err->is_string()) {
      e.message = err->get<std::string>();
    }
  }
  if (e.message.empty()) e.message = std::string(body);
  return e;
}

// A model asked for bare JSON sometimes still wraps it in a Markdown code fence.
std::string_view unfenced(std::string_view s) {
  auto trim = [](std::string_view t) {
    while (!t.empty() && std::isspace(static_cast<unsigned char>(t.front()))) t.remove_prefix(1);
    while (!t.empty() && std::isspace(static_cast<unsigned char>(t.back()))) t.remove_suffix(1);
    return t;
  };
  s = trim(s);
  if (s.starts_with("```") && s.size() >= 6 && s.ends_with("```")) {
    s = s.substr(3, s.size() - 6);
    size_t nl = s.find('\n');
    // The info string ("json") runs up to the first line break.
    if (nl != std::string_view::npos && s.substr(0, nl).find('{') == std::string_view::npos) {
      s.remove_prefix(nl + 1);
    }
    s = trim(s);
  }
  return s;
}

std::optional<std::chrono::nanoseconds> retry_after(const http::Response& r) {
  if (auto ms = r.header("retry-after-ms")) {
    if (auto d = http::parse_retry_after_ms(*ms)) return *d;
  }
  if (auto s = r.header("retry-after")) {
    if (auto d = http::parse_retry_after(*s)) return *d;
  }
  return std::nullopt;
}

int64_t token_count(const Json& usage, const char* key) {
  if (!usage.is_object() || !usage.contains(key) || !usage[key].is_number_integer()) return 0;
  return std::max<int64_t>(usage[key].get<int64_t>(), 0);
}

double price_option(const Json& table, const char* key) {
  if (!table.contains(key)) return 0;
  const Json& v = table[key];
  if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() < 0) {
    throw OptionError("price_per_mtok", std::string("'") + key +
                                            "' must be a non-negative number of USD per "
                                            "million tokens");
  }
  return v.get<double>();
}

http::EventTemplate prompt_template(const Config& config, const char* key, const char* def) {
  try {
    return http::EventTemplate(config.str(key, def), http::Escape::kNone);
  } catch (const std::invalid_argument& e) {
    throw OptionError(key, std::string("is not a valid mustache template: ") + e.what());
  }
}

// The JSON-escaped text of a prompt without mustache tags (it renders to itself), else nullopt.
std::optional<std::string> constant_prompt(const std::string& text) {
  if (text.find("{{") != std::string::npos) return std::nullopt;
  std::string escaped;
  append_json_chars(escaped, text);
  return escaped;
}

// Appends a prompt, JSON-escaped, for one event.
void append_prompt(std::string& out, const http::EventTemplate& prompt,
                   const std::optional<std::string>& constant, const EventView& ev) {
  if (constant) {
    out += *constant;
  } else {
    append_json_chars(out, prompt.render(ev));
  }
}

bool is_loopback(std::string_view host) {
  return host == "127.0.0.1" || host == "localhost" || host == "::1" || host == "[::1]";
}

}  // namespace

struct LlmClassifier::Pending {
  explicit Pending(Call c) : call(std::move(c)) {}
  Call call;
  int64_t started_ns = mono_ns();
  std::chrono::nanoseconds timeout{0};  // this request's: the node's, or less if the caller's
  bool by_deadline = false;             // deadline left less than the node's timeout
};

// A caller's cancel (a composite abandoning the call) reaching a request that may not have
// been sent yet: whichever of send() and cancel comes second aborts the request.
struct LlmClassifier::CancelState {
  std::mutex mu;
  http::RequestId id = 0;
  bool cancelled = false;
};

LlmClassifier::LlmClassifier(const Host& host, const Config& config)
    : host_(host),
      api_key_(config.str("api_key")),
      model_(config.str("model")),
      system_prompt_(prompt_template(config, "system_prompt", kDefaultSystemPrompt)),
      user_prompt_(prompt_template(config, "user_prompt", kDefaultUserPrompt)),
      temperature_(config.f64("temperature")),
      max_tokens_(config.i64("max_tokens")),
      json_mode_(config.str("response_format") == "json_object"),
      timeout_(config.duration("timeout")) {
  std::string base = config.str("base_url");
  while (!base.empty() && base.back() == '/') base.pop_back();
  url_ = base + "/chat/completions";
  std::string url_error;
  std::optional<http::Url> url = http::parse_url(url_, &url_error);
  if (!url) throw OptionError("base_url", url_error);
  origin_ = url->host + ":" + std::to_string(url->port);
  if (model_.empty()) throw OptionError("model", "must not be empty");
  if (!(temperature_ >= 0 && temperature_ <= 2)) {
    throw OptionError("temperature", "must be between 0 and 2");
  }
  if (max_tokens_ < 1) throw OptionError("max_tokens", "must be at least 1");
  if (timeout_.count() <= 0) throw OptionError("timeout", "must be positive");
  int64_t max_connections = config.i64("max_connections");
  if (max_connections < 1) throw OptionError("max_connections", "must be at least 1");
  if (json_mode_ && !contains_json(config.str("system_prompt", kDefaultSystemPrompt)) &&
      !contains_json(config.str("user_prompt", kDefaultUserPrompt))) {
    // OpenAI-compatible APIs refuse JSON mode unless the messages ask for JSON in words.
    throw OptionError(config.has("system_prompt") ? "system_prompt" : "user_prompt",
                      "must mention JSON when response_format = \"json_object\"");
  }
  if (config.has("price_per_mtok")) {
    const Json& prices = config.at("price_per_mtok");
    for (const auto& [key, value] : prices.items()) {
      if (key != "input" && key != "output") {
        throw OptionError("price_per_mtok",
                          "has unknown key '" + key + "' (expected input, output)");
      }
    }
    usd_per_input_token_ = price_option(prices, "input") / 1e6;
    usd_per_output_token_ = price_option(prices, "output") / 1e6;
  }
  model_labels_ = "model=\"" + label_value(model_) + "\"";
  system_text_ = constant_prompt(config.str("system_prompt", kDefaultSystemPrompt));
  user_text_ = constant_prompt(config.str("user_prompt", kDefaultUserPrompt));
  body_head_ = "{\"model\":";
  append_json_string(body_head_, model_);
  body_head_ += ",\"messages\":[{\"role\":\"system\",\"content\":\"";
  body_middle_ = "\"},{\"role\":\"user\",\"content\":\"";
  body_tail_ = "\"}],\"temperature\":";
  append_double(body_tail_, temperature_);
  body_tail_ += ",\"max_tokens\":";
  append_json_int(body_tail_, max_tokens_);
  if (json_mode_) body_tail_ += ",\"response_format\":{\"type\":\"json_object\"}";
  body_tail_ += "}";

  http::ClientOptions options;
  options.ca_file = config.str("ca_file");
  options.max_connections = static_cast<size_t>(max_connections);
  if (!api_key_.empty()) options.redact.push_back(api_key_);
  try {
    client_ = std::make_unique<http::Client>(std::move(options));
  } catch (const std::exception& e) {
    throw OptionError("ca_file", e.what());
  }
  if (!url->tls && !api_key_.empty() && !is_loopback(url->host)) {
    host_.warn("base_url is plain http to " + url->host +
               ": the API key crosses the network unencrypted");
  }
}

LlmClassifier::~LlmClassifier() { client_->shutdown(); }

void LlmClassifier::process(Call call) {
  EventView ev = call.event();
  // Event text need not be valid UTF-8; JSON must be: invalid bytes become U+FFFD.
  std::string body = body_head_;
  try {
    append_prompt(body, system_prompt_, system_text_, ev);
    body += body_middle_;
    append_prompt(body, user_prompt_, user_text_, ev);
  } catch (const std::exception& e) {
    return call.fail(Status::kInternal, std::string("rendering the prompt failed: ") + e.what());
  }
  body += body_tail_;

  http::Request request;
  request.method = "POST";
  request.url = url_;
  request.headers.emplace_back("Content-Type", "application/json");
  if (!api_key_.empty()) request.headers.emplace_back("Authorization", "Bearer " + api_key_);
  request.body = std::move(body);
  // A composite's deadline (fallback, gray release) bounds the request as well as our timeout.
  const std::chrono::nanoseconds budget = call.time_left(timeout_);
  if (budget.count() <= 0) {
    return call.fail(Status::kTimeout, "no time left before the caller's deadline");
  }
  request.timeout = budget;

  auto pending = std::make_shared<Pending>(std::move(call));
  pending->timeout = budget;
  pending->by_deadline = budget < timeout_;
  auto cancel = std::make_shared<CancelState>();
  http::Client* client = client_.get();  // outlives every call: shut down in our destructor
  pending->call.on_cancel([client, cancel] {
    http::RequestId id = 0;
    {
      std::lock_guard lock(cancel->mu);
      cancel->cancelled = true;
      id = cancel->id;
    }
    if (id != 0) client->cancel(id);
  });
  http::RequestId id = client_->send(std::move(request), [this, pending](http::Response response) {
    complete(*pending, response);
  });
  bool cancelled = false;
  {
    std::lock_guard lock(cancel->mu);
    cancel->id = id;
    cancelled = cancel->cancelled;
  }
  if (cancelled) client_->cancel(id);
}

void LlmClassifier::complete(Pending& pending, const http::Response& response) {
  double latency_s = static_cast<double>(mono_ns() - pending.started_ns) / 1e9;
  std::span<const uint8_t> event;
  Outcome outcome = answer(pending, response, &event);
  if (outcome.status != Status::kCancelled) {
    std::string labels =
        model_labels_ + ",class=\"" + status_name(static_cast<int>(outcome.status)) + "\"";
    host_.counter_add("llm_requests_total", 1, labels.c_str());
    host_.observe("llm_latency_seconds", latency_s, model_labels_.c_str());
  }
  if (outcome.ok()) pending.call.emit(event);
  outcome.message = client_->redact(outcome.message);
  pending.call.done(outcome);
}

Outcome LlmClassifier::answer(Pending& pending, const http::Response& r,
                              std::span<const uint8_t>* out) {
  auto fail = [](Status s, std::string msg) { return Outcome::failure(s, std::move(msg)); };
  switch (r.error) {
    case http::ErrorKind::kNone:
      break;
    case http::ErrorKind::kTimeout:
      return fail(Status::kTimeout, "no answer from " + origin_ + " within " +
                                        format_duration(pending.timeout) +
                                        (pending.by_deadline ? " (the caller's deadline)" : ""));
    case http::ErrorKind::kCancelled:
      return fail(Status::kCancelled, "cancelled before " + origin_ + " answered");
    case http::ErrorKind::kTooLarge:
      return fail(Status::kBadResponse, origin_ + ": " + r.error_message);
    case http::ErrorKind::kBadUrl:
      return fail(Status::kInternal, origin_ + ": " + r.error_message);
    case http::ErrorKind::kConnect:
    case http::ErrorKind::kTls:
    case http::ErrorKind::kProtocol:
      return fail(Status::kServerError, origin_ + ": " + r.error_message);
  }

  if (r.status < 200 || r.status > 299) {
    ApiError e = api_error(r.body);
    std::string msg =
        "HTTP " + std::to_string(r.status) + " from " + origin_ + ": " + snippet(e.message);
    if (r.status == 429) {
      if (e.code == "insufficient_quota") return fail(Status::kQuota, msg);
      Outcome o = fail(Status::kRateLimited, msg);
      if (auto after = retry_after(r)) o.retry_after_ns = after->count();
      return o;
    }
    if (r.status == 401 || r.status == 403) return fail(Status::kAuth, msg);
    if (r.status == 408) return fail(Status::kTimeout, msg);
    if (r.status >= 500) return fail(Status::kServerError, msg);
    if (r.status >= 400) return fail(Status::kBadRequest, msg);
    return fail(Status::kBadResponse, "unexpected " + msg);
  }

  Json reply = Json::parse(r.body, nullptr, false);
  if (!reply.is_object()) {
    return fail(Status::kBadResponse,
                "reply from " + origin_ + " is not a JSON object: " + snippet(r.body));
  }
  std::string model = model_;
  if (reply.contains("model") && reply["model"].is_string() &&
      !reply["model"].get<std::string>().empty()) {
    model = reply["model"].get<std::string>();
  }
  const Json usage = reply.contains("usage") ? reply["usage"] : Json();
  int64_t prompt_tokens = token_count(usage, "prompt_tokens");
  int64_t completion_tokens = token_count(usage, "completion_tokens");
  double cost = static_cast<double>(prompt_tokens) * usd_per_input_token_ +
                static_cast<double>(completion_tokens) * usd_per_output_token_;
  host_.counter_add("llm_prompt_tokens_total", static_cast<double>(prompt_tokens),
                    model_labels_.c_str());
  host_.counter_add("llm_completion_tokens_total", static_cast<double>(completion_tokens),
                    model_labels_.c_str());
  host_.counter_add("llm_cost_usd_total", cost, model_labels_.c_str());
  // Tokens spent on an unusable answer still cost money: a failure reports it too.
  auto bad = [&](std::string msg) {
    Outcome o = fail(Status::kBadResponse, std::move(msg));
    o.cost_usd = cost;
    return o;
  };

  const Json* message = nullptr;
  std::string finish_reason;
  if (reply.contains("choices") && reply["choices"].is_array() && !reply["choices"].empty() &&
      reply["choices"][0].is_object()) {
    const Json& choice = reply["choices"][0];
    if (choice.contains("message") && choice["message"].is_object()) message = &choice["message"];
    if (choice.contains("finish_reason") && choice["finish_reason"].is_string()) {
      finish_reason = choice["finish_reason"].get<std::string>();
    }
  }
  if (message == nullptr || !message->contains("content") || !(*message)["content"].is_string()) {
    return bad("reply from " + origin_ + " has no choices[0].message.content: " + snippet(r.body));
  }
  std::string_view content = unfenced((*message)["content"].get_ref<const std::string&>());
  std::string cut_note = finish_reason == "length"
                             ? " (cut off at max_tokens = " + std::to_string(max_tokens_) + ")"
                             : "";
  if (content.empty()) return bad(model + " answered with empty content" + cut_note);
  Json verdict = Json::parse(content, nullptr, false);
  if (!verdict.is_object()) {
    return bad(model + " answered with something other than a JSON object" + cut_note + ": " +
               snippet(content));
  }
  if (!verdict.contains("risk_level") || !verdict["risk_level"].is_string()) {
    return bad(model + " answered without a string risk_level: " + snippet(content));
  }
  const std::string& answered = verdict["risk_level"].get_ref<const std::string&>();
  std::string level = answered;
  for (char& c : level) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (level != "LOW" && level != "MEDIUM" && level != "HIGH") {
    return bad(model + " answered risk_level \"" + snippet(answered) +
               "\", expected LOW, MEDIUM or HIGH");
  }
  auto text = [&](const char* key) -> std::optional<std::string> {
    if (!verdict.contains(key)) return std::string();
    if (!verdict[key].is_string()) return std::nullopt;
    return verdict[key].get<std::string>();
  };
  std::optional<std::string> summary = text("summary");
  if (!summary || summary->find_first_not_of(" \t\r\n") == std::string::npos) {
    return bad(model + " answered without a summary: " + snippet(content));
  }
  std::optional<std::string> recommendation = text("recommendation");
  if (!recommendation) {
    return bad(model + " answered a recommendation that is not a string: " + snippet(content));
  }

  double latency_ms = static_cast<double>(mono_ns() - pending.started_ns) / 1e6;
  builder_.extend(pending.call.event());  // the event embedded as it is, plus these fields
  builder_.field("risk_level", level)
      .field("summary", *summary)
      .field("recommendation", *recommendation)
      .field("classifier", "llm")
      .field("llm_model", model)
      .field("llm_latency_ms", latency_ms)
      .field("llm_prompt_tokens", prompt_tokens)
      .field("llm_completion_tokens", completion_tokens)
      .field("llm_cost_usd", cost);
  *out = builder_.finish();
  Outcome ok = Outcome::success(cost);
  ok.with_usage(prompt_tokens, completion_tokens, model);
  return ok;
}

}  // namespace sluice::llm_classifier

SLUICE_PLUGIN(sluice::llm_classifier::LlmClassifier, "llm_classifier", "0.1.0",
              "Liquidation risk, summary and recommendation from an OpenAI-compatible "
              "/chat/completions endpoint, with model, latency, tokens and cost",
              sluice::llm_classifier::kOptions);
