// The `console` sink: prints every event as one line on stdout or stderr, readable text or JSON.
//
// Lines are buffered and written whole, one write() per batch, so a fast stream costs few system
// calls and lines from other writers never split ours. A batch is written at kBatchBytes, at
// flush(), and at the latest kMaxDelay after its first line, so interactive use stays live.
// Events complete as soon as their line is buffered: a console is for people, and a failed
// write is logged and counted rather than failing events. A reader that went away (EPIPE, as in
// `sluice run … | head`) ends the console's output for good: logged once, counted, and every
// later line dropped and counted, while events keep completing so the rest of the pipeline goes
// on.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "sluice/event_json.hpp"
#include "sluice/sdk.hpp"

namespace sluice::console {

// clang-format off
inline constexpr sluice_option_spec kOptions[] = {
    {.key = "format", .type = SLUICE_OPT_STRING, .default_toml = "\"text\"", .required = 0,
     .description = "text: `time [source] key name=value ...`; json: one JSON object per line",
     .choices = "text,json"},
    {.key = "stream", .type = SLUICE_OPT_STRING, .default_toml = "\"stdout\"", .required = 0,
     .description = "Where to print", .choices = "stdout,stderr"},
    {.key = "fields", .type = SLUICE_OPT_STRING_LIST, .default_toml = nullptr, .required = 0,
     .description = "Print only these fields, in this order (default: every field)",
     .choices = nullptr},
    {.key = "metadata", .type = SLUICE_OPT_BOOL, .default_toml = "false", .required = 0,
     .description = "json format: include id, times, source, key, attrs and hops under "
                    "\"_sluice\"",
     .choices = nullptr},
};
// clang-format on

inline constexpr size_t kBatchBytes = 16 * 1024;
inline constexpr std::chrono::milliseconds kMaxDelay{100};

class ConsoleSink final : public Sink {
 public:
  ConsoleSink(const Host& host, const Config& config);
  ~ConsoleSink() override;

  void consume(Call call) override;
  void flush() override;

 private:
  void flusher_loop();
  void write_locked();  // with mu_ held
  // Drops the buffered lines, counting them in console_lines_dropped_total (with mu_ held).
  void drop_locked();

  Host host_;
  int fd_;
  bool json_format_;
  std::vector<std::string> fields_;
  bool metadata_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::string buffer_;
  uint64_t buffered_lines_ = 0;
  uint64_t write_errors_ = 0;
  bool closed_ = false;  // the reader went away: nothing more is written
  bool stop_ = false;
  std::thread flusher_;  // started by the first consume(): validate creates instances too
};

}  // namespace sluice::console
