// Tests of the `file` source: its text rules (CSV records and values, times) directly, and the
// plugin through the real loader and host on the recorded Binance data, the raw frames and
// files with garbage lines.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "parse.hpp"
#include "plugin_harness.hpp"

namespace {

namespace fs = std::filesystem;
using sluice::EventView;
using sluice::FieldType;
using sluice::file_source::parse_time_text;
using sluice::file_source::split_csv_record;
using sluice::file_source::type_cell;
using sluice::testing::PluginHarness;

using Events = std::vector<std::vector<uint8_t>>;

const std::string kTestData = SLUICE_SOURCE_DIR "/plugins/sources/file/test/data";
const std::string kFrames = SLUICE_SOURCE_DIR "/pipelines/data/forceorder_frames.jsonl";
const std::string kSample = SLUICE_SOURCE_DIR "/pipelines/data/liquidations_sample.csv";

#define EXPECT_CONTAINS(text, part) \
  EXPECT_NE(std::string(text).find(part), std::string::npos) << "in: " << (text)

EventView view(const std::vector<uint8_t>& bytes) { return EventView(bytes.data(), bytes.size()); }

std::string path_option(const std::string& path) { return "path = \"" + path + "\"\n"; }

Events replay(const std::string& options, size_t max_events = SIZE_MAX) {
  PluginHarness source("source", "file", options);
  return source.run_source(max_events);
}

std::string creation_error(const std::string& options) {
  try {
    PluginHarness source("source", "file", options);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

// A file in a fresh temporary directory, removed with the test.
class TempFile {
 public:
  TempFile(const std::string& name, const std::string& text)
      : dir_(fs::temp_directory_path() /
             ("sluice_file_source_" + std::to_string(::getpid()) + "_" + name)) {
    fs::create_directories(dir_);
    std::ofstream(dir_ / name, std::ios::binary) << text;
    path_ = (dir_ / name).string();
  }
  ~TempFile() { fs::remove_all(dir_); }
  const std::string& path() const { return path_; }

 private:
  fs::path dir_;
  std::string path_;
};

// --- text rules -------------------------------------------------------------------------------

TEST(FileSourceText, CsvRecordsFollowRfc4180) {
  std::vector<std::string> cells;
  EXPECT_EQ(split_csv_record("a,\"b,c\",\"say \"\"hi\"\"\",,\"line\nbreak\"", cells), "");
  EXPECT_EQ(cells, (std::vector<std::string>{"a", "b,c", "say \"hi\"", "", "line\nbreak"}));
  EXPECT_EQ(split_csv_record("x,", cells), "");
  EXPECT_EQ(cells, (std::vector<std::string>{"x", ""}));
  EXPECT_EQ(split_csv_record("in\"side,2", cells), "");
  EXPECT_EQ(cells, (std::vector<std::string>{"in\"side", "2"}));
  EXPECT_EQ(split_csv_record("1,\"open", cells), "unterminated quoted value starting at column 3");
  EXPECT_EQ(split_csv_record("\"a\"b,1", cells),
            "unexpected character after a closing quote at column 4");
}

TEST(FileSourceText, CsvValuesAreTypedByTheirLiteral) {
  EXPECT_EQ(type_cell("42").type, FieldType::Int);
  EXPECT_EQ(type_cell("-7").i, -7);
  EXPECT_EQ(type_cell("+7").i, 7);
  EXPECT_EQ(type_cell("1252.0").type, FieldType::Double);
  EXPECT_EQ(type_cell("5.99e-05").type, FieldType::Double);
  EXPECT_EQ(type_cell("5.99e-05").d, 5.99e-05);
  EXPECT_EQ(type_cell(".5").d, 0.5);
  EXPECT_EQ(type_cell("1E3").d, 1000.0);
  EXPECT_EQ(type_cell("99999999999999999999").type, FieldType::Double);
  EXPECT_EQ(type_cell("true").type, FieldType::Bool);
  EXPECT_FALSE(type_cell("false").b);
  for (const char* text : {"", "-", ".", "1e", "1.2.3", "0x10", "nan", "inf", "True", "12 ",
                           "SOLUSDT", "2025-10-22T09:36:42.306000"}) {
    EXPECT_EQ(type_cell(text).type, FieldType::String) << text;
  }
}

TEST(FileSourceText, TimesBecomeEpochNanoseconds) {
  EXPECT_EQ(parse_time_text("2025-10-22T09:36:42.306000"), 1761125802306000000);
  EXPECT_EQ(parse_time_text("2025-10-23T05:50:06"), 1761198606000000000);
  EXPECT_EQ(parse_time_text("2025-10-22 09:36:42.306Z"), 1761125802306000000);
  EXPECT_EQ(parse_time_text("2025-10-22T09:36:42+02:00"), 1761118602000000000);
  EXPECT_EQ(parse_time_text("2025-10-22T09:36:42+0200"), 1761118602000000000);
  EXPECT_EQ(parse_time_text("2025-10-22T09:36:42.123456789123"), 1761125802123456789);
  EXPECT_EQ(parse_time_text("2024-02-29T23:59:59"), 1709251199000000000);
  EXPECT_EQ(parse_time_text("1969-12-31T23:59:59"), -1000000000);
  EXPECT_EQ(parse_time_text("1625030771"), 1625030771000000000);           // seconds
  EXPECT_EQ(parse_time_text("1625030771364"), 1625030771364000000);        // milliseconds
  EXPECT_EQ(parse_time_text("1625030771364123"), 1625030771364123000);     // microseconds
  EXPECT_EQ(parse_time_text("1625030771364123456"), 1625030771364123456);  // nanoseconds
  EXPECT_EQ(parse_time_text("1625030771.5"), 1625030771500000000);
  for (const char* bad :
       {"", "yesterday", "2025-13-01T00:00:00", "2025-02-30T00:00:00", "2025-10-22T24:00:00",
        "2025-10-22T09:36:42.", "2025-10-22T09:36:42Q", "99999999999"}) {
    EXPECT_EQ(parse_time_text(bad), std::nullopt) << bad;
  }
}

// --- CSV ------------------------------------------------------------------------------------

TEST(FileSource, EveryRowOfEveryRecordedSliceBecomesOneEvent) {
  // Row counts as documented in test/data/SOURCES.md; slice_2400000 holds 119 exact duplicates,
  // which are kept.
  const std::vector<std::pair<std::string, size_t>> slices = {
      {"slice_0.csv", 234},        {"slice_16000.csv", 239},   {"slice_2400000.csv", 239},
      {"slice_4800000.csv", 238},  {"slice_9600000.csv", 238}, {"slice_12000000.csv", 233},
      {"slice_14400000.csv", 233},
  };
  for (const auto& [name, rows] : slices) {
    PluginHarness source("source", "file", path_option(kTestData + "/" + name));
    Events events = source.run_source();
    ASSERT_EQ(events.size(), rows) << name;
    EXPECT_EQ(source.counter("source_parse_errors_total"), 0) << name;
    for (size_t i = 0; i < events.size(); ++i) {
      EventView ev = view(events[i]);
      EXPECT_EQ(ev.id(), i + 1) << name;
      ASSERT_EQ(ev.field_count(), 6u) << name << " row " << i + 1;
      for (const char* text : {"timestamp", "symbol", "side"}) {
        EXPECT_EQ(ev.field(text)->type(), FieldType::String) << name << " " << text;
      }
      for (const char* number : {"avg_price", "filled_qty", "usd_value"}) {
        EXPECT_EQ(ev.field(number)->type(), FieldType::Double) << name << " " << number;
      }
      EXPECT_EQ(ev.key(), *ev.string("symbol"));
      EXPECT_EQ(ev.event_time_ns(), parse_time_text(*ev.string("timestamp")));
      EXPECT_GT(ev.ingest_time_ns(), ev.event_time_ns());
    }
  }
}

TEST(FileSource, ScientificNotationStaysADouble) {
  Events events = replay(path_option(kTestData + "/slice_0.csv"));
  EventView dogs = view(events.at(149));  // line 151 of the file
  EXPECT_EQ(dogs.string("symbol"), "DOGSUSDT");
  ASSERT_EQ(dogs.field("avg_price")->type(), FieldType::Double);
  EXPECT_EQ(dogs.number("avg_price"), 5.99e-05);
  EXPECT_EQ(dogs.number("filled_qty"), 2479908.0);
}

TEST(FileSource, NonAsciiSymbolsAreKeptByteForByte) {
  Events events = replay(path_option(kTestData + "/slice_0.csv"));
  EventView ev = view(events.at(52));  // line 54 of the file
  EXPECT_EQ(ev.string("symbol"), "币安人生USDT");
  EXPECT_EQ(ev.key(), "币安人生USDT");
  EXPECT_EQ(ev.event_time_ns(), parse_time_text("2025-10-22T09:38:31.194000"));
}

TEST(FileSource, BundledSampleReplaysBothSlices) {
  Events events = replay(path_option(kSample));
  ASSERT_EQ(events.size(), 473u);
  EXPECT_EQ(view(events.front()).event_time_ns(), 1761125802306000000);
  EXPECT_EQ(view(events.back()).string("timestamp"), "2025-10-22T09:43:34.112000");
}

TEST(FileSource, RenameAppliesBeforeKeyAndTimeFields) {
  Events events = replay(path_option(kTestData + "/slice_0.csv") +
                         "rename = { usd_value = \"notional_usd\", symbol = \"pair\", "
                         "timestamp = \"at\" }\nkey_field = \"pair\"\ntime_field = \"at\"");
  ASSERT_EQ(events.size(), 234u);
  EventView ev = view(events.front());
  EXPECT_EQ(ev.number("notional_usd"), 7.3688);
  EXPECT_EQ(ev.field("usd_value"), nullptr);
  EXPECT_EQ(ev.string("pair"), "SOLUSDT");
  EXPECT_EQ(ev.key(), "SOLUSDT");
  EXPECT_EQ(ev.event_time_ns(), 1761125802306000000);
}

TEST(FileSource, BadCsvLinesAreCountedLoggedAndSkipped) {
  TempFile file("bad.csv",
                "timestamp,symbol,qty,note\r\n"
                "2025-10-22T09:36:42.306000,AUSDT,1,\"x, \"\"y\"\"\"\r\n"
                "2025-10-22T09:36:43,BUSDT,2\r\n"
                "\r\n"
                "2025-10-22T09:36:44Z,CUSDT,3,\"multi\nline\"\n"
                "yesterday,DUSDT,4,x\n"
                "2025-10-22T09:36:45,EUSDT,5,ok\n"
                "2025-10-22T09:36:46,FUSDT,6,\"never closed\n");
  PluginHarness source("source", "file", path_option(file.path()));
  Events events = source.run_source();
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(view(events[0]).id(), 1u);
  EXPECT_EQ(view(events[0]).string("note"), "x, \"y\"");
  EXPECT_EQ(view(events[1]).id(), 4u);  // ids are data line numbers: skipped lines leave gaps
  EXPECT_EQ(view(events[1]).string("note"), "multi\nline");
  EXPECT_EQ(view(events[2]).id(), 7u);
  EXPECT_EQ(view(events[2]).key(), "EUSDT");
  EXPECT_EQ(source.counter("source_parse_errors_total"), 3);
  std::string warnings;
  for (const auto& log : source.logs()) {
    if (log.level == SLUICE_LOG_WARN) warnings += log.message + "\n";
  }
  EXPECT_CONTAINS(warnings, file.path() + ":3: expected 4 values, found 3; line skipped");
  EXPECT_CONTAINS(warnings, file.path() +
                                ":7: bad timestamp in field 'timestamp': 'yesterday' "
                                "(expected epoch s/ms/us/ns or ISO-8601); line skipped");
  EXPECT_CONTAINS(warnings, file.path() + ":9: unterminated quoted value starting at column 29");
}

TEST(FileSource, CsvTimeFieldMustBeAColumn) {
  EXPECT_CONTAINS(creation_error(path_option(kTestData + "/slice_0.csv") + "time_field = \"ts\""),
                  "no column 'ts' in " + kTestData +
                      "/slice_0.csv (columns: timestamp, symbol, "
                      "side, avg_price, filled_qty, usd_value)");
}

TEST(FileSource, EmptyTimeFieldGivesEventsTheCurrentTime) {
  const int64_t before = sluice::now_ns();
  Events events = replay(path_option(kTestData + "/slice_0.csv") + "time_field = \"\"");
  ASSERT_EQ(events.size(), 234u);
  EXPECT_GE(view(events.front()).event_time_ns(), before);
}

// --- JSON lines -----------------------------------------------------------------------------

TEST(FileSource, ForceOrderFramesFlattenNestedObjects) {
  PluginHarness source("source", "file", path_option(kFrames) + "key_field = \"o.s\"");
  Events events = source.run_source();
  ASSERT_EQ(events.size(), 9u);
  EXPECT_EQ(source.counter("source_parse_errors_total"), 0);
  EventView first = view(events[0]);
  EXPECT_EQ(first.id(), 1u);
  EXPECT_EQ(first.string("e"), "forceOrder");
  EXPECT_EQ(first.string("o.s"), "BTCUSDT");
  EXPECT_EQ(first.key(), "BTCUSDT");
  EXPECT_EQ(first.string("o.p"), "34603.03");  // a number sent as a string stays a string
  EXPECT_EQ(first.integer("E"), 1625030771364);
  EXPECT_EQ(first.integer("o.T"), 1625030771359);
  EXPECT_EQ(first.event_time_ns(), 1625030771364000000);  // E, the first default time field
  EXPECT_EQ(first.field("o"), nullptr);
  EventView spaced = view(events[6]);  // written with ", " and ": " between members
  EXPECT_EQ(spaced.string("o.s"), "ONEUSDT");
  EXPECT_EQ(spaced.integer("E"), 1790599940083);
  EventView with_2026_fields = view(events[7]);
  EXPECT_EQ(with_2026_fields.string("o.ps"), "MANTAUSDT");
  EXPECT_EQ(with_2026_fields.integer("o.st"), 1);
}

TEST(FileSource, CombinedStreamWrapperFlattensUnderData) {
  // Only the four wrapped frames have data.E; the five bare ones are bad lines for this option.
  PluginHarness source("source", "file",
                       path_option(kFrames) + "time_field = \"data.E\"\nkey_field = \"data.o.s\"");
  Events events = source.run_source();
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(source.counter("source_parse_errors_total"), 5);
  EventView ev = view(events[0]);
  EXPECT_EQ(ev.id(), 2u);
  EXPECT_EQ(ev.string("stream"), "!forceOrder@arr");
  EXPECT_EQ(ev.string("data.o.s"), "IOTXUSDT");
  EXPECT_EQ(ev.key(), "IOTXUSDT");
  EXPECT_EQ(ev.event_time_ns(), 1634653599186000000);
  EXPECT_EQ(view(events[1]).string("data.o.ps"), "STGUSDT");
  EXPECT_EQ(view(events[1]).integer("data.o.st"), 1);
}

TEST(FileSource, JsonValuesKeepTheirTypes) {
  TempFile file("values.jsonl",
                "{\"i\":-3,\"d\":1.5e-7,\"b\":true,\"s\":\"x\",\"n\":null,\"arr\":[1,{\"k\":2}],"
                "\"big\":18446744073709551615,\"deep\":{\"a\":{\"b\":{\"c\":1}}}}\n");
  Events events = replay(path_option(file.path()));
  ASSERT_EQ(events.size(), 1u);
  EventView ev = view(events[0]);
  EXPECT_EQ(ev.integer("i"), -3);
  EXPECT_EQ(ev.number("d"), 1.5e-7);
  EXPECT_EQ(ev.boolean("b"), true);
  EXPECT_EQ(ev.string("s"), "x");
  EXPECT_EQ(ev.field("n")->type(), FieldType::Null);
  EXPECT_EQ(ev.string("arr"), "[1,{\"k\":2}]");
  EXPECT_EQ(ev.field("big")->type(), FieldType::Double);
  EXPECT_EQ(ev.integer("deep.a.b.c"), 1);
}

TEST(FileSource, BadJsonLinesAreCountedLoggedAndSkipped) {
  TempFile file("bad.jsonl",
                "{\"symbol\":\"A\",\"T\":1625030771359}\n"
                "not json\n"
                "\n"
                "   \n"
                "{\"symbol\":\n"
                "[1,2]\n"
                "{\"symbol\":\"B\"}\n"
                "{\"symbol\":\"C\",\"timestamp\":\"yesterday\"}\n");
  PluginHarness source("source", "file", path_option(file.path()));
  Events events = source.run_source();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(view(events[0]).id(), 1u);
  EXPECT_EQ(view(events[0]).key(), "A");
  EXPECT_EQ(view(events[0]).event_time_ns(), 1625030771359000000);
  EXPECT_EQ(view(events[1]).id(), 7u);
  EXPECT_EQ(view(events[1]).key(), "B");
  EXPECT_EQ(source.counter("source_parse_errors_total"), 4);
  std::string warnings;
  for (const auto& log : source.logs()) {
    if (log.level == SLUICE_LOG_WARN) warnings += log.message + "\n";
  }
  EXPECT_CONTAINS(warnings, file.path() + ":2: invalid JSON: ");
  EXPECT_CONTAINS(warnings, file.path() + ":5: invalid JSON: ");
  EXPECT_CONTAINS(warnings, file.path() + ":6: expected a JSON object; line skipped");
  EXPECT_CONTAINS(warnings, file.path() + ":8: bad timestamp in field 'timestamp': 'yesterday'");
}

TEST(FileSource, BadLineLogsAreRateLimitedButAllCounted) {
  std::string text;
  for (int i = 0; i < 2500; ++i) text += "garbage\n";
  text += "{\"ok\":true}\n";
  TempFile file("noisy.jsonl", text);
  PluginHarness source("source", "file", path_option(file.path()));
  Events events = source.run_source();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(view(events[0]).id(), 2501u);
  EXPECT_EQ(source.counter("source_parse_errors_total"), 2500);
  std::vector<std::string> warnings;
  for (const auto& log : source.logs()) {
    if (log.level == SLUICE_LOG_WARN) warnings.push_back(log.message);
  }
  ASSERT_EQ(warnings.size(), 12u);  // the first 10, then the 1000th and the 2000th
  EXPECT_CONTAINS(warnings[9], "(from now on only every 1000th bad line is logged)");
  EXPECT_CONTAINS(warnings[10], file.path() + ":1000: ");
  EXPECT_CONTAINS(warnings[11], "(2000 bad lines so far)");
}

TEST(FileSource, FormatIsDetectedFromContentWhenTheExtensionSaysNothing) {
  TempFile jsonl("frames.txt", "\xEF\xBB\xBF{\"symbol\":\"A\"}\r\n{\"symbol\":\"B\"}\r\n");
  Events events = replay(path_option(jsonl.path()));
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(view(events[1]).key(), "B");
  TempFile csv("rows.txt", "symbol,qty\nA,1\n");
  events = replay(path_option(csv.path()));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(view(events[0]).integer("qty"), 1);
}

// --- options, timing, looping ---------------------------------------------------------------

TEST(FileSource, MissingFileIsAnErrorOnThePathOption) {
  const std::string error = creation_error("path = \"no/such/file.csv\"");
  EXPECT_CONTAINS(error,
                  "cannot read 'no/such/file.csv': No such file or directory (relative "
                  "paths resolve against the working directory " +
                      fs::current_path().string() + ")");
  EXPECT_CONTAINS(creation_error(path_option(kTestData)),
                  "'" + kTestData + "' is a directory, not a file");
}

TEST(FileSource, RejectsOptionsItCannotHonour) {
  EXPECT_CONTAINS(creation_error(path_option(kSample) + "speed = 0.0"),
                  "speed must be a number greater than 0, got 0.0");
  EXPECT_CONTAINS(creation_error(path_option(kSample) + "rename = { symbol = 3 }"),
                  "rename maps a field name to a new, non-empty name; 'symbol' maps to 3");
}

TEST(FileSource, OriginalTimingWithHighSpeedKeepsOrder) {
  // slice_0 spans 305.8 s of recorded time, with steps back of a few ms: at 1000x it replays in
  // about 306 ms. Only a lower bound is asserted; the machine is shared.
  const int64_t start = sluice::mono_ns();
  Events events =
      replay(path_option(kTestData + "/slice_0.csv") + "timing = \"original\"\nspeed = 1000.0");
  const int64_t elapsed_ms = (sluice::mono_ns() - start) / 1'000'000;
  ASSERT_EQ(events.size(), 234u);
  for (size_t i = 0; i < events.size(); ++i) EXPECT_EQ(view(events[i]).id(), i + 1);
  EXPECT_GE(elapsed_ms, 250);
}

TEST(FileSource, LoopStartsOverWithIdsCountingOn) {
  Events events = replay(path_option(kTestData + "/slice_0.csv") + "loop = true", 500);
  ASSERT_EQ(events.size(), 500u);
  for (size_t i = 0; i < events.size(); ++i) EXPECT_EQ(view(events[i]).id(), i + 1);
  EXPECT_EQ(view(events[234]).string("symbol"), "SOLUSDT");  // the first row again
}

TEST(FileSource, SourceNameOptionNamesTheEventsSource) {
  Events events = replay(path_option(kSample) + "source_name = \"binance_replay\"", 1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(view(events[0]).source(), "binance_replay");
}

}  // namespace

// Event times must lie in 1970..2200: the difference of two of them (replay pacing) then always
// fits int64. A time beyond is a bad line of its own kind, counted with reason "out_of_range".
TEST(FileSourceTimes, OutOfRangeTimesAreBadLinesCountedApart) {
  TempFile file("range.jsonl",
                "{\"symbol\":\"A\",\"T\":1625030771359}\n"
                "{\"symbol\":\"B\",\"timestamp\":\"1969-12-31T23:59:59\"}\n"
                "{\"symbol\":\"C\",\"timestamp\":\"2262-04-11T00:00:00Z\"}\n"
                "{\"symbol\":\"D\",\"T\":-9000000000000000000}\n"
                "{\"symbol\":\"E\",\"timestamp\":\"2200-01-01T00:00:00Z\"}\n"
                "{\"symbol\":\"F\",\"timestamp\":\"2199-12-31T23:59:59Z\"}\n");
  PluginHarness source("source", "file", path_option(file.path()));
  Events events = source.run_source();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(view(events[0]).key(), "A");
  EXPECT_EQ(view(events[1]).key(), "F");
  EXPECT_EQ(source.counter("source_parse_errors_total"), 4);
  EXPECT_CONTAINS(source.prometheus(), "reason=\"out_of_range\"} 4");
  std::string warnings;
  for (const auto& log : source.logs()) {
    if (log.level == SLUICE_LOG_WARN) warnings += log.message + "\n";
  }
  EXPECT_CONTAINS(warnings, file.path() +
                                ":2: timestamp in field 'timestamp' is out of range: "
                                "'1969-12-31T23:59:59' (event times run from 1970-01-01 up to "
                                "2200-01-01); line skipped");
  EXPECT_CONTAINS(warnings, file.path() +
                                ":4: timestamp in field 'T' is out of range: "
                                "'-9000000000000000000'");
}
