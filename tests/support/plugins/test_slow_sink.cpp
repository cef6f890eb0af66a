// Test plugin `test_slow_sink`: consumes synchronously with a fixed delay, so a fast source
// meets real backpressure. Reports how many events it has consumed as a gauge.
#include <thread>

#include "sluice/sdk.hpp"

namespace {

inline constexpr sluice_option_spec kOptions[] = {
    {.key = "delay", .type = SLUICE_OPT_DURATION, .default_toml = "\"1ms\"", .required = 0,
     .description = "Time spent on each event", .choices = nullptr},
};

class TestSlowSink : public sluice::Sink {
 public:
  TestSlowSink(const sluice::Host& host, const sluice::Config& cfg)
      : host_(host), delay_(cfg.duration("delay")) {}
  void consume(sluice::Call call) override {
    std::this_thread::sleep_for(delay_);
    host_.gauge_set("test_slow_sink_consumed", static_cast<double>(++consumed_));
    call.ok();
  }

 private:
  sluice::Host host_;
  std::chrono::nanoseconds delay_;
  uint64_t consumed_ = 0;
};

}  // namespace

SLUICE_PLUGIN(TestSlowSink, "test_slow_sink", "1.0.0", "Test double: slow synchronous sink",
              kOptions)
