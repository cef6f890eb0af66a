// Replay timing and the recording format (see replay.hpp).
#include "replay.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace sluice::replay {
namespace {

// Waiting for less than this costs more than it is worth: emit slightly early instead and let
// the absolute schedule absorb it.
constexpr int64_t kMinSleepNs = 1'000'000;

}  // namespace

Timing read_timing(const Config& config) {
  Timing t;
  t.original = config.str("timing", "fast") == "original";
  t.speed = config.f64("speed", 1.0);
  if (!(t.speed > 0) || !std::isfinite(t.speed)) {
    throw OptionError("speed",
                      "speed must be a number greater than 0, got " + Json(t.speed).dump());
  }
  return t;
}

bool Pacer::wait(SourceContext& ctx, int64_t event_ns) {
  if (!started_) {
    started_ = true;
    first_event_ns_ = event_ns;
    start_mono_ns_ = mono_ns();
    return true;
  }
  // Exact in int64 when the times are near each other (they are, in real data); in double when
  // they are not, or when a small speed stretches the gap beyond int64.
  int64_t gap = 0;
  const double offset = (__builtin_sub_overflow(event_ns, first_event_ns_, &gap)
                             ? static_cast<double>(event_ns) - static_cast<double>(first_event_ns_)
                             : static_cast<double>(gap)) /
                        speed_;
  const double lead = static_cast<double>(start_mono_ns_) + offset - static_cast<double>(mono_ns());
  if (lead < static_cast<double>(kMinSleepNs)) return true;
  // A sleep that long ends only with a stop request; it must still fit std::chrono.
  constexpr double kMaxSleepNs = 1e18;
  return ctx.sleep_for(std::chrono::nanoseconds(static_cast<int64_t>(std::min(lead, kMaxSleepNs))));
}

void append_json_string_body(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20) {
      out += "\\u00";
      out += kHex[u >> 4];
      out += kHex[u & 0xf];
    } else {
      out += c;
    }
  }
}

Recorder::~Recorder() {
  if (file_ != nullptr) std::fclose(file_);
}

void Recorder::open() {
  if (file_ != nullptr) return;
  file_ = std::fopen(path_.c_str(), "ab");
  if (file_ == nullptr) {
    throw std::runtime_error("record_to: cannot open '" + path_ + "': " + std::strerror(errno));
  }
}

void Recorder::write(std::string_view frame, int64_t recv_ns) {
  line_.assign(kRecordingPrefix);
  line_ += std::to_string(recv_ns);
  line_ += ",\"frame\":\"";
  append_json_string_body(line_, frame);
  line_ += "\"}\n";
  // Flushed per message: liquidations are few, and a crash must not lose the recording's tail.
  if (std::fwrite(line_.data(), 1, line_.size(), file_) != line_.size() ||
      std::fflush(file_) != 0) {
    throw std::runtime_error("record_to: cannot write '" + path_ + "': " + std::strerror(errno));
  }
}

RecordingReader::RecordingReader(const std::string& path)
    : path_(path), in_(path, std::ios::binary) {
  if (!in_) throw std::runtime_error("cannot read '" + path + "': " + std::strerror(errno));
}

bool RecordingReader::next(Entry& out) {
  while (std::getline(in_, line_)) {
    ++line_number_;
    if (!line_.empty() && line_.back() == '\r') line_.pop_back();
    if (line_.find_first_not_of(" \t") == std::string::npos) continue;
    out.line = line_number_;
    out.recv_ns = 0;
    out.error.clear();
    out.out_of_range = false;
    out.frame = line_;
    if (!line_.starts_with(kRecordingPrefix)) return true;
    line_.reserve(line_.size() + simdjson::SIMDJSON_PADDING);
    simdjson::dom::element doc;
    std::string_view text;
    int64_t recv = 0;
    if (json_.parse(line_.data(), line_.size(), false).get(doc) != simdjson::SUCCESS ||
        doc["recv_ns"].get_int64().get(recv) != simdjson::SUCCESS ||
        doc["frame"].get_string().get(text) != simdjson::SUCCESS) {
      out.frame = {};
      out.error = "a recording line needs an integer \"recv_ns\" and a string \"frame\"";
      return true;
    }
    if (!file_time_ok(recv)) {
      // recv_ns feeds de-duplication windows (recv_ns - window): keep it where that is safe.
      out.frame = {};
      out.error = "\"recv_ns\": " + std::to_string(recv) +
                  " is out of range (epoch nanoseconds from 1970-01-01 up to 2200-01-01)";
      out.out_of_range = true;
      return true;
    }
    out.frame = text;
    out.recv_ns = recv;
    return true;
  }
  return false;
}

std::string check_readable(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return "'" + path + "' is a directory, not a file";
  std::ifstream in(path, std::ios::binary);
  if (!in) return "cannot read '" + path + "': " + std::strerror(errno);
  return {};
}

std::string check_writable(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(path, ec)) return "'" + path + "' is a directory, not a file";
  fs::path dir = fs::path(path).parent_path();
  if (dir.empty()) dir = ".";
  if (!fs::is_directory(dir, ec)) return "the directory '" + dir.string() + "' does not exist";
  return {};
}

}  // namespace sluice::replay
