// Test helpers for the posting sinks in a whole pipeline (in this process): one generated event
// into the sink under test, its `errors` output into a file sink, the sink's log lines captured
// and the metrics rendered, so a test can check what reaches the dead letter, the log and
// /metrics. Also the ways a server can echo a secret URL back (raw, %-encoded, JSON-escaped).
#pragma once

#include <spdlog/sinks/base_sink.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "pipeline_runner.hpp"
#include "sluice/core/node_host.hpp"
#include "sluice/core/runtime.hpp"

namespace sluice::testing {

struct SinkPipelineRun {
  std::chrono::steady_clock::duration took{};
  std::vector<nlohmann::json> dead;  // the dead-letter file's events
  std::string logs;                  // every line the pipeline and the sink logged
  std::string metrics;               // the Prometheus text /metrics serves
};

namespace detail {

// Collects log lines (formatted payloads) from the loggers it is added to.
class LogCapture : public spdlog::sinks::base_sink<std::mutex> {
 public:
  std::string text() {
    std::lock_guard lock(mutex_);
    return text_;
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    text_.append(msg.payload.data(), msg.payload.size());
    text_.push_back('\n');
  }
  void flush_() override {}

 private:
  std::string text_;
};

}  // namespace detail

// Runs generator (one event) → sink `out` of `sink_type` with `sink_options` → its errors into a
// file. `while_running` (if set) runs on another thread while the pipeline runs (to stop it).
inline SinkPipelineRun run_sink_pipeline(const std::string& sink_type,
                                         const std::string& sink_options,
                                         std::function<void(core::Pipeline&)> while_running = {}) {
  TempDir dir;
  const std::string path =
      dir.write("p.toml", "[pipeline]\nname = \"t\"\nstate_dir = \"" + dir.path() +
                              "/state\"\n\n"
                              "[sources.gen]\ntype = \"generator\"\n"
                              "count = 1\n\n"
                              "[sinks.out]\ntype = \"" +
                              sink_type + "\"\ninputs = [\"gen\"]\n" + sink_options +
                              "\n\n[sinks.dead]\ntype = \"file\"\n"
                              "inputs = [\"out.errors\"]\npath = \"" +
                              dir.path() + "/dead.jsonl\"\n");
  auto capture = std::make_shared<detail::LogCapture>();
  std::vector<std::shared_ptr<spdlog::logger>> loggers = {core::make_logger("t"),
                                                          core::make_logger("t.out")};
  for (auto& l : loggers) l->sinks().push_back(capture);
  SinkPipelineRun run;
  {
    core::PipelineSpec spec = load_spec(path);
    core::RunOptions opts;
    opts.admin_port = -1;
    opts.print_summary = false;
    core::Pipeline pipeline(spec, test_registry(), opts);
    std::thread helper;
    if (while_running) helper = std::thread([&] { while_running(pipeline); });
    const auto start = std::chrono::steady_clock::now();
    pipeline.run();
    run.took = std::chrono::steady_clock::now() - start;
    if (helper.joinable()) helper.join();
    run.metrics = pipeline.metrics().render_prometheus();
  }
  for (auto& l : loggers) {
    auto& sinks = l->sinks();
    sinks.erase(std::remove(sinks.begin(), sinks.end(), capture), sinks.end());
  }
  run.logs = capture->text();
  for (const std::string& line : read_lines(dir.file("dead.jsonl"))) {
    run.dead.push_back(nlohmann::json::parse(line));
  }
  return run;
}

// An error page quoting the request target as a misconfigured server would: raw, %-encoded and
// JSON-escaped (with "\/"), so none of the forms may reach a log, a dead letter or a metric.
inline std::string echo_page(const std::string& target) {
  std::string encoded;
  std::string json_escaped;
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (unsigned char c : target) {
    if (std::isalnum(c) != 0) {
      encoded.push_back(static_cast<char>(c));
    } else {
      encoded += {'%', kHex[c >> 4], kHex[c & 0xF]};
    }
    json_escaped += c == '/' ? std::string("\\/") : std::string(1, static_cast<char>(c));
  }
  return "no route for " + target + " (" + encoded + ") {\"path\":\"" + json_escaped + "\"}";
}

}  // namespace sluice::testing
