// Drives one plugin in isolation, through the real loader, option validation and host, so a
// plugin test exercises exactly what a pipeline would run.
//
//   sluice::testing::PluginHarness filter("processor", "filter", R"(where = "price > 10")");
//   auto r = filter.process(event_bytes);
//   EXPECT_TRUE(r.outcome.ok());
//   ASSERT_EQ(r.emitted.size(), 1u);
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sluice/sdk.hpp"

namespace sluice::testing {

struct Emitted {
  std::string output;  // "" = default output
  std::vector<uint8_t> bytes;
  EventView view() const { return EventView(bytes.data(), bytes.size()); }
};

struct CallResult {
  Outcome outcome;
  std::vector<Emitted> emitted;
  bool forwarded_same_bytes = false;  // the plugin emitted the input pointer itself (zero-copy)
};

struct LogLine {
  sluice_log_level level;
  std::string message;
};

struct HarnessOptions {
  // The pipeline's state directory (settings and node state live in its state.db); default: a
  // fresh temporary directory, removed with the harness.
  std::string state_dir;
  nlohmann::json settings = nlohmann::json::object();  // [settings] name → value
  std::map<std::string, std::string> env;              // ${VAR} values for the options text
  // Calls the plugin's start hook once it is created, as `sluice run` does. false: create only,
  // as `sluice validate` does (start() may follow).
  bool start = true;
};

class PluginHarness {
 public:
  // kind: "source" | "processor" | "sink". options_toml: the node table's body without `type`.
  // Throws sluice::core::ConfigError (option problems, with file:line:col) or std::runtime_error
  // (the plugin's create() or start() refused, message included).
  PluginHarness(const std::string& kind, const std::string& type, const std::string& options_toml,
                HarnessOptions opts = {});
  ~PluginHarness();

  // Calls the plugin's start hook unless it ran already (HarnessOptions::start = false defers
  // it). Throws std::runtime_error with the message when it fails.
  void start();

  // Processors and sinks: one call; waits until the plugin calls done (or the timeout passes,
  // which fails the test and returns status kInternal with message "harness timeout").
  CallResult process(std::span<const uint8_t> event,
                     std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // One call as a composite's child makes it (ABI 1.2): with an absolute mono_ns() deadline
  // (0 = none) and, when cancel_after is set, abandoned that long after it started (its cancel
  // handler runs, as when a hedge won or a chain moved on). Waits until the plugin calls done.
  CallResult process_as_child(std::span<const uint8_t> event, int64_t deadline_ns,
                              std::optional<std::chrono::milliseconds> cancel_after = std::nullopt,
                              std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Starts several calls at once (to test max_in_flight / async plugins) and waits for all.
  std::vector<CallResult> process_all(const std::vector<std::vector<uint8_t>>& events,
                                      std::chrono::milliseconds timeout = std::chrono::seconds(30));
  void flush();

  // Sources: runs until run() returns or max_events were emitted (then asks it to stop).
  // Returns the emitted events; throws std::runtime_error if run() failed.
  std::vector<std::vector<uint8_t>> run_source(size_t max_events = SIZE_MAX,
                                               std::chrono::milliseconds timeout =
                                                   std::chrono::seconds(30));

  // Host-side state the plugin sees.
  void set_setting(const std::string& name, const nlohmann::json& value);
  nlohmann::json setting(const std::string& name) const;
  // The node's state (ABI 1.2) under a key, as the plugin committed it; nullopt when absent.
  std::optional<std::string> node_state(const std::string& key) const;
  std::vector<LogLine> logs() const;
  // Sum of counter_add() calls for a name (all labels), 0 if none.
  double counter(const std::string& name) const;
  // Every metric the plugin exported, in the Prometheus text format (node label "test").
  std::string prometheus() const;
  const std::string& state_dir() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Builds an event from a JSON object of fields (numbers with a fraction → double, integers → int,
// strings, bools), for tests.
std::vector<uint8_t> make_event(const nlohmann::json& fields, std::string_view key = {},
                                uint64_t id = 1);

// Renders a whole event (id, times, key, attrs, fields) as JSON, for assertions.
nlohmann::json event_to_json(std::span<const uint8_t> bytes);

}  // namespace sluice::testing
