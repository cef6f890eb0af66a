// The `rate_limit` processor (see rate_limit.hpp). process() and the release timers run on the
// node's stage thread, so buckets need no lock; only a caller's cancel may come from another
// thread, and it just sets an atomic flag the next release reads.
#include "rate_limit.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <utility>

namespace sluice::rate_limit {
namespace {

// Float rounding must not leave a due token at 0.999999…: it would re-arm a timer for ~0 ns.
constexpr double kWhole = 1.0 - 1e-9;
constexpr double kMaxNs = 1e18;  // ~31 years: a wait beyond any max_wait, still an int64_t

constexpr const char* kNoToken = "reason=\"no_token\"";
constexpr const char* kMaxWait = "reason=\"max_wait\"";
constexpr const char* kDeadline = "reason=\"deadline\"";

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", v);
  return buf;
}

std::string duration_text(int64_t ns) {
  char buf[32];
  if (ns < 1'000'000'000) {
    std::snprintf(buf, sizeof(buf), "%.0f ms", static_cast<double>(ns) / 1e6);
  } else {
    std::snprintf(buf, sizeof(buf), "%.3g s", static_cast<double>(ns) / 1e9);
  }
  return buf;
}

}  // namespace

RateLimit::RateLimit(const Host& host, const Config& config)
    : host_(host),
      rate_(config.f64("rate")),
      burst_(0),
      mode_(Mode::kBlock),
      max_wait_ns_(config.duration("max_wait").count()),
      max_keys_(0) {
  if (!std::isfinite(rate_) || rate_ <= 0) {
    throw OptionError("rate", "must be a positive number of tokens per second, e.g. 5 or 0.5");
  }
  int64_t burst = config.i64("burst");
  if (burst < 1) throw OptionError("burst", "must be at least 1");
  burst_ = static_cast<double>(burst);
  int64_t max_keys = config.i64("max_keys");
  if (max_keys < 1) throw OptionError("max_keys", "must be at least 1");
  max_keys_ = static_cast<size_t>(max_keys);
  std::string mode = config.str("mode");
  if (mode == "drop") {
    mode_ = Mode::kDrop;
  } else if (mode != "block") {
    throw OptionError("mode", "must be \"block\" or \"drop\", not \"" + mode + "\"");
  }
  if (max_wait_ns_ < 0) throw OptionError("max_wait", "must not be negative (0 = no limit)");
  if (config.has("key")) {
    key_option_ = config.str("key");
    if (key_option_ == "key") {
      key_from_ = KeyFrom::kEventKey;
    } else if (key_option_.rfind("attrs.", 0) == 0) {
      key_from_ = KeyFrom::kAttr;
      key_name_ = key_option_.substr(6);
    } else {
      key_from_ = KeyFrom::kField;
      key_name_ = key_option_;
    }
    if (key_name_.empty() && key_from_ != KeyFrom::kEventKey) {
      throw OptionError("key", "must be \"key\", a field name or attrs.NAME");
    }
  }
  exceeded_ = "rate limit " + number(rate_) + "/s (burst " + std::to_string(burst) + ") exceeded";
  shared_.tokens = burst_;
  shared_.refilled_ns = mono_ns();
}

// Nothing held is lost: the runtime routes these failures like any other.
RateLimit::~RateLimit() {
  auto stop = [this](Bucket& b) {
    host_.cancel_timer(std::exchange(b.timer, 0));
    while (!b.held.empty()) {
      Held h = std::move(b.held.front());
      b.held.pop_front();
      h.call.fail(Status::kCancelled, "node stopped while the event waited for a rate-limit token");
    }
  };
  stop(shared_);
  for (Bucket& b : lru_) stop(b);
}

void RateLimit::start() {
  if (mode_ == Mode::kBlock && !host_.has_timers()) {
    throw OptionError("mode",
                      "\"block\" needs stage timers, which this host lacks (a sluice older than "
                      "ABI 1.2); use mode = \"drop\" or a newer sluice");
  }
  host_.gauge_set("rate_limit_keys", 0);
}

void RateLimit::process(Call call) {
  Bucket& b = *bucket_for(call.event());
  int64_t now = mono_ns();
  refill(b, now);
  // Behind held events nothing overtakes, even when a token came in before their timer ran.
  if (b.held.empty() && b.tokens >= kWhole) {
    b.tokens -= 1;
    call.forward();
    return call.ok();
  }
  if (mode_ == Mode::kBlock) return hold(b, std::move(call), now);
  host_.counter_add("rate_limit_dropped_total", 1, kNoToken);
  Outcome out = Outcome::failure(Status::kRateLimited, exceeded_ + whose(b));
  out.retry_after_ns = ns_until(b.tokens, 1);
  call.done(out);
}

RateLimit::Bucket* RateLimit::bucket_for(const EventView& event) {
  std::optional<std::string_view> key;
  char digits[24];
  switch (key_from_) {
    case KeyFrom::kNone:
      break;
    case KeyFrom::kEventKey:
      key = event.key();
      break;
    case KeyFrom::kAttr:
      key = event.attr(key_name_);
      break;
    case KeyFrom::kField:
      key = event.string(key_name_);
      if (!key) {
        if (std::optional<int64_t> i = event.integer(key_name_)) {
          char* end = std::to_chars(digits, digits + sizeof(digits), *i).ptr;
          key = std::string_view(digits, static_cast<size_t>(end - digits));
        }
      }
      break;
  }
  if (!key || key->empty()) return &shared_;
  return &keyed_bucket(*key);
}

RateLimit::Bucket& RateLimit::keyed_bucket(std::string_view key) {
  if (auto it = by_key_.find(key); it != by_key_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second);
    return lru_.front();
  }
  if (by_key_.size() >= max_keys_) {
    // The least recently used idle bucket; one holding events stays (max_in_flight bounds them).
    auto victim =
        std::find_if(lru_.rbegin(), lru_.rend(), [](const Bucket& b) { return b.held.empty(); });
    if (victim != lru_.rend()) {
      by_key_.erase(victim->key);
      lru_.erase(std::next(victim).base());
      host_.counter_add("rate_limit_keys_evicted_total", 1);
      if (!warned_eviction_) {
        warned_eviction_ = true;
        host_.warn("more than max_keys = " + std::to_string(max_keys_) +
                   " keys: forgetting the least recently used buckets (a forgotten key starts "
                   "again with a full burst); raise max_keys if keys come back");
      }
    }
  }
  Bucket& b = lru_.emplace_front();
  b.key = std::string(key);
  b.tokens = burst_;
  b.refilled_ns = mono_ns();
  by_key_.emplace(b.key, lru_.begin());
  host_.gauge_set("rate_limit_keys", static_cast<double>(by_key_.size()));
  return b;
}

void RateLimit::refill(Bucket& b, int64_t now) const {
  double earned = static_cast<double>(now - b.refilled_ns) / 1e9 * rate_;
  b.tokens = std::min(burst_, b.tokens + earned);
  b.refilled_ns = now;
}

int64_t RateLimit::ns_until(double tokens, double needed) const {
  if (tokens >= needed) return 0;
  return static_cast<int64_t>(std::min(std::ceil((needed - tokens) * 1e9 / rate_), kMaxNs));
}

void RateLimit::hold(Bucket& b, Call call, int64_t now) {
  // Every held event before this one takes a token first.
  int64_t wait = ns_until(b.tokens, static_cast<double>(b.held.size()) + 1);
  const char* reason = nullptr;
  std::string why;
  if (max_wait_ns_ > 0 && wait > max_wait_ns_) {
    reason = kMaxWait;
    why = ", beyond max_wait " + duration_text(max_wait_ns_);
  } else if (int64_t deadline = call.deadline_ns(); deadline != 0 && now + wait > deadline) {
    reason = kDeadline;
    why = ", after the caller's deadline";
  }
  if (reason != nullptr) {
    host_.counter_add("rate_limit_dropped_total", 1, reason);
    Outcome out = Outcome::failure(Status::kRateLimited, exceeded_ + whose(b) + ": its token is " +
                                                             duration_text(wait) + " away" + why);
    out.retry_after_ns = wait;
    return call.done(out);
  }
  auto cancelled = std::make_shared<std::atomic<bool>>(false);
  call.on_cancel([cancelled] { cancelled->store(true); });
  b.held.push_back({std::move(call), now, std::move(cancelled)});
  host_.counter_add("rate_limit_delayed_total", 1);
  if (b.timer == 0) schedule(b);
}

void RateLimit::release(Bucket& b) {
  int64_t now = mono_ns();
  refill(b, now);
  while (!b.held.empty()) {
    Held& front = b.held.front();
    bool cancelled = front.cancelled->load();
    if (!cancelled && b.tokens < kWhole) break;
    Held h = std::move(front);
    b.held.pop_front();
    if (cancelled) {
      h.call.fail(Status::kCancelled, "cancelled while waiting for a rate-limit token");
      continue;
    }
    b.tokens -= 1;
    host_.observe("rate_limit_wait_seconds", static_cast<double>(now - h.arrived_ns) / 1e9);
    h.call.forward();
    h.call.ok();
  }
  if (!b.held.empty()) schedule(b);
}

void RateLimit::schedule(Bucket& b) {
  Bucket* target = &b;
  int64_t delay = std::max<int64_t>(ns_until(b.tokens, 1), 1);
  b.timer = host_.start_timer(std::chrono::nanoseconds(delay), [this, target] {
    target->timer = 0;
    release(*target);
  });
  if (b.timer != 0) return;
  // start() checked for timers, so only a host refusing one gets here: fail rather than hang.
  while (!b.held.empty()) {
    Held h = std::move(b.held.front());
    b.held.pop_front();
    h.call.fail(Status::kInternal, "the host refused a stage timer to release held events");
  }
}

std::string RateLimit::whose(const Bucket& b) const {
  if (&b != &shared_) return " for key " + b.key;
  return key_from_ == KeyFrom::kNone ? "" : " for events without " + key_option_;
}

}  // namespace sluice::rate_limit

SLUICE_PLUGIN(sluice::rate_limit::RateLimit, "rate_limit", "1.0.0",
              "Token bucket (shared or per key): holds events until their token arrives, or "
              "fails them as rate_limited, so a service's request rate is never exceeded",
              sluice::rate_limit::kOptions);
