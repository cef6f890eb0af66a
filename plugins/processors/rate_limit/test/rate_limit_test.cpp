// rate_limit: the token bucket through sluice/testing.hpp (TestPlugin on the SDK's test host,
// whose timers run on the test thread while a call is awaited), plus a few calls driven through
// the C entry point where a test must see the order held calls complete in, what the
// destructor does with them, or a host without timers. Rates are high enough to keep tests
// short and timing bounds are generous: the machine is shared.
#include <gtest/gtest.h>

#include <thread>

#include "../rate_limit.hpp"
#include "sluice/testing.hpp"

namespace sluice::rate_limit {
namespace {

using namespace std::chrono_literals;
using testkit::make_event;
using testkit::TestHost;
using testkit::TestPlugin;

constexpr int64_t kMs = 1'000'000;

// Options as the host hands them over: defaults applied, durations in nanoseconds. `key` has no
// default, so the host leaves it out unless a pipeline sets it.
Json options(Json overrides = Json::object()) {
  Json o = {{"rate", 50.0},
            {"burst", 1},
            {"max_keys", 10000},
            {"mode", "block"},
            {"max_wait", 60'000 * kMs}};
  for (auto& [k, v] : overrides.items()) o[k] = v;
  return o;
}

std::vector<uint8_t> event(std::string_view symbol = "BTCUSDT", uint64_t id = 1) {
  return make_event({{"symbol", symbol}}, symbol, id);
}

std::vector<uint8_t> unkeyed(uint64_t id = 1) { return make_event({{"price", 1.5}}, {}, id); }

// Calls through the plugin's C entry point that the test owns, so it sees when each completes
// and what happens to calls still held when the plugin is destroyed.
class Driver {
 public:
  struct Record {
    sluice_call call{};
    std::vector<uint8_t> input;
    bool done = false;
    Outcome outcome;
    int64_t done_ns = 0;
    size_t emitted = 0;
    bool forwarded = false;
    Driver* driver = nullptr;
    size_t index = 0;
  };

  // `host` lets a test take services away (a host without timers).
  explicit Driver(const Json& config, std::function<void(sluice_host&)> edit_host = {})
      : d_(SLUICE_ENTRY_POINT()), raw_(*host_.raw()) {
    if (edit_host) edit_host(raw_);
    sluice_error err{};
    self_ = d_->create(&raw_, config.dump().c_str(), &err);
    if (self_ == nullptr) throw std::runtime_error(err.message);
  }
  ~Driver() { destroy(); }
  Driver(const Driver&) = delete;
  Driver& operator=(const Driver&) = delete;

  // The start hook's error message, "" when it started.
  std::string start() {
    sluice_error err{};
    return d_->start(self_, &err) == 0 ? "" : err.message;
  }
  void destroy() {
    if (self_ != nullptr) d_->destroy(std::exchange(self_, nullptr));
  }

  size_t submit(std::vector<uint8_t> bytes) {
    records_.push_back(std::make_unique<Record>());
    Record& r = *records_.back();
    r.input = std::move(bytes);
    r.driver = this;
    r.index = records_.size() - 1;
    r.call.event = r.input.data();
    r.call.event_size = r.input.size();
    r.call.host_data = &r;
    r.call.emit = &Driver::on_emit;
    r.call.done = &Driver::on_done;
    d_->process(self_, &r.call);
    return r.index;
  }
  // Runs due timers on this thread, as the stage thread would, until every call is done.
  bool run_until_done(std::chrono::milliseconds timeout = 10s) {
    auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
      host_.run_posted();
      if (std::all_of(records_.begin(), records_.end(), [](const auto& r) { return r->done; })) {
        return true;
      }
      std::this_thread::sleep_for(1ms);
    }
    return false;
  }

  const Record& record(size_t i) const { return *records_.at(i); }
  const std::vector<size_t>& done_order() const { return done_order_; }
  TestHost& host() { return host_; }

 private:
  static void on_emit(sluice_call* call, const char*, const uint8_t* data, size_t) {
    auto* r = static_cast<Record*>(call->host_data);
    ++r->emitted;
    r->forwarded = data == r->input.data();
  }
  static void on_done(sluice_call* call, const sluice_outcome* outcome) {
    auto* r = static_cast<Record*>(call->host_data);
    r->done = true;
    r->outcome = Outcome::from(*outcome);
    r->done_ns = mono_ns();
    r->driver->done_order_.push_back(r->index);
  }

  TestHost host_;
  const sluice_plugin_descriptor* d_;
  sluice_host raw_;
  std::vector<std::unique_ptr<Record>> records_;
  std::vector<size_t> done_order_;
  void* self_ = nullptr;
};

TEST(RateLimit, BlockPassesTheBurstAtOnceThenSpacesTheRestByOneOverRate) {
  constexpr int kEvents = 6;
  constexpr int kBurst = 2;
  TestPlugin p(options({{"burst", kBurst}}));
  std::vector<std::vector<uint8_t>> events;
  for (int i = 0; i < kEvents; ++i) events.push_back(event("BTCUSDT", static_cast<uint64_t>(i)));
  int64_t start = mono_ns();
  auto results = p.process_all(events);
  int64_t took = mono_ns() - start;
  for (const auto& r : results) {
    ASSERT_TRUE(r.outcome.ok()) << r.outcome.message;
    ASSERT_EQ(r.emitted.size(), 1u);
    EXPECT_TRUE(r.emitted[0].forwarded);
  }
  // Four tokens at 50/s: 80 ms at least; the upper bound only catches a hang.
  EXPECT_GE(took, (kEvents - kBurst) * 20 * kMs);
  EXPECT_LT(took, 3000 * kMs);
  EXPECT_EQ(p.host().counter("rate_limit_delayed_total"), kEvents - kBurst);
  EXPECT_EQ(p.host().observations("rate_limit_wait_seconds").size(),
            static_cast<size_t>(kEvents - kBurst));
  EXPECT_EQ(p.host().counter("rate_limit_dropped_total"), 0);
  EXPECT_EQ(p.host().pending_timers(), 0u);
}

TEST(RateLimit, BlockReleasesHeldEventsInArrivalOrderEachNoSoonerThanItsToken) {
  constexpr size_t kEvents = 6;
  constexpr size_t kBurst = 2;
  Driver d(options({{"burst", kBurst}}));
  ASSERT_EQ(d.start(), "");
  int64_t start = mono_ns();
  for (size_t i = 0; i < kEvents; ++i) d.submit(event("BTCUSDT", i));
  // The burst completed inside process(); the rest wait for tokens.
  for (size_t i = 0; i < kEvents; ++i) EXPECT_EQ(d.record(i).done, i < kBurst) << i;
  ASSERT_TRUE(d.run_until_done());
  EXPECT_EQ(d.done_order(), (std::vector<size_t>{0, 1, 2, 3, 4, 5}));
  for (size_t i = kBurst; i < kEvents; ++i) {
    const auto& r = d.record(i);
    EXPECT_TRUE(r.outcome.ok()) << r.outcome.message;
    EXPECT_TRUE(r.forwarded);
    // Token i - burst + 1 arrives 20 ms apart after the first event (1 ms for float rounding).
    EXPECT_GE(r.done_ns - start, static_cast<int64_t>(i - kBurst + 1) * 20 * kMs - kMs) << i;
  }
  EXPECT_LT(d.record(kEvents - 1).done_ns - start, 3000 * kMs);
}

TEST(RateLimit, DropFailsTheExcessAsRateLimitedWithTheLimitAndKey) {
  TestPlugin p(options({{"rate", 1.0}, {"burst", 3}, {"mode", "drop"}, {"key", "key"}}));
  std::vector<testkit::CallResult> results;
  for (uint64_t i = 0; i < 5; ++i) results.push_back(p.process(event("BTCUSDT", i)));
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_TRUE(results[i].outcome.ok());
    ASSERT_EQ(results[i].emitted.size(), 1u);
    EXPECT_TRUE(results[i].emitted[0].forwarded);
  }
  for (size_t i = 3; i < 5; ++i) {
    EXPECT_EQ(results[i].outcome.status, Status::kRateLimited);
    EXPECT_EQ(results[i].outcome.message, "rate limit 1/s (burst 3) exceeded for key BTCUSDT");
    EXPECT_GT(results[i].outcome.retry_after_ns, 0);
    EXPECT_LE(results[i].outcome.retry_after_ns, 1000 * kMs);
    EXPECT_TRUE(results[i].emitted.empty());
  }
  EXPECT_EQ(p.host().counter("rate_limit_dropped_total", "reason=\"no_token\""), 2);
  EXPECT_EQ(p.host().counter("rate_limit_delayed_total"), 0);
}

TEST(RateLimit, DropWithoutAKeyOptionHasOneBucketAndNoKeyInTheMessage) {
  TestPlugin p(options({{"rate", 0.5}, {"mode", "drop"}}));
  EXPECT_TRUE(p.process(event("BTCUSDT")).outcome.ok());
  auto r = p.process(event("ETHUSDT"));
  EXPECT_EQ(r.outcome.status, Status::kRateLimited);
  EXPECT_EQ(r.outcome.message, "rate limit 0.5/s (burst 1) exceeded");
}

TEST(RateLimit, PerKeyBucketsAreIndependentAndEventsWithoutTheKeyShareOne) {
  TestPlugin p(options({{"rate", 1.0}, {"burst", 2}, {"mode", "drop"}, {"key", "symbol"}}));
  auto passed = [&](const std::vector<uint8_t>& e) { return p.process(e).outcome.ok(); };
  EXPECT_TRUE(passed(event("BTCUSDT")));
  EXPECT_TRUE(passed(event("ETHUSDT")));
  EXPECT_TRUE(passed(event("BTCUSDT")));
  EXPECT_TRUE(passed(event("ETHUSDT")));
  EXPECT_FALSE(passed(event("BTCUSDT")));
  EXPECT_FALSE(passed(event("ETHUSDT")));
  EXPECT_TRUE(passed(unkeyed()));
  EXPECT_TRUE(passed(unkeyed()));
  auto r = p.process(unkeyed());
  EXPECT_EQ(r.outcome.status, Status::kRateLimited);
  EXPECT_EQ(r.outcome.message, "rate limit 1/s (burst 2) exceeded for events without symbol");
  EXPECT_EQ(p.host().gauge("rate_limit_keys").value_or(-1), 2);
}

TEST(RateLimit, KeyMayBeAnAttrOrAnIntegerField) {
  auto with_attr = [](std::string_view tenant) {
    EventBuilder b;
    b.id(1).attr("tenant", tenant).field("price", 1.5);
    auto bytes = b.finish();
    return std::vector<uint8_t>(bytes.begin(), bytes.end());
  };
  TestPlugin by_attr(options({{"rate", 1.0}, {"mode", "drop"}, {"key", "attrs.tenant"}}));
  EXPECT_TRUE(by_attr.process(with_attr("acme")).outcome.ok());
  EXPECT_TRUE(by_attr.process(with_attr("globex")).outcome.ok());
  EXPECT_EQ(by_attr.process(with_attr("acme")).outcome.message,
            "rate limit 1/s (burst 1) exceeded for key acme");

  TestPlugin by_int(options({{"rate", 1.0}, {"mode", "drop"}, {"key", "user_id"}}));
  EXPECT_TRUE(by_int.process(make_event({{"user_id", 42}})).outcome.ok());
  EXPECT_TRUE(by_int.process(make_event({{"user_id", 7}})).outcome.ok());
  EXPECT_EQ(by_int.process(make_event({{"user_id", 42}})).outcome.message,
            "rate limit 1/s (burst 1) exceeded for key 42");
}

TEST(RateLimit, AnEventWhoseTokenIsBeyondMaxWaitFailsAtOnce) {
  TestPlugin p(options({{"rate", 1.0}, {"max_wait", 100 * kMs}, {"key", "key"}}));
  EXPECT_TRUE(p.process(event()).outcome.ok());
  int64_t start = mono_ns();
  auto r = p.process(event());
  EXPECT_LT(mono_ns() - start, 500 * kMs);  // not held until its token
  EXPECT_EQ(r.outcome.status, Status::kRateLimited);
  const std::string prefix = "rate limit 1/s (burst 1) exceeded for key BTCUSDT: its token is ";
  EXPECT_EQ(r.outcome.message.rfind(prefix, 0), 0u) << r.outcome.message;
  EXPECT_NE(r.outcome.message.find(" ms away, beyond max_wait 100 ms"), std::string::npos)
      << r.outcome.message;
  EXPECT_GT(r.outcome.retry_after_ns, 100 * kMs);
  EXPECT_LE(r.outcome.retry_after_ns, 1000 * kMs);
  EXPECT_TRUE(r.emitted.empty());
  EXPECT_EQ(p.host().counter("rate_limit_dropped_total", "reason=\"max_wait\""), 1);
  EXPECT_EQ(p.host().counter("rate_limit_delayed_total"), 0);
}

TEST(RateLimit, AnEventWhoseTokenIsAfterTheCallersDeadlineFailsAtOnce) {
  TestPlugin p(options({{"rate", 1.0}}));
  EXPECT_TRUE(p.process(event()).outcome.ok());
  auto r = p.process_by(event(), mono_ns() + 50 * kMs);
  EXPECT_EQ(r.outcome.status, Status::kRateLimited);
  EXPECT_NE(r.outcome.message.find("away, after the caller's deadline"), std::string::npos)
      << r.outcome.message;
  EXPECT_EQ(p.host().counter("rate_limit_dropped_total", "reason=\"deadline\""), 1);
}

TEST(RateLimit, AHeldCallCancelledByItsCallerGivesItsTurnToTheNext) {
  TestPlugin p(options());
  EXPECT_TRUE(p.process(event()).outcome.ok());
  auto second = p.begin(event());
  auto third = p.begin(event());
  ASSERT_TRUE(p.cancel(second));
  auto r3 = p.finish(third);
  EXPECT_TRUE(r3.outcome.ok()) << r3.outcome.message;
  EXPECT_EQ(r3.emitted.size(), 1u);
  auto r2 = p.finish(second);
  EXPECT_EQ(r2.outcome.status, Status::kCancelled);
  EXPECT_TRUE(r2.emitted.empty());
  // The cancelled call took no token: one release, one wait observed.
  EXPECT_EQ(p.host().observations("rate_limit_wait_seconds").size(), 1u);
}

TEST(RateLimit, LeastRecentlyUsedIdleKeysAreForgottenAndCounted) {
  TestPlugin p(options({{"rate", 1.0}, {"mode", "drop"}, {"key", "key"}, {"max_keys", 2}}));
  auto passed = [&](std::string_view key) { return p.process(event(key)).outcome.ok(); };
  EXPECT_TRUE(passed("A"));
  EXPECT_TRUE(passed("B"));
  EXPECT_FALSE(passed("A"));  // A is now the most recently used
  EXPECT_TRUE(passed("C"));   // forgets B
  EXPECT_EQ(p.host().counter("rate_limit_keys_evicted_total"), 1);
  EXPECT_TRUE(passed("B"));   // a forgotten key starts with a full bucket; forgets A
  EXPECT_FALSE(passed("C"));  // C was kept: it was used after A
  EXPECT_EQ(p.host().counter("rate_limit_keys_evicted_total"), 2);
  EXPECT_EQ(p.host().gauge("rate_limit_keys").value_or(-1), 2);
  EXPECT_TRUE(p.host().logged(SLUICE_LOG_WARN, "more than max_keys = 2 keys"));
}

TEST(RateLimit, ABucketHoldingEventsIsNeverForgotten) {
  TestPlugin p(options({{"key", "key"}, {"max_keys", 1}}));
  EXPECT_TRUE(p.process(event("A")).outcome.ok());
  auto held = p.begin(event("A"));
  EXPECT_TRUE(p.process(event("B")).outcome.ok());
  EXPECT_EQ(p.host().counter("rate_limit_keys_evicted_total"), 0);
  EXPECT_EQ(p.host().gauge("rate_limit_keys").value_or(-1), 2);
  auto r = p.finish(held);
  EXPECT_TRUE(r.outcome.ok()) << r.outcome.message;
}

TEST(RateLimit, DestroyingTheNodeFailsEveryHeldCallAsCancelled) {
  Driver d(options({{"rate", 1.0}}));
  ASSERT_EQ(d.start(), "");
  for (uint64_t i = 0; i < 3; ++i) d.submit(event("BTCUSDT", i));
  EXPECT_TRUE(d.record(0).done);
  EXPECT_FALSE(d.record(1).done);
  EXPECT_FALSE(d.record(2).done);
  d.destroy();
  for (size_t i = 1; i < 3; ++i) {
    ASSERT_TRUE(d.record(i).done) << i;
    EXPECT_EQ(d.record(i).outcome.status, Status::kCancelled);
    EXPECT_EQ(d.record(i).outcome.message,
              "node stopped while the event waited for a rate-limit token");
    EXPECT_EQ(d.record(i).emitted, 0u);
  }
  EXPECT_EQ(d.host().pending_timers(), 0u);
}

TEST(RateLimit, BlockModeWithoutStageTimersFailsAtStartDropModeStarts) {
  auto no_timers = [](sluice_host& h) { h.timer_start = nullptr; };
  Driver block(options(), no_timers);
  EXPECT_EQ(block.start(),
            "\"block\" needs stage timers, which this host lacks (a sluice older than ABI 1.2); "
            "use mode = \"drop\" or a newer sluice");
  Driver drop(options({{"mode", "drop"}}), no_timers);
  EXPECT_EQ(drop.start(), "");
}

TEST(RateLimit, BadOptionsNameTheOption) {
  auto error = [](Json o) {
    auto e = TestPlugin::create_error(options(std::move(o)));
    return e ? e->key() + ": " + e->what() : std::string("accepted");
  };
  EXPECT_EQ(error({{"rate", 0}}),
            "rate: must be a positive number of tokens per second, e.g. 5 or 0.5");
  EXPECT_EQ(error({{"rate", -2.5}}),
            "rate: must be a positive number of tokens per second, e.g. 5 or 0.5");
  EXPECT_EQ(error({{"burst", 0}}), "burst: must be at least 1");
  EXPECT_EQ(error({{"mode", "fast"}}), "mode: must be \"block\" or \"drop\", not \"fast\"");
  EXPECT_EQ(error({{"max_keys", 0}}), "max_keys: must be at least 1");
  EXPECT_EQ(error({{"max_wait", -1}}), "max_wait: must not be negative (0 = no limit)");
  EXPECT_EQ(error({{"key", "attrs."}}), "key: must be \"key\", a field name or attrs.NAME");
  EXPECT_EQ(error({{"key", ""}}), "key: must be \"key\", a field name or attrs.NAME");
  EXPECT_EQ(error({{"max_wait", 0}}), "accepted");
}

}  // namespace
}  // namespace sluice::rate_limit
