// The host side of the plugin ABI for one node: logging, settings, metrics, per-node state and
// child processors (composites), plus creation of plugin instances from a validated NodeSpec.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <spdlog/logger.h>

#include "sluice/abi.h"
#include "sluice/core/config.hpp"
#include "sluice/core/metrics.hpp"
#include "sluice/core/node_commands.hpp"
#include "sluice/core/plugin_registry.hpp"
#include "sluice/core/state.hpp"

namespace sluice::core {

// Runs callbacks on a node's stage thread. post(), schedule() and cancel_scheduled() are
// callable from any thread.
class Executor {
 public:
  virtual ~Executor() = default;
  virtual void post(std::function<void()> fn) = 0;
  // Runs fn(false) on the stage thread after delay_ns, or fn(true) when cancelled or when the
  // stage ends first. Returns the timer's id, or 0 when this executor has no timers (fn is then
  // dropped without a call).
  virtual uint64_t schedule(int64_t delay_ns, std::function<void(bool cancelled)> fn) {
    (void)delay_ns;
    (void)fn;
    return 0;
  }
  // True when the timer was pending (its fn(true) has run).
  virtual bool cancel_scheduled(uint64_t id) {
    (void)id;
    return false;
  }
  // Sends an event the node produced on its own to one of its outputs; false when this
  // executor cannot (it has no outputs, or the caller is not on its thread).
  virtual bool emit(const char* output, const uint8_t* data, size_t size) {
    (void)output;
    (void)data;
    (void)size;
    return false;
  }
};

struct HostServices {
  std::string pipeline;
  std::string state_dir;
  SettingsStore* settings = nullptr;
  MetricsRegistry* metrics = nullptr;
  // Per-node state (ABI 1.2); null: the host keeps none and state_commit fails.
  NodeStateStore* node_state = nullptr;
  // Node commands (ABI 1.2) the admin endpoint serves; null (`sluice validate`): registrations
  // are accepted and served nowhere.
  NodeCommands* commands = nullptr;
};

// Logs at most `burst` messages, then one per `interval` with the number suppressed.
class RateLimitedLog {
 public:
  RateLimitedLog(int burst = 10, int64_t interval_ns = 10'000'000'000) :
      burst_(burst), interval_ns_(interval_ns) {}
  // Returns true when this message should be logged; *suppressed gets the skipped count.
  bool allow(uint64_t* suppressed);

 private:
  int burst_;
  int64_t interval_ns_;
  int used_ = 0;
  int64_t window_start_ = 0;
  uint64_t suppressed_ = 0;
};

class NodeInstance;

class NodeHost {
 public:
  NodeHost(const HostServices& services, const NodeSpec& node, NodeMetrics* metrics);
  ~NodeHost();
  NodeHost(const NodeHost&) = delete;
  NodeHost& operator=(const NodeHost&) = delete;

  const sluice_host* raw() const { return &host_; }
  spdlog::logger& logger() { return *logger_; }
  NodeMetrics* metrics() const { return metrics_; }
  void set_executor(Executor* e) { executor_ = e; }
  void set_children(std::vector<NodeInstance*> children) { children_ = std::move(children); }
  // Replaces secret option values in a message with "***".
  std::string redact(std::string msg) const;

 private:
  static void log_cb(void* ctx, sluice_log_level level, const char* msg, size_t len);
  static uint64_t settings_version_cb(void* ctx);
  static int64_t setting_get_cb(void* ctx, const char* name, char* buf, size_t cap);
  static int setting_set_cb(void* ctx, const char* name, const char* value_json);
  static void counter_add_cb(void* ctx, const char* name, const char* labels, double v);
  static void gauge_set_cb(void* ctx, const char* name, const char* labels, double v);
  static void observe_cb(void* ctx, const char* name, const char* labels, double v);
  static int64_t state_get_cb(void* ctx, const char* key, uint8_t* buf, size_t cap);
  static int state_commit_cb(void* ctx, const sluice_state_write* writes, size_t write_count,
                             const sluice_setting_write* settings, size_t setting_count,
                             char* err, size_t err_cap);
  static size_t child_count_cb(void* ctx);
  static const char* child_name_cb(void* ctx, size_t i);
  static void child_process_cb(void* ctx, size_t i, const uint8_t* event, size_t size,
                               sluice_child_callback cb, void* user);
  static uint64_t timer_start_cb(void* ctx, int64_t delay_ns, void (*fn)(void*, int), void* user);
  static int timer_cancel_cb(void* ctx, uint64_t id);
  static uint64_t child_start_cb(void* ctx, size_t i, const uint8_t* event, size_t size,
                                 int64_t deadline_ns, sluice_child_callback cb, void* user);
  static void child_cancel_cb(void* ctx, uint64_t call_id);
  static int command_register_cb(void* ctx, const char* name, const char* description,
                                 sluice_command_fn fn, void* user);
  static void command_unregister_cb(void* ctx, const char* name);
  static int emit_cb(void* ctx, const char* output, const uint8_t* data, size_t size);
  static uint64_t metric_series_cb(void* ctx, int kind, const char* name, const char* labels);
  static void metric_record_cb(void* ctx, uint64_t series, double v);

  // One child call in flight (node_host.cpp).
  struct ChildCall;

  HostServices services_;
  bool is_source_ = false;
  bool is_child_ = false;  // a composite's child: it has no outputs of its own
  std::string node_name_;
  std::string state_dir_;
  std::vector<std::string> secrets_;
  NodeMetrics* metrics_;
  std::shared_ptr<spdlog::logger> logger_;
  Executor* executor_ = nullptr;
  std::vector<NodeInstance*> children_;
  // Child calls whose outcome the composite has not received yet, by id (stage thread only).
  std::unordered_map<uint64_t, ChildCall*> child_calls_;
  uint64_t next_child_call_ = 0;
  sluice_host host_{};
};

// A created plugin object with its host and (for composites) its children.
class NodeInstance {
 public:
  const NodeSpec& spec() const { return *spec_; }
  NodeHost& host() { return *host_; }
  PluginInstance& plugin() { return *plugin_; }
  const sluice_plugin_descriptor& descriptor() const { return plugin_->descriptor(); }
  // Sets the executor of this node and every descendant.
  void set_executor(Executor* e);
  // Calls the start hook of the node's children (recursively), then of the node, each at most
  // once; `sluice validate` never gets here. Throws ConfigError naming the node whose start
  // failed, with the plugin's message (secrets redacted).
  void start(const PipelineSpec& spec);
  bool started() const { return started_; }

  // Creates the node's children (recursively), then the node. Throws ConfigError naming the
  // option the plugin refused (file:line:col).
  static std::unique_ptr<NodeInstance> create(const PipelineSpec& spec, const NodeSpec& node,
                                              const PluginRegistry& plugins,
                                              const HostServices& services);

 private:
  const NodeSpec* spec_ = nullptr;
  std::vector<std::unique_ptr<NodeInstance>> children_;
  std::unique_ptr<NodeHost> host_;
  std::unique_ptr<PluginInstance> plugin_;
  bool started_ = false;
};

// The logger every runtime component uses, named "<pipeline>.<node>".
std::shared_ptr<spdlog::logger> make_logger(const std::string& name);
// Configures the global log level and format ("text" | "json").
void configure_logging(const std::string& level, const std::string& format);

}  // namespace sluice::core
