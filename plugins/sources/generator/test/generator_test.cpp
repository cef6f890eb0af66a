// Tests of the `generator` source through the real loader and host: counts and ids, the
// liquidation-like default event, field and key templates, seeds, pacing, stopping and the
// option errors a user sees.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "plugin_harness.hpp"

namespace {

using sluice::EventView;
using sluice::FieldType;
using sluice::testing::PluginHarness;

using Events = std::vector<std::vector<uint8_t>>;

Events generate(const std::string& options, size_t max_events = SIZE_MAX) {
  PluginHarness gen("source", "generator", options);
  return gen.run_source(max_events);
}

EventView view(const std::vector<uint8_t>& bytes) { return EventView(bytes.data(), bytes.size()); }

// The message of the error creating a generator with these options, or "" if it was accepted.
std::string creation_error(const std::string& options) {
  try {
    PluginHarness gen("source", "generator", options);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

#define EXPECT_CONTAINS(text, part) \
  EXPECT_NE(std::string(text).find(part), std::string::npos) << "in: " << (text)

TEST(Generator, EmitsExactlyCountEventsWithIdsFromOne) {
  Events events = generate("count = 100");
  ASSERT_EQ(events.size(), 100u);
  for (size_t i = 0; i < events.size(); ++i) EXPECT_EQ(view(events[i]).id(), i + 1);
}

TEST(Generator, DefaultEventsCarryTheNormalisedLiquidationFields) {
  Events events = generate("count = 200\nsource_name = \"synthetic\"");
  ASSERT_EQ(events.size(), 200u);
  std::set<std::string> symbols;
  std::set<std::string> sides;
  for (const auto& bytes : events) {
    EventView ev = view(bytes);
    EXPECT_EQ(ev.field_count(), 10u);
    EXPECT_EQ(ev.source(), "synthetic");
    EXPECT_EQ(ev.string("exchange"), "binance");
    EXPECT_EQ(ev.string("order_type"), "LIMIT");
    EXPECT_EQ(ev.string("status"), "FILLED");
    ASSERT_TRUE(ev.string("symbol").has_value());
    EXPECT_EQ(ev.key(), *ev.string("symbol"));
    symbols.emplace(*ev.string("symbol"));
    ASSERT_TRUE(ev.string("side").has_value());
    sides.emplace(*ev.string("side"));
    for (const char* name : {"price", "avg_price", "quantity", "notional_usd"}) {
      ASSERT_EQ(ev.field(name)->type(), FieldType::Double) << name;
      EXPECT_GT(*ev.number(name), 0) << name;
    }
    EXPECT_DOUBLE_EQ(*ev.number("notional_usd"), *ev.number("avg_price") * *ev.number("quantity"));
    EXPECT_GT(ev.event_time_ns(), 0);
    EXPECT_EQ(ev.ingest_time_ns(), ev.event_time_ns());
    EXPECT_EQ(ev.integer("trade_time_ms"), ev.event_time_ns() / 1'000'000);
  }
  EXPECT_EQ(sides, (std::set<std::string>{"BUY", "SELL"}));
  EXPECT_GE(symbols.size(), 8u);
  EXPECT_TRUE(symbols.count("币安人生USDT"));  // a recorded non-ASCII symbol is in the mix
}

TEST(Generator, DefaultEventSizeStaysInItsMeasuredRange) {
  // Ten fields as FlatBuffers tables (each with its name string and vtable offset) measure
  // 584-616 bytes; the range catches an accidental change of the event's shape.
  Events events = generate("count = 500");
  size_t total = 0;
  for (const auto& bytes : events) {
    EXPECT_GE(bytes.size(), 560u);
    EXPECT_LE(bytes.size(), 640u);
    total += bytes.size();
  }
  EXPECT_NEAR(static_cast<double>(total) / events.size(), 595.0, 25.0);
}

TEST(Generator, FieldTemplatesProduceTypedValues) {
  Events events = generate(R"(count = 12
key = "{sym}/{n}"
fields = { n = "{seq}", sym = "{choice:BTCUSDT|ETHUSDT|SOLUSDT}", qty = "{int:1:100}", px = "{float:0.5:2}", label = "order-{seq}", live = true, venue = "test", lot = 7, fee = 0.25, braces = "{{x}}" })");
  ASSERT_EQ(events.size(), 12u);
  for (const auto& bytes : events) {
    EventView ev = view(bytes);
    const int64_t id = static_cast<int64_t>(ev.id());
    EXPECT_EQ(ev.field_count(), 10u);
    EXPECT_EQ(ev.integer("n"), id);
    ASSERT_TRUE(ev.string("sym").has_value());
    const std::string sym(*ev.string("sym"));
    EXPECT_TRUE(sym == "BTCUSDT" || sym == "ETHUSDT" || sym == "SOLUSDT") << sym;
    ASSERT_TRUE(ev.integer("qty").has_value());
    EXPECT_GE(*ev.integer("qty"), 1);
    EXPECT_LE(*ev.integer("qty"), 100);
    ASSERT_EQ(ev.field("px")->type(), FieldType::Double);
    EXPECT_GE(*ev.number("px"), 0.5);
    EXPECT_LT(*ev.number("px"), 2.0);
    // Crosses from order-9 to order-10: a longer string gets a template of its own.
    EXPECT_EQ(ev.string("label"), "order-" + std::to_string(id));
    EXPECT_EQ(ev.boolean("live"), true);
    EXPECT_EQ(ev.string("venue"), "test");
    EXPECT_EQ(ev.integer("lot"), 7);
    EXPECT_EQ(ev.field("fee")->type(), FieldType::Double);
    EXPECT_EQ(ev.number("fee"), 0.25);
    EXPECT_EQ(ev.string("braces"), "{x}");
    EXPECT_EQ(ev.key(), sym + "/" + std::to_string(id));
  }
}

TEST(Generator, ZeroValuesAreWrittenInPlaceToo) {
  // FlatBuffers omits scalars equal to their default (0); the template must still patch them.
  Events events = generate("count = 50\nfields = { zero_or_one = \"{int:0:1}\" }");
  std::set<int64_t> seen;
  for (const auto& bytes : events) seen.insert(*view(bytes).integer("zero_or_one"));
  EXPECT_EQ(seen, (std::set<int64_t>{0, 1}));
}

TEST(Generator, KeyDefaultsToTheSymbolFieldWhenThereIsOne) {
  Events with_symbol = generate("count = 5\nfields = { symbol = \"{choice:A|BB}\" }");
  for (const auto& bytes : with_symbol) EXPECT_EQ(view(bytes).key(), *view(bytes).string("symbol"));
  Events without = generate("count = 5\nfields = { venue = \"x\" }");
  for (const auto& bytes : without) EXPECT_EQ(view(bytes).key(), "");
}

TEST(Generator, SameSeedReplaysTheSameValues) {
  auto values = [](const std::string& options) {
    std::vector<std::string> out;
    for (const auto& bytes : generate(options)) {
      EventView ev = view(bytes);
      out.push_back(std::string(*ev.string("symbol")) + " " + std::string(*ev.string("side")) +
                    " " + std::to_string(*ev.number("price")) + " " +
                    std::to_string(*ev.number("quantity")));
    }
    return out;
  };
  EXPECT_EQ(values("count = 30\nseed = 7"), values("count = 30\nseed = 7"));
  EXPECT_NE(values("count = 30\nseed = 7"), values("count = 30\nseed = 8"));
}

TEST(Generator, RateSpacesEventsOnTheSchedule) {
  // 20 events at 200/s: the last is due 95 ms after the first. Only a lower bound is asserted;
  // the machine is shared.
  const int64_t start = sluice::mono_ns();
  Events events = generate("count = 20\nrate = 200.0");
  const int64_t elapsed_ms = (sluice::mono_ns() - start) / 1'000'000;
  EXPECT_EQ(events.size(), 20u);
  EXPECT_GE(elapsed_ms, 80);
}

TEST(Generator, EndlessGeneratorStopsWhenAsked) {
  Events events = generate("", 25);
  ASSERT_EQ(events.size(), 25u);
  EXPECT_EQ(view(events.back()).id(), 25u);
}

TEST(Generator, StopInterruptsTheWaitForTheNextEvent) {
  // The second event is due in 1000 s: only an interrupted sleep lets run() return.
  Events events = generate("rate = 0.001", 1);
  EXPECT_EQ(events.size(), 1u);
}

TEST(Generator, RejectsOptionsItCannotHonour) {
  EXPECT_CONTAINS(creation_error("rate = -1.0"),
                  "rate must be 0 (unlimited) or a positive number of events per second, got -1");
  EXPECT_CONTAINS(creation_error("count = -3"), "count must be 0 (endless) or more, got -3");
  EXPECT_CONTAINS(creation_error("fields = { px = \"{flaot:1:2}\" }"),
                  "field 'px' = \"{flaot:1:2}\": unknown placeholder {flaot:1:2}; use {seq}, "
                  "{choice:A|B}, {int:MIN:MAX} or {float:MIN:MAX} (at character 1)");
  EXPECT_CONTAINS(creation_error("fields = { q = \"{int:9:1}\" }"),
                  "field 'q' = \"{int:9:1}\": {int:9:1}: MIN is greater than MAX");
  EXPECT_CONTAINS(creation_error("fields = { q = \"{int:a:b}\" }"),
                  "{int:MIN:MAX} needs two integers, e.g. {int:1:100}, got {int:a:b}");
  EXPECT_CONTAINS(creation_error("fields = { s = \"id-{seq\" }"),
                  "unterminated '{' (write '{{' for a literal brace) (at character 4)");
  EXPECT_CONTAINS(creation_error("fields = { nested = { a = 1 } }"),
                  "field 'nested' must be an integer, float, boolean or string, got object");
  EXPECT_CONTAINS(creation_error("key = \"{sym}\"\nfields = { symbol = \"A\", side = \"B\" }"),
                  "no field named 'sym' (fields: side, symbol)");
  EXPECT_EQ(creation_error("count = 1\nrate = 10.0\nseed = 3\nkey = \"k-{seq}\""), "");
}

}  // namespace
