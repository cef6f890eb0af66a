// The `bybit_liquidations` source: Bybit v5 liquidations (allLiquidation.<symbol> topics), live
// over WebSocket + TLS or replayed from a recording, normalised to the common liquidation
// fields. One push holds several rows; each row becomes one event.
#pragma once

#include <string>
#include <vector>

#include "exchange_source.hpp"
#include "frame.hpp"

namespace sluice::bybit {

class BybitSource final : public ws::ExchangeSource {
 public:
  BybitSource(const Host& host, const Config& config);

 private:
  std::vector<std::string> open_messages() override;
  std::string heartbeat_message(int64_t request_id) override;
  ws::Received on_message(SourceContext& ctx, std::string_view text, int64_t recv_ns) override;

  std::vector<std::string> symbols_;
  Parser parser_;
  Message message_;
};

}  // namespace sluice::bybit
