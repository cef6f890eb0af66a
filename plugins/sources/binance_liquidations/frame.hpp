// Binance USD-M `forceOrder` frames → normalised liquidation events.
//
// One parser serves the live stream, recordings and pasted frames, so all three are read by the
// same rules. It never throws: a frame is a liquidation, a control reply, or a precise reason
// why it is neither.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <simdjson.h>

#include "sluice/event.hpp"

namespace sluice::binance {

// The normalised fields of one liquidation, read from a frame.
struct Liquidation {
  std::string_view symbol;      // o.s, a view into the parsed frame
  std::string_view side;        // o.S: BUY | SELL
  std::string_view order_type;  // o.o
  std::string_view status;      // o.X
  double price = 0;             // o.p
  double avg_price = 0;         // o.ap
  double quantity = 0;          // o.z, the filled accumulated quantity
  int64_t trade_time_ms = 0;    // o.T
  int64_t event_time_ms = 0;    // E
};

enum class FrameKind {
  kLiquidation,
  kControl,       // {"result":…,"id":n}: a reply to SUBSCRIBE / LIST_SUBSCRIPTIONS
  kControlError,  // {"code":n,"msg":…}: the server refused a request
  kBad,
};

struct FrameResult {
  FrameKind kind = FrameKind::kBad;
  std::string reason;   // kBad: what is wrong; kControlError: the server's code and message
  int64_t control_id = -1;  // kControl: the reply's id, -1 when it has none
};

class FrameParser {
 public:
  // Reads one frame. The Liquidation's views stay valid until the next parse().
  FrameResult parse(std::string_view frame, Liquidation& out);

 private:
  simdjson::dom::parser json_;
  std::string padded_;
};

// Adds the normalised fields (and key, event time) of a liquidation to a reset builder; raw is
// the frame text as received.
void build_event(const Liquidation& liq, std::string_view raw, EventBuilder& builder);

// A decimal number sent as a string ("34603.03", "5.99e-05"); false for anything else.
bool parse_decimal(std::string_view text, double& out);

}  // namespace sluice::binance
