// The pipeline runtime: one stage (thread + ZeroMQ sockets) per top-level node, edges as
// PUSH→PULL pairs over inproc/ipc/tcp by placement, EOS markers for finite sources, graceful
// drain on stop, and the per-process admin endpoint.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sluice/core/config.hpp"
#include "sluice/core/metrics.hpp"
#include "sluice/core/node_commands.hpp"
#include "sluice/core/plugin_registry.hpp"
#include "sluice/core/state.hpp"

namespace sluice::core {

struct RunOptions {
  std::string process;                 // placement group to run; "" = the whole pipeline
  std::optional<int> admin_port;       // overrides [admin] port (0 = ephemeral, -1 = off)
  bool print_summary = true;           // per-node summary on stderr when the pipeline ends
  int queue_capacity = 1000;           // ZeroMQ high-water mark per edge, in events
  // `sluice validate`: create the nodes and nothing else, so checking a file writes nothing
  // (settings and node state in memory, no state database created).
  bool dry_run = false;
};

struct NodeSummary {
  std::string node;
  std::string kind;
  std::string type;
  uint64_t events_in = 0;
  uint64_t events_out = 0;
  uint64_t errors = 0;
  uint64_t dropped = 0;
  uint64_t undelivered = 0;  // sent to another process but not confirmed by it
  double seconds = 0;
  double latency_p50 = 0;  // ingest → arrival at this node, upper bound of the bucket, seconds
  double latency_p99 = 0;
};

class Stage;
class EdgeAuthenticator;

// This process's CURVE key pair for tcp edges (from its placement group).
struct CurveIdentity {
  std::string public_key;
  std::string secret_key;  // never logged
};

class Pipeline {
 public:
  // Creates every plugin instance of this process (throws ConfigError on refusal); starts none:
  // `sluice validate` stops here.
  Pipeline(const PipelineSpec& spec, const PluginRegistry& plugins, RunOptions options = {});
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  // Starts every node (their plugins' start hooks, children first), then runs until every
  // source finished and everything drained, or until stop() and the drain (bounded by the grace
  // period). Returns 0, or 1 if a start hook failed (logged and kept in start_error(), naming
  // the node; no event has flowed then), a source failed or the drain timed out.
  int run();
  // Asks sources to stop; thread-safe. A second call forces an immediate stop.
  void stop();
  // A stage failed: drain and stop like a first stop(), without ever forcing.
  void stop_for_failure();

  // The failed start that ended run() before it began, naming the node as a constructor
  // refusal does (file:line:col: processors.x: failed to start: ...); nullopt otherwise.
  const std::optional<Diagnostic>& start_error() const { return start_error_; }
  std::vector<NodeSummary> summary() const;
  MetricsRegistry& metrics() { return metrics_; }
  SettingsStore& settings() { return *settings_; }
  // Commands the nodes of this process registered (served as POST /nodes/NODE/COMMAND).
  NodeCommands& commands() { return commands_; }
  const PipelineSpec& spec() const { return spec_; }
  // Port the admin endpoint listens on (after run() started), 0 when off.
  uint16_t admin_port() const { return admin_port_.load(); }

  // Internal, for stages.
  bool stopping() const { return stopping_.load(std::memory_order_acquire); }
  bool hard_stopped() const { return hard_stop_.load(std::memory_order_acquire); }
  void* zmq_context() const { return zmq_ctx_; }
  const RunOptions& options() const { return options_; }
  const CurveIdentity& curve_identity() const { return curve_; }
  // Where this pipeline's ipc sockets live (private to the user; checked before use).
  std::string ipc_dir() const;

 private:
  struct Wiring;
  std::vector<std::string> local_nodes() const;
  std::string remote_endpoint(const std::string& node) const;
  std::string group_of(const std::string& node) const;
  const PlacementGroup* group_spec(const std::string& name) const;
  // Before sockets open: the ipc directory is private, this process's CURVE secret is loaded,
  // the ZAP handler runs. Returns an error message, "" when all is well.
  std::string prepare_edges();

  PipelineSpec spec_;
  RunOptions options_;
  MetricsRegistry metrics_;
  std::unique_ptr<SettingsStore> settings_;
  std::unique_ptr<NodeStateStore> node_state_;  // after settings_: it refers to it
  NodeCommands commands_;  // before stages_: node hosts remove theirs as they go
  void* zmq_ctx_ = nullptr;
  CurveIdentity curve_;
  std::unique_ptr<EdgeAuthenticator> auth_;
  std::vector<std::unique_ptr<Stage>> stages_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> hard_stop_{false};
  std::atomic<uint16_t> admin_port_{0};
  std::optional<Diagnostic> start_error_;
  int64_t started_ns_ = 0;
};

// Renders the summary as an aligned table.
std::string format_summary(const std::vector<NodeSummary>& rows);

}  // namespace sluice::core
