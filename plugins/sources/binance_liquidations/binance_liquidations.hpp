// The `binance_liquidations` source: Binance USD-M futures liquidations, live over WebSocket +
// TLS or replayed from a recording, normalised to the common liquidation fields.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "dedup.hpp"
#include "frame.hpp"
#include "replay.hpp"
#include "sluice/sdk.hpp"
#include "ws_client.hpp"

namespace sluice::binance {

// The recording helpers live in plugins/common/replay; these names keep older callers working.
using replay::append_json_string_body;
using replay::kRecordingPrefix;

// The URL of the live stream: `url` as given, or with `symbols` its per-symbol combined stream
// on the same host (`/market/stream?streams=btcusdt@forceOrder/…`).
std::string stream_url(const std::string& url, const std::vector<std::string>& symbols);

// What the source did with one frame; live connections use it for heartbeat replies.
struct Handled {
  bool keep_going = true;  // false once the pipeline is stopping
  FrameKind kind = FrameKind::kBad;
  int64_t control_id = -1;
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

  Host host_;
  std::string source_;
  std::string replay_file_;
  replay::Timing timing_;
  std::string record_to_;
  ws::ClientOptions live_;
  FrameParser parser_;
  Liquidation liq_;
  EventBuilder builder_;
  ws::Deduplicator dedup_;
  std::unique_ptr<replay::Recorder> recorder_;
  replay::Pacer pacer_;
  uint64_t next_id_ = 1;
  uint64_t bad_frames_ = 0;
  // While replaying: the receive time of the current recording line, 0 for a plain frame.
  int64_t replay_recv_ns_ = 0;
  uint64_t replay_line_ = 0;
  bool replaying_ = false;
};

// Runs the live WebSocket connection(s) until the pipeline stops (live.cpp).
void run_live(BinanceSource& source, SourceContext& ctx, const ws::ClientOptions& options);

}  // namespace sluice::binance
