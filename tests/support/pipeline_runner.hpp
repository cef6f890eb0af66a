// Runs whole pipelines in tests: from TOML text or a file, in-process (Pipeline) or as a real
// `sluice` child process, with the built-in and test-only plugins available.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "sluice/core/config.hpp"
#include "sluice/core/plugin_registry.hpp"
#include "sluice/core/runtime.hpp"

namespace sluice::testing {

// A fresh directory under /tmp, removed when the object dies.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  // Writes a file inside the directory and returns its path.
  std::string write(const std::string& name, const std::string& content) const;

 private:
  std::string path_;
};

// Built-in plugins plus the test-only ones (test_async, test_chain, test_slow_sink).
const core::PluginRegistry& test_registry();

core::PipelineSpec load_spec(const std::string& path);

// Loads and runs a pipeline in this process; stops it (drain) after `timeout`.
struct RunResult {
  int exit_code = -1;
  std::vector<core::NodeSummary> summary;
  const core::NodeSummary* node(const std::string& name) const;
};
RunResult run_pipeline(const std::string& path,
                       std::chrono::milliseconds timeout = std::chrono::seconds(60));

// Reads a file's lines (e.g. a file sink's JSONL output).
std::vector<std::string> read_lines(const std::string& path);

// Path of the built `sluice` binary.
std::string sluice_binary();

}  // namespace sluice::testing
