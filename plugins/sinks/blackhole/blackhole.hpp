// The `blackhole` sink: accepts and counts every event, writes nothing. It is the benchmark sink,
// so consume() is two relaxed atomic adds; a reporter thread turns the totals into the
// blackhole_events_total / blackhole_bytes_total counters once per report (every
// report_interval, or every second when that is 0s) and, when report_interval is set, logs
// "N events, X ev/s".
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

#include "sluice/sdk.hpp"

namespace sluice::blackhole {

// clang-format off
inline constexpr sluice_option_spec kOptions[] = {
    {.key = "report_interval", .type = SLUICE_OPT_DURATION, .default_toml = "\"0s\"",
     .required = 0,
     .description = "Log the event count and rate this often; 0s never logs",
     .choices = nullptr},
};
// clang-format on

// Counter publication period when report_interval is 0s.
inline constexpr std::chrono::seconds kMetricsPeriod{1};

class BlackholeSink final : public Sink {
 public:
  BlackholeSink(const Host& host, const Config& config);
  ~BlackholeSink() override;

  void consume(Call call) override;
  void flush() override;

 private:
  void start_reporter();
  void reporter_loop();
  void publish_locked();  // adds the counts since the last publish to the host's counters

  Host host_;
  std::chrono::nanoseconds report_interval_;
  std::atomic<uint64_t> events_{0};
  std::atomic<uint64_t> bytes_{0};
  std::atomic<bool> started_{false};

  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t published_events_ = 0;
  uint64_t published_bytes_ = 0;
  bool stop_ = false;
  std::thread reporter_;  // started by the first consume(): validate creates instances too
};

}  // namespace sluice::blackhole
