// The `fallback` processor: tries a chain of child processors (LLM classifiers, rules, other
// composites) in order under one deadline, so an alert is answered in time even when a model
// provider times out, rate-limits or is switched off. Per child: retries with backoff, a circuit
// breaker (state kept in node state), requests/tokens-per-minute budgets and an on/off switch
// bound to a runtime setting. Optional hedging starts the next child when the current one is
// slow and keeps the first success. docs/fallback.md describes how a chain decides.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "sluice/sdk.hpp"

namespace sluice::fallback {

inline constexpr sluice_option_spec kOptions[] = {
    {.key = "chain",
     .type = SLUICE_OPT_PROCESSOR_LIST,
     .default_toml = nullptr,
     .required = 1,
     .description = "Child processors tried in order (any processor, composites included)",
     .choices = nullptr},
    {.key = "deadline",
     .type = SLUICE_OPT_DURATION,
     .default_toml = "\"30s\"",
     .required = 0,
     .description = "Time budget of the whole chain per event: a child gets the smaller of its "
                    "own timeout and what is left, and one that cannot start in time is skipped",
     .choices = nullptr},
    {.key = "on",
     .type = SLUICE_OPT_STRING_LIST,
     .default_toml = "[\"timeout\", \"rate_limited\", \"server_error\", \"bad_response\", "
                     "\"insufficient_quota\"]",
     .required = 0,
     .description = "Error classes that move on to the next child; auth and bad_request always "
                    "move on too, logged as operator errors. Any other class (rejected, internal) "
                    "ends the chain and the event goes to `errors`",
     .choices = nullptr},
    {.key = "retries",
     .type = SLUICE_OPT_INT,
     .default_toml = "0",
     .required = 0,
     .description = "Retries of the same child on timeout, rate_limited or server_error before "
                    "moving on (a retry-after from the server is honoured when it fits the "
                    "remaining budget, else the chain moves on at once)",
     .choices = nullptr},
    {.key = "retry_backoff",
     .type = SLUICE_OPT_DURATION,
     .default_toml = "\"100ms\"",
     .required = 0,
     .description = "Base of the exponential backoff with full jitter between retries",
     .choices = nullptr},
    {.key = "retry_backoff_max",
     .type = SLUICE_OPT_DURATION,
     .default_toml = "\"2s\"",
     .required = 0,
     .description = "Cap of one backoff wait",
     .choices = nullptr},
    {.key = "hedge_after",
     .type = SLUICE_OPT_DURATION,
     .default_toml = nullptr,
     .required = 0,
     .description = "When the current child has not answered by then, start the next one too; "
                    "the first success wins and the other call is cancelled",
     .choices = nullptr},
    {.key = "prefer",
     .type = SLUICE_OPT_STRING,
     .default_toml = nullptr,
     .required = 0,
     .description = "Field (or attrs.NAME) of the event naming the child to try first",
     .choices = nullptr},
    {.key = "children",
     .type = SLUICE_OPT_TABLE,
     .default_toml = nullptr,
     .required = 0,
     .description = "Per child, by name: enabled (bool or \"$setting\"), breaker = { failures, "
                    "error_rate, window, min_requests, cooldown }, rpm, tpm",
     .choices = nullptr},
};

// A per-child circuit breaker: opens after `failures` consecutive failures or an error rate of
// at least `error_rate` over `window` (with `min_requests` at least); skipped while open; after
// `cooldown` one probe call decides between closing and opening again.
struct BreakerOptions {
  int64_t failures = 0;   // 0 = no consecutive-failure rule
  double error_rate = 0;  // 0 = no error-rate rule
  int64_t window_ns = 60'000'000'000;
  int64_t min_requests = 20;
  int64_t cooldown_ns = 30'000'000'000;
  bool enabled() const { return failures > 0 || error_rate > 0; }
};

enum class BreakerState { kClosed = 0, kOpen = 1, kHalfOpen = 2 };
const char* breaker_state_name(BreakerState s);

class Breaker {
 public:
  explicit Breaker(BreakerOptions options = {}) : options_(options) {}
  // Whether a call may start now; in half-open, only the one probe may.
  bool allow(int64_t now_ns);
  // A finished call; returns true when the state changed.
  bool record(bool success, int64_t now_ns);
  BreakerState state() const { return state_; }
  int64_t opened_at_ns() const { return opened_at_ns_; }
  // Restores a state saved in node state (times on the monotonic clock of this run).
  void restore(BreakerState state, int64_t opened_at_ns);
  const BreakerOptions& options() const { return options_; }
  // An operator's reset: closed, counts forgotten.
  void reset();

 private:
  void open(int64_t now_ns);
  BreakerOptions options_;
  BreakerState state_ = BreakerState::kClosed;
  int64_t opened_at_ns_ = 0;
  int64_t consecutive_failures_ = 0;
  bool probe_in_flight_ = false;
  std::deque<std::pair<int64_t, bool>> window_;  // (time, success)
};

// Requests and tokens a child may spend per minute (0 = unlimited), over a sliding minute.
class Budget {
 public:
  Budget(int64_t rpm = 0, int64_t tpm = 0) : rpm_(rpm), tpm_(tpm) {}
  // Why a call may not start now ("rpm" / "tpm"), or nullptr when it may.
  const char* refuses(int64_t now_ns);
  void started(int64_t now_ns);
  bool counts_requests() const { return rpm_ > 0; }
  void spent(int64_t tokens, int64_t now_ns);

 private:
  void expire(int64_t now_ns);
  int64_t rpm_;
  int64_t tpm_;
  std::deque<int64_t> requests_;
  std::deque<std::pair<int64_t, int64_t>> tokens_;  // (time, tokens)
  int64_t token_sum_ = 0;
};

class Fallback final : public Processor {
 public:
  // Checked by the host before the constructor runs (ABI 1.2 option bounds).
  static constexpr sluice_option_bounds kOptionBounds[] = {
      {.key = "deadline", .min = "\"1ms\"", .max = nullptr},
      {.key = "retries", .min = "0", .max = "10"},
      {.key = "retry_backoff", .min = "\"1ms\"", .max = nullptr},
      {.key = "hedge_after", .min = "\"1ms\"", .max = nullptr},
  };

  Fallback(const Host& host, const Config& config);
  void start() override;
  void process(Call call) override;

 private:
  struct Child;
  struct Run;

  void start_next(const std::shared_ptr<Run>& run);
  void launch(const std::shared_ptr<Run>& run, size_t pos, int attempt);
  void on_result(const std::shared_ptr<Run>& run, uint64_t id, const Host::ChildResult& r);
  void succeed(const std::shared_ptr<Run>& run, size_t pos, const Host::ChildResult& r);
  void fail_chain(const std::shared_ptr<Run>& run, Status status, const std::string& why);
  void schedule_hedge(const std::shared_ptr<Run>& run);
  // Why a child is skipped now ("disabled", "breaker_open", "rpm", "tpm"), or nullptr.
  const char* skip_reason(Child& child, int64_t now);
  bool child_enabled(Child& child);
  void breaker_changed(Child& child);
  // The child position the event names through `prefer`, or SIZE_MAX.
  size_t preferred_for(const EventView& event) const;
  Child& child_named(const Json& args);
  Json child_status(Child& child);

  Host host_;
  std::vector<std::unique_ptr<Child>> children_;  // chain order
  int64_t deadline_ns_;
  std::set<Status> move_on_;
  int64_t retries_;
  int64_t backoff_ns_;
  int64_t backoff_max_ns_;
  int64_t hedge_after_ns_ = 0;
  std::string prefer_field_;
  bool prefer_attr_ = false;
  Metric events_first_ = host_.counter("fallback_events_total", "result=\"first\"");
  Metric events_failover_ = host_.counter("fallback_events_total", "result=\"failover\"");
  Metric events_failed_ = host_.counter("fallback_events_total", "result=\"failed\"");
  Commands commands_;  // last: its handlers use everything above
};

}  // namespace sluice::fallback
