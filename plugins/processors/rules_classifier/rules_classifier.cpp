// The `rules_classifier` processor (see rules_classifier.hpp).
#include "rules_classifier.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <optional>

namespace sluice::rules_classifier {
namespace {

// Which position was force-closed, and what the exchange's forced order does to the market.
struct Liquidation {
  std::string_view position;   // "long" | "short"
  std::string_view pressure;   // "selling" | "buying"
};

constexpr Liquidation kLong{"long", "selling"};
constexpr Liquidation kShort{"short", "buying"};

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i] >= 'A' && a[i] <= 'Z' ? static_cast<char>(a[i] - 'A' + 'a') : a[i];
    if (x != b[i]) return false;
  }
  return true;
}

// A `liquidated` field, when a source set one, says it directly. Otherwise `side` is the side of
// the exchange's forced order: it SELLs to close a long and BUYs to close a short.
std::optional<Liquidation> liquidation_of(const EventView& ev) {
  if (auto liquidated = ev.string("liquidated")) {
    if (*liquidated == "long") return kLong;
    if (*liquidated == "short") return kShort;
    return std::nullopt;
  }
  if (auto side = ev.string("side")) {
    if (iequals(*side, "sell")) return kLong;
    if (iequals(*side, "buy")) return kShort;
  }
  return std::nullopt;
}

const char* level_name(RiskLevel level) {
  switch (level) {
    case RiskLevel::kHigh: return "HIGH";
    case RiskLevel::kMedium: return "MEDIUM";
    case RiskLevel::kLow: return "LOW";
  }
  return "LOW";
}

const char* level_labels(RiskLevel level) {
  switch (level) {
    case RiskLevel::kHigh: return "risk_level=\"HIGH\"";
    case RiskLevel::kMedium: return "risk_level=\"MEDIUM\"";
    case RiskLevel::kLow: return "risk_level=\"LOW\"";
  }
  return "risk_level=\"LOW\"";
}

// The shortest decimal text that reads back as the same double, never in exponent form, so a
// price shows as recorded: 3841.71, 0.0000599.
std::string format_price(double price) {
  char buf[512];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), price, std::chars_format::fixed);
  if (ec != std::errc{}) return {};
  return std::string(buf, end);
}

// The price the position was closed at: the average fill, else the order price.
std::optional<double> price_of(const EventView& ev) {
  for (std::string_view name : {"avg_price", "price"}) {
    auto p = ev.number(name);
    if (p && std::isfinite(*p) && *p > 0) return p;
  }
  return std::nullopt;
}

std::string quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

// The host hands options over as JSON, which has no NaN or infinity: TOML's `nan` and `inf`
// arrive as null, which Config would report as a missing option.
double amount_option(const Config& config, const char* key) {
  const Json& all = config.json();
  if (auto it = all.find(key); it != all.end() && it->is_null()) {
    throw OptionError(key, "must be a finite amount");
  }
  return config.f64(key);
}

}  // namespace

std::string format_usd(double amount) {
  if (amount < 999.5) return "$" + std::to_string(std::llround(amount));
  static constexpr const char* kUnits[] = {"K", "M", "B", "T"};
  size_t unit = 0;
  double x = amount / 1000;
  // 999.95 rounds to 1000.0 at one decimal, which reads better as 1 of the next unit.
  while (x >= 999.95 && unit + 1 < std::size(kUnits)) {
    x /= 1000;
    ++unit;
  }
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.1f", x);
  std::string text(buf);
  if (text.ends_with(".0")) text.resize(text.size() - 2);
  return "$" + text + kUnits[unit];
}

RulesClassifier::RulesClassifier(const Host& host, const Config& config)
    : host_(host),
      high_usd_(amount_option(config, "high_usd")),
      medium_usd_(amount_option(config, "medium_usd")),
      classified_{host.counter("rules_classified_total", level_labels(RiskLevel::kLow)),
                  host.counter("rules_classified_total", level_labels(RiskLevel::kMedium)),
                  host.counter("rules_classified_total", level_labels(RiskLevel::kHigh))} {
  if (high_usd_ <= 0) throw OptionError("high_usd", "must be a positive amount");
  if (medium_usd_ < 0) throw OptionError("medium_usd", "must not be negative");
  if (medium_usd_ >= high_usd_) {
    throw OptionError("medium_usd", "must be below high_usd (" + format_price(high_usd_) + ")");
  }
  for (std::string& symbol : config.strings("watch_symbols")) {
    if (symbol.empty()) throw OptionError("watch_symbols", "must not hold an empty symbol");
    watch_symbols_.insert(std::move(symbol));
  }
}

RiskLevel RulesClassifier::level_for(double notional_usd, std::string_view symbol) const {
  RiskLevel level = notional_usd >= high_usd_     ? RiskLevel::kHigh
                    : notional_usd >= medium_usd_ ? RiskLevel::kMedium
                                                  : RiskLevel::kLow;
  if (level != RiskLevel::kHigh && watch_symbols_.contains(symbol)) {
    level = level == RiskLevel::kLow ? RiskLevel::kMedium : RiskLevel::kHigh;
  }
  return level;
}

void RulesClassifier::process(Call call) {
  EventView ev = call.event();
  std::optional<double> notional = ev.number("notional_usd");
  if (!notional) {
    return call.fail(Status::kRejected, ev.field("notional_usd") == nullptr
                                            ? "event has no field 'notional_usd'"
                                            : "field 'notional_usd' is not a number");
  }
  if (!std::isfinite(*notional) || *notional < 0) {
    return call.fail(Status::kRejected, "field 'notional_usd' is " + format_price(*notional) +
                                            ", not an amount in USD");
  }
  std::optional<std::string_view> symbol = ev.string("symbol");
  if (!symbol || symbol->empty()) {
    return call.fail(Status::kRejected, "event has no string field 'symbol'");
  }
  std::optional<Liquidation> liquidation = liquidation_of(ev);
  if (!liquidation) {
    if (auto liquidated = ev.string("liquidated")) {
      return call.fail(Status::kRejected, "field 'liquidated' is " + quoted(*liquidated) +
                                              ", expected 'long' or 'short'");
    }
    if (auto side = ev.string("side")) {
      return call.fail(Status::kRejected,
                       "field 'side' is " + quoted(*side) + ", expected 'BUY' or 'SELL'");
    }
    return call.fail(Status::kRejected, "event has neither a 'liquidated' nor a 'side' field");
  }

  RiskLevel level = level_for(*notional, *symbol);
  summary_.assign(*symbol)
      .append(" ")
      .append(liquidation->position)
      .append(" liquidated: ")
      .append(format_usd(*notional))
      .append(" of forced ")
      .append(liquidation->pressure);
  if (auto price = price_of(ev)) summary_.append(" at ").append(format_price(*price));
  summary_.append(".");

  recommendation_.clear();
  bool is_long = liquidation->position == kLong.position;
  switch (level) {
    case RiskLevel::kHigh:
      recommendation_.append("Check ").append(*symbol).append(
          is_long ? " long exposure now: forced selling this large can cascade into further "
                    "long liquidations."
                  : " short exposure now: forced buying this large can squeeze further shorts.");
      break;
    case RiskLevel::kMedium:
      recommendation_.append("Watch ").append(*symbol).append(
          is_long ? " for follow-through selling; review stops on long positions."
                  : " for a short squeeze; review stops on short positions.");
      break;
    case RiskLevel::kLow:
      recommendation_.append("No action needed: a routine liquidation size for ")
          .append(*symbol)
          .append(".");
      break;
  }

  builder_.extend(ev);  // only the fields below are encoded; the event is embedded as it is
  builder_.field("risk_level", level_name(level))
      .field("summary", summary_)
      .field("recommendation", recommendation_)
      .field("classifier", "rules");
  if (!ev.string("liquidated")) builder_.field("liquidated", liquidation->position);
  call.emit(builder_.finish());
  classified_[static_cast<size_t>(level)].add();
  call.ok();
}

}  // namespace sluice::rules_classifier

SLUICE_PLUGIN(sluice::rules_classifier::RulesClassifier, "rules_classifier", "0.1.0",
              "Deterministic liquidation risk (LOW|MEDIUM|HIGH) with a summary and a "
              "recommendation, from notional thresholds, the liquidated side and a watch list",
              sluice::rules_classifier::kOptions);
