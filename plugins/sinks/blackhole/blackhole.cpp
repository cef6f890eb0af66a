// The `blackhole` sink: counting and the periodic report (see blackhole.hpp).
#include "blackhole.hpp"

#include <cmath>
#include <string>

namespace sluice::blackhole {

BlackholeSink::BlackholeSink(const Host& host, const Config& config)
    : host_(host), report_interval_(config.duration("report_interval")) {}

BlackholeSink::~BlackholeSink() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (reporter_.joinable()) reporter_.join();
  std::lock_guard lock(mu_);
  publish_locked();
}

void BlackholeSink::consume(Call call) {
  events_.fetch_add(1, std::memory_order_relaxed);
  bytes_.fetch_add(call.bytes().size(), std::memory_order_relaxed);
  if (!started_.load(std::memory_order_relaxed)) start_reporter();
  call.ok();
}

void BlackholeSink::flush() {
  std::lock_guard lock(mu_);
  publish_locked();
}

void BlackholeSink::start_reporter() {
  std::lock_guard lock(mu_);
  if (started_.exchange(true) || stop_) return;
  reporter_ = std::thread([this] { reporter_loop(); });
}

void BlackholeSink::reporter_loop() {
  const bool logs = report_interval_.count() > 0;
  const std::chrono::nanoseconds period = logs ? report_interval_ : kMetricsPeriod;
  std::unique_lock lock(mu_);
  uint64_t last_events = events_.load(std::memory_order_relaxed);
  int64_t last_ns = mono_ns();
  while (!cv_.wait_for(lock, period, [&] { return stop_; })) {
    publish_locked();
    if (!logs) continue;
    const uint64_t events = events_.load(std::memory_order_relaxed);
    const int64_t now = mono_ns();
    const double seconds = static_cast<double>(now - last_ns) / 1e9;
    const double rate = seconds > 0 ? static_cast<double>(events - last_events) / seconds : 0;
    host_.info(std::to_string(events) + " events, " +
               std::to_string(static_cast<uint64_t>(std::llround(rate))) + " ev/s");
    last_events = events;
    last_ns = now;
  }
}

void BlackholeSink::publish_locked() {
  const uint64_t events = events_.load(std::memory_order_relaxed);
  const uint64_t bytes = bytes_.load(std::memory_order_relaxed);
  if (events != published_events_) {
    host_.counter_add("blackhole_events_total", static_cast<double>(events - published_events_));
  }
  if (bytes != published_bytes_) {
    host_.counter_add("blackhole_bytes_total", static_cast<double>(bytes - published_bytes_));
  }
  published_events_ = events;
  published_bytes_ = bytes;
}

}  // namespace sluice::blackhole

SLUICE_PLUGIN(sluice::blackhole::BlackholeSink, "blackhole", "0.1.0",
              "Counts and discards events (benchmarks, dry runs)", sluice::blackhole::kOptions);
