// The `binance_liquidations` source: Binance USD-M futures liquidations, live over WebSocket +
// TLS or replayed from a recording, normalised to the common liquidation fields. The connection,
// recording, replay and de-duplication are the shared exchange-source skeleton's
// (plugins/common/ws); this class adds Binance's streams, heartbeat and frames.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "exchange_source.hpp"
#include "frame.hpp"
#include "replay.hpp"

namespace sluice::binance {

// The recording helpers live in plugins/common/replay; these names keep older callers working.
using replay::append_json_string_body;
using replay::kRecordingPrefix;

// The URL of the live stream: `url` as given, or with `symbols` its per-symbol combined stream
// on the same host (`/market/stream?streams=btcusdt@forceOrder/…`).
std::string stream_url(const std::string& url, const std::vector<std::string>& symbols);

class BinanceSource final : public ws::ExchangeSource {
 public:
  BinanceSource(const Host& host, const Config& config);

 private:
  std::vector<std::string> open_messages() override { return {}; }
  // LIST_SUBSCRIPTIONS: liquidations can be silent for minutes, so its {"result":…,"id":n}
  // reply, not traffic, proves the connection alive.
  std::string heartbeat_message(int64_t request_id) override;
  ws::Received on_message(SourceContext& ctx, std::string_view frame, int64_t recv_ns) override;

  FrameParser parser_;
  Liquidation liq_;
  EventWriter writer_;  // build_event()'s event, written by patching a template
};

}  // namespace sluice::binance
