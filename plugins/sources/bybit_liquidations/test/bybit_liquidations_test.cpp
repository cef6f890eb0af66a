// Tests of the `bybit_liquidations` message parser (directly) and of replay, recording, options
// and the README's examples through the real loader and host.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "bybit_liquidations.hpp"
#include "frame.hpp"
#include "pipeline_runner.hpp"
#include "plugin_harness.hpp"
#include "process.hpp"

namespace {

using sluice::EventBuilder;
using sluice::EventView;
using sluice::bybit::Message;
using sluice::bybit::MessageKind;
using sluice::bybit::Parser;
using sluice::testing::PluginHarness;
using sluice::testing::TempDir;

const std::string kDir = SLUICE_SOURCE_DIR "/plugins/sources/bybit_liquidations";
const std::string kMessages = kDir + "/test/data/allliquidation_messages.jsonl";

#define EXPECT_CONTAINS(text, part) \
  EXPECT_NE(std::string(text).find(part), std::string::npos) << "in: " << (text)

const std::string kTwoRows =
    R"({"topic":"allLiquidation.BTCUSDT","type":"snapshot","ts":1761125802806,"data":[)"
    R"({"T":1761125802306,"s":"BTCUSDT","S":"Buy","v":"0.512","p":"108012.40"},)"
    R"({"T":1761125802411,"s":"BTCUSDT","S":"Sell","v":"2","p":"107998.5"}]})";

Message parse(const std::string& text) {
  static Parser parser;
  Message m;
  parser.parse(text, m);
  return m;
}

std::string reason(const std::string& text) {
  Message m = parse(text);
  EXPECT_EQ(m.kind, MessageKind::kBad) << text;
  return m.reason;
}

std::string row_error(const std::string& row) {
  Message m = parse(R"({"topic":"allLiquidation.X","ts":1761125802301,"data":[)" + row + "]}");
  EXPECT_EQ(m.kind, MessageKind::kData);
  EXPECT_EQ(m.rows.size(), 0u);
  return m.row_errors.empty() ? "" : m.row_errors[0];
}

std::string creation_error(const std::string& options) {
  try {
    PluginHarness source("source", "bybit_liquidations", options);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

// --- parser -----------------------------------------------------------------------------------

TEST(BybitMessage, EveryRowOfAPushIsRead) {
  Message m = parse(kTwoRows);
  ASSERT_EQ(m.kind, MessageKind::kData);
  EXPECT_EQ(m.push_time_ms, 1761125802806);
  ASSERT_EQ(m.rows.size(), 2u);
  EXPECT_EQ(m.rows[0].symbol, "BTCUSDT");
  EXPECT_EQ(m.rows[0].side, "Buy");
  EXPECT_DOUBLE_EQ(m.rows[0].quantity, 0.512);
  EXPECT_DOUBLE_EQ(m.rows[0].price, 108012.40);
  EXPECT_EQ(m.rows[0].trade_time_ms, 1761125802306);
  EXPECT_EQ(m.rows[1].side, "Sell");
  EXPECT_TRUE(m.row_errors.empty());
}

TEST(BybitMessage, BuyMeansALongWasLiquidatedTheOppositeOfBinance) {
  Message m = parse(kTwoRows);
  ASSERT_EQ(m.rows.size(), 2u);
  EventBuilder b;
  sluice::bybit::build_event(m.rows[0], m.push_time_ms, kTwoRows, b);
  auto ev = sluice::testing::event_to_json(b.finish());
  const auto& f = ev["fields"];
  EXPECT_EQ(f["exchange"], "bybit");
  EXPECT_EQ(f["symbol"], "BTCUSDT");
  EXPECT_EQ(f["liquidated"], "long");
  EXPECT_EQ(f["side"], "SELL");  // the liquidation order's side, as Binance's `side`
  EXPECT_DOUBLE_EQ(f["price"].get<double>(), 108012.40);
  EXPECT_DOUBLE_EQ(f["avg_price"].get<double>(), 108012.40);
  EXPECT_DOUBLE_EQ(f["quantity"].get<double>(), 0.512);
  EXPECT_DOUBLE_EQ(f["notional_usd"].get<double>(), 108012.40 * 0.512);
  EXPECT_EQ(f["trade_time_ms"], 1761125802306);
  EXPECT_EQ(f["order_type"], "");
  EXPECT_EQ(f["status"], "");
  EXPECT_EQ(f["raw"], kTwoRows);
  EXPECT_EQ(ev["key"], "BTCUSDT");
  EXPECT_EQ(ev["event_time_ns"], 1761125802806000000);
  EXPECT_EQ(f.size(), 12u) << f.dump();

  EventBuilder b2;
  sluice::bybit::build_event(m.rows[1], m.push_time_ms, kTwoRows, b2);
  EventView second(b2.finish());
  EXPECT_EQ(second.string("liquidated"), "short");
  EXPECT_EQ(second.string("side"), "BUY");
}

TEST(BybitMessage, AcksPongsAndRefusalsAreRecognised) {
  EXPECT_EQ(
      parse(R"({"success":true,"ret_msg":"","conn_id":"c","req_id":"","op":"subscribe"})").kind,
      MessageKind::kAck);
  EXPECT_EQ(parse(R"({"success":true,"ret_msg":"pong","conn_id":"c","op":"ping"})").kind,
            MessageKind::kPong);
  EXPECT_EQ(parse(R"({"op":"pong","args":["1661741630642"],"conn_id":"c"})").kind,
            MessageKind::kPong);
  Message m =
      parse(R"({"success":false,"ret_msg":"error:handler not found,topic:allLiquidation.NOPE",)"
            R"("conn_id":"c","op":"subscribe"})");
  EXPECT_EQ(m.kind, MessageKind::kRefused);
  EXPECT_EQ(m.reason, "subscribe refused: error:handler not found,topic:allLiquidation.NOPE");
}

TEST(BybitMessage, MalformedMessagesSayWhichFieldAndWhy) {
  EXPECT_CONTAINS(reason(kTwoRows.substr(0, 50)), "invalid JSON: ");
  EXPECT_EQ(reason("[1]"), "expected a JSON object, got an array");
  EXPECT_EQ(reason(R"({"ts":1761125802301,"data":[]})"), R"(missing field "topic")");
  EXPECT_EQ(reason(R"({"topic":"publicTrade.BTCUSDT","ts":1761125802301,"data":[]})"),
            R"(field "topic": expected "allLiquidation.<symbol>", got "publicTrade.BTCUSDT")");
  EXPECT_EQ(reason(R"({"topic":"allLiquidation.X","ts":"soon","data":[]})"),
            R"(field "ts": expected epoch milliseconds (an integer >= 0), got a string "soon")");
  EXPECT_EQ(reason(R"({"topic":"allLiquidation.X","ts":1761125802301,"data":{"s":"X"}})"),
            R"(field "data": expected an array, got an object)");

  EXPECT_EQ(row_error(R"({"T":1761125802301,"s":"X","S":"Long","v":"1","p":"2"})"),
            R"(field "data[0].S": expected "Buy" or "Sell", got "Long")");
  EXPECT_EQ(row_error(R"({"T":1761125802301,"s":"X","S":"Buy","v":"1,5","p":"2"})"),
            R"(field "data[0].v": "1,5" is not a decimal number)");
  EXPECT_EQ(row_error(R"({"T":1761125802301,"s":"X","S":"Buy","v":"1","p":"-2"})"),
            R"(field "data[0].p": must be a finite number >= 0)");
  EXPECT_EQ(row_error(R"({"T":1761125802301,"S":"Buy","v":"1","p":"2"})"),
            R"(missing field "data[0].s")");
  EXPECT_EQ(row_error(R"({"T":1761125802301,"s":"","S":"Buy","v":"1","p":"2"})"),
            R"(field "data[0].s": the symbol is empty)");
  EXPECT_EQ(
      row_error(R"({"T":1.5,"s":"X","S":"Buy","v":"1","p":"2"})"),
      R"(field "data[0].T": expected epoch milliseconds (an integer >= 0), got a number 1.5)");
  EXPECT_EQ(row_error("7"), R"(field "data[0]": expected an object, got a number 7)");
}

TEST(BybitMessage, ABadRowDoesNotLoseTheGoodRowsBesideIt) {
  Message m = parse(R"({"topic":"allLiquidation.X","ts":1761125802301,"data":[)"
                    R"({"T":1761125802301,"s":"X","S":"Buy","v":"1","p":"2"},)"
                    R"({"T":1761125802302,"s":"X","S":"Buy","v":"oops","p":"2"},)"
                    R"({"T":1761125802303,"s":"X","S":"Sell","v":3,"p":2.5}]})");
  ASSERT_EQ(m.kind, MessageKind::kData);
  ASSERT_EQ(m.rows.size(), 2u);
  EXPECT_EQ(m.rows[1].trade_time_ms, 1761125802303);
  EXPECT_DOUBLE_EQ(m.rows[1].quantity, 3);
  ASSERT_EQ(m.row_errors.size(), 1u);
  EXPECT_EQ(m.row_errors[0], R"(field "data[1].v": "oops" is not a decimal number)");
}

// Times outside 2000..2200 (event_time_ns = ms × 1e6 must fit int64) and notionals that
// overflow are bad data of their own kind; the good rows beside them still count.
TEST(BybitMessage, OutOfRangeTimesAndNotionalsAreReportedApart) {
  Message m = parse(R"({"topic":"allLiquidation.X","ts":1761125802306,"data":[)"
                    R"({"T":99999999999999999,"s":"X","S":"Buy","v":"1","p":"2"},)"
                    R"({"T":1761125802301,"s":"X","S":"Buy","v":"1e200","p":"1e200"},)"
                    R"({"T":1761125802302,"s":"X","S":"Buy","v":"NaN","p":"2"},)"
                    R"({"T":1761125802303,"s":"X","S":"Sell","v":3,"p":2.5}]})");
  ASSERT_EQ(m.kind, MessageKind::kData);
  ASSERT_EQ(m.rows.size(), 1u);
  EXPECT_EQ(m.rows[0].trade_time_ms, 1761125802303);
  ASSERT_EQ(m.range_errors.size(), 2u);
  EXPECT_EQ(m.range_errors[0], R"(field "data[0].T": 99999999999999999 is out of range )"
                               R"((epoch milliseconds from 2000-01-01 up to 2200-01-01))");
  EXPECT_EQ(m.range_errors[1], R"(fields "data[1].p" × "data[1].v": the notional overflows a )"
                               R"(double)");
  ASSERT_EQ(m.row_errors.size(), 1u);
  EXPECT_EQ(m.row_errors[0], R"(field "data[2].v": must be a finite number >= 0)");

  // The push time dates every row: out of range, the whole push is.
  m = parse(R"({"topic":"allLiquidation.X","ts":99999999999999999,"data":[]})");
  EXPECT_EQ(m.kind, MessageKind::kBad);
  EXPECT_TRUE(m.out_of_range);
  EXPECT_EQ(m.reason, R"(field "ts": 99999999999999999 is out of range (epoch milliseconds )"
                      R"(from 2000-01-01 up to 2200-01-01))");
}

TEST(BybitReplay, OutOfRangeRowsAreCountedWithTheirReasonAndNeverEmitted) {
  TempDir dir;
  const std::string path =
      dir.write("range.jsonl",
                kTwoRows + "\n" + R"({"topic":"allLiquidation.X","ts":1761125802306,"data":[)" +
                    R"({"T":9223372036854775807,"s":"X","S":"Buy","v":"1","p":"2"}]})" + "\n" +
                    R"({"topic":"allLiquidation.X","ts":7258118400000,"data":[)" +
                    R"({"T":1761125802306,"s":"X","S":"Buy","v":"1","p":"2"}]})" + "\n");
  PluginHarness source("source", "bybit_liquidations", "replay_file = \"" + path + "\"");
  auto events = source.run_source();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(source.counter("source_parse_errors_total"), 2);
  EXPECT_CONTAINS(source.prometheus(), "reason=\"out_of_range\"} 2");
}

TEST(BybitSubscribe, TopicsAreBatchedTenPerRequest) {
  std::vector<std::string> symbols;
  for (int i = 0; i < 23; ++i) symbols.push_back("S" + std::to_string(i) + "USDT");
  auto m = sluice::bybit::subscribe_messages(symbols);
  ASSERT_EQ(m.size(), 3u);
  EXPECT_TRUE(m[0].starts_with(R"({"op":"subscribe","args":["allLiquidation.S0USDT",)"));
  EXPECT_TRUE(m[2].ends_with(R"("allLiquidation.S22USDT"]})"));
  for (const auto& text : m) {
    auto j = nlohmann::json::parse(text);
    EXPECT_LE(j["args"].size(), 10u);
  }
  EXPECT_EQ(sluice::bybit::subscribe_messages({"BTCUSDT"}).at(0),
            R"({"op":"subscribe","args":["allLiquidation.BTCUSDT"]})");
}

// --- replay, recording and options through the plugin ------------------------------------------

TEST(BybitReplay, EveryRowOfTheRecordedMessagesBecomesAnEvent) {
  PluginHarness source("source", "bybit_liquidations", "replay_file = \"" + kMessages + "\"");
  auto events = source.run_source();
  ASSERT_EQ(events.size(), 7u);
  std::vector<std::string> symbols;
  for (size_t i = 0; i < events.size(); ++i) {
    EventView ev(events[i].data(), events[i].size());
    EXPECT_EQ(ev.id(), i + 1);
    EXPECT_EQ(ev.string("exchange"), "bybit");
    symbols.emplace_back(*ev.string("symbol"));
  }
  EXPECT_EQ(symbols, (std::vector<std::string>{"ROSEUSDT", "BTCUSDT", "BTCUSDT", "BTCUSDT",
                                               "ETHUSDT", "ETHUSDT", "1000PEPEUSDT"}));
  EventView pepe(events[6].data(), events[6].size());
  EXPECT_DOUBLE_EQ(*pepe.number("notional_usd"), 2479900 * 0.0000599);
  EXPECT_EQ(pepe.string("liquidated"), "short");
  EXPECT_EQ(source.counter("source_parse_errors_total"), 0);
}

TEST(BybitReplay, BadMessagesAreCountedWithAReasonAndTheStreamGoesOn) {
  TempDir dir;
  const std::string path = dir.write(
      "mixed.jsonl",
      "not json\n" + kTwoRows + "\n" +
          R"({"topic":"allLiquidation.X","ts":1761125802301,"data":[{"T":1761125802301,"s":"X","S":"Buy"}]})" +
          "\n" + R"({"topic":"allLiquidation.ETHUSDT","ts":1761125802302,"data":[)" +
          R"({"T":1761125802305,"s":"ETHUSDT","S":"Sell","v":"1","p":"3000"}]})" + "\n");
  PluginHarness source("source", "bybit_liquidations", "replay_file = \"" + path + "\"");
  auto events = source.run_source();
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(source.counter("source_parse_errors_total"), 2);
  std::vector<std::string> warnings;
  for (const auto& l : source.logs()) {
    if (l.level == SLUICE_LOG_WARN) warnings.push_back(l.message);
  }
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_CONTAINS(warnings[0], path + ":1: invalid JSON: ");
  EXPECT_CONTAINS(warnings[1], path + ":3: missing field \"data[0].v\" in {\"topic\"");
}

TEST(BybitReplay, RecordingRoundTripsMessagesAndDuplicatesAreEmittedOnce) {
  TempDir dir;
  const std::string recording = dir.file("session.jsonl");
  const std::string doubled = dir.write("doubled.jsonl", kTwoRows + "\n" + kTwoRows + "\n");
  {
    PluginHarness source("source", "bybit_liquidations",
                         "replay_file = \"" + doubled + "\"\nrecord_to = \"" + recording + "\"");
    EXPECT_EQ(source.run_source().size(), 2u);
    EXPECT_EQ(source.counter("source_duplicates_total"), 2);
  }
  const auto lines = sluice::testing::read_lines(recording);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(nlohmann::json::parse(lines[0])["frame"], kTwoRows);
  PluginHarness again("source", "bybit_liquidations", "replay_file = \"" + recording + "\"");
  auto events = again.run_source();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(EventView(events[0].data(), events[0].size()).string("raw"), kTwoRows);
}

TEST(BybitOptions, BadOptionsNameTheOptionAndTheProblem) {
  EXPECT_CONTAINS(creation_error(""),
                  "is required for a live connection: Bybit has no "
                  "all-symbols liquidation topic");
  EXPECT_CONTAINS(creation_error("symbols = [\"BTCUSDT\", \"eth usdt\"]"),
                  "entry 2 is not a symbol: 'eth usdt'");
  EXPECT_CONTAINS(creation_error("symbols = [\"BTCUSDT\"]\nurl = \"https://stream.bybit.com\""),
                  "must start with wss:// (or ws://)");
  EXPECT_CONTAINS(creation_error("symbols = [\"BTCUSDT\"]\nreconnect_min = \"2s\"\n"
                                 "reconnect_max = \"1s\""),
                  "must not be less than reconnect_min");
  EXPECT_CONTAINS(creation_error("symbols = [\"BTCUSDT\"]\nheartbeat = \"0s\""),
                  "must be greater than 0");
  EXPECT_CONTAINS(creation_error("replay_file = \"/no/such/file.jsonl\""),
                  "cannot read '/no/such/file.jsonl'");
  EXPECT_CONTAINS(creation_error("symbols = [\"BTCUSDT\"]\nrecord_to = \"/no/such/dir/r.jsonl\""),
                  "the directory '/no/such/dir' does not exist");
  EXPECT_CONTAINS(creation_error("symbols = [\"BTCUSDT\"]\nspeed = 0.0"),
                  "speed must be a number greater than 0");
  EXPECT_EQ(creation_error("symbols = [\"BTCUSDT\"]"), "");
}

// Every ```toml example of the README validates as a pipeline (run from the repository root).
TEST(BybitReadme, ExamplesValidate) {
  std::ifstream in(kDir + "/README.md");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string readme = ss.str();
  const std::regex block("```toml\n([\\s\\S]*?)```");
  const std::regex source_name("\\[sources\\.([A-Za-z0-9_]+)\\]");
  size_t blocks = 0;
  for (auto it = std::sregex_iterator(readme.begin(), readme.end(), block);
       it != std::sregex_iterator(); ++it, ++blocks) {
    const std::string body = (*it)[1];
    std::string inputs;
    for (auto s = std::sregex_iterator(body.begin(), body.end(), source_name);
         s != std::sregex_iterator(); ++s) {
      inputs += std::string(inputs.empty() ? "" : ", ") + "\"" + (*s)[1].str() + "\"";
    }
    TempDir dir;
    const std::string path = dir.write(
        "example.toml", "[pipeline]\nname = \"example\"\n\n" + body +
                            "\n[sinks.out]\ntype = \"blackhole\"\ninputs = [" + inputs + "]\n");
    auto r = sluice::testing::run_command({sluice::testing::sluice_binary(), "validate", path}, {},
                                          std::chrono::seconds(60), SLUICE_SOURCE_DIR);
    EXPECT_EQ(r.exit_code, 0) << body << "\n" << r.out << r.err;
  }
  EXPECT_GE(blocks, 1u);
}

}  // namespace
