// The `discord` sink: message building, Discord's 429 body and option checks (see discord.hpp).
#include "discord.hpp"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace sluice::discord_sink {
namespace {

using Json = nlohmann::json;

// Embed colours by which side was liquidated: red for longs, green for shorts.
constexpr int kLongColor = 0xE74C3C;
constexpr int kShortColor = 0x2ECC71;

// The embed_fields option: Discord shows at most kMaxEmbedFields fields in an embed.
std::vector<std::string> embed_fields(const Config& config) {
  std::vector<std::string> names = config.strings("embed_fields");
  if (names.size() > kMaxEmbedFields) {
    throw OptionError("embed_fields", "must name at most 25 fields");
  }
  return names;
}

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
      // Capped as Retry-After is, so a huge float neither overflows nor reads as no wait.
      const double seconds = std::min(it->get<double>(), double(http::kMaxRetryAfter.count()));
      v.retry_after = std::chrono::nanoseconds(std::llround(seconds * 1e9));
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
    : content_(http::compile_template("template", config.str("template"), http::Escape::kNone)),
      username_(config.str("username", "")),
      embed_(config.flag("embed")),
      embed_title_(
          http::compile_template("embed_title", config.str("embed_title"), http::Escape::kNone)),
      embed_fields_(embed_fields(config)),
      poster_(host, config, http::chat_webhook("discord", "application/json", classify)) {}

void DiscordSink::consume(Call call) {
  const EventView ev = call.event();
  Json body;
  // The pipeline's own alert (a watch, a rollout) is sent as its text, without an embed.
  const auto alert = http::pipeline_alert_text(ev);
  body["content"] =
      http::truncate_text(alert ? std::string(*alert) : content_.render(ev), kMaxContent);
  body["allowed_mentions"] = {{"parse", Json::array()}};
  if (!username_.empty()) body["username"] = username_;
  if (embed_ && !alert) {
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
  poster_.post(std::move(call), body);
}

}  // namespace sluice::discord_sink

SLUICE_PLUGIN(sluice::discord_sink::DiscordSink, "discord", "1.0.0",
              "Posts each event to a Discord webhook, in order, honouring rate limits",
              sluice::discord_sink::kOptions.specs);
