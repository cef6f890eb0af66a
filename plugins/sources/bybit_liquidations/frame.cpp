// Bybit v5 message parsing with simdjson, and the normalised event a row becomes.
#include "frame.hpp"

#include <algorithm>
#include <cmath>

#include "json_reader.hpp"
#include "time_range.hpp"

namespace sluice::bybit {
namespace {

using simdjson::dom::array;
using ws::json::described;
using ws::json::element;
using ws::json::object;
using ws::json::Reader;
using ws::json::shown;
using ws::json::type_name;

}  // namespace

void Parser::parse(std::string_view text, Message& out) {
  out.kind = MessageKind::kBad;
  out.reason.clear();
  out.push_time_ms = 0;
  out.rows.clear();
  out.row_errors.clear();
  out.range_errors.clear();
  out.out_of_range = false;
  // simdjson reads up to SIMDJSON_PADDING bytes past the text; a reused buffer makes that safe.
  padded_.reserve(text.size() + simdjson::SIMDJSON_PADDING);
  padded_.assign(text);
  element root;
  if (auto error = json_.parse(padded_.data(), padded_.size(), false).get(root);
      error != simdjson::SUCCESS) {
    out.reason = std::string("invalid JSON: ") + simdjson::error_message(error);
    return;
  }
  object obj;
  if (root.get_object().get(obj) != simdjson::SUCCESS) {
    out.reason = std::string("expected a JSON object, got ") + type_name(root.type());
    return;
  }
  // Replies to requests: {"success":true,"ret_msg":"pong","op":"ping",…} on linear streams,
  // {"op":"pong",…} on others; {"success":true,"op":"subscribe",…}; {"success":false,…}.
  std::string_view op;
  if (obj.at_key("op").get_string().get(op) == simdjson::SUCCESS) {
    bool success = true;
    if (element s; obj.at_key("success").get(s) == simdjson::SUCCESS) {
      if (s.get_bool().get(success) != simdjson::SUCCESS) success = false;
    }
    std::string_view message;
    if (obj.at_key("ret_msg").get_string().get(message) != simdjson::SUCCESS) message = {};
    if (!success) {
      out.kind = MessageKind::kRefused;
      out.reason = std::string(op) + " refused: " +
                   (message.empty() ? std::string("(no message)") : std::string(message));
      return;
    }
    out.kind =
        op == "pong" || op == "ping" || message == "pong" ? MessageKind::kPong : MessageKind::kAck;
    return;
  }
  Reader top(obj, "", out.reason);
  std::string_view topic;
  if (!top.string("topic", topic)) return;
  if (!topic.starts_with("allLiquidation.")) {
    out.reason = "field \"topic\": expected \"allLiquidation.<symbol>\", got " + shown(topic);
    return;
  }
  if (!top.millis("ts", out.push_time_ms)) return;
  element data;
  if (!top.find("data", data)) return;
  array rows;
  if (data.get_array().get(rows) != simdjson::SUCCESS) {
    // Older liquidation topics pushed one object; allLiquidation pushes an array of rows.
    out.reason = "field \"data\": expected an array, got " + described(data);
    return;
  }
  if (!replay::exchange_time_ok(out.push_time_ms)) {
    // The push time is every row's event time: no row of this push can be dated.
    out.reason = replay::time_out_of_range("ts", out.push_time_ms);
    out.out_of_range = true;
    return;
  }
  out.kind = MessageKind::kData;
  size_t i = 0;
  for (element e : rows) {
    const std::string prefix = "data[" + std::to_string(i++) + "].";
    std::string error;
    object row_obj;
    if (e.get_object().get(row_obj) != simdjson::SUCCESS) {
      out.row_errors.push_back("field \"" + prefix.substr(0, prefix.size() - 1) +
                               "\": expected an object, got " + described(e));
      continue;
    }
    Reader r(row_obj, prefix, error);
    Row row;
    bool ok = r.string("s", row.symbol) && r.string("S", row.side);
    if (ok && row.symbol.empty()) {
      error = "field \"" + prefix + "s\": the symbol is empty";
      ok = false;
    }
    if (ok && row.side != "Buy" && row.side != "Sell") {
      error = "field \"" + prefix + "S\": expected \"Buy\" or \"Sell\", got " + shown(row.side);
      ok = false;
    }
    ok = ok && r.decimal("v", row.quantity) && r.decimal("p", row.price) &&
         r.millis("T", row.trade_time_ms);
    if (ok && !replay::exchange_time_ok(row.trade_time_ms)) {
      out.range_errors.push_back(replay::time_out_of_range(prefix + "T", row.trade_time_ms));
      continue;
    }
    if (ok && !std::isfinite(row.price * row.quantity)) {
      out.range_errors.push_back("fields \"" + prefix + "p\" × \"" + prefix +
                                 "v\": the notional overflows a double");
      continue;
    }
    if (ok) {
      out.rows.push_back(row);
    } else {
      out.row_errors.push_back(std::move(error));
    }
  }
}

std::vector<std::string> subscribe_messages(const std::vector<std::string>& symbols) {
  std::vector<std::string> out;
  for (size_t i = 0; i < symbols.size(); i += kTopicsPerRequest) {
    std::string m = R"({"op":"subscribe","args":[)";
    for (size_t j = i; j < std::min(symbols.size(), i + kTopicsPerRequest); ++j) {
      if (j > i) m += ',';
      m += "\"allLiquidation." + symbols[j] + "\"";
    }
    m += "]}";
    out.push_back(std::move(m));
  }
  return out;
}

void build_event(const Row& row, int64_t push_time_ms, std::string_view raw,
                 EventBuilder& builder) {
  // S is the side of the liquidated position: Buy = a long, whose liquidation order sells.
  const bool long_liquidated = row.side == "Buy";
  // Added in name order, so the builder's sort has nothing to move.
  builder.event_time_ns(push_time_ms * 1'000'000).key(row.symbol);
  builder.field("avg_price", row.price)
      .field("exchange", std::string_view("bybit"))
      .field("liquidated", std::string_view(long_liquidated ? "long" : "short"))
      .field("notional_usd", row.price * row.quantity)
      .field("order_type", std::string_view())
      .field("price", row.price)
      .field("quantity", row.quantity)
      .field("raw", raw)
      .field("side", std::string_view(long_liquidated ? "SELL" : "BUY"))
      .field("status", std::string_view())
      .field("symbol", row.symbol)
      .field("trade_time_ms", row.trade_time_ms);
}

}  // namespace sluice::bybit
