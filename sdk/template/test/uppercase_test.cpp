// Tests of the uppercase processor, run in-process with the SDK's test double host.
#include <string>

#include <gtest/gtest.h>

#include "sluice/testing.hpp"

namespace {

using sluice::Json;
using sluice::Status;
using sluice::testkit::event_to_json;
using sluice::testkit::make_event;
using sluice::testkit::TestPlugin;

// The test double applies no defaults, so tests pass what the host would: the declared ones.
Json options(Json overrides = Json::object()) {
  Json config = {{"field", "symbol"}, {"missing", "forward"}};
  config.update(overrides);
  return config;
}

TEST(Uppercase, UpperCasesTheFieldAndCopiesEverythingElse) {
  TestPlugin upper(options());
  auto r = upper.process(make_event(
      {{"symbol", "btcusdt"}, {"side", "sell"}, {"price", 64250.5}, {"trade_time_ms", 42}},
      "btcusdt", 7));

  EXPECT_TRUE(r.completed);
  EXPECT_EQ(r.outcome.status, Status::kOk);
  ASSERT_EQ(r.emitted.size(), 1u);
  EXPECT_EQ(r.emitted[0].output, "");
  EXPECT_FALSE(r.emitted[0].forwarded);
  Json event = event_to_json(r.emitted[0].bytes);
  EXPECT_EQ(event["id"], 7);
  EXPECT_EQ(event["key"], "btcusdt");
  EXPECT_EQ(
      event["fields"],
      (Json{{"price", 64250.5}, {"side", "sell"}, {"symbol", "BTCUSDT"}, {"trade_time_ms", 42}}));
  EXPECT_EQ(upper.host().counter("uppercase_rewritten_total"), 1);
}

TEST(Uppercase, UpperCasesTheConfiguredField) {
  TestPlugin upper(options({{"field", "side"}}));
  auto r = upper.process(make_event({{"symbol", "btcusdt"}, {"side", "sell"}}));

  ASSERT_EQ(r.emitted.size(), 1u);
  EXPECT_EQ(r.emitted[0].view().string("side"), "SELL");
  EXPECT_EQ(r.emitted[0].view().string("symbol"), "btcusdt");
}

TEST(Uppercase, KeepsNonAsciiBytes) {
  TestPlugin upper(options());
  auto r = upper.process(make_event({{"symbol", "éth-usdt"}}));

  ASSERT_EQ(r.emitted.size(), 1u);
  EXPECT_EQ(r.emitted[0].view().string("symbol"), "éTH-USDT");
}

TEST(Uppercase, ForwardsAnUpperCaseEventWithoutRebuildingIt) {
  TestPlugin upper(options());
  auto r = upper.process(make_event({{"symbol", "BTCUSDT"}}));

  EXPECT_EQ(r.outcome.status, Status::kOk);
  ASSERT_EQ(r.emitted.size(), 1u);
  EXPECT_TRUE(r.emitted[0].forwarded);
  EXPECT_EQ(upper.host().counter("uppercase_rewritten_total"), 0);
}

TEST(Uppercase, ForwardsEventsWithoutTheFieldByDefault) {
  TestPlugin upper(options());
  auto r = upper.process(make_event({{"price", 1.5}}));

  EXPECT_EQ(r.outcome.status, Status::kOk);
  ASSERT_EQ(r.emitted.size(), 1u);
  EXPECT_TRUE(r.emitted[0].forwarded);
}

TEST(Uppercase, RejectsEventsWithoutTheFieldWhenAsked) {
  TestPlugin upper(options({{"missing", "reject"}}));
  auto r = upper.process(make_event({{"price", 1.5}}));

  EXPECT_EQ(r.outcome.status, Status::kRejected);
  EXPECT_EQ(r.outcome.message, "field 'symbol' is missing or not a string");
  EXPECT_TRUE(r.emitted.empty());
}

TEST(Uppercase, TreatsANonStringFieldAsMissing) {
  TestPlugin upper(options({{"missing", "reject"}}));
  auto r = upper.process(make_event({{"symbol", 12}}));

  EXPECT_EQ(r.outcome.status, Status::kRejected);
  EXPECT_EQ(r.outcome.message, "field 'symbol' is missing or not a string");
}

TEST(Uppercase, RefusesAnEmptyFieldName) {
  auto err = TestPlugin::create_error(options({{"field", ""}}));

  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->key(), "field");
  EXPECT_EQ(err->column(), 0u);
  EXPECT_STREQ(err->what(), "must not be empty");
}

TEST(Uppercase, DeclaresItsOptionsWithDefaults) {
  TestPlugin upper(options());
  const sluice_plugin_descriptor& d = upper.descriptor();

  EXPECT_EQ(d.kind, SLUICE_KIND_PROCESSOR);
  EXPECT_STREQ(d.name, "uppercase");
  ASSERT_EQ(d.option_count, 2u);
  EXPECT_STREQ(d.options[0].key, "field");
  EXPECT_STREQ(d.options[0].default_toml, "\"symbol\"");
  EXPECT_STREQ(d.options[1].key, "missing");
  EXPECT_STREQ(d.options[1].choices, "forward,reject");
}

}  // namespace
