// OKX v5 message and instruments parsing, and the normalised event a liquidation becomes.
#include "frame.hpp"

#include <nlohmann/json.hpp>

#include "json_reader.hpp"
#include "time_range.hpp"

namespace sluice::okx {
namespace {

using simdjson::dom::array;
using ws::json::described;
using ws::json::element;
using ws::json::object;
using ws::json::Reader;
using ws::json::shown;
using ws::json::type_name;

// The dash-separated parts of an instrument id, e.g. BTC, USDT, SWAP.
std::string_view part(std::string_view instrument, size_t index) {
  for (size_t i = 0; i < index; ++i) {
    const size_t dash = instrument.find('-');
    if (dash == std::string_view::npos) return {};
    instrument.remove_prefix(dash + 1);
  }
  return instrument.substr(0, instrument.find('-'));
}

}  // namespace

void Parser::parse(std::string_view text, Message& out) {
  out.kind = MessageKind::kBad;
  out.reason.clear();
  out.rows.clear();
  out.row_errors.clear();
  out.range_errors.clear();
  if (text == "pong") {
    out.kind = MessageKind::kPong;
    return;
  }
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
  // Events: {"event":"subscribe","arg":…}, {"event":"error","code":"60012","msg":…},
  // {"event":"notice","code":"64008","msg":…}, {"event":"channel-conn-count",…}.
  if (std::string_view event; obj.at_key("event").get_string().get(event) == simdjson::SUCCESS) {
    std::string code;
    if (element c; obj.at_key("code").get(c) == simdjson::SUCCESS) {
      std::string_view code_text;
      code = c.get_string().get(code_text) == simdjson::SUCCESS ? std::string(code_text)
                                                                : simdjson::minify(c);
    }
    std::string_view msg;
    if (obj.at_key("msg").get_string().get(msg) != simdjson::SUCCESS) msg = "(no message)";
    if (event == "error" || event == "notice") {
      out.kind = event == "error" ? MessageKind::kRefused : MessageKind::kNotice;
      out.reason = event == "error" ? "error" : "notice";
      if (!code.empty()) out.reason += " " + code;
      out.reason += ": " + std::string(msg);
      return;
    }
    out.kind = MessageKind::kAck;
    return;
  }
  Reader top(obj, "", out.reason);
  element arg;
  if (!top.find("arg", arg)) return;
  std::string_view channel;
  if (arg.at_key("channel").get_string().get(channel) != simdjson::SUCCESS ||
      channel != "liquidation-orders") {
    out.reason = "field \"arg.channel\": expected \"liquidation-orders\", got " +
                 (arg.at_key("channel").error() ? std::string("nothing")
                                                : described(arg.at_key("channel").value()));
    return;
  }
  element data;
  if (!top.find("data", data)) return;
  array instruments;
  if (data.get_array().get(instruments) != simdjson::SUCCESS) {
    out.reason = "field \"data\": expected an array, got " + described(data);
    return;
  }
  out.kind = MessageKind::kData;
  size_t i = 0;
  for (element entry : instruments) {
    const std::string prefix = "data[" + std::to_string(i++) + "].";
    std::string error;
    object entry_obj;
    if (entry.get_object().get(entry_obj) != simdjson::SUCCESS) {
      out.row_errors.push_back("field \"" + prefix.substr(0, prefix.size() - 1) +
                               "\": expected an object, got " + described(entry));
      continue;
    }
    Reader r(entry_obj, prefix, error);
    std::string_view instrument;
    element details_element;
    array details;
    if (!r.string("instId", instrument) || !r.find("details", details_element)) {
      out.row_errors.push_back(std::move(error));
      continue;
    }
    if (instrument.empty()) {
      out.row_errors.push_back("field \"" + prefix + "instId\": the instrument is empty");
      continue;
    }
    if (details_element.get_array().get(details) != simdjson::SUCCESS) {
      out.row_errors.push_back("field \"" + prefix + "details\": expected an array, got " +
                               described(details_element));
      continue;
    }
    size_t j = 0;
    for (element d : details) {
      const std::string detail_prefix = prefix + "details[" + std::to_string(j++) + "].";
      object detail;
      if (d.get_object().get(detail) != simdjson::SUCCESS) {
        out.row_errors.push_back("field \"" + detail_prefix.substr(0, detail_prefix.size() - 1) +
                                 "\": expected an object, got " + described(d));
        continue;
      }
      Reader dr(detail, detail_prefix, error);
      Row row;
      row.instrument = instrument;
      bool ok = dr.string("side", row.side);
      if (ok && row.side != "buy" && row.side != "sell") {
        error = "field \"" + detail_prefix + "side\": expected \"buy\" or \"sell\", got " +
                shown(row.side);
        ok = false;
      }
      if (ok && detail.at_key("posSide").error() == simdjson::SUCCESS) {
        ok = dr.string("posSide", row.pos_side);
        if (ok && row.pos_side != "long" && row.pos_side != "short" && row.pos_side != "net" &&
            !row.pos_side.empty()) {
          error = "field \"" + detail_prefix + "posSide\": expected \"long\", \"short\" or " +
                  "\"net\", got " + shown(row.pos_side);
          ok = false;
        }
      }
      ok = ok && dr.decimal("sz", row.contracts) && dr.decimal("bkPx", row.price) &&
           dr.millis("ts", row.time_ms);
      if (ok && !replay::exchange_time_ok(row.time_ms)) {
        out.range_errors.push_back(replay::time_out_of_range(detail_prefix + "ts", row.time_ms));
        continue;
      }
      if (ok) {
        out.rows.push_back(row);
      } else {
        out.row_errors.push_back(std::move(error));
      }
    }
  }
}

bool is_inverse(std::string_view instrument) { return part(instrument, 1) == "USD"; }

std::string symbol_of(std::string_view instrument) {
  return std::string(part(instrument, 0)) + std::string(part(instrument, 1));
}

bool long_liquidated(const Row& row) {
  if (row.pos_side == "long") return true;
  if (row.pos_side == "short") return false;
  return row.side == "sell";
}

double notional_usd(const Row& row, const Contract& contract) {
  const double units = row.contracts * contract.value;
  return contract.inverse ? units : units * row.price;
}

double base_quantity(const Row& row, const Contract& contract) {
  const double units = row.contracts * contract.value;
  if (!contract.inverse) return units;
  return row.price > 0 ? units / row.price : 0;
}

std::optional<Contracts> parse_instruments(std::string_view body, std::string* error) {
  const nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    if (error) *error = "the reply is not a JSON object";
    return std::nullopt;
  }
  const auto code = j.find("code");
  if (code == j.end() || !(*code == "0" || *code == 0)) {
    if (error) {
      *error = "OKX answered code " + (code == j.end() ? std::string("(none)") : code->dump());
      if (auto msg = j.find("msg"); msg != j.end() && msg->is_string()) {
        *error += ": " + msg->get<std::string>();
      }
    }
    return std::nullopt;
  }
  const auto data = j.find("data");
  if (data == j.end() || !data->is_array()) {
    if (error) *error = "the reply has no \"data\" array";
    return std::nullopt;
  }
  Contracts out;
  for (const auto& inst : *data) {
    if (!inst.is_object()) continue;
    const auto id = inst.find("instId");
    const auto value = inst.find("ctVal");
    if (id == inst.end() || !id->is_string() || value == inst.end()) continue;
    double v = 0;
    if (value->is_string()) {
      if (!ws::json::parse_decimal(value->get<std::string>(), v)) continue;
    } else if (value->is_number()) {
      v = value->get<double>();
    } else {
      continue;
    }
    if (!(v > 0) || !std::isfinite(v)) continue;
    Contract c{v, is_inverse(id->get<std::string>())};
    if (auto type = inst.find("ctType"); type != inst.end() && type->is_string()) {
      c.inverse = *type == "inverse";
    }
    out.emplace(id->get<std::string>(), c);
  }
  return out;
}

void build_event(const Row& row, std::string_view symbol, const Contract& contract,
                 std::string_view raw, EventBuilder& builder) {
  const bool is_long = long_liquidated(row);
  // Added in name order, so the builder's sort has nothing to move.
  builder.event_time_ns(row.time_ms * 1'000'000).key(symbol);
  builder.field("avg_price", row.price)
      .field("contract_value", contract.value)
      .field("contracts", row.contracts)
      .field("exchange", std::string_view("okx"))
      .field("instrument", row.instrument)
      .field("liquidated", std::string_view(is_long ? "long" : "short"))
      .field("notional_usd", notional_usd(row, contract))
      .field("order_type", std::string_view())
      .field("price", row.price)
      .field("quantity", base_quantity(row, contract))
      .field("raw", raw)
      .field("side", std::string_view(is_long ? "SELL" : "BUY"))
      .field("status", std::string_view())
      .field("symbol", symbol)
      .field("trade_time_ms", row.time_ms);
}

}  // namespace sluice::okx
