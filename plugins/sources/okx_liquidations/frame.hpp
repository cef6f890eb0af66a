// OKX v5 public WebSocket messages → liquidation rows, and the instruments list that values
// their contracts.
//
// One parser serves the live stream, recordings and pasted messages. It never throws: a message
// is a push of liquidation details, a subscription ack, a pong, a refusal or notice, or a
// precise reason why it is none of them. A push may hold several instruments with several
// details each; a bad detail is reported without losing the good ones beside it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <simdjson.h>

#include "sluice/event.hpp"

namespace sluice::okx {

// One entry of data[].details[] with its instrument.
struct Row {
  std::string_view instrument;  // data[].instId, e.g. "BTC-USDT-SWAP"
  std::string_view side;        // details[].side: buy | sell, the liquidation order's side
  std::string_view pos_side;    // details[].posSide: long | short | net ("" when absent)
  double price = 0;             // details[].bkPx, the bankruptcy price
  double contracts = 0;         // details[].sz, in contracts
  int64_t time_ms = 0;          // details[].ts
};

enum class MessageKind {
  kData,     // a push: rows (and maybe row_errors)
  kAck,      // {"event":"subscribe",…}
  kPong,     // the text "pong"
  kRefused,  // {"event":"error","code":…,"msg":…}
  kNotice,   // {"event":"notice",…}: e.g. a coming service upgrade disconnect
  kBad,
};

struct Message {
  MessageKind kind = MessageKind::kBad;
  std::string reason;  // kBad: what is wrong; kRefused/kNotice: the server's code and message
  std::vector<Row> rows;
  std::vector<std::string> row_errors;
  // One reason per readable detail whose time is outside 2000..2200; counted apart from
  // unreadable details.
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

// What values one contract.
struct Contract {
  double value = 0;      // ctVal
  bool inverse = false;  // ctVal is in USD (coin-margined), not in the base currency
};

struct InstrumentHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using Contracts = std::unordered_map<std::string, Contract, InstrumentHash, std::equal_to<>>;

// Whether an instrument is coin-margined: its quote currency is USD ("BTC-USD-SWAP"), so ctVal is
// in USD. OKX's USDT and USDC contracts are linear, with ctVal in the base currency.
bool is_inverse(std::string_view instrument);

// The symbol of an instrument as the other exchanges spell it: base + quote ("BTC-USDT-SWAP" →
// "BTCUSDT", "BTC-USD-250328" → "BTCUSD").
std::string symbol_of(std::string_view instrument);

// Whether the liquidated position was long: posSide long/short says it; in net mode (posSide
// "net" or absent) a sell order liquidates a long.
bool long_liquidated(const Row& row);

// USD notional: contracts × ctVal × bkPx for linear contracts, contracts × ctVal for inverse.
double notional_usd(const Row& row, const Contract& contract);

// Quantity in the base currency: contracts × ctVal for linear contracts, contracts × ctVal /
// bkPx for inverse ones.
double base_quantity(const Row& row, const Contract& contract);

// Reads GET /api/v5/public/instruments: {"code":"0","data":[{"instId","ctVal","ctType",…}]}.
// Instruments without a usable ctVal are left out. nullopt with *error set when the body is not
// such a reply (or code is not "0").
std::optional<Contracts> parse_instruments(std::string_view body, std::string* error);

// Adds the normalised fields (and key, event time) of one row to a reset builder; raw is the
// whole message as received.
void build_event(const Row& row, std::string_view symbol, const Contract& contract,
                 std::string_view raw, EventBuilder& builder);

}  // namespace sluice::okx
