// Every example pipeline in pipelines/ is validated, drawn and run through the real `sluice`
// binary (Vector-style: examples double as tests). The replay default is checked row by row
// against the recorded data it replays.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "pipeline_runner.hpp"
#include "process.hpp"

namespace sluice::testing {
namespace {
namespace fs = std::filesystem;

std::vector<std::string> example_pipelines() {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(std::string(SLUICE_SOURCE_DIR) + "/pipelines")) {
    if (e.path().extension() == ".toml") out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

class ExamplePipeline : public ::testing::TestWithParam<std::string> {};

TEST_P(ExamplePipeline, Validates) {
  auto r = run_command({sluice_binary(), "validate", GetParam()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find(": ok ("), std::string::npos) << r.out;
}

TEST_P(ExamplePipeline, RendersAsDot) {
  auto r = run_command({sluice_binary(), "graph", GetParam()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("digraph ", 0), 0u);
}

TEST_P(ExamplePipeline, RunsToCompletionOffline) {
  TempDir dir;
  auto r = run_command({sluice_binary(), "run", GetParam(), "--admin-port", "0"},
                       {{"SLUICE_OUT_DIR", dir.path()}}, std::chrono::seconds(120), dir.path());
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // The per-node summary closes every run.
  EXPECT_NE(r.err.find("events/s"), std::string::npos) << r.err;
}

INSTANTIATE_TEST_SUITE_P(Pipelines, ExamplePipeline, ::testing::ValuesIn(example_pipelines()),
                         [](const auto& info) {
                           std::string n = fs::path(info.param).stem().string();
                           for (char& c : n) {
                             if (!isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return n;
                         });

TEST(LiquidationsReplay, ConsoleAndJsonlGetExactlyTheRowsAboveTheThreshold) {
  TempDir dir;
  std::string pipeline = std::string(SLUICE_SOURCE_DIR) + "/pipelines/liquidations_replay.toml";
  auto r = run_command({sluice_binary(), "run", pipeline, "--admin-port", "0"},
                       {{"SLUICE_OUT_DIR", dir.path()}}, std::chrono::seconds(120), dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Expected: every recorded row with usd_value >= 1000 (the pipeline's min_alert_usd).
  std::ifstream csv(std::string(SLUICE_SOURCE_DIR) + "/pipelines/data/liquidations_sample.csv");
  std::string line;
  std::getline(csv, line);
  std::vector<std::string> expected_symbols;
  while (std::getline(csv, line)) {
    std::vector<std::string> cols;
    std::stringstream ss(line);
    for (std::string c; std::getline(ss, c, ',');) cols.push_back(c);
    if (cols.size() == 6 && std::stod(cols[5]) >= 1000) expected_symbols.push_back(cols[1]);
  }
  ASSERT_FALSE(expected_symbols.empty());
  auto lines = read_lines(dir.file("liquidations.jsonl"));
  ASSERT_EQ(lines.size(), expected_symbols.size());
  for (size_t i = 0; i < lines.size(); ++i) {
    auto j = nlohmann::json::parse(lines[i]);
    EXPECT_EQ(j["symbol"], expected_symbols[i]) << "row " << i;
    EXPECT_GE(j["notional_usd"].get<double>(), 1000.0);
    EXPECT_EQ(j["_sluice"]["source"], "binance");
  }
  // The console got the same alerts, one line each.
  size_t console_lines = std::count(r.out.begin(), r.out.end(), '\n');
  EXPECT_EQ(console_lines, expected_symbols.size()) << r.out;
}

}  // namespace
}  // namespace sluice::testing
