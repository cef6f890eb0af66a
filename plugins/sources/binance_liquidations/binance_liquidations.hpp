// The `binance_liquidations` source: Binance USD-M futures liquidations, live over WebSocket +
// TLS or replayed from a recording, normalised to the common liquidation fields.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include <simdjson.h>

#include "frame.hpp"
#include "sluice/sdk.hpp"

namespace sluice::binance {

// Remembers recently seen liquidations by (symbol, T, z), so a frame delivered twice (on both
// connections during a rollover, or replayed by the server after a reconnect) is emitted once.
class Deduplicator {
 public:
  Deduplicator(int64_t window_ns, size_t capacity);
  // True the first time a liquidation is seen within the window.
  bool first_sighting(const Liquidation& liq, int64_t now_ns);
  size_t size() const { return order_.size(); }

 private:
  // The symbol by its 64-bit hash: two liquidations are confused only if their trade time,
  // quantity and symbol hash all agree.
  struct Key {
    uint64_t symbol_hash;
    int64_t trade_time_ms;
    double quantity;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const {
      return k.symbol_hash ^ (static_cast<uint64_t>(k.trade_time_ms) * 0x9e3779b97f4a7c15ULL) ^
             std::hash<double>{}(k.quantity);
    }
  };

  int64_t window_ns_;
  size_t capacity_;
  std::deque<std::pair<int64_t, Key>> order_;
  std::unordered_set<Key, KeyHash> seen_;
};

// Appends raw frames with their receive time, one JSON object a line:
// {"recv_ns":1761125802306000000,"frame":"{\"e\":\"forceOrder\",…}"} — the frame is kept as a
// JSON string so its bytes come back exactly as received.
class Recorder {
 public:
  explicit Recorder(std::string path) : path_(std::move(path)) {}
  ~Recorder();
  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;
  void open();
  void write(std::string_view frame, int64_t recv_ns);

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
  std::string line_;
};

// Every recording line starts with this, which tells it from a plain frame.
inline constexpr std::string_view kRecordingPrefix = "{\"recv_ns\":";

// Escapes text as the body of a JSON string (quotes not included).
void append_json_string_body(std::string& out, std::string_view text);

// The URL of the live stream: `url` as given, or with `symbols` its per-symbol combined stream
// on the same host (`/market/stream?streams=btcusdt@forceOrder/…`).
std::string stream_url(const std::string& url, const std::vector<std::string>& symbols);

// What the source did with one frame; live connections use it for heartbeat replies.
struct Handled {
  bool keep_going = true;  // false once the pipeline is stopping
  FrameKind kind = FrameKind::kBad;
  int64_t control_id = -1;
};

struct LiveOptions {
  std::string url;
  std::string ca_file;
  std::chrono::nanoseconds heartbeat;
  std::chrono::nanoseconds heartbeat_timeout;
  std::chrono::nanoseconds reconnect_min;
  std::chrono::nanoseconds reconnect_max;
  std::chrono::nanoseconds rollover;
};

class BinanceSource final : public Source {
 public:
  BinanceSource(const Host& host, const Config& config);
  void run(SourceContext& ctx) override;

  // Parses, records, de-duplicates and emits one frame received at recv_ns.
  Handled handle_frame(SourceContext& ctx, std::string_view frame, int64_t recv_ns);
  const Host& host() const { return host_; }

 private:
  void run_replay(SourceContext& ctx);
  void bad_frame(std::string_view where, std::string_view why);
  // Waits until an event recorded at event_ns is due; false when stopping.
  bool pace(SourceContext& ctx, int64_t event_ns);

  Host host_;
  std::string source_;
  std::string replay_file_;
  bool original_timing_;
  double speed_;
  std::string record_to_;
  LiveOptions live_;
  FrameParser parser_;
  Liquidation liq_;
  EventBuilder builder_;
  Deduplicator dedup_;
  std::unique_ptr<Recorder> recorder_;
  uint64_t next_id_ = 1;
  uint64_t bad_frames_ = 0;
  bool paced_ = false;
  int64_t first_event_ns_ = 0;
  int64_t start_mono_ns_ = 0;
  // While replaying: the receive time of the current recording line, 0 for a plain frame.
  int64_t replay_recv_ns_ = 0;
  uint64_t replay_line_ = 0;
  bool replaying_ = false;
};

// Runs the live WebSocket connection(s) until the pipeline stops (live.cpp).
void run_live(BinanceSource& source, SourceContext& ctx, const LiveOptions& options);

}  // namespace sluice::binance
