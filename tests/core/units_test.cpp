// Units in pipeline files (durations, sizes) and the "did you mean" matcher.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "sluice/core/config.hpp"

namespace sluice::core {
namespace {

int64_t duration_ok(std::string_view text) {
  std::string error;
  auto ns = parse_duration(text, &error);
  EXPECT_TRUE(ns.has_value()) << text << ": " << error;
  return ns.value_or(-1);
}

std::string duration_error(std::string_view text) {
  std::string error;
  auto ns = parse_duration(text, &error);
  EXPECT_FALSE(ns.has_value()) << text << " parsed as " << ns.value_or(0);
  return error;
}

uint64_t size_ok(std::string_view text) {
  std::string error;
  auto bytes = parse_size(text, &error);
  EXPECT_TRUE(bytes.has_value()) << text << ": " << error;
  return bytes.value_or(0);
}

std::string size_error(std::string_view text) {
  std::string error;
  auto bytes = parse_size(text, &error);
  EXPECT_FALSE(bytes.has_value()) << text << " parsed as " << bytes.value_or(0);
  return error;
}

TEST(ParseDuration, ConvertsEveryUnitToNanoseconds) {
  EXPECT_EQ(duration_ok("5ns"), 5);
  EXPECT_EQ(duration_ok("10us"), 10'000);
  EXPECT_EQ(duration_ok("250ms"), 250'000'000);
  EXPECT_EQ(duration_ok("3s"), 3'000'000'000);
  EXPECT_EQ(duration_ok("2m"), 120'000'000'000);
  EXPECT_EQ(duration_ok("1h"), 3'600'000'000'000);
  EXPECT_EQ(duration_ok("1d"), 86'400'000'000'000);
  EXPECT_EQ(duration_ok("0s"), 0);
}

TEST(ParseDuration, AcceptsDecimalsCompoundsAndASpaceBeforeTheUnit) {
  EXPECT_EQ(duration_ok("2.5s"), 2'500'000'000);
  EXPECT_EQ(duration_ok("0.001ms"), 1'000);
  EXPECT_EQ(duration_ok("1.5h"), 5'400'000'000'000);
  EXPECT_EQ(duration_ok("1m30s"), 90'000'000'000);
  EXPECT_EQ(duration_ok("1h2m3s4ms"), 3'723'004'000'000);
  EXPECT_EQ(duration_ok("10 s"), 10'000'000'000);
}

TEST(ParseDuration, RejectsABareNumberSuggestingAUnit) {
  EXPECT_EQ(duration_error("10"),
            "missing unit after '10' (e.g. '10s' or '10ms'; units: ns, us, "
            "ms, s, m, h, d)");
  EXPECT_EQ(duration_error("1m30"),
            "missing unit after '30' (e.g. '30s' or '30ms'; units: ns, "
            "us, ms, s, m, h, d)");
}

TEST(ParseDuration, RejectsNegativeEmptyAndMalformedText) {
  EXPECT_EQ(duration_error("-5s"), "negative durations are not allowed");
  EXPECT_EQ(duration_error(""), "empty duration");
  EXPECT_EQ(duration_error("10 parsecs"), "unknown unit 'parsecs' (units: ns, us, ms, s, m, h, d)");
  EXPECT_EQ(duration_error("5S"), "unknown unit 'S' (units: ns, us, ms, s, m, h, d)");
  EXPECT_EQ(duration_error("fast"), "expected a number at 'fast'");
  EXPECT_EQ(duration_error("1.s"), "expected digits after '.' in '1.s'");
  EXPECT_EQ(duration_error("5s "), "expected a number at ' '");
}

TEST(ParseDuration, RejectsValuesBeyondInt64Nanoseconds) {
  EXPECT_EQ(duration_error("200000d"), "duration is too large (at most 30d)");
  EXPECT_EQ(duration_error("99999999999999999999s"), "number '99999999999999999999s' is too large");
}

// A duration is added to a clock (deadline = now + grace_period): one near the int64 limit
// wrapped that deadline into the past, so anything beyond 30 days is refused.
TEST(ParseDuration, RejectsDurationsBeyondThirtyDays) {
  EXPECT_EQ(duration_ok("30d"), 30LL * 86'400'000'000'000LL);
  EXPECT_EQ(duration_ok("720h"), 30LL * 86'400'000'000'000LL);
  EXPECT_EQ(duration_error("30d1ns"), "duration is too large (at most 30d)");
  EXPECT_EQ(duration_error("31d"), "duration is too large (at most 30d)");
  EXPECT_EQ(duration_error("106751d"), "duration is too large (at most 30d)");
  EXPECT_EQ(duration_error("9223372036854775807ns"), "duration is too large (at most 30d)");
  EXPECT_EQ(duration_error("2562047h"), "duration is too large (at most 30d)");
}

TEST(ParseDuration, ErrorTextIsOptional) {
  EXPECT_FALSE(parse_duration("nope").has_value());
  EXPECT_EQ(parse_duration("1s").value(), 1'000'000'000);
}

TEST(ParseSize, ConvertsDecimalAndBinaryUnitsAndBareBytes) {
  EXPECT_EQ(size_ok("4096"), 4096u);
  EXPECT_EQ(size_ok("100B"), 100u);
  EXPECT_EQ(size_ok("512KB"), 512'000u);
  EXPECT_EQ(size_ok("3MB"), 3'000'000u);
  EXPECT_EQ(size_ok("2GB"), 2'000'000'000u);
  EXPECT_EQ(size_ok("4KiB"), 4096u);
  EXPECT_EQ(size_ok("10MiB"), 10u * 1024 * 1024);
  EXPECT_EQ(size_ok("1GiB"), 1024u * 1024 * 1024);
  EXPECT_EQ(size_ok("1.5KB"), 1500u);
  EXPECT_EQ(size_ok("64 KiB"), 65536u);
}

TEST(ParseSize, UnitsIgnoreCase) {
  EXPECT_EQ(size_ok("10mib"), 10u * 1024 * 1024);
  EXPECT_EQ(size_ok("5kb"), 5000u);
}

TEST(ParseSize, RejectsNegativeFractionalBytesAndUnknownUnits) {
  EXPECT_EQ(size_error("-1KB"), "negative sizes are not allowed");
  EXPECT_EQ(size_error(""), "empty size");
  EXPECT_EQ(size_error("1.5"), "a byte count must be a whole number");
  EXPECT_EQ(size_error("10 parsecs"),
            "unknown unit 'parsecs' (units: B, KB, MB, GB, KiB, MiB, GiB)");
  EXPECT_EQ(size_error("1MiB2KiB"), "unexpected '2KiB' (a size is one number and unit)");
  EXPECT_EQ(size_error("big"), "expected a number at 'big'");
  EXPECT_EQ(size_error("99999999999GiB"), "size is too large");
}

TEST(NearestName, SuggestsTheClosestCandidate) {
  EXPECT_EQ(nearest_name("wher", {"count", "where", "when"}), "where");
  EXPECT_EQ(nearest_name("genrator", {"console", "generator"}), "generator");
  EXPECT_EQ(nearest_name("Generator", {"generator"}), "generator");
}

TEST(NearestName, PrefersTheFirstOfEquallyCloseCandidates) {
  EXPECT_EQ(nearest_name("cat", {"bat", "hat"}), "bat");
}

TEST(NearestName, SuggestsNothingWhenNoCandidateIsClose) {
  EXPECT_EQ(nearest_name("xml", {"text", "json"}), "");
  EXPECT_EQ(nearest_name("ab", {"cd"}), "");  // every character differs
  EXPECT_EQ(nearest_name("anything", {}), "");
}

TEST(NearestName, AllowsMoreEditsForLongerNames) {
  // max(2, len/3): a 12-character name may be 4 edits away, a 6-character one only 2.
  EXPECT_EQ(nearest_name("procesors_xy", {"processors_abc"}), "processors_abc");
  EXPECT_EQ(nearest_name("sinkss", {"sink"}), "sink");
  EXPECT_EQ(nearest_name("abcdef", {"abcxyz"}), "");
}

}  // namespace
}  // namespace sluice::core
