// Pipeline runner for tests.
#include "pipeline_runner.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

namespace sluice::testing {
namespace fs = std::filesystem;

TempDir::TempDir() {
  char tmpl[] = "/tmp/sluice-test-XXXXXX";
  path_ = mkdtemp(tmpl);
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string TempDir::write(const std::string& name, const std::string& content) const {
  std::string p = file(name);
  fs::create_directories(fs::path(p).parent_path());
  std::ofstream(p) << content;
  return p;
}

const core::PluginRegistry& test_registry() {
  static const core::PluginRegistry reg = [] {
    core::PluginRegistry r;
    std::vector<std::string> errors;
    auto dirs = core::PluginRegistry::default_dirs();
#ifdef SLUICE_TEST_PLUGIN_DIR
    dirs.push_back(SLUICE_TEST_PLUGIN_DIR);
#endif
    r.load_dirs(dirs, &errors);
    for (const auto& e : errors) ADD_FAILURE() << e;
    return r;
  }();
  return reg;
}

core::PipelineSpec load_spec(const std::string& path) {
  return core::load_pipeline(path, test_registry().catalog());
}

const core::NodeSummary* RunResult::node(const std::string& name) const {
  for (const auto& s : summary) {
    if (s.node == name) return &s;
  }
  return nullptr;
}

RunResult run_pipeline(const std::string& path, std::chrono::milliseconds timeout) {
  core::PipelineSpec spec = load_spec(path);
  core::RunOptions opts;
  opts.admin_port = -1;
  opts.print_summary = false;
  core::Pipeline pipeline(spec, test_registry(), opts);
  std::atomic<bool> finished{false};
  std::thread watchdog([&] {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!finished && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (!finished) pipeline.stop();
  });
  RunResult r;
  r.exit_code = pipeline.run();
  finished = true;
  watchdog.join();
  r.summary = pipeline.summary();
  return r;
}

std::vector<std::string> read_lines(const std::string& path) {
  std::vector<std::string> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::string sluice_binary() {
#ifdef SLUICE_BINARY_DIR
  return std::string(SLUICE_BINARY_DIR) + "/sluice";
#else
  return "sluice";
#endif
}

}  // namespace sluice::testing
