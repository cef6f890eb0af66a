// Retry, pacing and completion of sink requests (see delivery.hpp).
#include "delivery.hpp"

#include <algorithm>
#include <cstdio>
#include <future>
#include <utility>

namespace sluice::http {
namespace {

using Clock = std::chrono::steady_clock;

std::string reason_label(Status s) {
  return std::string("reason=\"") + status_name(static_cast<int>(s)) + "\"";
}

// A wait in seconds as people read it: "3600 s", "1.5 s", "0.25 s".
std::string seconds_text(std::chrono::nanoseconds d) {
  char buf[48];
  std::snprintf(buf, sizeof(buf), "%.3f", static_cast<double>(d.count()) / 1e9);
  std::string out(buf);
  while (out.back() == '0') out.pop_back();
  if (out.back() == '.') out.pop_back();
  return out + " s";
}

constexpr const char* kStopped = "stopped while waiting to retry";

}  // namespace

std::string body_snippet(std::string_view body, size_t max) {
  std::string out;
  for (char c : body.substr(0, max)) out.push_back(c == '\n' || c == '\r' ? ' ' : c);
  while (!out.empty() && out.back() == ' ') out.pop_back();
  if (body.size() > max) out += "...";
  return out;
}

Verdict classify_http(const Response& r, std::string_view service) {
  const std::string prefix = std::string(service) + ": ";
  switch (r.error) {
    case ErrorKind::kNone:
      break;
    case ErrorKind::kTimeout:
      return Verdict::retry(Status::kTimeout, prefix + r.error_message);
    case ErrorKind::kBadUrl:
      return Verdict::fail(Status::kBadRequest, prefix + r.error_message);
    case ErrorKind::kCancelled:
      return Verdict::fail(Status::kCancelled, prefix + r.error_message);
    default:
      return Verdict::retry(Status::kServerError, prefix + r.error_message);
  }
  const std::string what = prefix + "HTTP " + std::to_string(r.status);
  const std::string detail = r.body.empty() ? what : what + ": " + body_snippet(r.body);
  if (r.status >= 200 && r.status < 300) return Verdict::done();
  if (r.status == 429) {
    std::chrono::nanoseconds after{-1};
    if (auto h = r.header("Retry-After")) {
      if (auto ms = parse_retry_after(*h)) after = *ms;
    }
    return Verdict::retry(Status::kRateLimited, detail, after);
  }
  if (r.status >= 500) return Verdict::retry(Status::kServerError, detail);
  if (r.status == 401 || r.status == 403) return Verdict::fail(Status::kAuth, detail);
  return Verdict::fail(Status::kBadRequest, detail);
}

Delivery::Delivery(const Host& host, DeliveryOptions options, Classifier classify)
    : host_(host),
      opts_(std::move(options)),
      classify_(std::move(classify)),
      client_(std::make_unique<Client>(opts_.client)) {}

Delivery::~Delivery() {
  stopping_ = true;
  client_->shutdown();
  // The client thread is gone: what is still queued is ours alone.
  while (!queue_.empty()) {
    ItemPtr item = std::move(queue_.front());
    queue_.pop_front();
    cancel(item);
  }
}

void Delivery::deliver(Call call, Request request) {
  auto item = std::make_shared<Item>(std::move(call), std::move(request));
  if (item->call.bytes().size() > 0) {
    const EventView event = item->call.event();
    item->symbol_label = metric_label("symbol", event.string("symbol").value_or(""));
    if (auto ms = event.integer("trade_time_ms"); ms && *ms > 0) {
      item->event_time_ns = *ms * 1'000'000;
    } else {
      item->event_time_ns = event.event_time_ns();
    }
  }
  client_->post([this, item](bool cancelled) {
    if (cancelled || stopping_) return cancel(item);
    enqueue(item);
  });
}

void Delivery::stop() {
  if (stopping_.exchange(true)) return;
  std::promise<void> done;
  client_->post([this, &done](bool cancelled) {
    if (!cancelled) fail_waiting();
    done.set_value();
  });
  done.get_future().wait();
}

void Delivery::fail_waiting() {
  for (const ItemPtr& item : std::exchange(waiting_, {})) cancel(item);
  // In order, pump() fails the queue (retries keep their place at its front) once stopping.
  if (opts_.ordered) pump();
}

void Delivery::enqueue(const ItemPtr& item) {
  if (!opts_.ordered) return send(item);
  queue_.push_back(item);
  pump();
}

void Delivery::pump() {
  if (stopping_) {
    while (!queue_.empty()) {
      ItemPtr item = std::move(queue_.front());
      queue_.pop_front();
      cancel(item);
    }
    return;
  }
  if (busy_ || pump_scheduled_ || queue_.empty()) return;
  const auto now = Clock::now();
  // While a 429's pause lasts longer than max_retry_wait, what queues behind it fails at once
  // instead of stalling or asking the server again.
  while (!queue_.empty() && paused_until_ - now > opts_.max_retry_wait) {
    ItemPtr item = std::move(queue_.front());
    queue_.pop_front();
    fail(item, Status::kRateLimited,
         opts_.service + ": the server asked to pause for " + seconds_text(paused_until_ - now) +
             " more, more than max_retry_wait (" + seconds_text(opts_.max_retry_wait) + ")",
         paused_until_ - now);
  }
  if (queue_.empty()) return;
  const auto ready = std::max(next_send_, paused_until_);
  if (now < ready) {
    pump_scheduled_ = true;
    client_->schedule(ready - now, [this](bool cancelled) {
      pump_scheduled_ = false;
      if (!cancelled) pump();
    });
    return;
  }
  busy_ = true;
  ItemPtr item = std::move(queue_.front());
  queue_.pop_front();
  next_send_ = now + opts_.min_interval;
  send(item);
}

void Delivery::send(const ItemPtr& item) {
  client_->send(item->request, [this, item](Response r) { on_response(item, r); });
}

void Delivery::on_response(const ItemPtr& item, const Response& response) {
  if (response.error == ErrorKind::kCancelled) {
    cancel(item);
    return finished_one();
  }
  Verdict v = classify_(response);
  if (v.next == Verdict::Next::kDone) {
    delivered(item);
    item->call.ok();
    return finished_one();
  }
  // The message quotes the response body: what the server echoed of a secret is masked before
  // the classifier cuts the body short, so no prefix of a secret survives the cut either.
  Response masked = response;
  masked.body = client_->redact(response.body);
  v = classify_(masked);
  v.message = client_->redact(v.message);
  if (v.next == Verdict::Next::kRetry && item->attempt < opts_.max_retries) {
    const bool asked = v.retry_after.count() >= 0;
    const auto delay =
        asked ? v.retry_after : backoff_delay(item->attempt, opts_.backoff_base, opts_.backoff_max);
    if (stopping_) return give_up(item, Status::kCancelled, v.message + "; " + kStopped);
    if (delay > opts_.max_retry_wait) {
      const std::string over =
          ", more than max_retry_wait (" + seconds_text(opts_.max_retry_wait) + ")";
      if (!asked) {
        return give_up(item, v.status,
                       v.message + "; the next retry would wait " + seconds_text(delay) + over);
      }
      // In order the whole webhook honours the pause (see pump()).
      if (opts_.ordered) paused_until_ = std::max(paused_until_, Clock::now() + delay);
      return give_up(item, Status::kRateLimited,
                     v.message + "; the server asked to wait " + seconds_text(delay) + over, delay);
    }
    item->last_error = v.message;
    ++item->attempt;
    host_.counter_add("sink_retries_total", 1, reason_label(v.status).c_str());
    host_.debug(
        v.message + "; retry " + std::to_string(item->attempt) + " of " +
        std::to_string(opts_.max_retries) + " in " +
        std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(delay).count()) +
        " ms");
    if (opts_.ordered) {
      // The request keeps its place and the whole webhook waits: a 429 limits all of them.
      queue_.push_front(item);
      next_send_ = std::max(next_send_, Clock::now() + delay);
      busy_ = false;
      return pump();
    }
    waiting_.insert(item);
    client_->schedule(delay, [this, item](bool cancelled) {
      if (waiting_.erase(item) == 0) return;  // stop() failed it meanwhile
      if (cancelled) return cancel(item);
      send(item);
    });
    return;
  }
  std::string message = std::move(v.message);
  if (v.next == Verdict::Next::kRetry) {
    message += " (gave up after " + std::to_string(item->attempt + 1) + " attempts)";
  }
  give_up(item, v.status, std::move(message),
          v.status == Status::kRateLimited ? v.retry_after : std::chrono::nanoseconds(-1));
}

void Delivery::give_up(const ItemPtr& item, Status status, std::string message,
                       std::chrono::nanoseconds retry_after) {
  fail(item, status, std::move(message), retry_after);
  finished_one();
}

void Delivery::fail(const ItemPtr& item, Status status, std::string message,
                    std::chrono::nanoseconds retry_after) {
  host_.counter_add("sink_drops_total", 1, reason_label(status).c_str());
  host_.warn(message);
  Outcome outcome = Outcome::failure(status, std::move(message));
  if (retry_after.count() > 0) outcome.retry_after_ns = retry_after.count();
  item->call.done(outcome);
}

void Delivery::delivered(const ItemPtr& item) {
  host_.counter_add("alerts_delivered_total", 1,
                    item->symbol_label.empty() ? nullptr : item->symbol_label.c_str());
  if (item->event_time_ns > 0) {
    const int64_t age_ns = now_ns() - item->event_time_ns;
    // A clock step or a replayed old event can make the age negative or huge; both are still
    // observed (clamped at 0) so the count matches alerts_delivered_total.
    alert_latency_.observe(static_cast<double>(std::max<int64_t>(age_ns, 0)) / 1e9);
  }
}

void Delivery::finished_one() {
  if (!opts_.ordered) return;
  busy_ = false;
  pump();
}

void Delivery::cancel(const ItemPtr& item) {
  host_.counter_add("sink_drops_total", 1, reason_label(Status::kCancelled).c_str());
  if (item->attempt > 0) {
    const std::string message = item->last_error + "; " + kStopped;
    host_.warn(message);
    return item->call.fail(Status::kCancelled, message);
  }
  item->call.fail(Status::kCancelled, opts_.service + ": stopped before the event was delivered");
}

}  // namespace sluice::http
