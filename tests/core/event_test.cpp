// Event helpers: building, typed lookups, overrides, copies and verification of untrusted bytes.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "sluice/event.hpp"
#include "sluice/event_json.hpp"

namespace sluice {
namespace {

TEST(EventBuilder, FieldsAddedInAnyOrderAreFoundByName) {
  EventBuilder b;
  b.id(7).key("BTCUSDT").source("binance").event_time_ns(1625030771359000000);
  b.field("symbol", "BTCUSDT").field("price", 34603.03).field("quantity", int64_t{29});
  b.field("filled", true).field("aaa_first", "x");
  auto bytes = b.finish();
  auto ev = EventView::verified(bytes.data(), bytes.size());
  ASSERT_TRUE(ev.has_value());
  EXPECT_EQ(ev->id(), 7u);
  EXPECT_EQ(ev->key(), "BTCUSDT");
  EXPECT_EQ(ev->source(), "binance");
  EXPECT_EQ(ev->event_time_ns(), 1625030771359000000);
  EXPECT_EQ(ev->string("symbol"), "BTCUSDT");
  EXPECT_DOUBLE_EQ(*ev->number("price"), 34603.03);
  EXPECT_EQ(ev->integer("quantity"), 29);
  EXPECT_DOUBLE_EQ(*ev->number("quantity"), 29.0);  // number() widens ints
  EXPECT_EQ(ev->boolean("filled"), true);
  EXPECT_FALSE(ev->field("missing"));
  EXPECT_FALSE(ev->string("price").has_value());  // wrong type is not coerced
  ASSERT_EQ(ev->field_count(), 5u);
  for (size_t i = 1; i < ev->field_count(); ++i) {
    EXPECT_LT(EventView::sv(ev->field_at(i - 1)->name()), EventView::sv(ev->field_at(i)->name()));
  }
}

TEST(EventBuilder, LaterFieldWithSameNameWins) {
  EventBuilder b;
  b.field("risk", "LOW").field("x", 1).field("risk", "HIGH");
  auto bytes = b.finish();
  EventView ev(bytes);
  EXPECT_EQ(ev.field_count(), 2u);
  EXPECT_EQ(ev.string("risk"), "HIGH");
}

TEST(EventBuilder, CopyFromKeepsEverythingAndAllowsOverrides) {
  EventBuilder a;
  a.id(3).key("ETHUSDT").source("s").event_time_ns(10).ingest_time_ns(20);
  a.attr("tier", "canary").field("price", 2725.49).field("side", "BUY").hop("filter", 99);
  std::vector<uint8_t> first(a.finish().begin(), a.finish().end());
  EventBuilder b;
  b.copy_from(EventView(first.data(), first.size())).field("side", "SELL").field("new", 1);
  auto bytes = b.finish();
  EventView ev(bytes);
  EXPECT_EQ(ev.id(), 3u);
  EXPECT_EQ(ev.key(), "ETHUSDT");
  EXPECT_EQ(ev.ingest_time_ns(), 20);
  EXPECT_EQ(ev.attr("tier"), "canary");
  EXPECT_EQ(ev.string("side"), "SELL");
  EXPECT_DOUBLE_EQ(*ev.number("price"), 2725.49);
  EXPECT_EQ(ev.integer("new"), 1);
  ASSERT_EQ(ev.hop_count(), 1u);
  EXPECT_EQ(EventView::sv(ev.hop_at(0)->stage()), "filter");
}

// extend() embeds the base event and writes only the new fields: the result must read exactly
// like copy_from() plus the same fields, for new names before, between and after the base's,
// replacements, repeats, every type, and base events with and without attrs, hops and fields.
TEST(EventBuilder, ExtendReadsLikeCopyFromPlusTheSameFields) {
  EventBuilder a;
  a.id(3).key("ETHUSDT").source("binance").event_time_ns(10).ingest_time_ns(20);
  a.attr("tier", "canary").attr("x-test", "v2").hop("filter", 99).hop("rules", 120);
  a.field("price", 2725.49).field("side", "BUY").field("qty", int64_t{4}).field("ok", true);
  a.bytes_field("raw", std::vector<uint8_t>{0, 1, 2}).null_field("nothing");
  auto rich = a.finish();
  std::vector<uint8_t> base_rich(rich.begin(), rich.end());
  std::vector<uint8_t> base_bare;
  {
    EventBuilder bare;
    auto b = bare.id(1).finish();  // no fields, attrs, hops, source or key
    base_bare.assign(b.begin(), b.end());
  }
  using Add = void (*)(EventBuilder&);
  const Add additions[] = {
      [](EventBuilder&) {},
      [](EventBuilder& b) { b.field("aaa", 1); },
      [](EventBuilder& b) { b.field("zzz", "last"); },
      [](EventBuilder& b) { b.field("pz", 1.5).field("r", "between"); },
      [](EventBuilder& b) { b.field("side", "SELL"); },  // replaces
      [](EventBuilder& b) {
        b.field("fallback_used", "rules").field("fallback_attempts", int64_t{2});
        b.field("fallback_errors", "[]").field("side", "x").field("side", "SELL");
        b.bytes_field("blob", std::vector<uint8_t>{9}).null_field("price");
      },
  };
  EventBuilder extended, copied;
  for (const auto& base : {base_rich, base_bare}) {
    for (size_t i = 0; i < std::size(additions); ++i) {
      SCOPED_TRACE(i);
      EventView view(base.data(), base.size());
      extended.extend(view);
      additions[i](extended);
      auto x = extended.finish();
      std::vector<uint8_t> got(x.begin(), x.end());
      copied.reset().copy_from(view);
      additions[i](copied);
      auto y = copied.finish();
      ASSERT_TRUE(EventView::verified(got.data(), got.size()).has_value());
      std::string want_json, got_json;
      append_event_json(want_json, EventView(y.data(), y.size()));
      append_event_json(got_json, EventView(got.data(), got.size()));
      EXPECT_EQ(got_json, want_json);
      EventView ev(got.data(), got.size());
      for (size_t f = 1; f < ev.field_count(); ++f) {  // still sorted: lookups stay searches
        EXPECT_LT(EventView::sv(ev.field_at(f - 1)->name()), EventView::sv(ev.field_at(f)->name()));
      }
    }
  }
  // A metadata setter after extend() falls back to a full copy, the new fields still winning.
  EventView view(base_rich.data(), base_rich.size());
  extended.extend(view).field("side", "SELL");
  extended.key("BTCUSDT");
  auto z = extended.finish();
  EventView ev(z.data(), z.size());
  EXPECT_EQ(ev.key(), "BTCUSDT");
  EXPECT_EQ(ev.string("side"), "SELL");
  EXPECT_EQ(ev.attr("tier"), "canary");
  EXPECT_EQ(ev.hop_count(), 2u);
}

TEST(EventBuilder, ResetReusesTheBuilderWithoutLeftovers) {
  EventBuilder b;
  b.id(1).key("k").field("a", 1).attr("x", "y");
  b.finish();
  b.reset().id(2).field("b", 2.5);
  auto bytes = b.finish();
  EventView ev(bytes);
  EXPECT_EQ(ev.id(), 2u);
  EXPECT_EQ(ev.key(), "");
  EXPECT_EQ(ev.field_count(), 1u);
  EXPECT_EQ(ev.attr_count(), 0u);
  EXPECT_FALSE(ev.field("a"));
}

TEST(EventBuilder, NonAsciiAndTinyValuesSurvive) {
  EventBuilder b;
  b.field("symbol", "币安人生USDT").field("price", 5.99e-05);
  auto bytes = b.finish();
  EventView ev(bytes);
  EXPECT_EQ(ev.string("symbol"), "币安人生USDT");
  EXPECT_DOUBLE_EQ(*ev.number("price"), 5.99e-05);
}

TEST(EventView, VerifiedRejectsGarbageAndTruncation) {
  std::vector<uint8_t> garbage(64, 0xAB);
  EXPECT_FALSE(EventView::verified(garbage.data(), garbage.size()).has_value());
  EventBuilder b;
  b.field("symbol", "BTCUSDT").field("price", 1.0);
  auto bytes = b.finish();
  EXPECT_FALSE(EventView::verified(bytes.data(), bytes.size() / 2).has_value());
  EXPECT_TRUE(EventView::verified(bytes.data(), bytes.size()).has_value());
}

}  // namespace
}  // namespace sluice
