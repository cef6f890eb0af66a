// Tests of the `okx_liquidations` message and instruments parsers (directly) and of replay,
// contract values, recording, options and the README's examples through the real loader and host.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "frame.hpp"
#include "pipeline_runner.hpp"
#include "plugin_harness.hpp"
#include "process.hpp"

namespace {

using sluice::EventBuilder;
using sluice::EventView;
using sluice::okx::Contract;
using sluice::okx::Message;
using sluice::okx::MessageKind;
using sluice::okx::Parser;
using sluice::testing::PluginHarness;
using sluice::testing::TempDir;

const std::string kDir = SLUICE_SOURCE_DIR "/plugins/sources/okx_liquidations";
const std::string kMessages = kDir + "/test/data/liquidation_orders_messages.jsonl";
const std::string kInstruments = kDir + "/test/data/instruments_swap.json";
const std::string kValues =
    R"(contract_values = { "BTC-USDT-SWAP" = 0.01, "ETH-USDT-SWAP" = 0.1, "BTC-USD-SWAP" = 100, )"
    R"("IOST-USDT-SWAP" = 1000 })";

#define EXPECT_CONTAINS(text, part) \
  EXPECT_NE(std::string(text).find(part), std::string::npos) << "in: " << (text)

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string push(const std::string& instrument, const std::string& details) {
  return R"({"arg":{"channel":"liquidation-orders","instType":"SWAP"},"data":[{"details":[)" +
         details + R"(],"instFamily":"X","instId":")" + instrument +
         R"(","instType":"SWAP","uly":"X"}]})";
}

const std::string kDetail =
    R"({"bkLoss":"0","bkPx":"108012.4","ccy":"","posSide":"long","side":"sell","sz":"51",)"
    R"("ts":"1761125802306"})";

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

std::string detail_error(const std::string& detail) {
  Message m = parse(push("BTC-USDT-SWAP", detail));
  EXPECT_EQ(m.kind, MessageKind::kData);
  EXPECT_EQ(m.rows.size(), 0u);
  return m.row_errors.empty() ? "" : m.row_errors[0];
}

std::string creation_error(const std::string& options) {
  try {
    PluginHarness source("source", "okx_liquidations", options);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

// --- parsers ----------------------------------------------------------------------------------

TEST(OkxMessage, EveryDetailOfEveryInstrumentIsRead) {
  std::ifstream in(kMessages);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  Message m = parse(lines.at(3));
  ASSERT_EQ(m.kind, MessageKind::kData);
  ASSERT_EQ(m.rows.size(), 3u);
  EXPECT_EQ(m.rows[0].instrument, "ETH-USDT-SWAP");
  EXPECT_EQ(m.rows[0].pos_side, "short");
  EXPECT_EQ(m.rows[0].side, "buy");
  EXPECT_DOUBLE_EQ(m.rows[0].contracts, 125);
  EXPECT_DOUBLE_EQ(m.rows[0].price, 3844.54);
  EXPECT_EQ(m.rows[0].time_ms, 1761125803001);
  EXPECT_EQ(m.rows[1].pos_side, "net");
  EXPECT_EQ(m.rows[2].instrument, "BTC-USD-SWAP");
  EXPECT_TRUE(m.row_errors.empty());
}

TEST(OkxMessage, PosSideSaysWhichSideWasLiquidatedAndNetModeUsesTheOrderSide) {
  sluice::okx::Row r;
  r.pos_side = "long";
  r.side = "sell";
  EXPECT_TRUE(sluice::okx::long_liquidated(r));
  r.pos_side = "short";
  r.side = "buy";
  EXPECT_FALSE(sluice::okx::long_liquidated(r));
  r.pos_side = "net";
  r.side = "sell";
  EXPECT_TRUE(sluice::okx::long_liquidated(r));
  r.side = "buy";
  EXPECT_FALSE(sluice::okx::long_liquidated(r));
  r.pos_side = "";
  r.side = "sell";
  EXPECT_TRUE(sluice::okx::long_liquidated(r));
}

TEST(OkxMessage, NotionalIsContractsTimesContractValueTimesBankruptcyPrice) {
  const std::string text = push("BTC-USDT-SWAP", kDetail);
  Message m = parse(text);
  ASSERT_EQ(m.rows.size(), 1u);
  EventBuilder b;
  sluice::okx::build_event(m.rows[0], "BTCUSDT", Contract{0.01, false}, text, b);
  auto ev = sluice::testing::event_to_json(b.finish());
  const auto& f = ev["fields"];
  EXPECT_EQ(f["exchange"], "okx");
  EXPECT_EQ(f["symbol"], "BTCUSDT");
  EXPECT_EQ(f["instrument"], "BTC-USDT-SWAP");
  EXPECT_EQ(f["liquidated"], "long");
  EXPECT_EQ(f["side"], "SELL");
  EXPECT_DOUBLE_EQ(f["contracts"].get<double>(), 51);
  EXPECT_DOUBLE_EQ(f["contract_value"].get<double>(), 0.01);
  EXPECT_DOUBLE_EQ(f["quantity"].get<double>(), 0.51);
  EXPECT_DOUBLE_EQ(f["price"].get<double>(), 108012.4);
  EXPECT_DOUBLE_EQ(f["avg_price"].get<double>(), 108012.4);
  EXPECT_DOUBLE_EQ(f["notional_usd"].get<double>(), 51 * 0.01 * 108012.4);
  EXPECT_EQ(f["trade_time_ms"], 1761125802306);
  EXPECT_EQ(f["order_type"], "");
  EXPECT_EQ(f["status"], "");
  EXPECT_EQ(f["raw"], text);
  EXPECT_EQ(ev["key"], "BTCUSDT");
  EXPECT_EQ(ev["event_time_ns"], 1761125802306000000);
  EXPECT_EQ(f.size(), 15u) << f.dump();

  // Inverse (coin-margined) contracts are worth ctVal USD each.
  sluice::okx::Row inverse = m.rows[0];
  inverse.instrument = "BTC-USD-SWAP";
  EXPECT_DOUBLE_EQ(sluice::okx::notional_usd(inverse, Contract{100, true}), 5100);
  EXPECT_DOUBLE_EQ(sluice::okx::base_quantity(inverse, Contract{100, true}), 5100 / 108012.4);
}

TEST(OkxMessage, InstrumentIdsBecomeExchangeAgnosticSymbols) {
  EXPECT_EQ(sluice::okx::symbol_of("BTC-USDT-SWAP"), "BTCUSDT");
  EXPECT_EQ(sluice::okx::symbol_of("ETH-USD-250328"), "ETHUSD");
  EXPECT_EQ(sluice::okx::symbol_of("1INCH-USDC-SWAP"), "1INCHUSDC");
  EXPECT_TRUE(sluice::okx::is_inverse("BTC-USD-SWAP"));
  EXPECT_FALSE(sluice::okx::is_inverse("BTC-USDT-SWAP"));
  EXPECT_FALSE(sluice::okx::is_inverse("BTC-USDC-SWAP"));
}

TEST(OkxMessage, EventsPongsAndRefusalsAreRecognised) {
  EXPECT_EQ(parse("pong").kind, MessageKind::kPong);
  EXPECT_EQ(parse(R"({"event":"subscribe","arg":{"channel":"liquidation-orders",)"
                  R"("instType":"SWAP"},"connId":"a4d3ae55"})")
                .kind,
            MessageKind::kAck);
  Message m = parse(R"({"event":"error","code":"60012","msg":"Invalid request: {\"op\": \"s\"}",)"
                    R"("connId":"a4d3ae55"})");
  EXPECT_EQ(m.kind, MessageKind::kRefused);
  EXPECT_EQ(m.reason, R"(error 60012: Invalid request: {"op": "s"})");
  m = parse(R"({"event":"notice","code":"64008","msg":"The connection will soon be closed for a )"
            R"(service upgrade.","connId":"a4d3ae55"})");
  EXPECT_EQ(m.kind, MessageKind::kNotice);
  EXPECT_CONTAINS(m.reason, "notice 64008: The connection will soon be closed");
}

TEST(OkxMessage, MalformedMessagesSayWhichFieldAndWhy) {
  EXPECT_CONTAINS(reason("{\"arg\":"), "invalid JSON: ");
  EXPECT_CONTAINS(reason("ping"), "invalid JSON: ");  // only "pong" is a text message
  EXPECT_EQ(reason("[1]"), "expected a JSON object, got an array");
  EXPECT_EQ(reason(R"({"data":[]})"), R"(missing field "arg")");
  EXPECT_EQ(reason(R"({"arg":{"channel":"trades"},"data":[]})"),
            R"(field "arg.channel": expected "liquidation-orders", got a string "trades")");
  EXPECT_EQ(reason(R"({"arg":{"channel":"liquidation-orders"},"data":{}})"),
            R"(field "data": expected an array, got an object)");

  auto with = [](const std::string& from, const std::string& to) {
    std::string d = kDetail;
    d.replace(d.find(from), from.size(), to);
    return d;
  };
  EXPECT_EQ(detail_error(with(R"("side":"sell")", R"("side":"hold")")),
            R"(field "data[0].details[0].side": expected "buy" or "sell", got "hold")");
  EXPECT_EQ(detail_error(with(R"("posSide":"long")", R"("posSide":"up")")),
            R"(field "data[0].details[0].posSide": expected "long", "short" or "net", got "up")");
  EXPECT_EQ(detail_error(with(R"("sz":"51")", R"("sz":"5 1")")),
            R"(field "data[0].details[0].sz": "5 1" is not a decimal number)");
  EXPECT_EQ(detail_error(with(R"("bkPx":"108012.4",)", "")),
            R"(missing field "data[0].details[0].bkPx")");
  EXPECT_EQ(detail_error(with(R"("ts":"1761125802306")", R"("ts":"yesterday")")),
            R"(field "data[0].details[0].ts": expected epoch milliseconds (an integer >= 0), )"
            R"(got a string "yesterday")");
  Message m = parse(R"({"arg":{"channel":"liquidation-orders"},"data":[{"details":[]}]})");
  ASSERT_EQ(m.row_errors.size(), 1u);
  EXPECT_EQ(m.row_errors[0], R"(missing field "data[0].instId")");
}

TEST(OkxMessage, ABadDetailDoesNotLoseTheGoodOnesBesideIt) {
  Message m = parse(push("BTC-USDT-SWAP", kDetail + "," + R"({"side":"sell"})" + "," +
                                              R"({"bkPx":"1","posSide":"net","side":"buy",)"
                                              R"("sz":"2","ts":"1761125802303"})"));
  ASSERT_EQ(m.kind, MessageKind::kData);
  ASSERT_EQ(m.rows.size(), 2u);
  EXPECT_EQ(m.rows[1].time_ms, 1761125802303);
  ASSERT_EQ(m.row_errors.size(), 1u);
  EXPECT_EQ(m.row_errors[0], R"(missing field "data[0].details[1].sz")");
}

TEST(OkxInstruments, ContractValuesAndTypesAreRead) {
  std::string error;
  auto c = sluice::okx::parse_instruments(slurp(kInstruments), &error);
  ASSERT_TRUE(c) << error;
  ASSERT_EQ(c->size(), 4u);
  EXPECT_DOUBLE_EQ(c->at("BTC-USDT-SWAP").value, 0.01);
  EXPECT_FALSE(c->at("BTC-USDT-SWAP").inverse);
  EXPECT_DOUBLE_EQ(c->at("BTC-USD-SWAP").value, 100);
  EXPECT_TRUE(c->at("BTC-USD-SWAP").inverse);

  EXPECT_FALSE(sluice::okx::parse_instruments("<html>", &error));
  EXPECT_EQ(error, "the reply is not a JSON object");
  EXPECT_FALSE(sluice::okx::parse_instruments(
      R"({"code":"50011","msg":"Too Many Requests","data":[]})", &error));
  EXPECT_EQ(error, R"(OKX answered code "50011": Too Many Requests)");
  c = sluice::okx::parse_instruments(
      R"({"code":"0","data":[{"instId":"A-USDT-SWAP","ctVal":""},{"instId":"B-USDT-SWAP",)"
      R"("ctVal":"0"},{"instId":"C-USDT-SWAP","ctVal":"5"}]})",
      &error);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->size(), 1u);  // no usable ctVal: left out, never a wrong notional
}

// --- replay and options through the plugin ------------------------------------------------------

TEST(OkxReplay, EveryDetailWithAContractValueBecomesAnEvent) {
  PluginHarness source("source", "okx_liquidations",
                       "replay_file = \"" + kMessages + "\"\n" + kValues);
  auto events = source.run_source();
  ASSERT_EQ(events.size(), 5u);
  std::vector<std::string> symbols;
  for (const auto& e : events)
    symbols.emplace_back(*EventView(e.data(), e.size()).string("symbol"));
  EXPECT_EQ(symbols,
            (std::vector<std::string>{"BTCUSDT", "ETHUSDT", "ETHUSDT", "BTCUSD", "IOSTUSDT"}));
  EventView eth_net(events[2].data(), events[2].size());
  EXPECT_EQ(eth_net.string("liquidated"), "long");  // net mode, a sell
  EXPECT_DOUBLE_EQ(*eth_net.number("notional_usd"), 4 * 0.1 * 3845.10);
  EventView inverse(events[3].data(), events[3].size());
  EXPECT_EQ(inverse.string("liquidated"), "short");
  EXPECT_DOUBLE_EQ(*inverse.number("notional_usd"), 3000);
  EXPECT_EQ(source.counter("source_parse_errors_total"), 0);
  EXPECT_EQ(source.counter("source_unknown_instruments_total"), 0);
}

TEST(OkxReplay, UnknownInstrumentsAreCountedLoggedOnceAndSkipped) {
  PluginHarness source(
      "source", "okx_liquidations",
      "replay_file = \"" + kMessages + "\"\ncontract_values = { \"BTC-USDT-SWAP\" = 0.01 }");
  auto events = source.run_source();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(source.counter("source_unknown_instruments_total"), 4);
  size_t eth_warnings = 0;
  for (const auto& l : source.logs()) {
    if (l.message.find("no contract value for ETH-USDT-SWAP") != std::string::npos) ++eth_warnings;
  }
  EXPECT_EQ(eth_warnings, 1u);
}

// Times outside 2000..2200 (event_time_ns = ms × 1e6 must fit int64) and sizes whose value
// overflows are bad data of their own kind, never events.
TEST(OkxMessage, OutOfRangeTimesAreReportedApart) {
  Message m = parse(push("BTC-USDT-SWAP", kDetail + "," +
                                              R"({"bkPx":"1","side":"buy","sz":"2",)"
                                              R"("ts":"99999999999999999"})"));
  ASSERT_EQ(m.kind, MessageKind::kData);
  ASSERT_EQ(m.rows.size(), 1u);
  EXPECT_TRUE(m.row_errors.empty());
  ASSERT_EQ(m.range_errors.size(), 1u);
  EXPECT_EQ(m.range_errors[0],
            R"(field "data[0].details[1].ts": 99999999999999999 is out of range (epoch )"
            R"(milliseconds from 2000-01-01 up to 2200-01-01))");
  for (const char* bad : {R"("sz":"NaN")", R"("sz":"-2")", R"("sz":"inf")"}) {
    std::string detail = kDetail;
    detail.replace(detail.find(R"("sz":"51")"), 9, bad);
    Message d = parse(push("BTC-USDT-SWAP", detail));
    EXPECT_TRUE(d.rows.empty()) << bad;
    ASSERT_EQ(d.row_errors.size(), 1u) << bad;
    EXPECT_EQ(d.row_errors[0], R"(field "data[0].details[0].sz": must be a finite number >= 0)");
  }
}

TEST(OkxReplay, OutOfRangeDetailsAreCountedWithTheirReasonAndNeverEmitted) {
  TempDir dir;
  std::string far = kDetail;
  far.replace(far.find(R"("ts":"1761125802306")"), 20, R"("ts":"7258118400000")");
  std::string huge = kDetail;
  huge.replace(huge.find(R"("sz":"51")"), 9, R"("sz":"1e307")");
  huge.replace(huge.find(R"("ts":"1761125802306")"), 20, R"("ts":"1761125802307")");
  const std::string path =
      dir.write("range.jsonl", push("BTC-USDT-SWAP", kDetail) + "\n" + push("BTC-USDT-SWAP", far) +
                                   "\n" + push("BTC-USDT-SWAP", huge) + "\n");
  PluginHarness source("source", "okx_liquidations", "replay_file = \"" + path + "\"\n" + kValues);
  auto events = source.run_source();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(EventView(events[0].data(), events[0].size()).event_time_ns(), 1761125802306000000);
  EXPECT_EQ(source.counter("source_parse_errors_total"), 2);
  EXPECT_CONTAINS(source.prometheus(), "reason=\"out_of_range\"} 2");
}

TEST(OkxReplay, BadMessagesAreCountedWithAReasonAndTheStreamGoesOn) {
  TempDir dir;
  const std::string good = push("BTC-USDT-SWAP", kDetail);
  const std::string path =
      dir.write("mixed.jsonl", "{oops\n" + push("BTC-USDT-SWAP", R"({"side":"sell"})") + "\n" +
                                   good + "\n" + good + "\n");
  PluginHarness source("source", "okx_liquidations", "replay_file = \"" + path + "\"\n" + kValues);
  auto events = source.run_source();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(source.counter("source_parse_errors_total"), 2);
  EXPECT_EQ(source.counter("source_duplicates_total"), 1);
  std::vector<std::string> warnings;
  for (const auto& l : source.logs()) {
    if (l.level == SLUICE_LOG_WARN) warnings.push_back(l.message);
  }
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_CONTAINS(warnings[0], path + ":1: invalid JSON: ");
  EXPECT_CONTAINS(warnings[1], path + ":2: missing field \"data[0].details[0].sz\"");
}

TEST(OkxOptions, BadOptionsNameTheOptionAndTheProblem) {
  EXPECT_CONTAINS(creation_error("contract_values = { \"BTC-USDT-SWAP\" = -1 }"),
                  "the value of 'BTC-USDT-SWAP' must be a number greater than 0, got -1");
  EXPECT_CONTAINS(creation_error("contract_values = { \"BTC-USDT-SWAP\" = \"0.01\" }"),
                  "must be a number greater than 0, got \"0.01\"");
  EXPECT_CONTAINS(creation_error("contract_values = { \"BTCUSDT\" = 0.01 }"),
                  "'BTCUSDT' is not an OKX instrument id such as BTC-USDT-SWAP");
  EXPECT_CONTAINS(creation_error("fetch_instruments = false"),
                  "is needed when fetch_instruments = false");
  EXPECT_CONTAINS(creation_error("rest_base = \"ftp://www.okx.com\""), "rest_base");
  EXPECT_CONTAINS(creation_error("url = \"wss://\""), "has no host");
  EXPECT_CONTAINS(creation_error("inst_type = \"SPOT\""), "SPOT");
  EXPECT_CONTAINS(creation_error("instruments_refresh = \"0s\""), "must be greater than 0");
  EXPECT_EQ(creation_error(""), "");
}

// Every ```toml example of the README validates as a pipeline (run from the repository root).
TEST(OkxReadme, ExamplesValidate) {
  const std::string readme = slurp(kDir + "/README.md");
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
