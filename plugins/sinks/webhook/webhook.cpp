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

// The headers option: each a header name with a string value on one line.
http::Headers extra_headers(const Config& config) {
  http::Headers headers;
  if (!config.has("headers")) return headers;
  for (const auto& [name, value] : config.at("headers").items()) {
    if (!is_token(name)) throw OptionError("headers", "'" + name + "' is not a header name");
    if (!value.is_string()) throw OptionError("headers", "'" + name + "' must be a string");
    std::string v = value.get<std::string>();
    if (has_line_break(v)) {
      throw OptionError("headers", "'" + name + "' must not contain line breaks");
    }
    headers.emplace_back(name, std::move(v));
  }
  return headers;
}

// What the webhook sink delivers with: max_connections at once; the URL, the signing secret and
// the headers' values (an Authorization header is a credential) kept out of messages.
http::PostSetup setup(const Config& config, const std::string& secret,
                      const http::Headers& headers) {
  const int64_t conns = config.i64("max_connections");
  if (conns < 1) throw OptionError("max_connections", "must be at least 1");
  http::PostSetup s;
  s.service = "webhook";
  s.max_connections = static_cast<size_t>(conns);
  s.url_is_secret = true;
  s.redact = {secret};
  for (const auto& [name, value] : headers) s.redact.push_back(value);
  return s;
}

}  // namespace

WebhookSink::WebhookSink(const Host& host, const Config& config)
    : secret_(config.str("secret", "")),
      json_{.metadata = config.flag("metadata")},
      headers_(extra_headers(config)),
      poster_(host, config, setup(config, secret_, headers_)) {}

void WebhookSink::consume(Call call) {
  std::string body;
  append_event_json(body, call.event(), json_);
  http::Headers headers = headers_;
  if (!secret_.empty()) {
    headers.emplace_back("X-Sluice-Signature", "sha256=" + http::hmac_sha256_hex(secret_, body));
  }
  poster_.post(std::move(call), std::move(body), std::move(headers));
}

}  // namespace sluice::webhook_sink

SLUICE_PLUGIN(sluice::webhook_sink::WebhookSink, "webhook", "1.0.0",
              "POSTs each event as JSON to a URL, signed and retried",
              sluice::webhook_sink::kOptions.specs);
