// Test plugin `test_async`: completes every call on its own worker thread after `delay`, so the
// runtime's cross-thread emit/done path, max_in_flight, ordering and drain are exercised.
// Optionally fails every Nth event, and tags events it handled (for composite tests). A call its
// caller abandons (ABI 1.2 cancel) ends at once as cancelled, counted in
// test_async_cancelled_total.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <random>
#include <thread>

#include "sluice/sdk.hpp"

namespace {

inline constexpr sluice_option_spec kOptions[] = {
    {.key = "delay", .type = SLUICE_OPT_DURATION, .default_toml = "\"1ms\"", .required = 0,
     .description = "Time before each call completes", .choices = nullptr},
    {.key = "jitter", .type = SLUICE_OPT_BOOL, .default_toml = "false", .required = 0,
     .description = "Randomise each delay in [0, delay] so calls finish out of order",
     .choices = nullptr},
    {.key = "fail_every", .type = SLUICE_OPT_INT, .default_toml = "0", .required = 0,
     .description = "Fail every Nth call (0 = never)", .choices = nullptr},
    {.key = "fail_status", .type = SLUICE_OPT_STRING, .default_toml = "\"server_error\"",
     .required = 0, .description = "Error class of failed calls",
     .choices = "server_error,timeout,rate_limited,rejected"},
    {.key = "tag", .type = SLUICE_OPT_STRING, .default_toml = "\"\"", .required = 0,
     .description = "When set, emits a copy with field handled_by = tag", .choices = nullptr},
    {.key = "cost_usd", .type = SLUICE_OPT_DOUBLE, .default_toml = "0.0", .required = 0,
     .description = "Cost reported per successful call", .choices = nullptr},
};

class TestAsync : public sluice::Processor {
 public:
  TestAsync(const sluice::Host& host, const sluice::Config& cfg)
      : host_(host), delay_(cfg.duration("delay")), jitter_(cfg.flag("jitter")),
        fail_every_(cfg.i64("fail_every")), tag_(cfg.str("tag")), cost_(cfg.f64("cost_usd")) {
    std::string s = cfg.str("fail_status");
    fail_status_ = s == "timeout"        ? sluice::Status::kTimeout
                   : s == "rate_limited" ? sluice::Status::kRateLimited
                   : s == "rejected"     ? sluice::Status::kRejected
                                         : sluice::Status::kServerError;
    worker_ = std::thread([this] { loop(); });
  }
  ~TestAsync() override {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    worker_.join();
  }

  void process(sluice::Call call) override {
    int64_t d = delay_.count();
    if (jitter_) d = std::uniform_int_distribution<int64_t>(0, d)(rng_);
    auto cancelled = std::make_shared<std::atomic<bool>>(false);
    call.on_cancel([this, cancelled] {
      cancelled->store(true);
      std::lock_guard lock(mu_);
      cv_.notify_all();
    });
    std::lock_guard lock(mu_);
    queue_.push_back({sluice::mono_ns() + d, ++seq_, std::move(call), cancelled});
    cv_.notify_all();
  }

 private:
  struct Item {
    int64_t due_ns;
    int64_t seq;
    sluice::Call call;
    std::shared_ptr<std::atomic<bool>> cancelled;
  };

  void loop() {
    std::unique_lock lock(mu_);
    while (true) {
      if (queue_.empty()) {
        if (stop_) return;
        cv_.wait(lock);
        continue;
      }
      auto it = std::find_if(queue_.begin(), queue_.end(),
                             [](const Item& i) { return i.cancelled->load(); });
      if (it == queue_.end()) {
        it = std::min_element(queue_.begin(), queue_.end(),
                              [](const Item& a, const Item& b) { return a.due_ns < b.due_ns; });
      }
      int64_t now = sluice::mono_ns();
      if (it->due_ns > now && !stop_ && !it->cancelled->load()) {
        cv_.wait_for(lock, std::chrono::nanoseconds(it->due_ns - now));
        continue;
      }
      Item item = std::move(*it);
      queue_.erase(it);
      lock.unlock();
      finish(item);
      lock.lock();
    }
  }

  void finish(Item& item) {
    if (item.cancelled->load()) {
      host_.counter_add("test_async_cancelled_total", 1);
      item.call.fail(sluice::Status::kCancelled, "cancelled by the caller");
      return;
    }
    if (fail_every_ > 0 && item.seq % fail_every_ == 0) {
      item.call.fail(fail_status_, "injected failure #" + std::to_string(item.seq));
      return;
    }
    if (tag_.empty()) {
      item.call.forward();
    } else {
      sluice::EventBuilder b;
      b.copy_from(item.call.event()).field("handled_by", tag_);
      item.call.emit(b.finish());
    }
    item.call.ok(cost_);
  }

  sluice::Host host_;
  std::chrono::nanoseconds delay_;
  bool jitter_;
  int64_t fail_every_;
  sluice::Status fail_status_;
  std::string tag_;
  double cost_;
  std::mt19937_64 rng_{42};
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> queue_;
  int64_t seq_ = 0;
  bool stop_ = false;
  std::thread worker_;
};

}  // namespace

SLUICE_PLUGIN(TestAsync, "test_async", "1.0.0", "Test double: completes calls on another thread",
              kOptions)
