// The `okx_liquidations` source: OKX v5 liquidations (the liquidation-orders channel), live over
// WebSocket + TLS or replayed from a recording, normalised to the common liquidation fields.
// OKX sizes liquidations in contracts; their value (ctVal) comes from the contract_values option
// and the public instruments endpoint, fetched at start and refreshed.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "exchange_source.hpp"
#include "frame.hpp"
#include "http_client.hpp"

namespace sluice::okx {

class OkxSource final : public ws::ExchangeSource {
 public:
  OkxSource(const Host& host, const Config& config);
  ~OkxSource() override;
  // Loads contract values (when fetching), then runs live or replays.
  void run(SourceContext& ctx) override;

 private:
  std::vector<std::string> open_messages() override;
  std::string heartbeat_message(int64_t request_id) override;
  ws::Received on_message(SourceContext& ctx, std::string_view text, int64_t recv_ns) override;

  // Fetches the instruments once, waiting (while the pipeline runs) for the reply; logs and
  // returns false on failure.
  bool fetch_now(SourceContext& ctx);
  // Starts a fetch on the HTTP client's thread; done(ok) runs there.
  void fetch_async(std::function<void(bool ok)> done);
  void schedule_refresh(std::chrono::nanoseconds delay);
  void unknown_instrument(std::string_view instrument);
  std::shared_ptr<const Contracts> contracts() const;

  std::string inst_type_;
  std::string rest_base_;
  bool fetch_;
  std::chrono::nanoseconds refresh_;
  Contracts configured_;  // contract_values, which win over fetched values
  mutable std::mutex mu_;
  std::shared_ptr<const Contracts> contracts_;  // guarded by mu_; replaced whole on refresh
  std::unique_ptr<http::Client> http_;
  Parser parser_;
  Message message_;
  std::unordered_set<std::string> warned_;
  uint64_t unknown_ = 0;
  int64_t last_unknown_refresh_ns_ = 0;
};

}  // namespace sluice::okx
