// The `rate_limit` processor: a client-side token bucket (one shared, or one per key) in front of
// a rate-limited service such as an LLM provider, so its requests-per-minute limit is never
// exceeded. Events pass unchanged (forwarded, zero-copy) while the bucket has tokens; without one,
// "block" holds the event's call until its token arrives (holding calls is the backpressure:
// the node's max_in_flight bounds them) and "drop" fails it at once as rate_limited.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "sluice/sdk.hpp"

namespace sluice::rate_limit {

inline constexpr sluice_option_spec kOptions[] = {
    {.key = "rate",
     .type = SLUICE_OPT_DOUBLE,
     .default_toml = nullptr,
     .required = 1,
     .description = "Tokens added per second, one per event, e.g. 5, or 0.5 for 30 per minute",
     .choices = nullptr},
    {.key = "burst",
     .type = SLUICE_OPT_INT,
     .default_toml = "1",
     .required = 0,
     .description = "Bucket capacity: events that may pass at once after an idle spell",
     .choices = nullptr},
    {.key = "key",
     .type = SLUICE_OPT_STRING,
     .default_toml = nullptr,
     .required = 0,
     .description = "One bucket per value of: \"key\" (the event key), a string or integer field, "
                    "or attrs.NAME; events without it share one bucket. Unset: one bucket",
     .choices = nullptr},
    {.key = "max_keys",
     .type = SLUICE_OPT_INT,
     .default_toml = "10000",
     .required = 0,
     .description = "Per-key buckets kept; beyond it the least recently used idle one is "
                    "forgotten (its key starts again with a full bucket)",
     .choices = nullptr},
    {.key = "mode",
     .type = SLUICE_OPT_STRING,
     .default_toml = "\"block\"",
     .required = 0,
     .description = "Without a token: block = hold the event until its token arrives (in "
                    "arrival order), drop = fail it at once as rate_limited",
     .choices = "block,drop"},
    {.key = "max_wait",
     .type = SLUICE_OPT_DURATION,
     .default_toml = "\"60s\"",
     .required = 0,
     .description = "Block mode: an event whose token is further away than this fails as "
                    "rate_limited instead of waiting (0 = wait as long as it takes)",
     .choices = nullptr},
};

class RateLimit final : public Processor {
 public:
  // Checked by the host before the constructor runs (ABI 1.2 option bounds).
  static constexpr sluice_option_bounds kOptionBounds[] = {
      {.key = "burst", .min = "1", .max = nullptr},
      {.key = "max_keys", .min = "1", .max = nullptr},
  };

  RateLimit(const Host& host, const Config& config);
  ~RateLimit() override;
  RateLimit(const RateLimit&) = delete;
  RateLimit& operator=(const RateLimit&) = delete;

  void start() override;
  void process(Call call) override;

 private:
  enum class Mode { kBlock, kDrop };

  // A call waiting for its token (block mode).
  struct Held {
    Call call;
    int64_t arrived_ns = 0;
    // Set by the caller's cancel, from any thread: the call is completed without a token.
    std::shared_ptr<std::atomic<bool>> cancelled;
  };

  struct Bucket {
    std::string key;  // "" for the shared bucket
    double tokens = 0;
    int64_t refilled_ns = 0;  // mono_ns() `tokens` was computed at
    std::deque<Held> held;    // arrival order
    uint64_t timer = 0;       // pending release timer, 0 = none
  };
  using Lru = std::list<Bucket>;  // most recently used first

  Bucket* bucket_for(const EventView& event);
  Bucket& keyed_bucket(std::string_view key);
  void refill(Bucket& b, int64_t now) const;
  void hold(Bucket& b, Call call, int64_t now);
  void release(Bucket& b);
  void schedule(Bucket& b);
  // " for key BTCUSDT", " for events without symbol", or "" (one bucket).
  std::string whose(const Bucket& b) const;
  // Nanoseconds until `tokens` reaches `needed`.
  int64_t ns_until(double tokens, double needed) const;

  Host host_;
  double rate_;
  double burst_;
  Mode mode_;
  int64_t max_wait_ns_;
  size_t max_keys_;
  std::string key_option_;  // as written, for messages
  enum class KeyFrom { kNone, kEventKey, kField, kAttr } key_from_ = KeyFrom::kNone;
  std::string key_name_;  // field or attr name
  std::string exceeded_;  // "rate limit 5/s (burst 10) exceeded"

  Bucket shared_;
  Lru lru_;
  std::unordered_map<std::string_view, Lru::iterator> by_key_;  // views into lru_'s keys
  bool warned_eviction_ = false;
};

}  // namespace sluice::rate_limit
