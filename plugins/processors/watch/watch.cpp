// The `watch` processor (see watch.hpp). process() and the timer both run on the node's stage
// thread, so the window and the alert state need no lock.
#include "watch.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace sluice::watch {
namespace {

constexpr int64_t kSecond = 1'000'000'000;
constexpr const char* kFiringLabels = "state=\"firing\"";
constexpr const char* kResolvedLabels = "state=\"resolved\"";

// A number as a person reads it in a chat: "182", "64.2", "0.5", "1,250,000".
std::string readable(double v) {
  char buf[64];
  if (std::fabs(v) < 100) {
    std::snprintf(buf, sizeof(buf), "%.3g", v);
    return buf;
  }
  std::snprintf(buf, sizeof(buf), "%.0f", v);
  std::string digits = buf;
  if (std::fabs(v) < 10000) return digits;
  size_t first = digits[0] == '-' ? 1 : 0;
  for (size_t i = digits.size(); i > first + 3; i -= 3) digits.insert(i - 3, ",");
  return digits;
}

// A window as the alert text says it: "200 ms", "60 s", "5 min", "2 h".
std::string span(int64_t ns) {
  if (ns < kSecond) return readable(static_cast<double>(ns) / 1e6) + " ms";
  if (ns >= 2 * 3600 * kSecond && ns % (3600 * kSecond) == 0) {
    return readable(static_cast<double>(ns / (3600 * kSecond))) + " h";
  }
  if (ns >= 2 * 60 * kSecond && ns % (60 * kSecond) == 0) {
    return readable(static_cast<double>(ns / (60 * kSecond))) + " min";
  }
  return readable(static_cast<double>(ns) / 1e9) + " s";
}

std::string plain(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", v);
  return buf;
}

}  // namespace

Watch::Watch(const Host& host, const Config& config)
    : host_(host),
      window_ns_(config.duration("window").count()),
      interval_ns_(config.duration("interval").count()),
      min_samples_(config.i64("min_samples")) {
  // What to watch: exactly one of field, measure, match.
  const char* chosen = nullptr;
  for (const char* key : {"field", "measure", "match"}) {
    if (!config.has(key)) continue;
    if (chosen != nullptr) {
      throw OptionError(key, std::string("cannot be combined with ") + chosen +
                                 ": a watch measures one thing (use a second watch node)");
    }
    chosen = key;
  }
  if (chosen == nullptr) {
    throw OptionError("field", "give one of field, measure or match: what the watch measures");
  }

  const std::string stat = config.str("stat");
  static constexpr std::pair<const char*, Stat> kStats[] = {{"p50", Stat::kP50},
                                                            {"p95", Stat::kP95},
                                                            {"p99", Stat::kP99},
                                                            {"mean", Stat::kMean},
                                                            {"max", Stat::kMax}};
  auto found = std::find_if(std::begin(kStats), std::end(kStats),
                            [&](const auto& s) { return stat == s.first; });
  if (found == std::end(kStats))
    throw OptionError("stat", "must be one of p50, p95, p99, mean, max");
  stat_ = found->second;

  if (config.has("field")) {
    what_ = What::kField;
    field_ = config.str("field");
    if (field_.empty()) throw OptionError("field", "must not be empty");
    subject_ = stat + " " + field_;
    metric_ = subject_;
  } else if (config.has("measure")) {
    if (config.str("measure") != "latency") throw OptionError("measure", "must be latency");
    what_ = What::kLatency;
    subject_ = stat + " exchange-to-alert latency";
    metric_ = stat + " latency_ms";
  } else {
    what_ = What::kMatch;
    try {
      match_ = expr::Expression::compile(config.str("match"), host_);
    } catch (const expr::Error& e) {
      throw OptionError("match", e.message, e.column);
    }
    subject_ = "share of events matching " + match_->text();
    metric_ = "share matching " + match_->text();
  }

  if (window_ns_ <= 0) throw OptionError("window", "must be positive");
  if (interval_ns_ <= 0) throw OptionError("interval", "must be positive");
  if (min_samples_ < 1) throw OptionError("min_samples", "must be at least 1");

  const bool has_above = config.has("above");
  const bool has_below = config.has("below");
  if (has_above && has_below) {
    throw OptionError("below", "cannot be combined with above: a watch has one threshold");
  }
  if (!has_above && !has_below) {
    throw OptionError("above", "give above or below: the threshold that fires the alert");
  }
  above_ = has_above;
  const char* threshold_key = above_ ? "above" : "below";
  threshold_ = config.f64(threshold_key);
  clear_ = config.has("clear") ? config.f64("clear") : threshold_;
  if (what_ == What::kMatch) {
    for (const char* key : {threshold_key, "clear"}) {
      double v = config.f64(key, threshold_);
      if (v < 0 || v > 1) {
        throw OptionError(key, "is a share between 0 and 1 with match, e.g. 0.05 for 5%");
      }
    }
  }
  if (above_ && clear_ > threshold_) {
    throw OptionError("clear", "must not be above the threshold (above = " + plain(threshold_) +
                                   "): the alert resolves once the value is back at or below it");
  }
  if (!above_ && clear_ < threshold_) {
    throw OptionError("clear", "must not be below the threshold (below = " + plain(threshold_) +
                                   "): the alert resolves once the value is back at or above it");
  }

  if (config.has("name")) {
    subject_ = config.str("name");
    if (subject_.empty()) throw OptionError("name", "must not be empty");
  }
}

Watch::~Watch() { host_.cancel_timer(timer_); }

void Watch::start() {
  host_.gauge_set("watch_firing", 0);
  host_.gauge_set("watch_samples", 0);
  arm_timer();
}

void Watch::arm_timer() {
  timer_ = host_.start_timer(std::chrono::nanoseconds(interval_ns_), [this] {
    timer_ = 0;
    evaluate(mono_ns(), true);
    arm_timer();
  });
}

void Watch::process(Call call) {
  call.forward();
  const EventView event = call.event();
  const int64_t now = mono_ns();
  if (std::optional<double> value = sample_of(event)) {
    add(now, *value);
  } else {
    host_.counter_add("watch_unmeasured_total", 1);
    if (!warned_unmeasured_) {
      warned_unmeasured_ = true;
      host_.warn(what_ == What::kField
                     ? "event " + std::to_string(event.id()) + " has no finite number in field '" +
                           field_ + "'; such events are not measured (watch_unmeasured_total)"
                     : "event " + std::to_string(event.id()) +
                           " has no event time; such events are not measured "
                           "(watch_unmeasured_total)");
    }
  }
  evaluate(now, false);
  for (const auto& bytes : pending_) call.emit(bytes, "alerts");
  pending_.clear();
  call.ok();
}

std::optional<double> Watch::sample_of(const EventView& event) {
  switch (what_) {
    case What::kField: {
      // A NaN would break the ordering nth_element relies on; it is no measurement anyway.
      std::optional<double> v = event.number(field_);
      if (v && !std::isfinite(*v)) return std::nullopt;
      return v;
    }
    case What::kLatency:
      if (event.event_time_ns() <= 0) return std::nullopt;
      return static_cast<double>(now_ns() - event.event_time_ns()) / 1e6;
    case What::kMatch:
      return match_->matches(event) ? 1.0 : 0.0;
  }
  return std::nullopt;
}

void Watch::add(int64_t now, double value) {
  samples_.push_back({now, value});
  sum_ += value;
}

void Watch::expire(int64_t now) {
  while (!samples_.empty() && now - samples_.front().time_ns > window_ns_) {
    sum_ -= samples_.front().value;
    samples_.pop_front();
  }
  // A running sum drifts with every subtraction; an empty window starts it afresh.
  if (samples_.empty()) sum_ = 0;
}

double Watch::statistic() {
  const size_t n = samples_.size();
  if (what_ == What::kMatch || stat_ == Stat::kMean) return sum_ / static_cast<double>(n);
  if (stat_ == Stat::kMax) {
    return std::max_element(samples_.begin(), samples_.end(),
                            [](const Sample& a, const Sample& b) { return a.value < b.value; })
        ->value;
  }
  // Nearest rank: the smallest value with at least q of the samples at or below it.
  const double q = stat_ == Stat::kP50 ? 0.50 : stat_ == Stat::kP95 ? 0.95 : 0.99;
  auto rank = static_cast<size_t>(std::ceil(q * static_cast<double>(n) - 1e-9));
  rank = std::clamp<size_t>(rank, 1, n);
  scratch_.clear();
  for (const Sample& s : samples_) scratch_.push_back(s.value);
  auto nth = scratch_.begin() + static_cast<std::ptrdiff_t>(rank - 1);
  std::nth_element(scratch_.begin(), nth, scratch_.end());
  return *nth;
}

void Watch::evaluate(int64_t now, bool on_timer) {
  expire(now);
  const auto n = static_cast<int64_t>(samples_.size());
  host_.gauge_set("watch_samples", static_cast<double>(n));
  if (n == 0) return;
  const double value = statistic();
  host_.gauge_set("watch_value", value);
  if (n < min_samples_) return;
  const bool crossed = above_ ? value > threshold_ : value < threshold_;
  const bool back = above_ ? value <= clear_ : value >= clear_;
  if (firing_ ? back : crossed) alert(!firing_, value, on_timer);
}

std::string Watch::shown(double value) const {
  switch (what_) {
    case What::kLatency:
      return readable(value) + " ms";
    case What::kMatch:
      return readable(value * 100) + "%";
    case What::kField:
      break;
  }
  return readable(value);
}

void Watch::alert(bool firing, double value, bool on_timer) {
  firing_ = firing;
  const size_t n = samples_.size();
  const std::string over = " over the last " + span(window_ns_) + " (" + std::to_string(n) +
                           (n == 1 ? " event)" : " events)");
  const std::string text = firing
                               ? "🔴 " + subject_ + " is " + shown(value) + " (" +
                                     (above_ ? "above " : "below ") + shown(threshold_) + ")" + over
                               : "✅ " + subject_ + " is back to " + shown(value) + over;
  const int64_t now = now_ns();
  builder_.reset()
      .id(next_id_++)
      .key(host_.node_name())
      .event_time_ns(now)
      .ingest_time_ns(now)
      .field("alert", firing ? "firing" : "resolved")
      .field("watch", host_.node_name())
      .field("metric", metric_)
      .field("value", value)
      .field("threshold", threshold_)
      .field("direction", above_ ? "above" : "below")
      .field("samples", static_cast<int64_t>(n))
      .field("window_s", static_cast<double>(window_ns_) / 1e9)
      .field("text", text);
  auto bytes = builder_.finish();
  // From the timer (a quiet stream), the host sends it on its own (ABI 1.2 Host::emit); where it
  // cannot (a composite's child), it travels with the next event.
  bool sent = on_timer && host_.emit(bytes, "alerts");
  if (!sent) pending_.emplace_back(bytes.begin(), bytes.end());
  host_.gauge_set("watch_firing", firing ? 1 : 0);
  host_.counter_add("watch_alerts_total", 1, firing ? kFiringLabels : kResolvedLabels);
  const std::string line =
      on_timer && !sent ? text + " (the alert event goes out with the next event)" : text;
  if (firing) {
    host_.warn(line);
  } else {
    host_.info(line);
  }
}

}  // namespace sluice::watch

SLUICE_PLUGIN(sluice::watch::Watch, "watch", "0.1.0",
              "Forwards events unchanged and alerts on its `alerts` output when a statistic of "
              "the stream (a field's percentile, latency, a matching share) crosses a threshold",
              sluice::watch::kOptions);
