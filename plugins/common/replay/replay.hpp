// Replaying recorded streams, shared by the `file` source and the exchange sources: the
// `timing` / `speed` options and the pacer that keeps recorded gaps, and the recording format
// of live sources (`record_to` writes it, `replay_file` reads it back).
//
// A recording is one JSON object a line, the message kept byte for byte as a JSON string:
//   {"recv_ns":1761125802306000000,"frame":"{\"e\":\"forceOrder\",…}"}
// A replay file may also hold plain messages, one per line (as in logs and fixtures).
#pragma once

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <string_view>

#include <simdjson.h>

#include "sluice/sdk.hpp"
#include "time_range.hpp"

namespace sluice::replay {

// --- timing ----------------------------------------------------------------------------------

// The `speed` option, identical wherever replay timing is offered.
inline constexpr sluice_option_spec kSpeedOption = {
    .key = "speed",
    .type = SLUICE_OPT_DOUBLE,
    .default_toml = "1.0",
    .required = 0,
    .description = "With timing = \"original\": replay this many times faster than recorded",
    .choices = nullptr};

// The `timing` option (fast | original); `description` says which times the plugin follows.
constexpr sluice_option_spec timing_option(const char* description) {
  return {.key = "timing",
          .type = SLUICE_OPT_STRING,
          .default_toml = "\"fast\"",
          .required = 0,
          .description = description,
          .choices = "fast,original"};
}

struct Timing {
  bool original = false;  // timing = "original"
  double speed = 1.0;
};

// Reads `timing` and `speed`; throws OptionError("speed") unless speed is finite and > 0.
Timing read_timing(const Config& config);

// Keeps recorded gaps: an event is due (its time - the first event's time) / speed after the
// first event was emitted. Events that step back in time are due at once.
class Pacer {
 public:
  explicit Pacer(double speed) : speed_(speed) {}
  void restart() { started_ = false; }
  // Waits until the event is due; false when woken because the pipeline is stopping.
  bool wait(SourceContext& ctx, int64_t event_ns);

 private:
  double speed_;
  bool started_ = false;
  int64_t first_event_ns_ = 0;
  int64_t start_mono_ns_ = 0;
};

// --- recordings ------------------------------------------------------------------------------

// Every recording line starts with this, which tells it from a plain message.
inline constexpr std::string_view kRecordingPrefix = "{\"recv_ns\":";

// Escapes text as the body of a JSON string (quotes not included).
void append_json_string_body(std::string& out, std::string_view text);

// Appends messages with their receive time, flushed per line.
class Recorder {
 public:
  explicit Recorder(std::string path) : path_(std::move(path)) {}
  ~Recorder();
  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;
  // Throws std::runtime_error naming record_to and the path.
  void open();
  void write(std::string_view frame, int64_t recv_ns);

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
  std::string line_;
};

// Reads a replay file line by line: recordings and plain messages, mixed; blank lines skipped.
class RecordingReader {
 public:
  struct Entry {
    std::string_view frame;     // valid until the next call
    int64_t recv_ns = 0;        // 0 for a plain message
    uint64_t line = 0;          // 1-based
    std::string error;          // non-empty: a recording line that cannot be read (frame empty)
    bool out_of_range = false;  // the error is a recv_ns outside time_range.hpp's file range
  };
  // Throws std::runtime_error when the file cannot be read.
  explicit RecordingReader(const std::string& path);
  // False at the end of the file.
  bool next(Entry& out);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::ifstream in_;
  std::string line_;
  uint64_t line_number_ = 0;
  simdjson::dom::parser json_;
};

// "" when path is a readable file, else why not.
std::string check_readable(const std::string& path);
// "" when path can be created or appended to (its directory exists, it is no directory).
std::string check_writable(const std::string& path);

}  // namespace sluice::replay
