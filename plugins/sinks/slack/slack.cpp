// The `slack` sink: message building and option checks (see slack.hpp).
#include "slack.hpp"

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <utility>

namespace sluice::slack_sink {
namespace {

http::EventTemplate compile(const std::string& text) {
  try {
    return http::EventTemplate(text, http::Escape::kSlack);
  } catch (const std::invalid_argument& e) {
    throw OptionError("template", e.what());
  }
}

}  // namespace

SlackSink::SlackSink(const Host& host, const Config& config)
    : host_(host),
      url_(config.str("url")),
      template_(compile(config.str("template"))),
      blocks_(config.flag("blocks")),
      timeout_(config.duration("timeout")) {
  std::string error;
  const auto url = http::parse_url(url_, &error);
  if (!url) throw OptionError("url", error);
  if (timeout_.count() <= 0) throw OptionError("timeout", "must be positive");
  const int64_t retries = config.i64("max_retries");
  if (retries < 0) throw OptionError("max_retries", "must not be negative");
  http::DeliveryOptions d;
  d.service = "slack";
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
    delivery_ = std::make_unique<http::Delivery>(host_, std::move(d), [](const http::Response& r) {
      return http::classify_http(r, "slack");
    });
  } catch (const std::runtime_error& e) {
    throw OptionError("ca_file", e.what());
  }
}

void SlackSink::consume(Call call) {
  const std::string text = template_.render(call.event());
  nlohmann::json body;
  body["text"] = http::truncate_text(text, kMaxText);
  if (blocks_) {
    body["blocks"] = nlohmann::json::array(
        {{{"type", "section"},
          {"text", {{"type", "mrkdwn"}, {"text", http::truncate_text(text, kMaxSectionText)}}}}});
  }
  http::Request req;
  req.method = "POST";
  req.url = url_;
  req.timeout = timeout_;
  req.headers = {{"Content-Type", "application/json; charset=utf-8"}};
  req.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  delivery_->deliver(std::move(call), std::move(req));
}

}  // namespace sluice::slack_sink

SLUICE_PLUGIN(sluice::slack_sink::SlackSink, "slack", "1.0.0",
              "Posts each event to a Slack incoming webhook, paced and retried",
              sluice::slack_sink::kOptions);
