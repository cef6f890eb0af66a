// Tests of the shared replay pieces: the recording format round trip (bytes kept exactly),
// mixed recordings and plain lines, bad recording lines, and the timing options.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "replay.hpp"

namespace {

namespace fs = std::filesystem;
using sluice::replay::RecordingReader;

fs::path temp_file(const std::string& name) {
  return fs::temp_directory_path() / ("sluice_replay_" + std::to_string(::getpid()) + "_" + name);
}

TEST(Recording, FramesRoundTripByteForByteWithReceiveTimes) {
  const fs::path path = temp_file("roundtrip.jsonl");
  fs::remove(path);
  const std::vector<std::string> frames = {R"({"op":"pong"})", "ping\ttab \"quoted\" \\ back",
                                           "币安人生USDT\x01"};
  {
    sluice::replay::Recorder recorder(path.string());
    recorder.open();
    for (size_t i = 0; i < frames.size(); ++i) recorder.write(frames[i], 1000 + i);
  }
  RecordingReader reader(path.string());
  RecordingReader::Entry e;
  for (size_t i = 0; i < frames.size(); ++i) {
    ASSERT_TRUE(reader.next(e));
    EXPECT_EQ(e.error, "");
    EXPECT_EQ(e.frame, frames[i]);
    EXPECT_EQ(e.recv_ns, static_cast<int64_t>(1000 + i));
    EXPECT_EQ(e.line, i + 1);
  }
  EXPECT_FALSE(reader.next(e));
  fs::remove(path);
}

TEST(Recording, PlainLinesBlankLinesAndBadRecordingLinesMix) {
  const fs::path path = temp_file("mixed.jsonl");
  std::ofstream(path) << "{\"a\":1}\r\n\n   \n{\"recv_ns\":5,\"frame\":\"pong\"}\n"
                      << "{\"recv_ns\":\"soon\",\"frame\":\"x\"}\nping\n";
  RecordingReader reader(path.string());
  RecordingReader::Entry e;
  ASSERT_TRUE(reader.next(e));
  EXPECT_EQ(e.frame, "{\"a\":1}");
  EXPECT_EQ(e.recv_ns, 0);
  ASSERT_TRUE(reader.next(e));
  EXPECT_EQ(e.frame, "pong");
  EXPECT_EQ(e.recv_ns, 5);
  EXPECT_EQ(e.line, 4u);
  ASSERT_TRUE(reader.next(e));
  EXPECT_EQ(e.line, 5u);
  EXPECT_EQ(e.error, "a recording line needs an integer \"recv_ns\" and a string \"frame\"");
  ASSERT_TRUE(reader.next(e));
  EXPECT_EQ(e.frame, "ping");
  EXPECT_EQ(e.error, "");
  EXPECT_FALSE(reader.next(e));
  fs::remove(path);
}

// recv_ns feeds de-duplication windows (recv_ns - window): a negative or far-future value is an
// unreadable line of its own kind, not a time to compute with.
TEST(Recording, OutOfRangeReceiveTimesAreErrorsOfTheirOwnKind) {
  const fs::path path = temp_file("range.jsonl");
  std::ofstream(path) << "{\"recv_ns\":-9223372036854775807,\"frame\":\"a\"}\n"
                      << "{\"recv_ns\":7258118400000000000,\"frame\":\"b\"}\n"
                      << "{\"recv_ns\":1761125802306000000,\"frame\":\"c\"}\n";
  RecordingReader reader(path.string());
  RecordingReader::Entry e;
  ASSERT_TRUE(reader.next(e));
  EXPECT_TRUE(e.out_of_range);
  EXPECT_EQ(e.frame, "");
  EXPECT_EQ(e.error,
            "\"recv_ns\": -9223372036854775807 is out of range (epoch nanoseconds from "
            "1970-01-01 up to 2200-01-01)");
  ASSERT_TRUE(reader.next(e));
  EXPECT_TRUE(e.out_of_range);
  ASSERT_TRUE(reader.next(e));
  EXPECT_FALSE(e.out_of_range);
  EXPECT_EQ(e.error, "");
  EXPECT_EQ(e.frame, "c");
  EXPECT_EQ(e.recv_ns, 1761125802306000000);
  EXPECT_FALSE(reader.next(e));
  fs::remove(path);
}

TEST(Recording, UnreadableAndUnwritablePathsAreExplained) {
  EXPECT_THROW(RecordingReader("/no/such/file"), std::runtime_error);
  EXPECT_EQ(sluice::replay::check_readable("/no/such/file"),
            "cannot read '/no/such/file': No such file or directory");
  EXPECT_EQ(sluice::replay::check_readable("/tmp"), "'/tmp' is a directory, not a file");
  EXPECT_EQ(sluice::replay::check_writable("/no/such/dir/x.jsonl"),
            "the directory '/no/such/dir' does not exist");
  EXPECT_EQ(sluice::replay::check_writable("relative.jsonl"), "");
}

TEST(Timing, DefaultsAndSpeedValidation) {
  auto t = sluice::replay::read_timing(sluice::Config(sluice::Json::object()));
  EXPECT_FALSE(t.original);
  EXPECT_EQ(t.speed, 1.0);
  t = sluice::replay::read_timing(
      sluice::Config(sluice::Json{{"timing", "original"}, {"speed", 20.0}}));
  EXPECT_TRUE(t.original);
  EXPECT_EQ(t.speed, 20.0);
  try {
    sluice::replay::read_timing(sluice::Config(sluice::Json{{"speed", -1.5}}));
    FAIL() << "no error";
  } catch (const sluice::OptionError& e) {
    EXPECT_EQ(e.key(), "speed");
    EXPECT_EQ(std::string(e.what()), "speed must be a number greater than 0, got -1.5");
  }
}

}  // namespace
