// Reading the shared options of the posting sinks and sending their requests (see poster.hpp).
#include "poster.hpp"

#include <stdexcept>
#include <utility>

namespace sluice::http {

DeliveryOptions delivery_options(const Config& config, std::string service) {
  const int64_t retries = config.i64("max_retries");
  if (retries < 0) throw OptionError("max_retries", "must not be negative");
  DeliveryOptions d;
  d.service = std::move(service);
  d.max_retries = static_cast<int>(retries);
  d.backoff_base = config.duration("retry_backoff");
  d.backoff_max = config.duration("retry_backoff_max");
  d.max_retry_wait = config.duration("max_retry_wait");
  if (d.max_retry_wait.count() <= 0) {
    throw OptionError("max_retry_wait", "must be positive, e.g. \"60s\"");
  }
  d.client.ca_file = config.str("ca_file", "");
  d.client.insecure_skip_verify = config.flag("insecure_skip_verify");
  return d;
}

PostSetup chat_webhook(std::string service, std::string content_type, Classifier classify) {
  PostSetup s;
  s.service = std::move(service);
  s.content_type = std::move(content_type);
  s.url_is_secret = true;
  s.ordered = true;
  s.max_connections = 1;
  s.classify = std::move(classify);
  return s;
}

Poster::Poster(const Host& host, const Config& config, PostSetup setup)
    : url_(config.str("url")),
      timeout_(config.duration("timeout")),
      content_type_(std::move(setup.content_type)) {
  std::string error;
  const auto url = parse_url(url_, &error);
  if (!url) throw OptionError("url", error);
  if (timeout_.count() <= 0) throw OptionError("timeout", "must be positive");
  DeliveryOptions d = delivery_options(config, setup.service);
  if (setup.ordered) {
    d.ordered = true;
    d.min_interval = config.duration("min_interval");
  }
  d.client.max_connections = setup.max_connections;
  if (setup.url_is_secret) d.client.redact = {url_};
  for (auto& secret : setup.redact) d.client.redact.push_back(std::move(secret));
  Classifier classify = std::move(setup.classify);
  if (!classify) {
    classify = [service = setup.service](const Response& r) { return classify_http(r, service); };
  }
  try {
    delivery_ = std::make_unique<Delivery>(host, std::move(d), std::move(classify));
  } catch (const std::runtime_error& e) {
    throw OptionError("ca_file", e.what());
  }
}

void Poster::post(Call call, std::string body, Headers headers) {
  Request req;
  req.method = "POST";
  req.url = url_;
  req.timeout = timeout_;
  req.headers.reserve(headers.size() + 1);
  req.headers.emplace_back("Content-Type", content_type_);
  for (auto& h : headers) req.headers.push_back(std::move(h));
  req.body = std::move(body);
  delivery_->deliver(std::move(call), std::move(req));
}

void Poster::post(Call call, const Json& body) {
  post(std::move(call), body.dump(-1, ' ', false, Json::error_handler_t::replace));
}

}  // namespace sluice::http
