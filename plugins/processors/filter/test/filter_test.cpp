// Tests of the `filter` processor through the real loader and host: matching events pass
// unchanged (zero-copy), the rest go to `rejected`, $settings changes apply while running, bad
// expressions are refused with their column, and real recorded liquidations filter as expected.
#include <gtest/gtest.h>

#include <charconv>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "plugin_harness.hpp"
#include "sluice/event.hpp"

namespace {

using sluice::testing::CallResult;
using sluice::testing::HarnessOptions;
using sluice::testing::make_event;
using sluice::testing::PluginHarness;

// The message a harness constructor throws for the given options, or "" if none.
std::string create_error(const std::string& options, HarnessOptions opts = {}) {
  try {
    PluginHarness filter("processor", "filter", options, std::move(opts));
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

void expect_forwarded_to(const CallResult& r, const std::string& output,
                         const std::vector<uint8_t>& input) {
  EXPECT_TRUE(r.outcome.ok()) << r.outcome.message;
  ASSERT_EQ(r.emitted.size(), 1u);
  EXPECT_EQ(r.emitted[0].output, output);
  EXPECT_TRUE(r.forwarded_same_bytes);
  EXPECT_EQ(r.emitted[0].bytes, input);
}

TEST(FilterProcessor, ForwardsMatchingEventUnchangedToDefaultOutput) {
  PluginHarness filter("processor", "filter",
                       R"(where = "notional_usd >= 10000 && side == 'SELL'")");
  auto ev =
      make_event({{"notional_usd", 24933.24}, {"side", "SELL"}, {"symbol", "FETUSDT"}}, "FETUSDT");
  expect_forwarded_to(filter.process(ev), "", ev);
}

TEST(FilterProcessor, SendsNonMatchingEventToRejected) {
  PluginHarness filter("processor", "filter",
                       R"(where = "notional_usd >= 10000 && side == 'SELL'")");
  auto buy = make_event({{"notional_usd", 11341.82}, {"side", "BUY"}});
  expect_forwarded_to(filter.process(buy), "rejected", buy);
  auto small = make_event({{"notional_usd", 7.37}, {"side", "SELL"}});
  expect_forwarded_to(filter.process(small), "rejected", small);
  auto missing = make_event({{"side", "SELL"}});
  expect_forwarded_to(filter.process(missing), "rejected", missing);
}

TEST(FilterProcessor, SettingChangeTakesEffectWhileRunning) {
  HarnessOptions opts;
  opts.settings = {{"min_usd", 10000}};
  PluginHarness filter("processor", "filter", R"(where = "notional_usd >= $min_usd")", opts);
  auto ev = make_event({{"notional_usd", 2847.27}});
  expect_forwarded_to(filter.process(ev), "rejected", ev);
  filter.set_setting("min_usd", 1000);
  expect_forwarded_to(filter.process(ev), "", ev);
  filter.set_setting("min_usd", 2847.28);
  expect_forwarded_to(filter.process(ev), "rejected", ev);
}

TEST(FilterProcessor, BadExpressionIsRefusedWithItsColumn) {
  // The value starts at column 9 (its opening quote), so column 17 inside it is file column 26.
  EXPECT_EQ(create_error(R"(where = "notional_usd >= ")"),
            "<options>:1:26: error: processors.test: option 'where': expected an operand after "
            "'>=' at column 17");
  EXPECT_EQ(create_error(R"(where = "side = 'SELL'")"),
            "<options>:1:15: error: processors.test: option 'where': unknown operator '=' at "
            "column 6 (did you mean '=='?)");
  EXPECT_EQ(create_error(R"(where = "side == 'SELL")"),
            "<options>:1:18: error: processors.test: option 'where': unterminated string "
            "starting at column 9");
}

TEST(FilterProcessor, UnknownSettingIsRefused) {
  HarnessOptions opts;
  opts.settings = {{"min_usd", 10000}};
  EXPECT_EQ(create_error(R"(where = "notional_usd >= $min")", opts),
            "<options>:1:26: error: processors.test: option 'where': unknown setting '$min' at "
            "column 17");
}

TEST(FilterProcessor, WhereIsRequired) {
  std::string err = create_error("");
  EXPECT_NE(err.find("missing required option 'where'"), std::string::npos) << err;
}

// Rows of data/binance_slice_0.csv (real liquidations, see data/README.md) as the events a
// normalising exchange source emits: key = symbol, the shared field set.
std::vector<std::vector<uint8_t>> recorded_liquidations() {
  std::ifstream in(std::string(SLUICE_SOURCE_DIR) +
                   "/plugins/processors/filter/test/data/binance_slice_0.csv");
  if (!in) throw std::runtime_error("cannot read binance_slice_0.csv");
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
        .field("exchange", "binance")
        .field("symbol", cols[1])
        .field("side", cols[2])
        .field("avg_price", number(cols[3]))
        .field("quantity", number(cols[4]))
        .field("notional_usd", number(cols[5]));
    auto bytes = b.finish();
    events.emplace_back(bytes.begin(), bytes.end());
  }
  return events;
}

// How many recorded events pass `where`; every event must be forwarded exactly once.
size_t passing(const std::string& where, const std::vector<std::vector<uint8_t>>& events) {
  PluginHarness filter("processor", "filter", "where = \"" + where + "\"");
  size_t passed = 0;
  for (const auto& r : filter.process_all(events)) {
    EXPECT_TRUE(r.outcome.ok());
    EXPECT_EQ(r.emitted.size(), 1u);
    EXPECT_TRUE(r.forwarded_same_bytes);
    if (!r.emitted.empty() && r.emitted[0].output.empty()) ++passed;
  }
  return passed;
}

TEST(FilterProcessor, FiltersRecordedBinanceLiquidations) {
  auto events = recorded_liquidations();
  ASSERT_EQ(events.size(), 234u);
  // Expected counts come from the CSV itself (e.g. awk -F, '$6 >= 10000 && $3 == "SELL"').
  EXPECT_EQ(passing("notional_usd >= 10000 && side == 'SELL'", events), 8u);
  EXPECT_EQ(passing("notional_usd >= 10000", events), 9u);
  EXPECT_EQ(passing("notional_usd >= 1000 and side == 'SELL'", events), 52u);
  EXPECT_EQ(passing("side != 'SELL'", events), 45u);
  EXPECT_EQ(passing("avg_price < 1e-04", events), 4u);
  EXPECT_EQ(passing("symbol == '币安人生USDT'", events), 12u);
  EXPECT_EQ(passing("@key starts_with '1000'", events), 13u);
  EXPECT_EQ(passing("symbol in ['ETHUSDT', 'FETUSDT'] && notional_usd >= 10000", events), 5u);
}

}  // namespace
