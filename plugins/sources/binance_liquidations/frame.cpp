// Binance `forceOrder` frame parsing with simdjson, and the normalised event it becomes.
#include "frame.hpp"

#include <charconv>
#include <cmath>

namespace sluice::binance {
namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;
using simdjson::dom::object;

const char* type_name(element_type t) {
  switch (t) {
    case element_type::ARRAY: return "an array";
    case element_type::OBJECT: return "an object";
    case element_type::INT64:
    case element_type::UINT64:
    case element_type::DOUBLE: return "a number";
    case element_type::STRING: return "a string";
    case element_type::BOOL: return "a boolean";
    case element_type::NULL_VALUE: return "null";
  }
  return "a value";
}

// Error texts quote at most this much of a bad value.
constexpr size_t kShownValueBytes = 40;

std::string shown(std::string_view text) {
  if (text.size() <= kShownValueBytes) return "\"" + std::string(text) + "\"";
  return "\"" + std::string(text.substr(0, kShownValueBytes)) + "…\"";
}

class Reader {
 public:
  Reader(object obj, std::string_view prefix, std::string& error)
      : obj_(obj), prefix_(prefix), error_(error) {}

  bool find(std::string_view key, element& out) {
    if (obj_.at_key(key).get(out) == simdjson::SUCCESS) return true;
    error_ = "missing field \"" + name(key) + "\"";
    return false;
  }
  bool string(std::string_view key, std::string_view& out) {
    element e;
    if (!find(key, e)) return false;
    if (e.get_string().get(out) == simdjson::SUCCESS) return true;
    error_ = wrong(key, "a string", e);
    return false;
  }
  // Binance sends decimals as strings; plain JSON numbers are accepted as well.
  bool decimal(std::string_view key, double& out, std::string_view& text) {
    element e;
    if (!find(key, e)) return false;
    if (e.is_number()) {
      out = double(e);
      text = {};
    } else if (e.get_string().get(text) == simdjson::SUCCESS) {
      if (!parse_decimal(text, out)) {
        error_ = "field \"" + name(key) + "\": " + shown(text) + " is not a decimal number";
        return false;
      }
    } else {
      error_ = wrong(key, "a decimal string or number", e);
      return false;
    }
    if (!std::isfinite(out) || out < 0) {
      error_ = "field \"" + name(key) + "\": must be a finite number >= 0";
      return false;
    }
    return true;
  }
  // Epoch milliseconds: an integer (a string of digits is accepted too).
  bool millis(std::string_view key, int64_t& out) {
    element e;
    if (!find(key, e)) return false;
    if (e.get_int64().get(out) == simdjson::SUCCESS) {
      if (out >= 0) return true;
    } else if (std::string_view text; e.get_string().get(text) == simdjson::SUCCESS) {
      auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
      if (ec == std::errc() && end == text.data() + text.size() && out >= 0) return true;
    }
    error_ = wrong(key, "epoch milliseconds (an integer >= 0)", e);
    return false;
  }

 private:
  std::string name(std::string_view key) const { return std::string(prefix_) + std::string(key); }
  std::string wrong(std::string_view key, const char* expected, element e) const {
    std::string got = type_name(e.type());
    if (e.is_string()) got += " " + shown(std::string_view(e));
    if (e.is_number()) got += " " + simdjson::minify(e);
    return "field \"" + name(key) + "\": expected " + expected + ", got " + got;
  }

  object obj_;
  std::string_view prefix_;
  std::string& error_;
};

}  // namespace

bool parse_decimal(std::string_view text, double& out) {
  if (text.empty() || text.front() == '+') return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

FrameResult FrameParser::parse(std::string_view frame, Liquidation& out) {
  FrameResult r;
  // simdjson reads up to SIMDJSON_PADDING bytes past the text; a reused buffer makes that safe
  // for frames from any source without allocating in the steady state.
  padded_.reserve(frame.size() + simdjson::SIMDJSON_PADDING);
  padded_.assign(frame);
  element root;
  if (auto error = json_.parse(padded_.data(), padded_.size(), false).get(root);
      error != simdjson::SUCCESS) {
    r.reason = std::string("invalid JSON: ") + simdjson::error_message(error);
    return r;
  }
  object obj;
  if (root.get_object().get(obj) != simdjson::SUCCESS) {
    r.reason = std::string("expected a JSON object, got ") + type_name(root.type());
    return r;
  }
  if (element result; obj.at_key("result").get(result) == simdjson::SUCCESS) {
    r.kind = FrameKind::kControl;
    if (element id; obj.at_key("id").get(id) == simdjson::SUCCESS) {
      if (id.get_int64().get(r.control_id) != simdjson::SUCCESS) r.control_id = -1;
    }
    return r;
  }
  // {"code":2,"msg":"Invalid request: …"}; an object that also has "e" is judged as a frame.
  if (element code; obj.at_key("code").get(code) == simdjson::SUCCESS && obj.at_key("e").error()) {
    r.kind = FrameKind::kControlError;
    std::string_view msg;
    if (obj.at_key("msg").get_string().get(msg) != simdjson::SUCCESS) msg = "(no message)";
    r.reason = "code " + simdjson::minify(code) + ": " + std::string(msg);
    return r;
  }
  std::string_view prefix;
  if (element data; obj.at_key("data").get(data) == simdjson::SUCCESS) {
    if (data.get_object().get(obj) != simdjson::SUCCESS) {
      r.reason = std::string("field \"data\": expected an object, got ") + type_name(data.type());
      return r;
    }
    prefix = "data.";
  }
  Reader top(obj, prefix, r.reason);
  std::string_view event_type;
  if (!top.string("e", event_type)) return r;
  if (event_type != "forceOrder") {
    r.reason = "field \"" + std::string(prefix) + "e\": expected \"forceOrder\", got " +
               shown(event_type);
    return r;
  }
  if (!top.millis("E", out.event_time_ms)) return r;
  element order_element;
  if (!top.find("o", order_element)) return r;
  const std::string order_prefix = std::string(prefix) + "o.";
  object order;
  if (order_element.get_object().get(order) != simdjson::SUCCESS) {
    r.reason = "field \"" + std::string(prefix) + "o\": expected an object, got " +
               type_name(order_element.type());
    return r;
  }
  Reader o(order, order_prefix, r.reason);
  std::string_view price_text;
  std::string_view avg_text;
  std::string_view quantity_text;
  if (!o.string("s", out.symbol)) return r;
  if (out.symbol.empty()) {
    r.reason = "field \"" + order_prefix + "s\": the symbol is empty";
    return r;
  }
  if (!o.string("S", out.side)) return r;
  if (out.side != "BUY" && out.side != "SELL") {
    r.reason = "field \"" + order_prefix + "S\": expected \"BUY\" or \"SELL\", got " +
               shown(out.side);
    return r;
  }
  if (!o.string("o", out.order_type) || !o.string("X", out.status) ||
      !o.decimal("p", out.price, price_text) || !o.decimal("ap", out.avg_price, avg_text) ||
      !o.decimal("z", out.quantity, quantity_text) || !o.millis("T", out.trade_time_ms)) {
    return r;
  }
  r.kind = FrameKind::kLiquidation;
  return r;
}

void build_event(const Liquidation& liq, std::string_view raw, EventBuilder& builder) {
  // Added in name order, so the builder's sort has nothing to move.
  builder.event_time_ns(liq.event_time_ms * 1'000'000).key(liq.symbol);
  builder.field("avg_price", liq.avg_price)
      .field("exchange", std::string_view("binance"))
      .field("liquidated", std::string_view(liq.side == "SELL" ? "long" : "short"))
      .field("notional_usd", liq.avg_price * liq.quantity)
      .field("order_type", liq.order_type)
      .field("price", liq.price)
      .field("quantity", liq.quantity)
      .field("raw", raw)
      .field("side", liq.side)
      .field("status", liq.status)
      .field("symbol", liq.symbol)
      .field("trade_time_ms", liq.trade_time_ms);
}

}  // namespace sluice::binance
