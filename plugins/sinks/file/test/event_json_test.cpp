// Tests of sluice/event_json.hpp: exact JSON and text renderings, and round trips through
// nlohmann::json for every field type, escapes, invalid UTF-8, doubles and times.
#include "sluice/event_json.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace sluice {
namespace {

using nlohmann::json;

constexpr int64_t kTime = 1761125802306000000;  // 2025-10-22T09:36:42.306Z

std::string to_json(std::span<const uint8_t> bytes, const JsonOptions& opts = {}) {
  std::string out;
  append_event_json(out, EventView(bytes), opts);
  return out;
}

std::string to_text(std::span<const uint8_t> bytes, const TextOptions& opts = {}) {
  std::string out;
  append_event_text(out, EventView(bytes), opts);
  return out;
}

std::string json_string(std::string_view s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

std::string rfc3339(int64_t ns, int digits = 0) {
  std::string out;
  append_rfc3339(out, ns, digits);
  return out;
}

std::string base64(std::string_view s) {
  std::string out;
  append_base64(out, {reinterpret_cast<const uint8_t*>(s.data()), s.size()});
  return out;
}

EventBuilder& liquidation(EventBuilder& b) {
  b.reset()
      .id(7)
      .event_time_ns(kTime)
      .ingest_time_ns(kTime + 5'204'000)
      .source("file")
      .key("SOLUSDT")
      .field("symbol", "SOLUSDT")
      .field("side", "SELL")
      .field("avg_price", 184.22)
      .field("filled_qty", 0.04)
      .field("usd_value", 7.3688);
  return b;
}

TEST(EventJson, RendersFieldsInNameOrderThenMetadata) {
  EventBuilder b;
  liquidation(b).attr("tier", "vip").hop("big", kTime + 6'000'000);
  EXPECT_EQ(
      to_json(b.finish()),
      R"({"avg_price":184.22,"filled_qty":0.04,"side":"SELL","symbol":"SOLUSDT",)"
      R"("usd_value":7.3688,"_sluice":{"id":7,"event_time":"2025-10-22T09:36:42.306Z",)"
      R"("ingest_time":"2025-10-22T09:36:42.311204Z","source":"file","key":"SOLUSDT",)"
      R"("attrs":{"tier":"vip"},"hops":[{"stage":"big","time":"2025-10-22T09:36:42.312Z"}]}})");
}

TEST(EventJson, LeavesOutEmptyAttrsAndHops) {
  EventBuilder b;
  b.id(1).event_time_ns(kTime).ingest_time_ns(kTime).field("n", 1);
  EXPECT_EQ(to_json(b.finish()),
            R"({"n":1,"_sluice":{"id":1,"event_time":"2025-10-22T09:36:42.306Z",)"
            R"("ingest_time":"2025-10-22T09:36:42.306Z","source":"","key":""}})");
}

TEST(EventJson, MetadataOffGivesOnlyFields) {
  EventBuilder b;
  liquidation(b);
  EXPECT_EQ(to_json(b.finish(), {.metadata = false}),
            R"({"avg_price":184.22,"filled_qty":0.04,"side":"SELL","symbol":"SOLUSDT",)"
            R"("usd_value":7.3688})");
}

TEST(EventJson, EventWithoutFieldsIsAnEmptyObjectWithoutMetadata) {
  EventBuilder b;
  EXPECT_EQ(to_json(b.finish(), {.metadata = false}), "{}");
}

TEST(EventJson, FieldSubsetFollowsTheListedOrderAndSkipsMissingNames) {
  EventBuilder b;
  liquidation(b);
  const std::vector<std::string> fields = {"symbol", "nope", "avg_price"};
  EXPECT_EQ(to_json(b.finish(), {.metadata = false, .fields = fields}),
            R"({"symbol":"SOLUSDT","avg_price":184.22})");
}

TEST(EventJson, FieldNamedLikeTheMetadataKeyMovesInsideMetadata) {
  EventBuilder b;
  b.id(3).event_time_ns(0).ingest_time_ns(0).field("_sluice", "mine").field("a", 1);
  const auto bytes = b.finish();
  const std::string with_meta = to_json(bytes);
  EXPECT_EQ(with_meta,
            R"({"a":1,"_sluice":{"id":3,"event_time":"1970-01-01T00:00:00.000Z",)"
            R"("ingest_time":"1970-01-01T00:00:00.000Z","source":"","key":"","field":"mine"}})");
  EXPECT_EQ(json::parse(with_meta)["_sluice"]["field"], "mine");
  EXPECT_EQ(to_json(bytes, {.metadata = false}), R"({"_sluice":"mine","a":1})");
}

TEST(EventJson, EveryFieldTypeRoundTripsThroughAJsonParser) {
  const std::string text = "quote\" backslash\\ newline\n tab\t nul" + std::string(1, '\0') +
                           " bell\x07 del\x7f 币安人生USDT 🚀";
  const std::vector<uint8_t> blob = {0x00, 0x01, 0xfe, 0xff, 0x80, 0x7f, 0x10};
  EventBuilder b;
  b.field("int", int64_t{-42})
      .field("int_max", std::numeric_limits<int64_t>::max())
      .field("int_min", std::numeric_limits<int64_t>::min())
      .field("small", 5.99e-05)
      .field("price", 34738.38)
      .field("whole", 3.0)
      .field("yes", true)
      .field("no", false)
      .field("text", text)
      .field("empty", "")
      .bytes_field("blob", blob)
      .null_field("nothing");
  const std::string out = to_json(b.finish(), {.metadata = false});
  const json j = json::parse(out);
  EXPECT_EQ(j["int"].get<int64_t>(), -42);
  EXPECT_EQ(j["int_max"].get<int64_t>(), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(j["int_min"].get<int64_t>(), std::numeric_limits<int64_t>::min());
  EXPECT_TRUE(j["small"].is_number_float());
  EXPECT_EQ(j["small"].get<double>(), 5.99e-05);
  EXPECT_EQ(j["price"].get<double>(), 34738.38);
  EXPECT_TRUE(j["whole"].is_number_float());
  EXPECT_EQ(j["whole"].get<double>(), 3.0);
  EXPECT_EQ(j["yes"], true);
  EXPECT_EQ(j["no"], false);
  EXPECT_EQ(j["text"].get<std::string>(), text);
  EXPECT_EQ(j["empty"].get<std::string>(), "");
  EXPECT_EQ(j["blob"].get<std::string>(), "AAH+/4B/EA==");
  EXPECT_TRUE(j["nothing"].is_null());
  EXPECT_NE(out.find(R"("small":5.99e-05)"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("price":34738.38)"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("whole":3.0)"), std::string::npos) << out;
}

TEST(EventJson, MetadataRoundTripsThroughAJsonParser) {
  EventBuilder b;
  liquidation(b).id(std::numeric_limits<uint64_t>::max()).attr("trace \"id\"", "a\nb");
  b.hop("s1", kTime + 1'000).hop("s2", kTime + 2'000'000);
  const json meta = json::parse(to_json(b.finish()))["_sluice"];
  EXPECT_EQ(meta["id"].get<uint64_t>(), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(meta["source"], "file");
  EXPECT_EQ(meta["key"], "SOLUSDT");
  EXPECT_EQ(meta["attrs"], json({{"trace \"id\"", "a\nb"}}));
  EXPECT_EQ(meta["hops"], json::parse(R"([{"stage":"s1","time":"2025-10-22T09:36:42.306001Z"},
                                           {"stage":"s2","time":"2025-10-22T09:36:42.308Z"}])"));
}

TEST(EventJson, EscapesQuotesBackslashesAndControlCharacters) {
  EXPECT_EQ(json_string("a\"b\\c/d"), R"("a\"b\\c/d")");
  EXPECT_EQ(json_string("\b\f\n\r\t"), R"("\b\f\n\r\t")");
  EXPECT_EQ(json_string(std::string_view("\x00\x01\x1f\x7f", 4)), R"("\u0000\u0001\u001f\u007f")");
  EXPECT_EQ(json_string(""), R"("")");
}

TEST(EventJson, PassesValidUtf8Through) {
  EXPECT_EQ(json_string("币安人生USDT"), "\"币安人生USDT\"");
  EXPECT_EQ(json_string("é ﷽ 🚀 \u2028"), "\"é ﷽ 🚀 \u2028\"");
  EXPECT_EQ(json_string("\xf4\x8f\xbf\xbf"), "\"\xf4\x8f\xbf\xbf\"");  // U+10FFFF
}

TEST(EventJson, ReplacesEachByteOfInvalidUtf8WithTheReplacementCharacter) {
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(json_string("a\xff"
                        "b"),
            "\"a" + r + "b\"");
  EXPECT_EQ(json_string("\xc0\xaf"), "\"" + r + r + "\"");                  // overlong '/'
  EXPECT_EQ(json_string("\xed\xa0\x80"), "\"" + r + r + r + "\"");          // surrogate U+D800
  EXPECT_EQ(json_string("\xf4\x90\x80\x80"), "\"" + r + r + r + r + "\"");  // above U+10FFFF
  EXPECT_EQ(json_string("x\xe4\xb8"), "\"x" + r + r + "\"");                // truncated at the end
  EXPECT_EQ(json_string("\xe4"
                        "a"),
            "\"" + r + "a\"");  // missing continuation
}

TEST(EventJson, ArbitraryBytesAlwaysGiveParseableJson) {
  std::mt19937 rng(12345);
  std::uniform_int_distribution<int> len(0, 24);
  std::uniform_int_distribution<int> byte(0, 255);
  for (int round = 0; round < 20000; ++round) {
    std::string s(static_cast<size_t>(len(rng)), '\0');
    for (char& c : s) c = static_cast<char>(byte(rng));
    const std::string out = json_string(s);
    json parsed;
    ASSERT_NO_THROW(parsed = json::parse(out)) << out;
    // nlohmann rejects invalid UTF-8 in dump(), so a clean dump means the input was valid.
    std::string round_trip;
    try {
      round_trip = json(s).dump();
    } catch (const json::exception&) {
      continue;
    }
    EXPECT_EQ(parsed.get<std::string>(), s);
  }
}

TEST(EventJson, RandomValidUtf8RoundTripsExactly) {
  std::mt19937 rng(777);
  std::uniform_int_distribution<uint32_t> plane(0, 3);
  std::uniform_int_distribution<int> len(0, 16);
  for (int round = 0; round < 20000; ++round) {
    std::string s;
    for (int n = len(rng); n > 0; --n) {
      static constexpr uint32_t kTop[] = {0x80, 0x800, 0x10000, 0x110000};
      uint32_t cp = std::uniform_int_distribution<uint32_t>(0, kTop[plane(rng)] - 1)(rng);
      if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;
      if (cp < 0x80) {
        s += static_cast<char>(cp);
      } else if (cp < 0x800) {
        s += static_cast<char>(0xC0 | (cp >> 6));
        s += static_cast<char>(0x80 | (cp & 0x3F));
      } else if (cp < 0x10000) {
        s += static_cast<char>(0xE0 | (cp >> 12));
        s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        s += static_cast<char>(0x80 | (cp & 0x3F));
      } else {
        s += static_cast<char>(0xF0 | (cp >> 18));
        s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        s += static_cast<char>(0x80 | (cp & 0x3F));
      }
    }
    const std::string out = json_string(s);
    ASSERT_EQ(json::parse(out).get<std::string>(), s) << out;
  }
}

TEST(EventJson, DoublesUseTheShortestTextThatParsesBackExactly) {
  auto text = [](double d) {
    std::string out;
    append_double(out, d);
    return out;
  };
  EXPECT_EQ(text(0.1), "0.1");
  EXPECT_EQ(text(5.99e-05), "5.99e-05");
  EXPECT_EQ(text(34738.38), "34738.38");
  EXPECT_EQ(text(296.92564200000004), "296.92564200000004");
  EXPECT_EQ(text(1e21), "1e+21");
  EXPECT_EQ(text(100.0), "100.0");
  EXPECT_EQ(text(-0.0), "-0.0");
  EXPECT_EQ(text(5e-324), "5e-324");
  EXPECT_EQ(text(std::nan("")), "null");
  EXPECT_EQ(text(std::numeric_limits<double>::infinity()), "null");
  EXPECT_EQ(text(-std::numeric_limits<double>::infinity()), "null");

  std::mt19937_64 rng(99);
  for (int i = 0; i < 20000; ++i) {
    uint64_t bits = rng();
    double d;
    std::memcpy(&d, &bits, sizeof(d));
    if (!std::isfinite(d)) continue;
    const json parsed = json::parse(text(d));
    ASSERT_TRUE(parsed.is_number_float()) << text(d);
    EXPECT_EQ(parsed.get<double>(), d) << text(d);
  }
}

TEST(EventJson, TimesAreRfc3339UtcWithMillisecondsOrMicroseconds) {
  EXPECT_EQ(rfc3339(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(rfc3339(kTime), "2025-10-22T09:36:42.306Z");
  EXPECT_EQ(rfc3339(kTime + 1'999), "2025-10-22T09:36:42.306001Z");
  EXPECT_EQ(rfc3339(kTime + 1'999, 3), "2025-10-22T09:36:42.306Z");
  EXPECT_EQ(rfc3339(kTime + 1'999, 9), "2025-10-22T09:36:42.306001999Z");
  EXPECT_EQ(rfc3339(-1), "1969-12-31T23:59:59.999999Z");
  EXPECT_EQ(rfc3339(1709164800000000000), "2024-02-29T00:00:00.000Z");
  EXPECT_EQ(rfc3339(951782400000000000), "2000-02-29T00:00:00.000Z");
  EXPECT_EQ(rfc3339(std::numeric_limits<int64_t>::max(), 9), "2262-04-11T23:47:16.854775807Z");
  EXPECT_EQ(rfc3339(std::numeric_limits<int64_t>::min(), 9), "1677-09-21T00:12:43.145224192Z");
}

TEST(EventJson, Base64MatchesRfc4648Vectors) {
  EXPECT_EQ(base64(""), "");
  EXPECT_EQ(base64("f"), "Zg==");
  EXPECT_EQ(base64("fo"), "Zm8=");
  EXPECT_EQ(base64("foo"), "Zm9v");
  EXPECT_EQ(base64("foob"), "Zm9vYg==");
  EXPECT_EQ(base64("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64("foobar"), "Zm9vYmFy");
}

TEST(EventText, RendersTimeSourceKeyAndFields) {
  EventBuilder b;
  liquidation(b);
  EXPECT_EQ(to_text(b.finish()),
            "2025-10-22T09:36:42.306Z [file] SOLUSDT avg_price=184.22 filled_qty=0.04 side=SELL "
            "symbol=SOLUSDT usd_value=7.3688");
}

TEST(EventText, QuotesOnlyStringsThatNeedIt) {
  EventBuilder b;
  b.event_time_ns(kTime)
      .key("币安人生USDT")
      .field("a", "two words")
      .field("b", "")
      .field("c", "line\nbreak")
      .field("d", "币安人生USDT")
      .field("e", "x=y")
      .field("f", "say \"hi\"")
      .field("g", 3.0)
      .field("h", int64_t{-5})
      .field("i", true)
      .bytes_field("j", std::vector<uint8_t>{'f', 'o', 'o'})
      .null_field("k");
  EXPECT_EQ(to_text(b.finish()),
            "2025-10-22T09:36:42.306Z 币安人生USDT a=\"two words\" b=\"\" c=\"line\\nbreak\" "
            "d=币安人生USDT e=x=y f=\"say \\\"hi\\\"\" g=3 h=-5 i=true j=Zm9v k=null");
}

TEST(EventText, FieldSubsetFollowsTheListedOrder) {
  EventBuilder b;
  liquidation(b);
  const std::vector<std::string> fields = {"side", "usd_value", "missing"};
  EXPECT_EQ(to_text(b.finish(), {.fields = fields}),
            "2025-10-22T09:36:42.306Z [file] SOLUSDT side=SELL usd_value=7.3688");
}

}  // namespace
}  // namespace sluice
