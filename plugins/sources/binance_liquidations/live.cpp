// The live side of `binance_liquidations`: the shared WebSocket client (plugins/common/ws) with
// Binance's heartbeat, LIST_SUBSCRIPTIONS, whose {"result":…,"id":n} reply proves the connection
// alive. Frames go to BinanceSource::handle_frame, whose de-duplication makes the overlap of two
// connections during a rollover, or a server that repeats frames after a reconnect, harmless.
#include "binance_liquidations.hpp"

namespace sluice::binance {
namespace {

class BinanceHandler final : public ws::Handler {
 public:
  BinanceHandler(BinanceSource& source, SourceContext& ctx) : source_(source), ctx_(ctx) {}

  std::string heartbeat_message(int64_t request_id) override {
    return "{\"method\":\"LIST_SUBSCRIPTIONS\",\"id\":" + std::to_string(request_id) + "}";
  }

  ws::Received on_message(std::string_view text, int64_t recv_ns) override {
    const Handled h = source_.handle_frame(ctx_, text, recv_ns);
    ws::Received r;
    r.keep_going = h.keep_going;
    if (h.kind == FrameKind::kControl && h.control_id >= 0) {
      r.heartbeat_reply = true;
      r.reply_id = h.control_id;
    }
    return r;
  }

 private:
  BinanceSource& source_;
  SourceContext& ctx_;
};

}  // namespace

void run_live(BinanceSource& source, SourceContext& ctx, const ws::ClientOptions& options) {
  BinanceHandler handler(source, ctx);
  ws::Client client(options, handler, source.host());
  client.run(ctx);
}

}  // namespace sluice::binance
