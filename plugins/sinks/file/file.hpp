// The `file` sink: appends every event as one JSON object per line (JSONL) to a file.
//
// An event's call completes only after its line has reached the kernel, so a write error (disk
// full, file too large, a broken descriptor) fails exactly the events whose lines were not
// written, and nothing is reported written that is not. Lines are batched: a batch is written
// when it reaches buffer_size bytes or kMaxBatchEvents events, when the input pauses for a
// millisecond (the stage may be waiting on these very calls), or flush_interval after its first
// line at the latest.
//
// Durability is the `fsync` policy's: `always` syncs (fdatasync) every batch before its calls
// complete, so a completed event survives a power cut; `interval` (the default) completes calls
// once their lines reach the kernel and syncs at most fsync_interval after the first unsynced
// write; `never` leaves it to the kernel. Except with `never`, flush() and close sync too.
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

namespace sluice::file_sink {

// clang-format off
inline constexpr sluice_option_spec kOptions[] = {
    {.key = "path", .type = SLUICE_OPT_STRING, .default_toml = nullptr, .required = 1,
     .description = "File to write, one JSON object per line; missing parent directories are "
                    "created",
     .choices = nullptr},
    {.key = "append", .type = SLUICE_OPT_BOOL, .default_toml = "false", .required = 0,
     .description = "Append to an existing file instead of truncating it at start",
     .choices = nullptr},
    {.key = "metadata", .type = SLUICE_OPT_BOOL, .default_toml = "true", .required = 0,
     .description = "Include id, times, source, key, attrs and hops under the \"_sluice\" key",
     .choices = nullptr},
    {.key = "flush_interval", .type = SLUICE_OPT_DURATION, .default_toml = "\"1s\"",
     .required = 0,
     .description = "Longest time a line waits in the buffer; 0s writes every event at once",
     .choices = nullptr},
    {.key = "buffer_size", .type = SLUICE_OPT_SIZE, .default_toml = "\"64KiB\"", .required = 0,
     .description = "Bytes buffered before a write", .choices = nullptr},
    {.key = "fsync", .type = SLUICE_OPT_STRING, .default_toml = "\"interval\"", .required = 0,
     .description = "When written lines are forced to disk (fdatasync): always = every batch "
                    "before its events complete; interval = at most fsync_interval after a "
                    "write, and at flush and close; never = left to the kernel",
     .choices = "always,interval,never"},
    {.key = "fsync_interval", .type = SLUICE_OPT_DURATION, .default_toml = "\"1s\"",
     .required = 0,
     .description = "With fsync = \"interval\": the longest time a written line stays unsynced",
     .choices = nullptr},
};
// clang-format on

// Most events held before a write, whatever their size: half the runtime's default
// max_in_flight (128), so a busy stage never waits on this sink's batching.
inline constexpr size_t kMaxBatchEvents = 64;

// How long the input must pause before a partial batch is written.
inline constexpr std::chrono::milliseconds kQuietPeriod{1};

enum class FsyncPolicy { kAlways, kInterval, kNever };

class FileSink final : public Sink {
 public:
  FileSink(const Host& host, const Config& config);
  ~FileSink() override;

  void consume(Call call) override;
  void flush() override;

 private:
  struct Held {
    Call call;
    size_t end;  // offset just past this event's line in buffer_
  };

  void flusher_loop();
  // Writes buffer_ and completes the held calls (outside the lock). Called with lock held.
  void write_batch(std::unique_lock<std::mutex>& lock);
  bool ensure_open(std::string& error);
  // Writes as much of buffer_ as the file takes; returns the byte count, fills error if short.
  size_t write_buffer(std::string& error);
  // After a short write, cuts the partial last line off a regular file so the file stays JSONL.
  void drop_partial_line(size_t partial);
  // With fsync = interval: written lines wait for the flusher's timed sync.
  bool sync_pending() const { return fsync_ == FsyncPolicy::kInterval && unsynced_since_ns_ != 0; }
  // Syncs written lines to disk when any are unsynced; false (error filled) when it fails.
  bool sync(std::string& error);
  // Syncs and closes; a failed sync is logged (nothing is left to fail).
  void close_file();
  // Closes without syncing (after a failed write or sync, when a sync proves nothing).
  void abandon_file();

  Host host_;
  std::string path_;
  bool append_;
  JsonOptions json_;
  int64_t flush_interval_ns_;
  std::chrono::nanoseconds quiet_;
  size_t buffer_size_;
  FsyncPolicy fsync_;
  int64_t fsync_interval_ns_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::string buffer_;
  std::vector<Held> held_;
  uint64_t consumed_ = 0;       // events seen; the flusher compares it to spot a pause
  int64_t batch_start_ns_ = 0;  // mono_ns() when the first held event arrived
  int fd_ = -1;
  int64_t unsynced_since_ns_ = 0;  // mono_ns() of the first write not yet synced; 0 = none
  bool opened_once_ = false;       // later opens never truncate
  bool failing_ = false;           // in a run of failed writes (logged once per run)
  bool stop_ = false;
  std::thread flusher_;  // started by the first consume(): validate creates instances too
};

}  // namespace sluice::file_sink
