// Binance USD-M `forceOrder` frames → normalised liquidation events.
//
// One parser serves the live stream, recordings and pasted frames, so all three are read by the
// same rules. It never throws: a frame is a liquidation, a control reply, or a precise reason
// why it is neither.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

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
  std::string reason;  // kBad: what is wrong; kControlError: the server's code and message
  // kBad: a readable value beyond what an event can hold (a time outside 2000..2200, a notional
  // that overflows), counted apart from malformed frames.
  bool out_of_range = false;
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
// the frame text as received. This defines the event; EventWriter writes the same one faster.
void build_event(const Liquidation& liq, std::string_view raw, EventBuilder& builder);

// Writes the event build_event() defines, with the same fields and values, at the cost of a few
// stores and one copy of each text: a building EventBuilder copies, sorts and serialises twelve
// fields per frame, which cost more than parsing the frame. The template is build_event()'s own
// output for placeholder values, built once; per event the scalars are patched in place and the
// texts (key, symbol, side, liquidated, order_type, status, raw) are appended after the template,
// their offsets re-pointed there (the placeholder texts stay behind as a few unused bytes).
class EventWriter {
 public:
  // source: the events' source (the node name).
  explicit EventWriter(std::string_view source);

  // The event of one liquidation; the bytes stay valid until the next write().
  std::span<const uint8_t> write(const Liquidation& liq, std::string_view raw, uint64_t id,
                                 int64_t ingest_time_ns);

 private:
  enum Text { kKey, kSymbol, kSide, kLiquidated, kOrderType, kStatus, kRaw, kTextCount };

  std::vector<uint8_t> buf_;  // the template, then the texts of the current event
  uint32_t template_size_ = 0;
  // Byte positions in buf_ of the patched scalars and of each text's offset.
  uint32_t id_at_ = 0;
  uint32_t event_time_at_ = 0;
  uint32_t ingest_time_at_ = 0;
  uint32_t avg_price_at_ = 0;
  uint32_t notional_at_ = 0;
  uint32_t price_at_ = 0;
  uint32_t quantity_at_ = 0;
  uint32_t trade_time_at_ = 0;
  std::array<uint32_t, kTextCount> text_ref_at_{};
};

// A decimal number sent as a string ("34603.03", "5.99e-05"); false for anything else.
bool parse_decimal(std::string_view text, double& out);

}  // namespace sluice::binance
