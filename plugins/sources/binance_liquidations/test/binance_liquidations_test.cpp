// Tests of the `binance_liquidations` frame parser (directly) and of replay and recording
// through the real loader and host, over the real recorded Binance frames and CSV rows.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "binance_liquidations.hpp"
#include "frame.hpp"
#include "plugin_harness.hpp"

namespace {

namespace fs = std::filesystem;
using sluice::EventBuilder;
using sluice::EventView;
using sluice::binance::FrameKind;
using sluice::binance::FrameParser;
using sluice::binance::FrameResult;
using sluice::binance::Liquidation;
using sluice::testing::PluginHarness;

// The recorded data beside the repository (../shared/data, as in CI and the workspace).
const std::string kData = SLUICE_SOURCE_DIR "/../shared/data/binance";
const std::string kFrames = SLUICE_SOURCE_DIR "/pipelines/data/forceorder_frames.jsonl";

#define EXPECT_CONTAINS(text, part) \
  EXPECT_NE(std::string(text).find(part), std::string::npos) << "in: " << (text)

std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

std::string data_dir() {
  return fs::exists(kData) ? kData : SLUICE_SOURCE_DIR "/pipelines/data";
}

// A directory removed with the test.
class TempDir {
 public:
  explicit TempDir(const std::string& name)
      : dir_(fs::temp_directory_path() /
             ("sluice_binance_" + std::to_string(::getpid()) + "_" + name)) {
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  ~TempDir() { fs::remove_all(dir_); }
  std::string file(const std::string& name, const std::string& text) const {
    std::ofstream(dir_ / name, std::ios::binary) << text;
    return (dir_ / name).string();
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

 private:
  fs::path dir_;
};

FrameResult parse(const std::string& frame, Liquidation& liq) {
  static FrameParser parser;
  return parser.parse(frame, liq);
}

std::string reason(const std::string& frame) {
  Liquidation liq;
  FrameResult r = parse(frame, liq);
  EXPECT_EQ(r.kind, FrameKind::kBad) << frame;
  return r.reason;
}

const std::string kPlain =
    R"({"e":"forceOrder","E":1625030771364,"o":{"s":"BTCUSDT","S":"SELL","o":"LIMIT","f":"IOC",)"
    R"("q":"0.029","p":"34603.03","ap":"34738.38","X":"FILLED","l":"0.023","z":"0.029",)"
    R"("T":1625030771359}})";

// --- parser -----------------------------------------------------------------------------------

TEST(BinanceFrame, PlainFrameBecomesTheNormalisedFields) {
  Liquidation liq;
  ASSERT_EQ(parse(kPlain, liq).kind, FrameKind::kLiquidation);
  EventBuilder b;
  sluice::binance::build_event(liq, kPlain, b);
  auto bytes = b.finish();
  auto ev = sluice::testing::event_to_json(bytes);
  const auto& f = ev["fields"];
  EXPECT_EQ(f["exchange"], "binance");
  EXPECT_EQ(f["symbol"], "BTCUSDT");
  EXPECT_EQ(f["side"], "SELL");
  EXPECT_EQ(f["liquidated"], "long");
  EXPECT_DOUBLE_EQ(f["price"].get<double>(), 34603.03);
  EXPECT_DOUBLE_EQ(f["avg_price"].get<double>(), 34738.38);
  EXPECT_DOUBLE_EQ(f["quantity"].get<double>(), 0.029);
  EXPECT_DOUBLE_EQ(f["notional_usd"].get<double>(), 34738.38 * 0.029);
  EXPECT_EQ(f["order_type"], "LIMIT");
  EXPECT_EQ(f["status"], "FILLED");
  EXPECT_EQ(f["trade_time_ms"], 1625030771359);
  EXPECT_EQ(f["raw"], kPlain);
  EXPECT_EQ(ev["key"], "BTCUSDT");
  EXPECT_EQ(ev["event_time_ns"], 1625030771364000000);
  EXPECT_EQ(f.size(), 12u) << f.dump();
}

TEST(BinanceFrame, BuyMeansAShortWasLiquidated) {
  std::string frame = kPlain;
  frame.replace(frame.find("\"SELL\""), 6, "\"BUY\"");
  Liquidation liq;
  ASSERT_EQ(parse(frame, liq).kind, FrameKind::kLiquidation);
  EventBuilder b;
  sluice::binance::build_event(liq, frame, b);
  EventView ev(b.finish());
  EXPECT_EQ(ev.string("liquidated"), "short");
  EXPECT_EQ(ev.string("side"), "BUY");
}

TEST(BinanceFrame, EveryRecordedFrameParses) {
  const auto frames = lines_of(data_dir() + "/forceorder_frames.jsonl");
  ASSERT_EQ(frames.size(), 9u);
  for (const std::string& frame : frames) {
    Liquidation liq;
    FrameResult r = parse(frame, liq);
    ASSERT_EQ(r.kind, FrameKind::kLiquidation) << frame << ": " << r.reason;
    EXPECT_FALSE(liq.symbol.empty());
    EXPECT_GT(liq.avg_price, 0);
    EXPECT_GT(liq.quantity, 0);
    EXPECT_GT(liq.trade_time_ms, 1'600'000'000'000);
    EXPECT_GE(liq.event_time_ms, liq.trade_time_ms);
  }
}

TEST(BinanceFrame, CombinedWrapperAnd2026FieldsAreRead) {
  const std::string frame =
      R"({"stream":"stgusdt@forceOrder","data":{"e":"forceOrder","E":1786172557615,"o":{"s":)"
      R"("STGUSDT","S":"SELL","o":"LIMIT","f":"IOC","q":"5","p":"0.1336000","ap":"0.1355000",)"
      R"("X":"FILLED","l":"5","z":"5","T":1786172556607,"ps":"STGUSDT","st":1}}})";
  Liquidation liq;
  ASSERT_EQ(parse(frame, liq).kind, FrameKind::kLiquidation);
  EXPECT_EQ(liq.symbol, "STGUSDT");
  EXPECT_DOUBLE_EQ(liq.avg_price, 0.1355);
  EXPECT_DOUBLE_EQ(liq.quantity, 5);
  EXPECT_EQ(liq.trade_time_ms, 1786172556607);
}

TEST(BinanceFrame, NonAsciiSymbolsScientificPricesAndNumbersAreAccepted) {
  const std::string frame =
      R"({"e":"forceOrder","E":1761125802306,"o":{"s":"币安人生USDT","S":"BUY","o":"LIMIT",)"
      R"("X":"FILLED","p":5.99e-05,"ap":"5.99e-05","z":"1000","T":1761125802300}})";
  Liquidation liq;
  ASSERT_EQ(parse(frame, liq).kind, FrameKind::kLiquidation);
  EXPECT_EQ(liq.symbol, "币安人生USDT");
  EXPECT_DOUBLE_EQ(liq.price, 5.99e-05);
  EXPECT_DOUBLE_EQ(liq.avg_price, 5.99e-05);
}

// Every row of the recorded CSV slices, turned back into the frame it came from.
TEST(BinanceFrame, RecordedCsvRowsAsFramesGiveTheRecordedNotional) {
  size_t rows = 0;
  for (const auto& entry : fs::directory_iterator(data_dir())) {
    const std::string name = entry.path().filename().string();
    if (!name.starts_with("slice_") && name != "liquidations_sample.csv") continue;
    std::ifstream in(entry.path());
    std::string line;
    std::getline(in, line);
    ASSERT_EQ(line, "timestamp,symbol,side,avg_price,filled_qty,usd_value") << name;
    while (std::getline(in, line)) {
      std::vector<std::string> c;
      std::stringstream ss(line);
      for (std::string cell; std::getline(ss, cell, ',');) c.push_back(cell);
      ASSERT_EQ(c.size(), 6u) << name << ": " << line;
      const std::string frame = R"({"e":"forceOrder","E":1761125802306,"o":{"s":")" + c[1] +
                                R"(","S":")" + c[2] + R"(","o":"LIMIT","f":"IOC","q":")" + c[4] +
                                R"(","p":")" + c[3] + R"(","ap":")" + c[3] +
                                R"(","X":"FILLED","l":")" + c[4] + R"(","z":")" + c[4] +
                                R"(","T":1761125802300}})";
      Liquidation liq;
      FrameResult r = parse(frame, liq);
      ASSERT_EQ(r.kind, FrameKind::kLiquidation) << frame << ": " << r.reason;
      EXPECT_EQ(liq.symbol, c[1]);
      EXPECT_NEAR(liq.avg_price * liq.quantity, std::stod(c[5]),
                  1e-9 * std::max(1.0, std::stod(c[5])))
          << line;
      ++rows;
    }
  }
  EXPECT_GT(rows, 1600u);
}

TEST(BinanceFrame, ControlRepliesAreRecognised) {
  Liquidation liq;
  FrameResult r = parse(R"({"result":null,"id":1})", liq);
  EXPECT_EQ(r.kind, FrameKind::kControl);
  EXPECT_EQ(r.control_id, 1);
  r = parse(R"({"result":["!forceOrder@arr"],"id":7})", liq);
  EXPECT_EQ(r.kind, FrameKind::kControl);
  EXPECT_EQ(r.control_id, 7);
  r = parse(R"({"code":2,"msg":"Invalid request: unknown method"})", liq);
  EXPECT_EQ(r.kind, FrameKind::kControlError);
  EXPECT_EQ(r.reason, "code 2: Invalid request: unknown method");
}

TEST(BinanceFrame, MalformedFramesSayWhichFieldAndWhy) {
  EXPECT_CONTAINS(reason(kPlain.substr(0, 60)), "invalid JSON: ");
  EXPECT_EQ(reason("[1,2]"), "expected a JSON object, got an array");
  EXPECT_EQ(reason(R"({"e":"aggTrade","E":1})"),
            R"(field "e": expected "forceOrder", got "aggTrade")");
  EXPECT_EQ(reason(R"({"E":1,"o":{}})"), R"(missing field "e")");
  EXPECT_EQ(reason(R"({"e":"forceOrder","E":"soon","o":{}})"),
            R"(field "E": expected epoch milliseconds (an integer >= 0), got a string "soon")");
  EXPECT_EQ(reason(R"({"e":"forceOrder","E":1})"), R"(missing field "o")");
  EXPECT_EQ(reason(R"({"stream":"x","data":{"e":"forceOrder","E":1,"o":[]}})"),
            R"(field "data.o": expected an object, got an array)");
  EXPECT_EQ(reason(R"({"stream":"x","data":"oops"})"),
            R"(field "data": expected an object, got a string)");

  auto with = [](const std::string& from, const std::string& to) {
    std::string f = kPlain;
    f.replace(f.find(from), from.size(), to);
    return f;
  };
  EXPECT_EQ(reason(with(R"("S":"SELL")", R"("S":"LONG")")),
            R"(field "o.S": expected "BUY" or "SELL", got "LONG")");
  EXPECT_EQ(reason(with(R"("ap":"34738.38")", R"("ap":"34,738.38")")),
            R"(field "o.ap": "34,738.38" is not a decimal number)");
  EXPECT_EQ(reason(with(R"("z":"0.029")", R"("z":true)")),
            R"(field "o.z": expected a decimal string or number, got a boolean)");
  EXPECT_EQ(reason(with(R"("p":"34603.03")", R"("p":"-1")")),
            R"(field "o.p": must be a finite number >= 0)");
  EXPECT_EQ(reason(with(R"("s":"BTCUSDT",)", "")), R"(missing field "o.s")");
  EXPECT_EQ(reason(with(R"("s":"BTCUSDT")", R"("s":"")")), R"(field "o.s": the symbol is empty)");
  EXPECT_EQ(reason(with(R"("T":1625030771359)", R"("T":1.5)")),
            R"(field "o.T": expected epoch milliseconds (an integer >= 0), got a number 1.5)");
  EXPECT_EQ(reason(with(R"("X":"FILLED")", R"("X":7)")),
            R"(field "o.X": expected a string, got a number 7)");
}

// An exchange time becomes event_time_ns = ms × 1e6 in int64: T = 99999999999999999 wrapped into
// 1969 (undefined behaviour). Times outside 2000..2200 and notionals that overflow are bad frames
// of their own kind; non-finite and negative numbers are bad frames too.
TEST(BinanceFrame, OutOfRangeTimesAndNumbersAreBadFrames) {
  auto with = [](const std::string& from, const std::string& to) {
    std::string f = kPlain;
    f.replace(f.find(from), from.size(), to);
    return f;
  };
  auto out_of_range = [](const std::string& frame) {
    Liquidation liq;
    FrameResult r = parse(frame, liq);
    EXPECT_EQ(r.kind, FrameKind::kBad) << frame;
    EXPECT_TRUE(r.out_of_range) << frame;
    return r.reason;
  };
  EXPECT_EQ(out_of_range(with(R"("T":1625030771359)", R"("T":99999999999999999)")),
            R"(field "o.T": 99999999999999999 is out of range (epoch milliseconds from )"
            R"(2000-01-01 up to 2200-01-01))");
  EXPECT_EQ(out_of_range(with(R"("E":1625030771364)", R"("E":9223372036854775807)")),
            R"(field "E": 9223372036854775807 is out of range (epoch milliseconds from )"
            R"(2000-01-01 up to 2200-01-01))");
  EXPECT_EQ(out_of_range(with(R"("T":1625030771359)", R"("T":"7258118400000")")),
            R"(field "o.T": 7258118400000 is out of range (epoch milliseconds from )"
            R"(2000-01-01 up to 2200-01-01))");
  EXPECT_EQ(out_of_range(with(R"("T":1625030771359)", R"("T":946684799999)")),
            R"(field "o.T": 946684799999 is out of range (epoch milliseconds from )"
            R"(2000-01-01 up to 2200-01-01))");
  std::string huge = with(R"("ap":"34738.38")", R"("ap":"1e200")");
  huge.replace(huge.find(R"("z":"0.029")"), 11, R"("z":"1e200")");
  EXPECT_EQ(out_of_range(huge), R"(fields "o.ap" × "o.z": the notional overflows a double)");
  // The edges of the range are accepted.
  Liquidation liq;
  EXPECT_EQ(parse(with(R"("T":1625030771359)", R"("T":946684800000)"), liq).kind,
            FrameKind::kLiquidation);
  EXPECT_EQ(parse(with(R"("T":1625030771359)", R"("T":7258118399999)"), liq).kind,
            FrameKind::kLiquidation);
  // Malformed numbers stay malformed, not out of range.
  for (const char* bad : {R"("p":"NaN")", R"("p":"inf")", R"("p":"-inf")", R"("p":"-0.5")"}) {
    Liquidation l;
    FrameResult r = parse(with(R"("p":"34603.03")", bad), l);
    EXPECT_EQ(r.kind, FrameKind::kBad) << bad;
    EXPECT_FALSE(r.out_of_range) << bad;
    EXPECT_EQ(r.reason, R"(field "o.p": must be a finite number >= 0)") << bad;
  }
  EXPECT_EQ(reason(with(R"("T":1625030771359)", R"("T":-5)")),
            R"(field "o.T": expected epoch milliseconds (an integer >= 0), got a number -5)");
}

TEST(BinanceReplay, OutOfRangeFramesAreCountedWithTheirReasonAndNeverEmitted) {
  TempDir dir("range");
  const auto frames = lines_of(kFrames);
  std::string far = frames[0];
  const size_t at = far.find("\"T\":");
  ASSERT_NE(at, std::string::npos);
  far.replace(at, far.find_first_of(",}", at) - at, "\"T\":99999999999999999");
  const std::string path =
      dir.file("range.jsonl", frames[0] + "\n" + far + "\n" + frames[1] + "\nnot json\n");
  PluginHarness source("source", "binance_liquidations", "replay_file = \"" + path + "\"");
  auto events = source.run_source();
  ASSERT_EQ(events.size(), 2u);
  for (const auto& e : events) {
    EXPECT_GE(EventView(e.data(), e.size()).event_time_ns(), 946'684'800'000'000'000);
  }
  EXPECT_EQ(source.counter("source_parse_errors_total"), 2);
  EXPECT_CONTAINS(source.prometheus(), "reason=\"out_of_range\"} 1");
  EXPECT_CONTAINS(source.prometheus(), "reason=\"invalid_json\"} 1");
}

TEST(BinanceFrame, DecimalTextRules) {
  double v = 0;
  EXPECT_TRUE(sluice::binance::parse_decimal("34603.03", v));
  EXPECT_DOUBLE_EQ(v, 34603.03);
  EXPECT_TRUE(sluice::binance::parse_decimal("5.99e-05", v));
  EXPECT_DOUBLE_EQ(v, 5.99e-05);
  EXPECT_FALSE(sluice::binance::parse_decimal("", v));
  EXPECT_FALSE(sluice::binance::parse_decimal("+1", v));
  EXPECT_FALSE(sluice::binance::parse_decimal("1.0x", v));
  EXPECT_FALSE(sluice::binance::parse_decimal(" 1", v));
}

TEST(BinanceUrl, SymbolsSubscribeCombinedLowercaseStreamsOnTheSameHost) {
  using sluice::binance::stream_url;
  const std::string def = "wss://fstream.binance.com/market/ws/!forceOrder@arr";
  EXPECT_EQ(stream_url(def, {}), def);
  EXPECT_EQ(stream_url(def, {"BTCUSDT", "ethusdt"}),
            "wss://fstream.binance.com/market/stream?streams=btcusdt@forceOrder/ethusdt@forceOrder");
  EXPECT_EQ(stream_url("wss://127.0.0.1:9443", {"SOLUSDT"}),
            "wss://127.0.0.1:9443/market/stream?streams=solusdt@forceOrder");
}

// --- replay and recording through the plugin ---------------------------------------------------

std::string creation_error(const std::string& options) {
  try {
    PluginHarness source("source", "binance_liquidations", options);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

TEST(BinanceReplay, PlainFramesReplayThroughTheParser) {
  PluginHarness source("source", "binance_liquidations", "replay_file = \"" + kFrames + "\"");
  auto events = source.run_source();
  ASSERT_EQ(events.size(), 9u);
  EventView first(events[0].data(), events[0].size());
  EXPECT_EQ(first.id(), 1u);
  EXPECT_EQ(first.string("symbol"), "BTCUSDT");
  EXPECT_EQ(first.string("liquidated"), "long");
  EXPECT_EQ(first.event_time_ns(), 1625030771364000000);
  EXPECT_GT(first.ingest_time_ns(), 0);
  const auto frames = lines_of(kFrames);
  for (size_t i = 0; i < events.size(); ++i) {
    EventView ev(events[i].data(), events[i].size());
    EXPECT_EQ(ev.id(), i + 1);
    EXPECT_EQ(ev.string("raw"), frames[i]);
    EXPECT_EQ(ev.string("exchange"), "binance");
  }
  EXPECT_EQ(source.counter("source_parse_errors_total"), 0);
}

TEST(BinanceReplay, BadFramesAreCountedLoggedAndSkipped) {
  TempDir dir("bad");
  const auto frames = lines_of(kFrames);
  const std::string path = dir.file(
      "mixed.jsonl", frames[0] + "\n{\"e\":\"forceOrder\",\"E\":1}\n\n" +
                         R"({"result":["!forceOrder@arr"],"id":3})" + "\nnot json\n" + frames[1] +
                         "\n");
  PluginHarness source("source", "binance_liquidations", "replay_file = \"" + path + "\"");
  auto events = source.run_source();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(source.counter("source_parse_errors_total"), 2);
  std::vector<std::string> warnings;
  for (const auto& l : source.logs()) {
    if (l.level == SLUICE_LOG_WARN) warnings.push_back(l.message);
  }
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_EQ(warnings[0], path + ":2: missing field \"o\" in {\"e\":\"forceOrder\",\"E\":1}; "
                                "frame skipped");
  EXPECT_CONTAINS(warnings[1], path + ":5: invalid JSON: ");
}

TEST(BinanceReplay, RecordingRoundTripsFramesExactlyWithReceiveTimes) {
  TempDir dir("record");
  const std::string recording = dir.path("session.jsonl");
  {
    PluginHarness source("source", "binance_liquidations",
                         "replay_file = \"" + kFrames + "\"\nrecord_to = \"" + recording + "\"");
    EXPECT_EQ(source.run_source().size(), 9u);
  }
  const auto frames = lines_of(kFrames);
  const auto lines = lines_of(recording);
  ASSERT_EQ(lines.size(), 9u);
  for (size_t i = 0; i < lines.size(); ++i) {
    auto j = nlohmann::json::parse(lines[i]);
    EXPECT_EQ(j["frame"], frames[i]);
    EXPECT_GT(j["recv_ns"].get<int64_t>(), 0);
    EXPECT_TRUE(lines[i].starts_with("{\"recv_ns\":")) << lines[i];
  }
  PluginHarness again("source", "binance_liquidations", "replay_file = \"" + recording + "\"");
  auto events = again.run_source();
  ASSERT_EQ(events.size(), 9u);
  for (size_t i = 0; i < events.size(); ++i) {
    EventView ev(events[i].data(), events[i].size());
    EXPECT_EQ(ev.string("raw"), frames[i]);
  }
}

TEST(BinanceReplay, OriginalTimingKeepsRecordedGapsDividedBySpeed) {
  TempDir dir("timing");
  const auto frames = lines_of(kFrames);
  std::string text;
  for (int i = 0; i < 3; ++i) {
    std::string body;
    sluice::binance::append_json_string_body(body, frames[i]);
    text += "{\"recv_ns\":" + std::to_string(1'000'000'000LL + i * 1'000'000'000LL) +
            ",\"frame\":\"" + body + "\"}\n";
  }
  const std::string path = dir.file("timed.jsonl", text);
  PluginHarness source("source", "binance_liquidations",
                       "replay_file = \"" + path + "\"\ntiming = \"original\"\nspeed = 10.0");
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(source.run_source().size(), 3u);
  // 2 s of recorded gaps at 10x: at least 200 ms (no upper bound on a shared machine).
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(195));
}

TEST(BinanceReplay, DuplicateLiquidationsAreEmittedOnce) {
  TempDir dir("dup");
  const auto frames = lines_of(kFrames);
  const std::string path =
      dir.file("dup.jsonl", frames[0] + "\n" + frames[1] + "\n" + frames[0] + "\n");
  PluginHarness source("source", "binance_liquidations", "replay_file = \"" + path + "\"");
  EXPECT_EQ(source.run_source().size(), 2u);
  EXPECT_EQ(source.counter("source_duplicates_total"), 1);
}

TEST(BinanceOptions, BadOptionsNameTheOptionAndTheProblem) {
  EXPECT_CONTAINS(creation_error("replay_file = \"/no/such/file.jsonl\""),
                  "cannot read '/no/such/file.jsonl'");
  EXPECT_CONTAINS(creation_error("record_to = \"/no/such/dir/rec.jsonl\""),
                  "the directory '/no/such/dir' does not exist");
  EXPECT_CONTAINS(creation_error("url = \"ws://fstream.binance.com/market/ws/x\""),
                  "must be a wss:// URL with a host");
  EXPECT_CONTAINS(creation_error("symbols = [\"BTCUSDT\", \"eth/usdt\"]"),
                  "entry 2 is not a symbol: 'eth/usdt'");
  EXPECT_CONTAINS(creation_error("reconnect_min = \"2s\"\nreconnect_max = \"1s\""),
                  "must not be less than reconnect_min");
  EXPECT_CONTAINS(creation_error("speed = 0.0"), "must be a number greater than 0");
  EXPECT_EQ(creation_error("symbols = [\"BTCUSDT\"]"), "");
}

}  // namespace
