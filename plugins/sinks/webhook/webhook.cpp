// The `webhook` sink: request building and option checks (see webhook.hpp).
#include "webhook.hpp"

#include <utility>

namespace sluice::webhook_sink {
namespace {

bool has_line_break(std::string_view s) { return s.find_first_of("\r\n") != s.npos; }

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    if (c <= 0x20 || c >= 0x7F || std::string_view("()<>@,;:\\\"/[]?={}").find(c) != s.npos) {
      return false;
    }
  }
  return true;
}

}  // namespace

WebhookSink::WebhookSink(const Host& host, const Config& config)
    : host_(host),
      url_(config.str("url")),
      secret_(config.str("secret", "")),
      json_{.metadata = config.flag("metadata")},
      timeout_(config.duration("timeout")) {
  std::string error;
  if (!http::parse_url(url_, &error)) throw OptionError("url", error);
  if (config.has("headers")) {
    for (const auto& [name, value] : config.at("headers").items()) {
      if (!is_token(name)) throw OptionError("headers", "'" + name + "' is not a header name");
      if (!value.is_string()) throw OptionError("headers", "'" + name + "' must be a string");
      const std::string v = value.get<std::string>();
      if (has_line_break(v)) {
        throw OptionError("headers", "'" + name + "' must not contain line breaks");
      }
      headers_.emplace_back(name, v);
    }
  }
  if (timeout_.count() <= 0) throw OptionError("timeout", "must be positive");
  const int64_t retries = config.i64("max_retries");
  if (retries < 0) throw OptionError("max_retries", "must not be negative");
  const int64_t conns = config.i64("max_connections");
  if (conns < 1) throw OptionError("max_connections", "must be at least 1");
  http::DeliveryOptions d;
  d.service = "webhook";
  d.max_retries = static_cast<int>(retries);
  d.backoff_base = config.duration("retry_backoff");
  d.backoff_max = config.duration("retry_backoff_max");
  d.client.ca_file = config.str("ca_file", "");
  d.client.insecure_skip_verify = config.flag("insecure_skip_verify");
  d.client.max_connections = static_cast<size_t>(conns);
  d.client.redact = {secret_};
  try {
    delivery_ = std::make_unique<http::Delivery>(host_, std::move(d), [](const http::Response& r) {
      return http::classify_http(r, "webhook");
    });
  } catch (const std::runtime_error& e) {
    throw OptionError("ca_file", e.what());
  }
}

void WebhookSink::consume(Call call) {
  http::Request req;
  req.method = "POST";
  req.url = url_;
  req.timeout = timeout_;
  append_event_json(req.body, call.event(), json_);
  req.headers.reserve(headers_.size() + 2);
  req.headers.emplace_back("Content-Type", "application/json");
  for (const auto& h : headers_) req.headers.push_back(h);
  if (!secret_.empty()) {
    req.headers.emplace_back("X-Sluice-Signature",
                             "sha256=" + http::hmac_sha256_hex(secret_, req.body));
  }
  delivery_->deliver(std::move(call), std::move(req));
}

}  // namespace sluice::webhook_sink

SLUICE_PLUGIN(sluice::webhook_sink::WebhookSink, "webhook", "1.0.0",
              "POSTs each event as JSON to a URL, signed and retried",
              sluice::webhook_sink::kOptions);
