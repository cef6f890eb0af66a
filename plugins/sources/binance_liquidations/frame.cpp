// Binance `forceOrder` frame parsing with simdjson, and the normalised event it becomes.
#include "frame.hpp"

#include <charconv>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "time_range.hpp"

namespace sluice::binance {
namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;
using simdjson::dom::object;

const char* type_name(element_type t) {
  switch (t) {
    case element_type::ARRAY:
      return "an array";
    case element_type::OBJECT:
      return "an object";
    case element_type::INT64:
    case element_type::UINT64:
    case element_type::DOUBLE:
      return "a number";
    case element_type::STRING:
      return "a string";
    case element_type::BOOL:
      return "a boolean";
    case element_type::NULL_VALUE:
      return "null";
  }
  return "a value";
}

// Error texts quote at most this much of a bad value.
constexpr size_t kShownValueBytes = 40;

std::string shown(std::string_view text) {
  if (text.size() <= kShownValueBytes) return "\"" + std::string(text) + "\"";
  return "\"" + std::string(text.substr(0, kShownValueBytes)) + "…\"";
}

// The first value of each wanted key of one object, gathered in one pass over its members:
// looking the keys up one by one would scan the object once per key.
struct Members {
  static constexpr int kMax = 8;
  std::array<element, kMax> value;
  uint32_t found = 0;  // bit i set: value[i] holds the key's value

  bool has(int i) const { return ((found >> i) & 1U) != 0; }
  // index(key) is the slot of a wanted key, or -1.
  template <class Index>
  void gather(object obj, Index index) {
    for (auto [key, v] : obj) {
      const int i = index(key);
      if (i >= 0 && !has(i)) {
        found |= 1U << i;
        value[static_cast<size_t>(i)] = v;
      }
    }
  }
};

// Keys read from a frame object (or from its combined-stream "data" object).
enum TopKey { kResult, kId, kCode, kMsg, kData, kType, kEventTime, kOrder };

int top_key(std::string_view k) {
  switch (k.size()) {
    case 1:
      return k[0] == 'e' ? kType : k[0] == 'E' ? kEventTime : k[0] == 'o' ? kOrder : -1;
    case 2:
      return k == "id" ? kId : -1;
    case 3:
      return k == "msg" ? kMsg : -1;
    case 4:
      return k == "code" ? kCode : k == "data" ? kData : -1;
    case 6:
      return k == "result" ? kResult : -1;
    default:
      return -1;
  }
}

// Keys read from the order object "o".
enum OrderKey { kSymbol, kSide, kOrderType, kStatus, kPrice, kAvgPrice, kFilled, kTradeTime };

int order_key(std::string_view k) {
  if (k.size() == 1) {
    switch (k[0]) {
      case 's':
        return kSymbol;
      case 'S':
        return kSide;
      case 'o':
        return kOrderType;
      case 'X':
        return kStatus;
      case 'p':
        return kPrice;
      case 'z':
        return kFilled;
      case 'T':
        return kTradeTime;
      default:
        return -1;
    }
  }
  return k == "ap" ? kAvgPrice : -1;
}

class Reader {
 public:
  Reader(const Members& members, std::string_view prefix, std::string& error)
      : members_(members), prefix_(prefix), error_(error) {}

  bool find(int slot, std::string_view key, element& out) {
    if (members_.has(slot)) {
      out = members_.value[static_cast<size_t>(slot)];
      return true;
    }
    error_ = "missing field \"" + name(key) + "\"";
    return false;
  }
  bool string(int slot, std::string_view key, std::string_view& out) {
    element e;
    if (!find(slot, key, e)) return false;
    if (e.get_string().get(out) == simdjson::SUCCESS) return true;
    error_ = wrong(key, "a string", e);
    return false;
  }
  // Binance sends decimals as strings; plain JSON numbers are accepted as well.
  bool decimal(int slot, std::string_view key, double& out) {
    element e;
    if (!find(slot, key, e)) return false;
    std::string_view text;
    if (e.is_number()) {
      out = double(e);
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
  bool millis(int slot, std::string_view key, int64_t& out) {
    element e;
    if (!find(slot, key, e)) return false;
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

  const Members& members_;
  std::string_view prefix_;
  std::string& error_;
};

std::string_view liquidated(const Liquidation& liq) {
  return liq.side == "SELL" ? "long" : "short";
}

double notional_usd(const Liquidation& liq) { return liq.avg_price * liq.quantity; }

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
  Members top;
  top.gather(obj, top_key);
  if (top.has(kResult)) {
    r.kind = FrameKind::kControl;
    if (top.has(kId) && top.value[kId].get_int64().get(r.control_id) != simdjson::SUCCESS) {
      r.control_id = -1;
    }
    return r;
  }
  // {"code":2,"msg":"Invalid request: …"}; an object that also has "e" is judged as a frame.
  if (top.has(kCode) && !top.has(kType)) {
    r.kind = FrameKind::kControlError;
    std::string_view msg;
    if (!top.has(kMsg) || top.value[kMsg].get_string().get(msg) != simdjson::SUCCESS) {
      msg = "(no message)";
    }
    r.reason = "code " + simdjson::minify(top.value[kCode]) + ": " + std::string(msg);
    return r;
  }
  const Members* members = &top;
  Members data;
  std::string_view prefix;
  std::string_view order_prefix = "o.";
  if (top.has(kData)) {
    object data_object;
    if (top.value[kData].get_object().get(data_object) != simdjson::SUCCESS) {
      r.reason = std::string("field \"data\": expected an object, got ") +
                 type_name(top.value[kData].type());
      return r;
    }
    data.gather(data_object, top_key);
    members = &data;
    prefix = "data.";
    order_prefix = "data.o.";
  }
  Reader frame_fields(*members, prefix, r.reason);
  std::string_view event_type;
  if (!frame_fields.string(kType, "e", event_type)) return r;
  if (event_type != "forceOrder") {
    r.reason =
        "field \"" + std::string(prefix) + "e\": expected \"forceOrder\", got " + shown(event_type);
    return r;
  }
  if (!frame_fields.millis(kEventTime, "E", out.event_time_ms)) return r;
  element order_element;
  if (!frame_fields.find(kOrder, "o", order_element)) return r;
  object order_object;
  if (order_element.get_object().get(order_object) != simdjson::SUCCESS) {
    r.reason = "field \"" + std::string(prefix) + "o\": expected an object, got " +
               type_name(order_element.type());
    return r;
  }
  Members order;
  order.gather(order_object, order_key);
  Reader o(order, order_prefix, r.reason);
  if (!o.string(kSymbol, "s", out.symbol)) return r;
  if (out.symbol.empty()) {
    r.reason = "field \"" + std::string(order_prefix) + "s\": the symbol is empty";
    return r;
  }
  if (!o.string(kSide, "S", out.side)) return r;
  if (out.side != "BUY" && out.side != "SELL") {
    r.reason = "field \"" + std::string(order_prefix) + "S\": expected \"BUY\" or \"SELL\", got " +
               shown(out.side);
    return r;
  }
  if (!o.string(kOrderType, "o", out.order_type) || !o.string(kStatus, "X", out.status) ||
      !o.decimal(kPrice, "p", out.price) || !o.decimal(kAvgPrice, "ap", out.avg_price) ||
      !o.decimal(kFilled, "z", out.quantity) || !o.millis(kTradeTime, "T", out.trade_time_ms)) {
    return r;
  }
  // Values that read well but no event can hold: checked last, so a frame that is also malformed
  // is reported as malformed.
  if (!replay::exchange_time_ok(out.event_time_ms)) {
    r.reason = replay::time_out_of_range(std::string(prefix) + "E", out.event_time_ms);
    r.out_of_range = true;
    return r;
  }
  if (!replay::exchange_time_ok(out.trade_time_ms)) {
    r.reason = replay::time_out_of_range(std::string(order_prefix) + "T", out.trade_time_ms);
    r.out_of_range = true;
    return r;
  }
  if (!std::isfinite(notional_usd(out))) {
    r.reason = "fields \"" + std::string(order_prefix) + "ap\" × \"" + std::string(order_prefix) +
               "z\": the notional overflows a double";
    r.out_of_range = true;
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
      .field("liquidated", liquidated(liq))
      .field("notional_usd", notional_usd(liq))
      .field("order_type", liq.order_type)
      .field("price", liq.price)
      .field("quantity", liq.quantity)
      .field("raw", raw)
      .field("side", liq.side)
      .field("status", liq.status)
      .field("symbol", liq.symbol)
      .field("trade_time_ms", liq.trade_time_ms);
}

EventWriter::EventWriter(std::string_view source) {
  // Placeholder scalars are non-zero: FlatBuffers leaves out a scalar equal to its default, and a
  // value that is not in the buffer cannot be patched.
  Liquidation placeholder;
  placeholder.symbol = "x";
  placeholder.side = "SELL";
  placeholder.order_type = "x";
  placeholder.status = "x";
  placeholder.price = placeholder.avg_price = placeholder.quantity = 1;
  placeholder.trade_time_ms = placeholder.event_time_ms = 1;
  EventBuilder builder;
  build_event(placeholder, "x", builder);
  builder.id(1).ingest_time_ns(1).source(source);
  const std::span<const uint8_t> built = builder.finish();
  buf_.assign(built.begin(), built.end());
  template_size_ = static_cast<uint32_t>(buf_.size());

  const uint8_t* base = buf_.data();
  auto at = [&](const void* table, flatbuffers::voffset_t slot) {
    const uint8_t* p = static_cast<const flatbuffers::Table*>(table)->GetAddressOf(slot);
    if (p == nullptr) throw std::logic_error("binance event template: a patched value is missing");
    return static_cast<uint32_t>(p - base);
  };
  const fb::Event* event = fb::GetEvent(base);
  auto field = [&](const char* name) {
    const fb::Field* f = event->fields()->LookupByKey(name);
    if (f == nullptr) throw std::logic_error(std::string("binance event template: no ") + name);
    return f;
  };
  id_at_ = at(event, fb::Event::VT_ID);
  event_time_at_ = at(event, fb::Event::VT_EVENT_TIME_NS);
  ingest_time_at_ = at(event, fb::Event::VT_INGEST_TIME_NS);
  avg_price_at_ = at(field("avg_price"), fb::Field::VT_D);
  notional_at_ = at(field("notional_usd"), fb::Field::VT_D);
  price_at_ = at(field("price"), fb::Field::VT_D);
  quantity_at_ = at(field("quantity"), fb::Field::VT_D);
  trade_time_at_ = at(field("trade_time_ms"), fb::Field::VT_I);
  text_ref_at_[kKey] = at(event, fb::Event::VT_KEY);
  text_ref_at_[kSymbol] = at(field("symbol"), fb::Field::VT_S);
  text_ref_at_[kSide] = at(field("side"), fb::Field::VT_S);
  text_ref_at_[kLiquidated] = at(field("liquidated"), fb::Field::VT_S);
  text_ref_at_[kOrderType] = at(field("order_type"), fb::Field::VT_S);
  text_ref_at_[kStatus] = at(field("status"), fb::Field::VT_S);
  text_ref_at_[kRaw] = at(field("raw"), fb::Field::VT_S);
}

std::span<const uint8_t> EventWriter::write(const Liquidation& liq, std::string_view raw,
                                            uint64_t id, int64_t ingest_time_ns) {
  const std::array<std::string_view, kTextCount> texts = {
      liq.symbol, liq.symbol, liq.side, liquidated(liq), liq.order_type, liq.status, raw};
  // Each text: a 4-byte length, the bytes, a NUL, padding to 4; the event ends padded to 8.
  size_t need = template_size_ + 8;
  for (std::string_view t : texts) need += t.size() + 8;
  if (buf_.size() < need) buf_.resize(need);
  uint8_t* p = buf_.data();
  flatbuffers::WriteScalar(p + id_at_, id);
  flatbuffers::WriteScalar(p + event_time_at_, liq.event_time_ms * 1'000'000);
  flatbuffers::WriteScalar(p + ingest_time_at_, ingest_time_ns);
  flatbuffers::WriteScalar(p + avg_price_at_, liq.avg_price);
  flatbuffers::WriteScalar(p + notional_at_, notional_usd(liq));
  flatbuffers::WriteScalar(p + price_at_, liq.price);
  flatbuffers::WriteScalar(p + quantity_at_, liq.quantity);
  flatbuffers::WriteScalar(p + trade_time_at_, liq.trade_time_ms);
  // A string must come after whatever refers to it (offsets are unsigned), as it does here.
  size_t pos = (template_size_ + 3) & ~size_t{3};
  std::memset(p + template_size_, 0, pos - template_size_);
  for (size_t k = 0; k < kTextCount; ++k) {
    const std::string_view t = texts[k];
    flatbuffers::WriteScalar(p + pos, static_cast<flatbuffers::uoffset_t>(t.size()));
    std::memcpy(p + pos + sizeof(flatbuffers::uoffset_t), t.data(), t.size());
    flatbuffers::WriteScalar(p + text_ref_at_[k],
                             static_cast<flatbuffers::uoffset_t>(pos - text_ref_at_[k]));
    const size_t end = pos + sizeof(flatbuffers::uoffset_t) + t.size();
    const size_t next = (end + 1 + 3) & ~size_t{3};  // the NUL, then padding
    std::memset(p + end, 0, next - end);
    pos = next;
  }
  const size_t size = (pos + 7) & ~size_t{7};
  std::memset(p + pos, 0, size - pos);
  return {p, size};
}

}  // namespace sluice::binance
