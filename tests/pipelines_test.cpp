// Every example pipeline in pipelines/ is validated, drawn and run through the real `sluice`
// binary (Vector-style: examples double as tests). The replay default is checked row by row
// against the recorded data it replays.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include <signal.h>

#include "live_services.hpp"
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

// Pipelines that talk to exchanges, LLMs and chat services: they need their secrets set, and
// run offline against local stand-ins of those services (live_services.hpp).
bool talks_to_live_services(const std::string& path) {
  return fs::path(path).filename() == "liquidation_alerts.toml";
}

std::map<std::string, std::string> validation_env(const std::string& path) {
  if (!talks_to_live_services(path)) return {};
  return {{"LLM_API_KEY", kTestLlmKey},
          {"TELEGRAM_BOT_TOKEN", kTestBotToken},
          {"TELEGRAM_CHAT_ID", kTestChatId},
          {"TELEGRAM_ADMIN_ID", std::to_string(kTestAdminId)},
          {"SLACK_WEBHOOK_URL", std::string("https://hooks.slack.com") + kTestSlackPath}};
}

TEST_P(ExamplePipeline, Validates) {
  auto r = run_command({sluice_binary(), "validate", GetParam()}, validation_env(GetParam()));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find(": ok ("), std::string::npos) << r.out;
}

TEST_P(ExamplePipeline, RendersAsDot) {
  auto r = run_command({sluice_binary(), "graph", GetParam()}, validation_env(GetParam()));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("digraph ", 0), 0u);
}

// A live pipeline runs until stopped: one liquidation goes through to its chat services, then
// SIGTERM drains it. (tests/liquidation_alerts_test.cpp runs the full scenario.)
void run_against_local_services(const std::string& path) {
  LiveServices services;
  ChildProcess child({sluice_binary(), "run", path, "--admin-port", "0"}, services.env(),
                     services.dir.path());
  ASSERT_TRUE(ws::testing::TlsWsServer::wait_until([&] { return services.binance.opened() >= 1; }))
      << child.stderr_text();
  services.binance.send(1, LiveServices::liquidation_frame("BTCUSDT", "SELL", 64000, 20));
  ASSERT_TRUE(ws::testing::TlsWsServer::wait_until([&] {
    return !services.telegram_messages().empty() && services.slack.request_count() >= 1;
  })) << child.stderr_text();
  child.signal(SIGTERM);
  EXPECT_EQ(child.wait(std::chrono::seconds(30)), 0) << child.stderr_text();
  EXPECT_NE(child.stderr_text().find("events/s"), std::string::npos) << child.stderr_text();
}

TEST_P(ExamplePipeline, RunsToCompletionOffline) {
  if (talks_to_live_services(GetParam())) return run_against_local_services(GetParam());
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

TEST(LiquidationsReplay, ConsoleAndJsonlGetExactlyTheRowsAboveTheThresholdClassified) {
  TempDir dir;
  std::string pipeline = std::string(SLUICE_SOURCE_DIR) + "/pipelines/liquidations_replay.toml";
  auto r = run_command({sluice_binary(), "run", pipeline, "--admin-port", "0"},
                       {{"SLUICE_OUT_DIR", dir.path()}}, std::chrono::seconds(120), dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Expected: every recorded row with usd_value >= 1000 (the pipeline's min_alert_usd), with the
  // risk level its rules_classifier gives: HIGH from $50K, MEDIUM from $10K, one level higher
  // for BTCUSDT and ETHUSDT.
  struct Row {
    std::string symbol;
    std::string side;
    std::string risk_level;
  };
  auto risk = [](const std::string& symbol, double usd) -> std::string {
    int level = usd >= 50000 ? 2 : usd >= 10000 ? 1 : 0;
    if (symbol == "BTCUSDT" || symbol == "ETHUSDT") level = std::min(level + 1, 2);
    return level == 2 ? "HIGH" : level == 1 ? "MEDIUM" : "LOW";
  };
  std::ifstream csv(std::string(SLUICE_SOURCE_DIR) + "/pipelines/data/liquidations_sample.csv");
  std::string line;
  std::getline(csv, line);
  std::vector<Row> expected;
  while (std::getline(csv, line)) {
    std::vector<std::string> cols;
    std::stringstream ss(line);
    for (std::string c; std::getline(ss, c, ',');) cols.push_back(c);
    ASSERT_EQ(cols.size(), 6u) << line;
    double usd = std::stod(cols[5]);
    if (usd >= 1000) expected.push_back({cols[1], cols[2], risk(cols[1], usd)});
  }
  ASSERT_FALSE(expected.empty());
  auto lines = read_lines(dir.file("liquidations.jsonl"));
  ASSERT_EQ(lines.size(), expected.size());
  std::map<std::string, size_t> levels;
  for (size_t i = 0; i < lines.size(); ++i) {
    auto j = nlohmann::json::parse(lines[i]);
    EXPECT_EQ(j["symbol"], expected[i].symbol) << "row " << i;
    EXPECT_GE(j["notional_usd"].get<double>(), 1000.0);
    EXPECT_EQ(j["_sluice"]["source"], "binance");
    EXPECT_EQ(j["classifier"], "rules");
    EXPECT_EQ(j["fallback_used"], "rules");  // without LLM_API_KEY the chain is the rules alone
    EXPECT_EQ(j["risk_level"], expected[i].risk_level) << "row " << i;
    EXPECT_EQ(j["liquidated"], expected[i].side == "SELL" ? "long" : "short") << "row " << i;
    EXPECT_EQ(j["summary"].get<std::string>().rfind(expected[i].symbol + " ", 0), 0u)
        << j["summary"];
    ++levels[j["risk_level"].get<std::string>()];
  }
  // The replay shows every level.
  EXPECT_EQ(levels.size(), 3u);
  // The console got the same alerts, one line each.
  size_t console_lines = std::count(r.out.begin(), r.out.end(), '\n');
  EXPECT_EQ(console_lines, expected.size()) << r.out;
}


// The same default with LLM_API_KEY set: the LLM step exists and answers first (an
// OpenAI-compatible stand-in over TLS on 127.0.0.1); the key never shows in the output.
TEST(LiquidationsReplay, WithAnLlmKeyTheLlmAnswersFirst) {
  LiveServices services;
  auto env = services.env();
  env["SLUICE_OUT_DIR"] = services.dir.path();
  std::string pipeline = std::string(SLUICE_SOURCE_DIR) + "/pipelines/liquidations_replay.toml";
  auto r = run_command({sluice_binary(), "run", pipeline, "--admin-port", "0"}, env,
                       std::chrono::seconds(120), services.dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto lines = read_lines(services.dir.file("liquidations.jsonl"));
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(services.llm.request_count(), lines.size());
  for (const std::string& line : lines) {
    auto j = nlohmann::json::parse(line);
    EXPECT_EQ(j["fallback_used"], "llm") << line;
    EXPECT_EQ(j["classifier"], "llm") << line;
    EXPECT_EQ(j["summary"].get<std::string>().rfind("LLM: ", 0), 0u) << line;
  }
  EXPECT_EQ(r.err.find(kTestLlmKey), std::string::npos);
  EXPECT_EQ(r.out.find(kTestLlmKey), std::string::npos);
}

}  // namespace
}  // namespace sluice::testing
