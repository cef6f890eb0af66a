// The `discord` sink: message building, Discord's 429 body and option checks (see discord.hpp).
#include "discord.hpp"

#include <cmath>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <utility>

namespace sluice::discord_sink {
namespace {

using Json = nlohmann::json;

http::EventTemplate compile(const std::string& key, const std::string& text) {
  try {
    return http::EventTemplate(text, http::Escape::kNone);
  } catch (const std::invalid_argument& e) {
    throw OptionError(key, e.what());
  }
}

// Embed colours by which side was liquidated: red for longs, green for shorts.
constexpr int kLongColor = 0xE74C3C;
constexpr int kShortColor = 0x2ECC71;

}  // namespace

http::Verdict classify(const http::Response& r) {
  http::Verdict v = http::classify_http(r, "discord");
  if (!r.ok() || v.next == http::Verdict::Next::kDone) return v;
  const Json body = Json::parse(r.body, nullptr, false);
  if (!body.is_object()) return v;
  if (r.status == 429) {
    auto it = body.find("retry_after");
    if (it != body.end() && it->is_number() && std::isfinite(it->get<double>()) &&
        it->get<double>() >= 0) {
      v.retry_after = std::chrono::nanoseconds(std::llround(it->get<double>() * 1e9));
    }
  }
  auto msg = body.find("message");
  if (msg != body.end() && msg->is_string()) {
    std::string reason = msg->get<std::string>();
    if (auto code = body.find("code"); code != body.end() && code->is_number_integer()) {
      reason += " (code " + std::to_string(code->get<int64_t>()) + ")";
    }
    v.message = "discord: HTTP " + std::to_string(r.status) + ": " + http::body_snippet(reason);
  }
  return v;
}

DiscordSink::DiscordSink(const Host& host, const Config& config)
    : host_(host),
      url_(config.str("url")),
      content_(compile("template", config.str("template"))),
      username_(config.str("username", "")),
      embed_(config.flag("embed")),
      embed_title_(compile("embed_title", config.str("embed_title"))),
      embed_fields_(config.strings("embed_fields")),
      timeout_(config.duration("timeout")) {
  std::string error;
  const auto url = http::parse_url(url_, &error);
  if (!url) throw OptionError("url", error);
  if (timeout_.count() <= 0) throw OptionError("timeout", "must be positive");
  if (embed_fields_.size() > kMaxEmbedFields) {
    throw OptionError("embed_fields", "must name at most 25 fields");
  }
  const int64_t retries = config.i64("max_retries");
  if (retries < 0) throw OptionError("max_retries", "must not be negative");
  http::DeliveryOptions d;
  d.service = "discord";
  d.max_retries = static_cast<int>(retries);
  d.backoff_base = config.duration("retry_backoff");
  d.backoff_max = config.duration("retry_backoff_max");
  d.ordered = true;
  d.min_interval = config.duration("min_interval");
  d.client.ca_file = config.str("ca_file", "");
  d.client.insecure_skip_verify = config.flag("insecure_skip_verify");
  d.client.max_connections = 1;
  d.client.redact = {url_, url->target};
  try {
    delivery_ = std::make_unique<http::Delivery>(host_, std::move(d), classify);
  } catch (const std::runtime_error& e) {
    throw OptionError("ca_file", e.what());
  }
}

void DiscordSink::consume(Call call) {
  const EventView ev = call.event();
  Json body;
  body["content"] = http::truncate_text(content_.render(ev), kMaxContent);
  body["allowed_mentions"] = {{"parse", Json::array()}};
  if (!username_.empty()) body["username"] = username_;
  if (embed_) {
    Json embed;
    embed["title"] = http::truncate_text(embed_title_.render(ev), kMaxEmbedTitle);
    Json fields = Json::array();
    for (const auto& name : embed_fields_) {
      const fb::Field* f = ev.field(name);
      if (f == nullptr) continue;
      std::string value = http::field_text(*f);
      if (value.empty()) continue;  // Discord refuses empty field values
      fields.push_back({{"name", name},
                        {"value", http::truncate_text(value, kMaxFieldValue)},
                        {"inline", true}});
    }
    if (!fields.empty()) embed["fields"] = std::move(fields);
    if (auto side = ev.string("liquidated")) {
      if (*side == "long") embed["color"] = kLongColor;
      if (*side == "short") embed["color"] = kShortColor;
    }
    body["embeds"] = Json::array({std::move(embed)});
  }
  http::Request req;
  req.method = "POST";
  req.url = url_;
  req.timeout = timeout_;
  req.headers = {{"Content-Type", "application/json"}};
  req.body = body.dump(-1, ' ', false, Json::error_handler_t::replace);
  delivery_->deliver(std::move(call), std::move(req));
}

}  // namespace sluice::discord_sink

SLUICE_PLUGIN(sluice::discord_sink::DiscordSink, "discord", "1.0.0",
              "Posts each event to a Discord webhook, in order, honouring rate limits",
              sluice::discord_sink::kOptions);
