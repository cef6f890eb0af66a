// One stage: a thread running one top-level node with its ZeroMQ sockets (private header).
#pragma once

#include <zmq.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "sluice/core/node_host.hpp"

namespace sluice::core {

class Pipeline;

// Wire marker that ends one edge: 16 bytes whose identifier slot (offset 4) reads "SEOS" where
// every event buffer carries "SLEV" (event.fbs file_identifier).
inline constexpr size_t kEosSize = 16;
bool is_eos(const void* data, size_t size);

struct StageWiring {
  std::vector<std::string> bind;  // endpoints the PULL socket binds (none for sources)
  struct Output {
    std::string name;                    // "" = default output
    std::vector<std::string> endpoints;  // one PUSH socket per downstream edge
  };
  std::vector<Output> outputs;
  int expected_eos = 0;        // input edges; the stage drains when all have ended
  bool verify_inputs = false;  // inputs from another process are verified before use
  bool remote_outputs = false;
};

class Stage : public Executor {
 public:
  Stage(Pipeline& pipeline, std::unique_ptr<NodeInstance> node, StageWiring wiring);
  ~Stage() override;

  void start();
  void join();
  void post(std::function<void()> fn) override;
  // Wakes sleeping sources and the poll loop (stop requested).
  void wake();

  const std::string& name() const { return node_->spec().name; }
  NodeInstance& node() { return *node_; }
  bool failed() const { return failed_; }
  NodeMetrics* metrics() const { return metrics_; }

 private:
  struct Slot;
  struct OutSocket {
    std::string name;
    std::vector<void*> sockets;
  };

  void thread_main();
  void open_sockets();
  void close_sockets();
  void run_source();
  void run_consumer();
  void run_posted();
  void handle_message(zmq_msg_t* msg);
  void complete(Slot* slot, const sluice_outcome& outcome);
  void finish(Slot* slot);
  void route_error(Slot* slot);
  // Sends to every socket of an output; `same` = forward the slot's message without a copy.
  void send(const char* output, const uint8_t* data, size_t size, Slot* same);
  bool send_one(void* socket, zmq_msg_t* msg);
  void send_eos();
  OutSocket* find_output(const char* name);
  Slot* acquire_slot();
  void release_slot(Slot* slot);

  static void emit_cb(sluice_call* call, const char* output, const uint8_t* data, size_t size);
  static void done_cb(sluice_call* call, const sluice_outcome* outcome);
  static int source_emit_cb(sluice_source_ctx* ctx, const uint8_t* data, size_t size);
  static int source_stopping_cb(sluice_source_ctx* ctx);
  static int source_sleep_cb(sluice_source_ctx* ctx, int64_t ns);

  // Counters kept by the stage thread and published once per batch (flush_metrics).
  struct LocalMetrics {
    uint64_t in = 0;
    uint64_t bytes = 0;
    uint64_t out = 0;
    uint64_t dropped = 0;
    LocalHistogram event_latency;
    LocalHistogram ingest_latency;
    LocalHistogram process_time;
  };
  void flush_metrics();

  Pipeline& pipeline_;
  LocalMetrics local_;
  std::unique_ptr<NodeInstance> node_;
  StageWiring wiring_;
  NodeMetrics* metrics_ = nullptr;
  std::thread thread_;
  bool failed_ = false;

  void* pull_ = nullptr;
  std::vector<OutSocket> outputs_;
  OutSocket* default_out_ = nullptr;
  OutSocket* errors_out_ = nullptr;
  int eos_seen_ = 0;
  int64_t in_flight_ = 0;
  int64_t max_in_flight_ = 1;
  bool ordered_ = false;
  uint64_t next_seq_ = 0;
  Slot* in_process_ = nullptr;  // the call whose process() is running right now
  std::deque<Slot*> order_;  // ordered mode: calls in input order
  std::vector<std::unique_ptr<Slot>> slot_pool_;
  std::vector<Slot*> free_slots_;

  int wake_fd_ = -1;
  std::mutex post_mu_;
  std::vector<std::function<void()>> posted_;
  std::atomic<bool> has_posted_{false};
  std::vector<std::function<void()>> running_;
  std::mutex sleep_mu_;
  std::condition_variable sleep_cv_;
  RateLimitedLog error_log_;
  RateLimitedLog bad_input_log_;
};

}  // namespace sluice::core
