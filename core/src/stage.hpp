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
#include "sluice/core/timer_queue.hpp"

namespace sluice::core {

class Pipeline;

// Wire marker that ends one edge: 16 bytes whose identifier slot (offset 4) reads "SEOS" where
// every event buffer carries "SLEV" (event.fbs file_identifier); bytes 8..15 carry the number of
// events sent on the edge (little-endian; edges between processes only, 0 elsewhere). The
// receiving process answers an edge's end of stream with the same shape tagged "SACK", carrying
// the number of events it received on that edge (docs/design/edge-delivery.md).
inline constexpr size_t kEosSize = 16;
bool is_eos(const void* data, size_t size);

struct StageWiring {
  struct Edge {
    std::string endpoint;
    std::string node;        // the downstream node
    std::string process;     // its placement group when it runs in another process, else ""
    std::string server_key;  // CURVE: the downstream group's public key ("" = no CURVE)
  };
  struct Output {
    std::string name;          // "" = default output
    std::vector<Edge> edges;   // one socket per downstream edge
  };
  std::vector<Output> outputs;
  std::string remote_bind;   // endpoint for inputs from other processes ("" = none)
  int local_inputs = 0;      // input edges inside this process (inproc); each ends with EOS
  int remote_inputs = 0;     // input edges from other processes, on remote_bind
  // CURVE: the remote input endpoint is a CURVE server (ZAP domain = the node's name) with
  // this process's keys (Pipeline::curve_identity()).
  bool curve_server = false;
};

class Stage : public Executor {
 public:
  Stage(Pipeline& pipeline, std::unique_ptr<NodeInstance> node, StageWiring wiring);
  ~Stage() override;

  // Creates, binds and connects the stage's sockets (on the caller's thread, before start():
  // a bind that fails ends the run before any event flows). Throws std::runtime_error.
  void open_sockets();
  void start();
  void join();
  void post(std::function<void()> fn) override;
  uint64_t schedule(int64_t delay_ns, std::function<void(bool cancelled)> fn) override;
  bool cancel_scheduled(uint64_t id) override;
  bool emit(const char* output, const uint8_t* data, size_t size) override;
  // Wakes sleeping sources and the poll loop (stop requested).
  void wake();

  const std::string& name() const { return node_->spec().name; }
  NodeInstance& node() { return *node_; }
  bool failed() const { return failed_; }
  const std::string& failure() const { return failure_; }
  // Events this stage could not confirm as delivered to other processes (after join()).
  uint64_t undelivered() const { return undelivered_.load(); }
  NodeMetrics* metrics() const { return metrics_; }

 private:
  struct Slot;
  // One edge to another process: what was sent on it and what the receiver acknowledged.
  struct RemoteEdge {
    StageWiring::Edge edge;
    void* socket = nullptr;
    uint64_t sent = 0;       // events handed to ZeroMQ
    uint64_t failed = 0;     // events a forced stop kept from being sent
    bool acked = false;
    uint64_t ack_count = 0;  // events the receiver counted, from its acknowledgement
    int64_t blocked_since = 0;
    int64_t next_log = 0;
  };
  struct Link {
    void* socket = nullptr;
    RemoteEdge* remote = nullptr;  // null for inproc
  };
  struct OutSocket {
    std::string name;
    std::vector<Link> links;
  };
  // A connection on the remote input endpoint (one per upstream edge), by ZeroMQ routing id.
  struct Peer {
    std::string id;
    uint64_t received = 0;
    bool ended = false;
    bool bye = false;  // the upstream heard our confirmation and hung up (SBYE)
  };

  void thread_main();
  // Records why the stage failed and asks the pipeline to stop (it exits non-zero).
  void fail(const std::string& reason);
  void close_sockets();
  void run_source();
  void run_consumer();
  void run_posted();
  // Runs the timers that are due, then arms timer_fd_ for the next one.
  void run_timers();
  // Next message from the inproc PULL or the remote ROUTER (alternating); *peer is set for
  // remote messages. False when neither has one.
  bool recv_message(zmq_msg_t* msg, Peer** peer);
  // The ROUTER's next message (routing id read into peer_id_, *peer found or added).
  bool recv_remote(zmq_msg_t* msg, Peer** peer);
  Peer* find_peer(const zmq_msg_t& id);
  void end_remote_edge(Peer* peer, const uint8_t* marker);
  // After the last end of stream: keeps answering until every ended upstream edge said it has
  // our confirmation (a confirmation lost as this process closes would leave it waiting).
  void await_upstream_byes();
  void stop_remote_inputs();
  void complete(Slot* slot, const sluice_outcome& outcome);
  void finish(Slot* slot);
  void route_error(Slot* slot);
  // Sends to every socket of an output; `same` = forward the slot's message without a copy.
  void send(const char* output, const uint8_t* data, size_t size, Slot* same);
  bool send_one(const Link& link, zmq_msg_t* msg);
  void note_blocked(RemoteEdge& r);
  void send_eos();
  // Waits (until a forced stop) for every edge to another process to acknowledge its end of
  // stream, re-sending the marker now and then for a receiver that restarted.
  void await_acks();
  void report_undelivered();
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
  std::string failure_;
  std::atomic<uint64_t> undelivered_{0};

  void* pull_ = nullptr;
  void* router_ = nullptr;        // remote inputs; null when none (or no longer taken)
  bool prefer_remote_ = false;    // alternates which input socket is read first
  std::deque<Peer> peers_;       // a deque: last_peer_ stays valid as peers join
  Peer* last_peer_ = nullptr;
  zmq_msg_t peer_id_;
  int remote_eos_ = 0;
  bool remote_stopped_ = false;  // a stop request ended the intake from other processes
  std::vector<std::unique_ptr<RemoteEdge>> remote_edges_;
  std::vector<OutSocket> outputs_;
  OutSocket* default_out_ = nullptr;
  OutSocket* errors_out_ = nullptr;
  int local_eos_ = 0;
  int64_t in_flight_ = 0;
  int64_t max_in_flight_ = 1;
  bool ordered_ = false;
  uint64_t next_seq_ = 0;
  Slot* in_process_ = nullptr;  // the call whose process() is running right now
  std::deque<Slot*> order_;  // ordered mode: calls in input order
  std::vector<std::unique_ptr<Slot>> slot_pool_;
  std::vector<Slot*> free_slots_;

  int wake_fd_ = -1;
  int timer_fd_ = -1;       // fires at the next timer's due time (µs precision, unlike a poll)
  int64_t armed_due_ = 0;   // what timer_fd_ is armed for (0 = disarmed)
  TimerQueue timers_;
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
