// Tests of the `rules_classifier` processor through the real loader and host: risk levels from
// the thresholds and the watch list, the summary and recommendation texts for long and short
// liquidations, the copy of every original field, refusals of events it cannot judge, option
// errors, and the classification of every real recorded liquidation bundled in pipelines/data/.
#include <gtest/gtest.h>

#include <charconv>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "plugin_harness.hpp"
#include "sluice/event.hpp"

namespace {

using sluice::Status;
using sluice::testing::CallResult;
using sluice::testing::event_to_json;
using sluice::testing::make_event;
using sluice::testing::PluginHarness;
using Json = nlohmann::json;

// The message a harness constructor throws for the given options, or "" if none.
std::string create_error(const std::string& options) {
  try {
    PluginHarness rules("processor", "rules_classifier", options);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

// The one event a successful call emitted, as JSON fields.
Json classified(const CallResult& r) {
  EXPECT_TRUE(r.outcome.ok()) << r.outcome.message;
  EXPECT_EQ(r.emitted.size(), 1u);
  if (r.emitted.size() != 1) return Json::object();
  EXPECT_EQ(r.emitted[0].output, "");
  EXPECT_FALSE(r.forwarded_same_bytes);
  return event_to_json(r.emitted[0].bytes)["fields"];
}

void expect_rejected(const CallResult& r, const std::string& message) {
  EXPECT_EQ(r.outcome.status, Status::kRejected);
  EXPECT_EQ(r.outcome.message, message);
  EXPECT_TRUE(r.emitted.empty());
}

std::vector<uint8_t> liquidation(const std::string& symbol, const std::string& side,
                                 double avg_price, double notional_usd) {
  return make_event({{"exchange", "binance"},
                     {"symbol", symbol},
                     {"side", side},
                     {"avg_price", avg_price},
                     {"notional_usd", notional_usd}},
                    symbol);
}

// Rows of pipelines/data/liquidations_sample.csv (real Binance liquidations, see SOURCES.md there)
// as the replay pipeline's file source emits them: the CSV columns with usd_value renamed to
// notional_usd, key = symbol, source = binance.
std::vector<std::vector<uint8_t>> recorded_liquidations() {
  std::ifstream in(std::string(SLUICE_SOURCE_DIR) + "/pipelines/data/liquidations_sample.csv");
  if (!in) throw std::runtime_error("cannot read liquidations_sample.csv");
  std::string line;
  std::getline(in, line);  // header: timestamp,symbol,side,avg_price,filled_qty,usd_value
  std::vector<std::vector<uint8_t>> events;
  sluice::EventBuilder b;
  auto number = [](const std::string& s) {
    double v = 0;
    std::from_chars(s.data(), s.data() + s.size(), v);
    return v;
  };
  while (std::getline(in, line)) {
    std::vector<std::string> cols;
    std::stringstream ss(line);
    for (std::string col; std::getline(ss, col, ',');) cols.push_back(col);
    if (cols.size() != 6) throw std::runtime_error("bad row: " + line);
    b.reset()
        .id(events.size() + 1)
        .source("binance")
        .key(cols[1])
        .field("timestamp", cols[0])
        .field("symbol", cols[1])
        .field("side", cols[2])
        .field("avg_price", number(cols[3]))
        .field("filled_qty", number(cols[4]))
        .field("notional_usd", number(cols[5]));
    auto bytes = b.finish();
    events.emplace_back(bytes.begin(), bytes.end());
  }
  return events;
}

TEST(RulesClassifier, LongLiquidationOfWatchedSymbolRanksOneLevelUp) {
  PluginHarness rules("processor", "rules_classifier", "");
  // Recorded 2025-10-22T09:39:23.368: ETHUSDT SELL 16.289 @ 3841.71.
  Json f = classified(rules.process(liquidation("ETHUSDT", "SELL", 3841.71, 62577.61419000001)));
  EXPECT_EQ(f["risk_level"], "MEDIUM");
  EXPECT_EQ(f["summary"], "ETHUSDT long liquidated: $62.6K of forced selling at 3841.71.");
  EXPECT_EQ(f["recommendation"],
            "Watch ETHUSDT for follow-through selling; review stops on long positions.");
  EXPECT_EQ(f["classifier"], "rules");
  EXPECT_EQ(f["liquidated"], "long");
}

TEST(RulesClassifier, ShortLiquidationIsForcedBuying) {
  PluginHarness rules("processor", "rules_classifier", "high_usd = 10000.0\nmedium_usd = 1000.0");
  // Recorded 2025-10-22T09:38:55.114: EVAAUSDT BUY 1555.1 @ 7.293308.
  Json f = classified(rules.process(liquidation("EVAAUSDT", "BUY", 7.293308, 11341.8232708)));
  EXPECT_EQ(f["risk_level"], "HIGH");
  EXPECT_EQ(f["summary"], "EVAAUSDT short liquidated: $11.3K of forced buying at 7.293308.");
  EXPECT_EQ(f["recommendation"],
            "Check EVAAUSDT short exposure now: forced buying this large can squeeze further "
            "shorts.");
  EXPECT_EQ(f["liquidated"], "short");
}

TEST(RulesClassifier, HighLongLiquidationRecommendsCheckingExposure) {
  PluginHarness rules("processor", "rules_classifier", "watch_symbols = []");
  Json f = classified(rules.process(liquidation("BTCUSDT", "SELL", 34738.38, 1234567.0)));
  EXPECT_EQ(f["risk_level"], "HIGH");
  EXPECT_EQ(f["summary"], "BTCUSDT long liquidated: $1.2M of forced selling at 34738.38.");
  EXPECT_EQ(f["recommendation"],
            "Check BTCUSDT long exposure now: forced selling this large can cascade into further "
            "long liquidations.");
}

TEST(RulesClassifier, MediumShortLiquidationWarnsOfASqueeze) {
  PluginHarness rules("processor", "rules_classifier", "");
  Json f = classified(rules.process(liquidation("SOLUSDT", "BUY", 184.22, 150000.0)));
  EXPECT_EQ(f["risk_level"], "MEDIUM");
  EXPECT_EQ(f["recommendation"],
            "Watch SOLUSDT for a short squeeze; review stops on short positions.");
}

TEST(RulesClassifier, SmallLiquidationIsLowRiskWithNoAction) {
  PluginHarness rules("processor", "rules_classifier", "");
  // Recorded 2025-10-22T09:36:42.306: SOLUSDT SELL 0.04 @ 184.22.
  Json f = classified(rules.process(liquidation("SOLUSDT", "SELL", 184.22, 7.3688)));
  EXPECT_EQ(f["risk_level"], "LOW");
  EXPECT_EQ(f["summary"], "SOLUSDT long liquidated: $7 of forced selling at 184.22.");
  EXPECT_EQ(f["recommendation"], "No action needed: a routine liquidation size for SOLUSDT.");
}

TEST(RulesClassifier, ThresholdsAreInclusiveLowerBounds) {
  PluginHarness rules("processor", "rules_classifier",
                      "high_usd = 50000\nmedium_usd = 10000\nwatch_symbols = []");
  auto level = [&](double usd) {
    return classified(rules.process(liquidation("FETUSDT", "SELL", 0.24, usd)))["risk_level"];
  };
  EXPECT_EQ(level(0), "LOW");
  EXPECT_EQ(level(9999.99), "LOW");
  EXPECT_EQ(level(10000), "MEDIUM");
  EXPECT_EQ(level(49999.99), "MEDIUM");
  EXPECT_EQ(level(50000), "HIGH");
  EXPECT_EQ(level(1e12), "HIGH");
}

TEST(RulesClassifier, WatchListBumpsLowAndMediumButHighStaysHigh) {
  PluginHarness rules("processor", "rules_classifier", R"(watch_symbols = ["FETUSDT"])");
  auto level = [&](const std::string& symbol, double usd) {
    return classified(rules.process(liquidation(symbol, "SELL", 0.24, usd)))["risk_level"];
  };
  EXPECT_EQ(level("FETUSDT", 500), "MEDIUM");
  EXPECT_EQ(level("FETUSDT", 100000), "HIGH");
  EXPECT_EQ(level("FETUSDT", 2000000), "HIGH");
  // The list replaces the default majors, and matching is exact.
  EXPECT_EQ(level("BTCUSDT", 500), "LOW");
  EXPECT_EQ(level("fetusdt", 500), "LOW");
}

TEST(RulesClassifier, DefaultWatchListHoldsTheMajors) {
  PluginHarness rules("processor", "rules_classifier", "");
  auto level = [&](const std::string& symbol, double usd) {
    return classified(rules.process(liquidation(symbol, "SELL", 1.0, usd)))["risk_level"];
  };
  EXPECT_EQ(level("BTCUSDT", 5000), "MEDIUM");
  EXPECT_EQ(level("ETHUSDT", 100000), "HIGH");
  EXPECT_EQ(level("XRPUSDT", 5000), "LOW");
}

TEST(RulesClassifier, NotionalIsFormattedInTheShortestReadableUnit) {
  PluginHarness rules("processor", "rules_classifier", "watch_symbols = []");
  auto summary = [&](double usd) {
    std::string s =
        classified(rules.process(liquidation("XUSDT", "SELL", 2.0, usd)))["summary"];
    return s.substr(s.find('$'), s.find(" of") - s.find('$'));
  };
  EXPECT_EQ(summary(0), "$0");
  EXPECT_EQ(summary(999.49), "$999");
  EXPECT_EQ(summary(999.5), "$1K");
  EXPECT_EQ(summary(1000), "$1K");
  EXPECT_EQ(summary(38430.02184), "$38.4K");
  EXPECT_EQ(summary(999940), "$999.9K");
  EXPECT_EQ(summary(999960), "$1M");
  EXPECT_EQ(summary(1234567), "$1.2M");
  EXPECT_EQ(summary(2.5e9), "$2.5B");
  EXPECT_EQ(summary(3e12), "$3T");
}

TEST(RulesClassifier, TinyPricesAreWrittenAsRecordedWithoutExponent) {
  PluginHarness rules("processor", "rules_classifier", "");
  // Recorded 2025-10-22T09:39:50.069: DOGSUSDT SELL 47933884.0 @ 5.94e-05.
  Json f = classified(rules.process(liquidation("DOGSUSDT", "SELL", 5.94e-05, 2847.2727096)));
  EXPECT_EQ(f["summary"], "DOGSUSDT long liquidated: $2.8K of forced selling at 0.0000594.");
}

TEST(RulesClassifier, FallsBackToOrderPriceAndOmitsAMissingPrice) {
  PluginHarness rules("processor", "rules_classifier", "");
  Json with_price = classified(rules.process(make_event(
      {{"symbol", "BTCUSDT"}, {"side", "SELL"}, {"price", 34603.03}, {"notional_usd", 1007.41}})));
  EXPECT_EQ(with_price["summary"], "BTCUSDT long liquidated: $1K of forced selling at 34603.03.");
  Json no_price = classified(
      rules.process(make_event({{"symbol", "BTCUSDT"}, {"side", "SELL"}, {"notional_usd", 2500}})));
  EXPECT_EQ(no_price["summary"], "BTCUSDT long liquidated: $2.5K of forced selling.");
}

TEST(RulesClassifier, LiquidatedFieldTakesPrecedenceOverSide) {
  // Bybit reports the liquidated position's side (Buy = a long was liquidated); its source says
  // so in `liquidated`, which the classifier trusts over `side`.
  PluginHarness rules("processor", "rules_classifier", "");
  Json f = classified(rules.process(make_event({{"exchange", "bybit"},
                                                {"symbol", "SOLUSDT"},
                                                {"side", "Buy"},
                                                {"liquidated", "long"},
                                                {"avg_price", 184.5},
                                                {"notional_usd", 3000.0}})));
  EXPECT_EQ(f["summary"], "SOLUSDT long liquidated: $3K of forced selling at 184.5.");
  EXPECT_EQ(f["liquidated"], "long");
  EXPECT_EQ(f["side"], "Buy");
}

TEST(RulesClassifier, SideIsMatchedWithoutRegardToCase) {
  PluginHarness rules("processor", "rules_classifier", "");
  Json f = classified(rules.process(liquidation("SOLUSDT", "Buy", 184.5, 3000.0)));
  EXPECT_EQ(f["liquidated"], "short");
}

TEST(RulesClassifier, KeepsEveryOriginalFieldAndTheEventMetadata) {
  PluginHarness rules("processor", "rules_classifier", "");
  auto input = liquidation("币安人生USDT", "SELL", 0.3004528, 10752.9052592);
  auto r = rules.process(input);
  ASSERT_EQ(r.emitted.size(), 1u);
  Json in = event_to_json(input);
  Json out = event_to_json(r.emitted[0].bytes);
  for (const auto& [name, value] : in["fields"].items()) {
    EXPECT_EQ(out["fields"][name], value) << name;
  }
  EXPECT_EQ(out["fields"].size(), in["fields"].size() + 5);
  EXPECT_EQ(out["id"], in["id"]);
  EXPECT_EQ(out["key"], "币安人生USDT");
  EXPECT_EQ(out["fields"]["summary"],
            "币安人生USDT long liquidated: $10.8K of forced selling at 0.3004528.");
}

TEST(RulesClassifier, RejectsEventsWithoutAUsableNotional) {
  PluginHarness rules("processor", "rules_classifier", "");
  expect_rejected(rules.process(make_event({{"symbol", "BTCUSDT"}, {"side", "SELL"}})),
                  "event has no field 'notional_usd'");
  expect_rejected(rules.process(make_event(
                      {{"symbol", "BTCUSDT"}, {"side", "SELL"}, {"notional_usd", "1000"}})),
                  "field 'notional_usd' is not a number");
  expect_rejected(rules.process(make_event(
                      {{"symbol", "BTCUSDT"}, {"side", "SELL"}, {"notional_usd", -5.5}})),
                  "field 'notional_usd' is -5.5, not an amount in USD");
}

TEST(RulesClassifier, RejectsEventsWithoutSymbolOrSide) {
  PluginHarness rules("processor", "rules_classifier", "");
  expect_rejected(rules.process(make_event({{"side", "SELL"}, {"notional_usd", 1000.5}})),
                  "event has no string field 'symbol'");
  expect_rejected(rules.process(make_event({{"symbol", "BTCUSDT"}, {"notional_usd", 1000.5}})),
                  "event has neither a 'liquidated' nor a 'side' field");
  expect_rejected(rules.process(make_event(
                      {{"symbol", "BTCUSDT"}, {"side", "HOLD"}, {"notional_usd", 1000.5}})),
                  "field 'side' is 'HOLD', expected 'BUY' or 'SELL'");
  expect_rejected(rules.process(make_event({{"symbol", "BTCUSDT"},
                                            {"side", "SELL"},
                                            {"liquidated", "both"},
                                            {"notional_usd", 1000.5}})),
                  "field 'liquidated' is 'both', expected 'long' or 'short'");
}

TEST(RulesClassifier, CountsClassificationsByRiskLevel) {
  PluginHarness rules("processor", "rules_classifier", "");
  rules.process(liquidation("SOLUSDT", "SELL", 184.22, 7.3688));
  rules.process(liquidation("SOLUSDT", "SELL", 184.22, 2000000));
  rules.process(make_event({{"symbol", "SOLUSDT"}, {"side", "SELL"}}));
  EXPECT_EQ(rules.counter("rules_classified_total"), 2);
}

TEST(RulesClassifier, RefusesThresholdsOutOfOrder) {
  EXPECT_EQ(create_error("high_usd = 1000.0\nmedium_usd = 1000.0"),
            "<options>:2:14: error: processors.test: option 'medium_usd': must be below high_usd "
            "(1000)");
  EXPECT_EQ(create_error("medium_usd = 2000000"),
            "<options>:1:14: error: processors.test: option 'medium_usd': must be below high_usd "
            "(1000000)");
  EXPECT_EQ(create_error("medium_usd = -1"),
            "<options>:1:14: error: processors.test: option 'medium_usd': must not be negative");
  EXPECT_EQ(create_error("high_usd = 0"),
            "<options>:1:12: error: processors.test: option 'high_usd': must be a positive "
            "amount");
  EXPECT_EQ(create_error("high_usd = nan"),
            "<options>:1:12: error: processors.test: option 'high_usd' must be a finite number");
  EXPECT_EQ(create_error("medium_usd = -inf"),
            "<options>:1:14: error: processors.test: option 'medium_usd' must be a finite number");
}

TEST(RulesClassifier, RefusesAnEmptyWatchedSymbol) {
  EXPECT_EQ(create_error(R"(watch_symbols = ["BTCUSDT", ""])"),
            "<options>:1:17: error: processors.test: option 'watch_symbols': must not hold an "
            "empty symbol");
}

TEST(RulesClassifier, RefusesAThresholdOfTheWrongType) {
  std::string err = create_error(R"(high_usd = "1M")");
  EXPECT_NE(err.find("option 'high_usd'"), std::string::npos) << err;
}

TEST(RulesClassifier, ClassifiesEveryRecordedLiquidation) {
  auto events = recorded_liquidations();
  ASSERT_EQ(events.size(), 473u);
  // Expected counts come from the CSV itself, e.g. for the first harness:
  // awk -F, 'NR>1{ if ($6>=50000) h++; else if ($6>=10000) m++; else l++ } END {print h,m,l}'
  struct Case {
    std::string options;
    std::map<std::string, size_t> levels;
  };
  std::vector<Case> cases = {
      {"high_usd = 50000.0\nmedium_usd = 10000.0\nwatch_symbols = []",
       {{"HIGH", 2}, {"MEDIUM", 11}, {"LOW", 460}}},
      // BTCUSDT and ETHUSDT rows (23 of them) rank one level up.
      {"high_usd = 50000.0\nmedium_usd = 10000.0", {{"HIGH", 4}, {"MEDIUM", 29}, {"LOW", 440}}},
      // The defaults: nothing in this sample reaches $100K, so only the majors are MEDIUM.
      {"", {{"MEDIUM", 23}, {"LOW", 450}}},
  };
  for (const Case& c : cases) {
    PluginHarness rules("processor", "rules_classifier", c.options);
    std::map<std::string, size_t> levels;
    size_t longs = 0;
    for (const CallResult& r : rules.process_all(events)) {
      Json f = classified(r);
      levels[f["risk_level"].get<std::string>()]++;
      if (f["liquidated"] == "long") ++longs;
      EXPECT_EQ(f["classifier"], "rules");
      EXPECT_EQ(f["summary"].get<std::string>().rfind(f["symbol"].get<std::string>(), 0), 0u);
    }
    EXPECT_EQ(levels, c.levels) << c.options;
    EXPECT_EQ(longs, 412u);  // rows with side SELL
  }
}

}  // namespace
