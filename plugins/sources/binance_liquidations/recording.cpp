// Pieces of `binance_liquidations` that need no host: de-duplication, recording, stream URLs.
#include <cctype>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "binance_liquidations.hpp"

namespace sluice::binance {

Deduplicator::Deduplicator(int64_t window_ns, size_t capacity)
    : window_ns_(window_ns), capacity_(capacity) {
  seen_.reserve(capacity);
}

bool Deduplicator::first_sighting(const Liquidation& liq, int64_t now_ns) {
  while (!order_.empty() &&
         (order_.front().first < now_ns - window_ns_ || order_.size() >= capacity_)) {
    seen_.erase(order_.front().second);
    order_.pop_front();
  }
  const Key key{std::hash<std::string_view>{}(liq.symbol), liq.trade_time_ms, liq.quantity};
  if (!seen_.insert(key).second) return false;
  order_.emplace_back(now_ns, key);
  return true;
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
  // Flushed per frame: liquidations are few, and a crash must not lose the recording's tail.
  if (std::fwrite(line_.data(), 1, line_.size(), file_) != line_.size() ||
      std::fflush(file_) != 0) {
    throw std::runtime_error("record_to: cannot write '" + path_ + "': " + std::strerror(errno));
  }
}

std::string stream_url(const std::string& url, const std::vector<std::string>& symbols) {
  if (symbols.empty()) return url;
  const size_t host_start = url.find("://");
  const size_t path_start = url.find('/', host_start == std::string::npos ? 0 : host_start + 3);
  std::string out = url.substr(0, path_start) + "/market/stream?streams=";
  for (size_t i = 0; i < symbols.size(); ++i) {
    if (i > 0) out += '/';
    for (char c : symbols[i]) {
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    out += "@forceOrder";
  }
  return out;
}

}  // namespace sluice::binance
