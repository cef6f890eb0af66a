// Bybit v5 public WebSocket messages → liquidation rows.
//
// One parser serves the live stream, recordings and pasted messages. It never throws: a message
// is a push of liquidation rows, a subscription ack, a pong, a refusal, or a precise reason why
// it is none of them. A push may hold several rows; a bad row is reported without losing the
// good ones beside it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <simdjson.h>

#include "sluice/event.hpp"

namespace sluice::bybit {

// One row of an allLiquidation push: {"T":ms,"s":symbol,"S":"Buy|Sell","v":size,"p":price}.
struct Row {
  std::string_view symbol;    // s, a view into the parsed message
  std::string_view side;      // S: the position side, Buy = a long was liquidated
  double price = 0;           // p, the bankruptcy price
  double quantity = 0;        // v
  int64_t trade_time_ms = 0;  // T
};

enum class MessageKind {
  kData,     // a push: rows (and maybe row_errors)
  kAck,      // {"op":"subscribe","success":true,…}
  kPong,     // the reply to {"op":"ping"}
  kRefused,  // {"success":false,"ret_msg":…}: the server refused a request
  kBad,
};

struct Message {
  MessageKind kind = MessageKind::kBad;
  std::string reason;         // kBad: what is wrong; kRefused: the server's op and message
  bool out_of_range = false;  // kBad: the push time is outside 2000..2200
  int64_t push_time_ms = 0;   // ts of a push
  std::vector<Row> rows;
  std::vector<std::string> row_errors;  // one reason per unreadable row of a push
  // One reason per readable row with a value beyond what an event can hold (a time outside
  // 2000..2200, a notional that overflows); counted apart from unreadable rows.
  std::vector<std::string> range_errors;
};

class Parser {
 public:
  // Reads one message into out (whose storage is reused). Views stay valid until the next parse.
  void parse(std::string_view text, Message& out);

 private:
  simdjson::dom::parser json_;
  std::string padded_;
};

// Topics per subscribe request: Bybit refuses longer args lists on some streams (10 on spot),
// so requests are batched conservatively.
inline constexpr size_t kTopicsPerRequest = 10;

// {"op":"subscribe","args":["allLiquidation.BTCUSDT",…]} messages for the symbols, at most
// kTopicsPerRequest topics each.
std::vector<std::string> subscribe_messages(const std::vector<std::string>& symbols);

// Adds the normalised fields (and key, event time) of one row to a reset builder; raw is the
// whole message as received.
void build_event(const Row& row, int64_t push_time_ms, std::string_view raw, EventBuilder& builder);

}  // namespace sluice::bybit
