// The `telegram` sink: alert rendering, sendMessage requests, fan-out over chats, option checks
// and, with commands, the mute check and sent-alert accounting for the bot (see telegram.hpp).
#include "telegram.hpp"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <utility>

namespace sluice::telegram_sink {
namespace {

using nlohmann::json;

std::string clock_time(int64_t time_ns) {
  const std::time_t secs = static_cast<std::time_t>(time_ns / 1'000'000'000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%H:%M:%S UTC", &tm);
  return buf;
}

// What Telegram said about a failure, else the start of the body.
std::string detail_of(const json& body, const http::Response& r, const std::string& what) {
  if (body.is_object()) {
    auto it = body.find("description");
    if (it != body.end() && it->is_string()) return what + ": " + it->get<std::string>();
  }
  return r.body.empty() ? what : what + ": " + http::body_snippet(r.body);
}

}  // namespace

int64_t alert_time_ns(const EventView& event) {
  // The exchange's trade time when there is one: the latency a trader cares about is from the
  // exchange to the alert, not from the pipeline's ingest.
  // Until the year 2286; a value beyond (or garbage) is no time rather than an overflow.
  constexpr double kMaxMs = 1e13;
  if (auto ms = event.number("trade_time_ms"); ms && *ms > 0 && *ms < kMaxMs) {
    return static_cast<int64_t>(*ms) * 1'000'000;
  }
  return event.event_time_ns();
}

std::vector<uint8_t> alert_event(const EventView& event,
                                 std::chrono::system_clock::time_point now) {
  EventBuilder b;
  b.copy_from(event);
  const auto liquidated = event.string("liquidated");
  const auto side = event.string("side");
  const bool long_side = liquidated ? *liquidated == "long" : side && *side == "SELL";
  const bool short_side = liquidated ? *liquidated == "short" : side && *side == "BUY";
  b.field("_marker", long_side    ? "\xF0\x9F\x94\xB4"
                     : short_side ? "\xF0\x9F\x9F\xA2"
                                  : "\xE2\x9A\xA0\xEF\xB8\x8F");
  if (auto notional = event.number("notional_usd")) b.field("_notional", with_thousands(*notional));
  const int64_t time_ns = alert_time_ns(event);
  if (time_ns > 0) {
    b.field("_time", clock_time(time_ns));
    const auto since = now.time_since_epoch() - std::chrono::nanoseconds(time_ns);
    b.field("_latency", latency_text(since));
  }
  const auto bytes = b.finish();
  return {bytes.begin(), bytes.end()};
}

std::string fit_html(std::string_view html, size_t max_units) {
  if (http::utf16_length(html) <= max_units) return std::string(html);
  // Room for the ellipsis and the closing tags of a few nested open ones.
  constexpr size_t kReserve = 64;
  std::string cut = http::truncate_text(html, max_units > kReserve ? max_units - kReserve : 1);
  constexpr std::string_view kEllipsis = "\xE2\x80\xA6";
  if (cut.ends_with(kEllipsis)) cut.resize(cut.size() - kEllipsis.size());
  // Drop a tag or entity the cut went through.
  const size_t lt = cut.rfind('<');
  if (lt != std::string::npos && cut.find('>', lt) == std::string::npos) cut.resize(lt);
  const size_t amp = cut.rfind('&');
  if (amp != std::string::npos && cut.find(';', amp) == std::string::npos) cut.resize(amp);
  // Close what is still open, innermost first.
  std::vector<std::string> open;
  for (size_t i = cut.find('<'); i != std::string::npos; i = cut.find('<', i + 1)) {
    const bool closing = i + 1 < cut.size() && cut[i + 1] == '/';
    size_t j = i + (closing ? 2 : 1);
    const size_t start = j;
    while (j < cut.size() && (std::isalnum(static_cast<unsigned char>(cut[j])) || cut[j] == '-')) {
      ++j;
    }
    const std::string name = cut.substr(start, j - start);
    if (name.empty()) continue;
    if (!closing) {
      open.push_back(name);
    } else {
      auto it = std::find(open.rbegin(), open.rend(), name);
      if (it != open.rend()) open.erase(std::next(it).base(), open.end());
    }
  }
  cut += kEllipsis;
  for (auto it = open.rbegin(); it != open.rend(); ++it) cut += "</" + *it + ">";
  return cut;
}

std::chrono::nanoseconds retry_after_of(const http::Response& r, const nlohmann::json& body) {
  if (body.is_object() && body.contains("parameters") && body["parameters"].is_object()) {
    const json& p = body["parameters"];
    auto it = p.find("retry_after");
    // Capped at a day so that a nonsensical value cannot overflow.
    constexpr double kMaxSeconds = 86400;
    if (it != p.end() && it->is_number() && it->get<double>() >= 0) {
      const double secs = std::min(it->get<double>(), kMaxSeconds);
      return std::chrono::nanoseconds(static_cast<int64_t>(secs * 1e9));
    }
  }
  if (auto h = r.header("Retry-After")) {
    if (auto ms = http::parse_retry_after(*h)) return *ms;
  }
  return std::chrono::nanoseconds(-1);
}

http::Verdict classify_telegram(const http::Response& r, int64_t chat_id) {
  const std::string prefix = "telegram: chat " + std::to_string(chat_id);
  if (!r.ok()) return http::classify_http(r, prefix);
  const json body = json::parse(r.body, nullptr, false);
  const std::string detail = detail_of(body, r, prefix + ": HTTP " + std::to_string(r.status));
  if (r.status >= 200 && r.status < 300) {
    if (body.is_object() && body.value("ok", json(true)) == false) {
      return http::Verdict::fail(Status::kBadRequest, detail);
    }
    return http::Verdict::done();
  }
  if (r.status == 429) {
    return http::Verdict::retry(Status::kRateLimited, detail, retry_after_of(r, body));
  }
  if (r.status >= 500) return http::Verdict::retry(Status::kServerError, detail);
  if (r.status == 401 || r.status == 403) return http::Verdict::fail(Status::kAuth, detail);
  return http::Verdict::fail(Status::kBadRequest, detail);
}

TelegramSink::TelegramSink(const Host& host, const Config& config)
    : host_(host),
      template_(http::compile_template(
          "template", config.str("template", std::string(kDefaultTemplate)), http::Escape::kHtml)),
      chart_button_text_(config.str("chart_button_text")),
      disable_link_preview_(config.flag("disable_link_preview")),
      timeout_(config.duration("timeout")) {
  const std::string token = config.str("bot_token");
  if (token.empty()) throw OptionError("bot_token", "must not be empty");
  for (size_t i = 0; i < token.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(token[i]);
    if (c <= ' ' || c == '/' || c == '?' || c == '#' || c >= 0x7F) {
      throw OptionError("bot_token", "holds a character a token cannot have",
                        static_cast<uint32_t>(i + 1));
    }
  }
  std::string base = config.str("api_base");
  while (!base.empty() && base.back() == '/') base.pop_back();
  url_ = base + "/bot" + token + "/sendMessage";
  std::string error;
  if (!http::parse_url(url_, &error)) throw OptionError("api_base", error);

  const std::vector<int64_t> ids = config.ints("chat_ids");
  if (ids.empty()) throw OptionError("chat_ids", "must not be empty");
  for (size_t i = 0; i < ids.size(); ++i) {
    if (std::find(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(i), ids[i]) !=
        ids.begin() + static_cast<std::ptrdiff_t>(i)) {
      throw OptionError("chat_ids", "lists chat " + std::to_string(ids[i]) + " twice");
    }
  }
  const std::string chart = config.str("chart_url");
  if (!chart.empty()) {
    chart_url_.emplace(http::compile_template("chart_url", chart, http::Escape::kNone));
  }
  if (config.has("message_thread_id")) thread_id_ = config.i64("message_thread_id");
  if (timeout_.count() <= 0) throw OptionError("timeout", "must be positive");
  // max_retries, the backoff and the TLS options, shared by every chat.
  const http::DeliveryOptions delivery = http::delivery_options(config, "telegram");
  const int64_t per_second = config.i64("max_per_second");
  if (per_second <= 0) throw OptionError("max_per_second", "must be positive");
  const auto min_interval = config.duration("min_interval");
  if (min_interval.count() < 0) throw OptionError("min_interval", "must not be negative");
  // Each chat sends at most once per interval, so n chats together stay within
  // max_per_second when every chat's interval is at least n / max_per_second.
  const auto interval = std::max<std::chrono::nanoseconds>(
      min_interval,
      std::chrono::nanoseconds(1'000'000'000LL * static_cast<int64_t>(ids.size()) / per_second));
  for (int64_t id : ids) {
    http::DeliveryOptions d = delivery;
    d.service = "telegram: chat " + std::to_string(id);
    d.ordered = true;
    d.min_interval = interval;
    d.client.max_connections = 1;
    d.client.redact = {token};
    try {
      chats_.push_back(
          {id, std::make_unique<http::Delivery>(host_, std::move(d), [id](const http::Response& r) {
             return classify_telegram(r, id);
           })});
    } catch (const std::runtime_error& e) {
      throw OptionError("ca_file", e.what());
    }
  }

  if (!config.flag("commands")) return;
  BotOptions b;
  b.api_url = base + "/bot" + token;
  b.allowed_user_ids = config.ints("allowed_user_ids");
  if (b.allowed_user_ids.empty()) {
    throw OptionError("allowed_user_ids",
                      "must list at least one Telegram user id when commands = true");
  }
  b.command_chat_ids = config.ints("command_chat_ids");
  b.threshold_setting = config.str("threshold_setting");
  if (b.threshold_setting.empty()) throw OptionError("threshold_setting", "must not be empty");
  const auto poll_timeout = config.duration("poll_timeout");
  if (poll_timeout < std::chrono::seconds(1) || poll_timeout > std::chrono::hours(1)) {
    throw OptionError("poll_timeout", "must be between 1s and 1h");
  }
  b.poll_timeout = std::chrono::duration_cast<std::chrono::seconds>(poll_timeout);
  b.request_timeout = timeout_;
  b.backoff_base = delivery.backoff_base;
  b.backoff_max = delivery.backoff_max;
  b.client = delivery.client;
  // The long poll holds one connection; replies use the other.
  b.client.max_connections = 2;
  b.client.redact = {token};
  mute_button_ = config.flag("mute_button");
  try {
    bot_ = std::make_unique<Bot>(host_, std::move(b));
  } catch (const OptionError&) {
    throw;
  } catch (const std::runtime_error& e) {
    throw OptionError("ca_file", e.what());
  }
}

void TelegramSink::start() {
  if (bot_) bot_->start();
}

void TelegramSink::consume(Call call) {
  const EventView event = call.event();
  json message;
  std::string symbol;
  // The pipeline's own alert (a watch crossing a threshold, a rollout rolled back): its text as
  // written, without the liquidation template, chart or mute button.
  const std::optional<std::string_view> pipeline_alert = http::pipeline_alert_text(event);
  if (pipeline_alert) {
    message["text"] = fit_html(http::escape(*pipeline_alert, http::Escape::kHtml));
  } else {
    if (bot_) {
      const auto field = event.string("symbol");
      symbol = field ? std::string(*field) : std::string(event.key());
      if (!symbol.empty() && bot_->muted(symbol)) {
        host_.counter_add("telegram_muted_total", 1);
        call.ok();
        return;
      }
    }
    const std::vector<uint8_t> alert = alert_event(event, std::chrono::system_clock::now());
    const EventView view(alert.data(), alert.size());
    message["text"] = fit_html(template_.render(view));
    json buttons = json::array();
    if (chart_url_) {
      const std::string url = chart_url_->render(view);
      if (!url.empty()) buttons.push_back({{"text", chart_button_text_}, {"url", url}});
    }
    if (bot_ && mute_button_) {
      if (auto data = mute_callback_data(symbol)) {
        buttons.push_back({{"text", kMuteButtonText}, {"callback_data", *data}});
      }
    }
    if (!buttons.empty()) message["reply_markup"] = {{"inline_keyboard", json::array({buttons})}};
  }
  message["parse_mode"] = "HTML";
  if (disable_link_preview_) message["link_preview_options"] = {{"is_disabled", true}};
  if (thread_id_) message["message_thread_id"] = *thread_id_;
  auto request_for = [&](int64_t chat_id) {
    json body = message;
    body["chat_id"] = chat_id;
    http::Request req;
    req.method = "POST";
    req.url = url_;
    req.timeout = timeout_;
    req.headers = {{"Content-Type", "application/json; charset=utf-8"}};
    req.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
    return req;
  };
  if (chats_.size() == 1 && !bot_) {
    chats_[0].delivery->deliver(std::move(call), request_for(chats_[0].id));
    return;
  }
  std::function<void()> on_ok;
  if (bot_ && !pipeline_alert) {
    // For /stats: what was sent, and how long after the exchange's time it reached every chat.
    const int64_t time_ns = alert_time_ns(event);
    on_ok = [bot = bot_.get(), symbol = std::move(symbol), notional = event.number("notional_usd"),
             time_ns] {
      std::optional<int64_t> latency;
      if (time_ns > 0) latency = now_ns() - time_ns;
      bot->record_sent(symbol, notional, latency);
    };
  }
  // One message per chat; the event completes when every chat has answered.
  Split split(std::move(call), chats_.size(), std::move(on_ok));
  for (const Chat& chat : chats_) chat.delivery->deliver(split.part(), request_for(chat.id));
}

}  // namespace sluice::telegram_sink

SLUICE_PLUGIN(sluice::telegram_sink::TelegramSink, "telegram", "1.0.0",
              "Sends each event as a Telegram message to every configured chat, paced and retried",
              sluice::telegram_sink::kOptions.specs);
