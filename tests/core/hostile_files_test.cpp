// Hostile pipeline files: a table header of 100 000 dotted parts, 100 000 nested inline arrays or
// tables, and files far beyond any real pipeline overflowed the stack inside toml++ (and the
// loader). Every parse of a pipeline file is bounded first (size, nesting): the loader and the
// real `sluice validate|run|graph` answer with a file:line:col error naming the limit, never a
// crash. Brackets inside strings and comments are text, not nesting.
#include <gtest/gtest.h>

#include <string>

#include "pipeline_runner.hpp"
#include "process.hpp"
#include "sluice/core/config.hpp"
#include "sluice/core/pipeline_file.hpp"

namespace sluice::core {
namespace {

using testing::TempDir;

constexpr size_t kHostile = 100'000;

// generator → console: a valid pipeline to append to.
constexpr const char* kValid = R"([sources.gen]
type = "generator"
count = 1

[sinks.out]
type = "console"
inputs = ["gen"]
)";

std::string repeat(std::string_view part, size_t n) {
  std::string out;
  out.reserve(part.size() * n);
  for (size_t i = 0; i < n; ++i) out += part;
  return out;
}

// "[a.a.…]" with n parts.
std::string deep_header(size_t n) { return "[" + repeat("a.", n - 1) + "a]\n"; }
// "x = [[…1…]]" with n levels of arrays.
std::string deep_arrays(size_t n) { return "x = " + repeat("[", n) + "1" + repeat("]", n) + "\n"; }
// "x = {a={a=…1…}}" with n levels of inline tables.
std::string deep_tables(size_t n) {
  return "x = " + repeat("{a=", n) + "1" + repeat("}", n) + "\n";
}

// What load_pipeline says about a file, or "(loaded)".
std::string load_errors(const std::string& path) {
  try {
    load_pipeline(path, testing::test_registry().catalog());
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(loaded)";
}

std::string nesting_error(const std::string& path, int line, int column, const char* what) {
  return path + ":" + std::to_string(line) + ":" + std::to_string(column) + ": error: " + what +
         " nests deeper than 64 levels (table header parts, dotted key parts and inline arrays "
         "and tables together); flatten the structure";
}

TEST(HostileFiles, AHeaderOfAHundredThousandPartsIsRefusedWithItsPosition) {
  TempDir dir;
  const std::string path =
      dir.write("deep.toml", std::string(kValid) + "\n" + deep_header(kHostile));
  EXPECT_EQ(load_errors(path), nesting_error(path, 9, 1, "this table header"));
  const std::string array = dir.write("deep_array.toml", "[[" + repeat("a.", kHostile) + "a]]\n");
  EXPECT_EQ(load_errors(array), nesting_error(array, 1, 1, "this table header"));
}

TEST(HostileFiles, DeeplyNestedInlineArraysAndTablesAreRefused) {
  TempDir dir;
  const std::string arrays = dir.write("arrays.toml", deep_arrays(kHostile));
  // "x = " puts the value at level 1: the 64th '[' (column 68) is the 65th level.
  EXPECT_EQ(load_errors(arrays), nesting_error(arrays, 1, 68, "this value"));
  const std::string tables = dir.write("tables.toml", "# tables\n" + deep_tables(kHostile));
  // Each "{a=" is one level: the 64th brace (column 5 + 63 × 3) is the 65th level.
  EXPECT_EQ(load_errors(tables), nesting_error(tables, 2, 5 + 63 * 3, "this value"));
  const std::string mixed = dir.write("mixed.toml", "x = [\n  " + repeat("{a=[", kHostile) + "]\n");
  EXPECT_NE(load_errors(mixed).find("nests deeper than 64 levels"), std::string::npos);
}

TEST(HostileFiles, AKeyOfAHundredThousandDottedPartsIsRefused) {
  TempDir dir;
  const std::string path =
      dir.write("key.toml", "[pipeline]\n" + repeat("a.", kHostile) + "a = 1\n");
  EXPECT_EQ(load_errors(path), nesting_error(path, 2, 1, "this key"));
}

TEST(HostileFiles, NestingUpToTheLimitIsParsed) {
  TempDir dir;
  // 64 levels: parsed, then refused for what it is (an unknown section), not for its depth.
  const std::string header = dir.write("header.toml", deep_header(64));
  EXPECT_EQ(load_errors(header).find("nests deeper"), std::string::npos) << load_errors(header);
  EXPECT_NE(load_errors(header).find("unknown section 'a'"), std::string::npos);
  const std::string over = dir.write("over.toml", deep_header(65));
  EXPECT_EQ(load_errors(over), nesting_error(over, 1, 1, "this table header"));
  // A header's parts and its keys' parts add up.
  const std::string sum =
      dir.write("sum.toml", "[" + repeat("a.", 58) + "a]\n" + repeat("b.", 4) + "b = [1]\n");
  EXPECT_EQ(load_errors(sum), nesting_error(sum, 2, 13, "this value"));
}

TEST(HostileFiles, BracketsInStringsAndCommentsAreNotNesting) {
  TempDir dir;
  const std::string brackets = repeat("[{", 500);
  const std::string path = dir.write(
      "text.toml", "# " + brackets + "\n[pipeline]\nname = \"p\" # " + brackets + "\n" +
                       "[sources.gen]\ntype = \"generator\"\ncount = 1\n" + "source_name = \"" +
                       repeat("[", 200) + "\\\"" + brackets + "\"\n" +
                       "[sinks.out]\ntype = \"console\"\ninputs = ['gen']\n" + "fields = ['''" +
                       brackets + "''', \"\"\"\n" + brackets + "\n\"\"\", '" + brackets + "x']\n");
  EXPECT_EQ(load_errors(path), "(loaded)");
}

// Found by the pipeline_toml fuzz target: a NUL byte in a bare value inside brackets stopped
// the nesting scan from advancing, so the load never returned.
TEST(HostileFiles, ANulByteInsideAnArrayIsAnErrorNotAHang) {
  std::string text = "[sources.gen]\ntype = \"generator\"\nids = [1";
  text.push_back('\0');
  text += "2]\n";
  EXPECT_THROW(parse_pipeline_toml(text, "<text>"), ConfigError);
}

TEST(HostileFiles, AFileBeyondFourMebibytesIsNotRead) {
  TempDir dir;
  const std::string path =
      dir.write("big.toml", std::string(kValid) + "# " + std::string(kMaxPipelineFileBytes, 'x'));
  const std::string size = std::to_string(std::string(kValid).size() + 2 + kMaxPipelineFileBytes);
  EXPECT_EQ(load_errors(path), path + ": error: the pipeline file is " + size +
                                   " bytes; at most 4194304 (4 MiB) are read (split it, or "
                                   "check that this is the right file)");
  EXPECT_THROW(parse_pipeline_toml(std::string(kMaxPipelineFileBytes + 1, '#'), "<text>"),
               ConfigError);
}

TEST(HostileFiles, TheCliAnswersWithTheLimitAndExitCode2NeverACrash) {
  TempDir dir;
  const std::string header = dir.write("header.toml", deep_header(kHostile));
  const std::string arrays = dir.write("arrays.toml", "\n" + deep_arrays(kHostile));
  // validate and run both read plugin_path first, then load: both reads are bounded.
  for (const char* command : {"validate", "run"}) {
    auto r = testing::run_command({testing::sluice_binary(), command, header});
    EXPECT_EQ(r.exit_code, 2) << command << ": " << r.err;
    EXPECT_EQ(r.err, nesting_error(header, 1, 1, "this table header") + "\n") << command;
  }
  auto r = testing::run_command({testing::sluice_binary(), "validate", arrays});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(r.err, nesting_error(arrays, 2, 68, "this value") + "\n");
}

}  // namespace
}  // namespace sluice::core
