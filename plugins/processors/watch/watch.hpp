// The `watch` processor: sits inline, forwards every event unchanged, and watches the stream it
// sees over a sliding time window — a numeric field's percentile, mean or max, the
// exchange-to-alert latency, or the share of events matching an expression (a failover rate, an
// error rate). When the value crosses a threshold it emits one `firing` alert event on its
// `alerts` output, and one `resolved` event when it is back past the clear level, ready for a
// Telegram or Slack sink.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "sluice/expr.hpp"
#include "sluice/sdk.hpp"

namespace sluice::watch {

inline constexpr sluice_option_spec kOptions[] = {
    {.key = "field",
     .type = SLUICE_OPT_STRING,
     .default_toml = nullptr,
     .required = 0,
     .description = "Numeric field to watch, e.g. \"notional_usd\" (one of field, measure, match)",
     .choices = nullptr},
    {.key = "measure",
     .type = SLUICE_OPT_STRING,
     .default_toml = nullptr,
     .required = 0,
     .description = "A built-in measure to watch: \"latency\" is now minus the event's event "
                    "time, in ms (exchange-to-alert latency); one of field, measure, match",
     .choices = "latency"},
    {.key = "match",
     .type = SLUICE_OPT_EXPRESSION,
     .default_toml = nullptr,
     .required = 0,
     .description = "Watch the share (0..1) of events in the window for which this expression "
                    "is true, e.g. 'fallback_errors != \"[]\"' (see docs/expressions.md); one of "
                    "field, measure, match",
     .choices = nullptr},
    {.key = "stat",
     .type = SLUICE_OPT_STRING,
     .default_toml = "\"p95\"",
     .required = 0,
     .description = "Statistic of field or measure over the window (ignored with match)",
     .choices = "p50,p95,p99,mean,max"},
    {.key = "window",
     .type = SLUICE_OPT_DURATION,
     .default_toml = "\"60s\"",
     .required = 0,
     .description = "Sliding time window the statistic covers",
     .choices = nullptr},
    {.key = "interval",
     .type = SLUICE_OPT_DURATION,
     .default_toml = "\"5s\"",
     .required = 0,
     .description = "Re-evaluation period without events, so old samples expire on a quiet stream",
     .choices = nullptr},
    {.key = "above",
     .type = SLUICE_OPT_DOUBLE,
     .default_toml = nullptr,
     .required = 0,
     .description = "Fire when the value rises above this (ms for latency, 0..1 for match); "
                    "give above or below",
     .choices = nullptr},
    {.key = "below",
     .type = SLUICE_OPT_DOUBLE,
     .default_toml = nullptr,
     .required = 0,
     .description = "Fire when the value drops below this; give above or below",
     .choices = nullptr},
    {.key = "clear",
     .type = SLUICE_OPT_DOUBLE,
     .default_toml = nullptr,
     .required = 0,
     .description = "Resolve only once the value is back at or past this level (hysteresis); "
                    "default: the threshold itself",
     .choices = nullptr},
    {.key = "min_samples",
     .type = SLUICE_OPT_INT,
     .default_toml = "20",
     .required = 0,
     .description = "With fewer samples in the window the watch neither fires nor resolves",
     .choices = nullptr},
    {.key = "name",
     .type = SLUICE_OPT_STRING,
     .default_toml = nullptr,
     .required = 0,
     .description = "What the alert text calls the value, e.g. \"failover rate\" (default: "
                    "the statistic and what it measures)",
     .choices = nullptr},
};

class Watch final : public Processor {
 public:
  static constexpr const char* kOutputs[] = {"alerts", nullptr};
  // Checked by the host before the constructor runs (ABI 1.2 option bounds).
  static constexpr sluice_option_bounds kOptionBounds[] = {
      {.key = "window", .min = "\"1ms\"", .max = nullptr},
      {.key = "interval", .min = "\"1ms\"", .max = nullptr},
      {.key = "min_samples", .min = "1", .max = nullptr},
  };

  Watch(const Host& host, const Config& config);
  ~Watch() override;
  Watch(const Watch&) = delete;
  Watch& operator=(const Watch&) = delete;

  void start() override;
  void process(Call call) override;

 private:
  enum class What { kField, kLatency, kMatch };
  enum class Stat { kP50, kP95, kP99, kMean, kMax };
  struct Sample {
    int64_t time_ns;  // mono_ns() when the event passed
    double value;     // the field, the latency in ms, or 1/0 for match
  };

  // This event's sample, or nullopt when it has none (field missing, no event time).
  std::optional<double> sample_of(const EventView& event);
  void add(int64_t now, double value);
  void expire(int64_t now);
  double statistic();
  // Expires old samples, then fires or resolves (on_timer: found without an event).
  void evaluate(int64_t now, bool on_timer);
  void alert(bool firing, double value, bool on_timer);
  std::string shown(double value) const;  // with its unit: "182 ms", "12.5%"
  void arm_timer();

  Host host_;
  What what_ = What::kField;
  std::string field_;
  std::optional<expr::Expression> match_;
  Stat stat_ = Stat::kP95;
  int64_t window_ns_;
  int64_t interval_ns_;
  bool above_ = true;  // fires above the threshold (else below)
  double threshold_ = 0;
  double clear_ = 0;
  int64_t min_samples_;
  std::string subject_;  // "p95 exchange-to-alert latency", or the `name` option
  std::string metric_;   // "p95 latency_ms"

  std::deque<Sample> samples_;
  double sum_ = 0;               // of the window's values: mean and share without a scan
  std::vector<double> scratch_;  // percentiles: nth_element on a copy
  bool firing_ = false;
  bool warned_unmeasured_ = false;
  uint64_t timer_ = 0;
  uint64_t next_id_ = 1;
  // Alert events waiting for a call to carry them: those found in process(), and, when the host
  // cannot send one on its own (a composite's child), those found by the timer.
  std::vector<std::vector<uint8_t>> pending_;
  EventBuilder builder_;
};

}  // namespace sluice::watch
