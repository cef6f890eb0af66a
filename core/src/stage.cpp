// Stage loop: receive → process (async, capped by max_in_flight, optionally ordered) → send,
// with completions from plugin threads marshalled back through an eventfd-woken queue.
#include "stage.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstring>

#include <fmt/format.h>

#include "sluice/core/runtime.hpp"
#include "sluice/sdk.hpp"

namespace sluice::core {
namespace {

constexpr char kEosTag[4] = {'S', 'E', 'O', 'S'};
// How long a blocked send waits before re-checking for a forced stop.
constexpr int kSendTimeoutMs = 100;
constexpr int kRecvBatch = 256;

thread_local Stage* tls_stage = nullptr;

}  // namespace

bool is_eos(const void* data, size_t size) {
  return size == kEosSize && std::memcmp(static_cast<const char*>(data) + 4, kEosTag, 4) == 0;
}

// One in-flight call. `call` must stay the first member: the ABI hands back its address.
struct Stage::Slot {
  sluice_call call{};
  Stage* stage = nullptr;
  zmq_msg_t msg;
  uint64_t seq = 0;
  int64_t start_ns = 0;
  bool timed = false;  // process time measured with its own clock reads
  bool done = false;
  sluice_status status = SLUICE_OK;
  std::string message;
  struct Pending {
    std::string output;
    bool same = false;  // forward the received bytes
    std::vector<uint8_t> bytes;
  };
  std::vector<Pending> pending;  // emits that must wait (other thread, or ordered mode)
};

Stage::Stage(Pipeline& pipeline, std::unique_ptr<NodeInstance> node, StageWiring wiring)
    : pipeline_(pipeline), node_(std::move(node)), wiring_(std::move(wiring)) {
  metrics_ = node_->host().metrics();
  max_in_flight_ = node_->spec().max_in_flight;
  ordered_ = node_->spec().ordered;
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  node_->set_executor(this);
}

Stage::~Stage() {
  join();
  // Destroy the plugin first: it may complete outstanding calls, which post into our queue.
  node_.reset();
  for (auto& s : slot_pool_) zmq_msg_close(&s->msg);
  if (wake_fd_ >= 0) close(wake_fd_);
}

void Stage::start() { thread_ = std::thread([this] { thread_main(); }); }

void Stage::join() {
  if (thread_.joinable()) thread_.join();
}

void Stage::post(std::function<void()> fn) {
  {
    std::lock_guard lock(post_mu_);
    posted_.push_back(std::move(fn));
    has_posted_.store(true, std::memory_order_release);
  }
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof(one));
}

void Stage::wake() {
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof(one));
  std::lock_guard lock(sleep_mu_);
  sleep_cv_.notify_all();
}

void Stage::run_posted() {
  if (!has_posted_.load(std::memory_order_acquire)) return;  // the common case: no lock
  {
    std::lock_guard lock(post_mu_);
    has_posted_.store(false, std::memory_order_relaxed);
    if (posted_.empty()) return;
    running_.swap(posted_);
  }
  for (auto& fn : running_) fn();
  running_.clear();
}

void Stage::thread_main() {
  tls_stage = this;
  if (metrics_) metrics_->started_ns = sluice::now_ns();
  try {
    open_sockets();
    if (node_->spec().kind == NodeKind::kSource) {
      run_source();
    } else {
      run_consumer();
    }
    send_eos();
  } catch (const std::exception& e) {
    node_->host().logger().error("stage failed: {}", e.what());
    failed_ = true;
  }
  close_sockets();
  if (metrics_) metrics_->finished_ns.store(sluice::now_ns());
  tls_stage = nullptr;
}

void Stage::open_sockets() {
  void* ctx = pipeline_.zmq_context();
  int hwm = pipeline_.options().queue_capacity;
  int linger = wiring_.remote_outputs
                   ? static_cast<int>(std::max<int64_t>(pipeline_.spec().grace_period_ns / 1'000'000,
                                                        1000))
                   : 0;
  if (!wiring_.bind.empty()) {
    pull_ = zmq_socket(ctx, ZMQ_PULL);
    zmq_setsockopt(pull_, ZMQ_RCVHWM, &hwm, sizeof(hwm));
    for (const std::string& ep : wiring_.bind) {
      if (zmq_bind(pull_, ep.c_str()) != 0) {
        throw std::runtime_error(fmt::format("cannot bind {}: {}", ep, zmq_strerror(zmq_errno())));
      }
    }
  }
  for (const StageWiring::Output& o : wiring_.outputs) {
    OutSocket out{o.name, {}};
    for (const std::string& ep : o.endpoints) {
      void* s = zmq_socket(ctx, ZMQ_PUSH);
      zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof(hwm));
      int timeout = kSendTimeoutMs;
      zmq_setsockopt(s, ZMQ_SNDTIMEO, &timeout, sizeof(timeout));
      zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
      if (zmq_connect(s, ep.c_str()) != 0) {
        zmq_close(s);
        throw std::runtime_error(
            fmt::format("cannot connect {}: {}", ep, zmq_strerror(zmq_errno())));
      }
      out.sockets.push_back(s);
    }
    outputs_.push_back(std::move(out));
  }
  for (OutSocket& o : outputs_) {
    if (o.name.empty()) default_out_ = &o;
    if (o.name == "errors") errors_out_ = &o;
  }
}

void Stage::close_sockets() {
  int zero = 0;
  if (pull_ != nullptr) {
    zmq_setsockopt(pull_, ZMQ_LINGER, &zero, sizeof(zero));
    zmq_close(pull_);
    pull_ = nullptr;
  }
  for (OutSocket& o : outputs_) {
    for (void* s : o.sockets) {
      if (pipeline_.hard_stopped()) zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
      zmq_close(s);
    }
  }
  outputs_.clear();
  default_out_ = errors_out_ = nullptr;
}

Stage::OutSocket* Stage::find_output(const char* name) {
  if (name == nullptr || name[0] == '\0') return default_out_;
  for (OutSocket& o : outputs_) {
    if (o.name == name) return &o;
  }
  return nullptr;
}

bool Stage::send_one(void* socket, zmq_msg_t* msg) {
  // Blocking send with a periodic check: a full downstream is backpressure, never a drop, but
  // a forced stop must still be able to end the stage.
  while (zmq_msg_send(msg, socket, 0) < 0) {
    int err = zmq_errno();
    if (err == EINTR) continue;
    if (err != EAGAIN || pipeline_.hard_stopped()) {
      zmq_msg_close(msg);
      return false;
    }
  }
  return true;
}

void Stage::send(const char* output, const uint8_t* data, size_t size, Slot* same) {
  OutSocket* out = find_output(output);
  if (out == nullptr || out->sockets.empty()) {
    ++local_.dropped;
    return;
  }
  for (void* s : out->sockets) {
    zmq_msg_t m;
    if (same != nullptr) {
      zmq_msg_init(&m);
      zmq_msg_copy(&m, &same->msg);  // shares the buffer: zero-copy forward
    } else {
      zmq_msg_init_size(&m, size);
      std::memcpy(zmq_msg_data(&m), data, size);
    }
    send_one(s, &m);
  }
  ++local_.out;
}

void Stage::flush_metrics() {
  if (metrics_ == nullptr) return;
  auto publish = [](std::atomic<uint64_t>& shared, uint64_t& local) {
    if (local != 0) shared.fetch_add(std::exchange(local, 0), std::memory_order_relaxed);
  };
  publish(metrics_->events_in, local_.in);
  publish(metrics_->bytes_in, local_.bytes);
  publish(metrics_->events_out, local_.out);
  publish(metrics_->dropped, local_.dropped);
  local_.event_latency.flush_into(metrics_->event_latency);
  local_.ingest_latency.flush_into(metrics_->ingest_latency);
  local_.process_time.flush_into(metrics_->process_time);
  metrics_->in_flight.store(in_flight_, std::memory_order_relaxed);
}

void Stage::send_eos() {
  uint8_t marker[kEosSize] = {};
  std::memcpy(marker + 4, kEosTag, 4);
  for (OutSocket& o : outputs_) {
    for (void* s : o.sockets) {
      zmq_msg_t m;
      zmq_msg_init_size(&m, kEosSize);
      std::memcpy(zmq_msg_data(&m), marker, kEosSize);
      send_one(s, &m);
    }
  }
}

// ---- sources ---------------------------------------------------------------------------

int Stage::source_emit_cb(sluice_source_ctx* ctx, const uint8_t* data, size_t size) {
  auto* self = static_cast<Stage*>(ctx->host_data);
  if (self->pipeline_.hard_stopped()) return -1;
  self->send(nullptr, data, size, nullptr);
  if ((self->local_.out & 63) == 0) self->flush_metrics();
  return self->pipeline_.stopping() ? -1 : 0;
}

int Stage::source_stopping_cb(sluice_source_ctx* ctx) {
  return static_cast<Stage*>(ctx->host_data)->pipeline_.stopping() ? 1 : 0;
}

int Stage::source_sleep_cb(sluice_source_ctx* ctx, int64_t ns) {
  auto* self = static_cast<Stage*>(ctx->host_data);
  std::unique_lock lock(self->sleep_mu_);
  self->sleep_cv_.wait_for(lock, std::chrono::nanoseconds(ns),
                           [self] { return self->pipeline_.stopping(); });
  return self->pipeline_.stopping() ? 1 : 0;
}

void Stage::run_source() {
  sluice_source_ctx ctx{this, &source_emit_cb, &source_stopping_cb, &source_sleep_cb};
  sluice_error err{};
  const sluice_plugin_descriptor& d = node_->descriptor();
  if (d.run(node_->plugin().self(), &ctx, &err) != 0) {
    node_->host().logger().error("source failed: {}", node_->host().redact(err.message));
    failed_ = true;
  }
  flush_metrics();
}

// ---- processors and sinks ----------------------------------------------------------------

Stage::Slot* Stage::acquire_slot() {
  if (free_slots_.empty()) {
    auto s = std::make_unique<Slot>();
    s->stage = this;
    zmq_msg_init(&s->msg);
    s->call.host_data = s.get();
    s->call.emit = &emit_cb;
    s->call.done = &done_cb;
    free_slots_.push_back(s.get());
    slot_pool_.push_back(std::move(s));
  }
  Slot* s = free_slots_.back();
  free_slots_.pop_back();
  return s;
}

void Stage::release_slot(Slot* s) {
  zmq_msg_close(&s->msg);
  zmq_msg_init(&s->msg);
  s->pending.clear();
  s->message.clear();
  s->done = false;
  s->status = SLUICE_OK;
  free_slots_.push_back(s);
}

void Stage::run_consumer() {
  const sluice_plugin_descriptor& d = node_->descriptor();
  zmq_pollitem_t items[2] = {{pull_, 0, ZMQ_POLLIN, 0}, {nullptr, wake_fd_, ZMQ_POLLIN, 0}};
  const bool flushes = d.flush != nullptr && node_->spec().kind == NodeKind::kSink;
  bool flushed = false;
  while (true) {
    run_posted();
    flush_metrics();
    bool inputs_done = eos_seen_ >= wiring_.expected_eos;
    if (inputs_done && in_flight_ == 0) break;
    if (flushes && !flushed && in_flight_ > 0 && pipeline_.stopping() &&
        (inputs_done || pipeline_.hard_stopped())) {
      // A stop does not wait out a sink's retries: its flush sends the events waiting to retry
      // to `errors` (their completions are posted here and routed on the next turn).
      flushed = true;
      d.flush(node_->plugin().self());
      continue;
    }
    if (pipeline_.hard_stopped()) {
      if (in_flight_ > 0) {
        node_->host().logger().warn("forced stop with {} events in flight", in_flight_);
      }
      failed_ = in_flight_ > 0;
      break;
    }
    bool can_take = !inputs_done && in_flight_ < max_in_flight_;
    // Drain without a system call while messages are queued; poll only when idle (or full).
    int received = 0;
    int eos_before = eos_seen_;
    int64_t now = 0;
    for (; can_take && received < kRecvBatch && in_flight_ < max_in_flight_; ++received) {
      Slot* s = acquire_slot();
      if (zmq_msg_recv(&s->msg, pull_, ZMQ_DONTWAIT) < 0) {
        release_slot(s);
        break;
      }
      const auto* data = static_cast<const uint8_t*>(zmq_msg_data(&s->msg));
      size_t size = zmq_msg_size(&s->msg);
      if (reinterpret_cast<uintptr_t>(data) % alignof(uint64_t) != 0) {
        // ipc/tcp receives may point into ZeroMQ's shared read buffer at any offset; FlatBuffers
        // needs its natural alignment, so such a message is copied once into its own buffer.
        zmq_msg_t aligned;
        zmq_msg_init_size(&aligned, size);
        std::memcpy(zmq_msg_data(&aligned), data, size);
        zmq_msg_move(&s->msg, &aligned);  // releases the original
        data = static_cast<const uint8_t*>(zmq_msg_data(&s->msg));
      }
      if (is_eos(data, size)) {
        release_slot(s);
        ++eos_seen_;
        if (eos_seen_ >= wiring_.expected_eos) break;
        continue;
      }
      if (wiring_.verify_inputs && !EventView::verified(data, size)) {
        if (metrics_) metrics_->errors[SLUICE_ERR_BAD_RESPONSE].fetch_add(1);
        uint64_t suppressed = 0;
        if (bad_input_log_.allow(&suppressed)) {
          node_->host().logger().warn("dropped a malformed event of {} bytes from the wire{}",
                                      size, suppressed ? fmt::format(" ({} more suppressed)",
                                                                     suppressed)
                                                       : "");
        }
        release_slot(s);
        continue;
      }
      // The clock is read once per 32 messages: on virtual machines clock_gettime can cost a
      // quarter of the per-event budget, and messages read together arrived together.
      if ((received & 31) == 0) now = sluice::now_ns();
      ++local_.in;
      local_.bytes += size;
      {
        EventView ev(data, size);
        if (ev.event_time_ns() > 0) local_.event_latency.observe_ns(now - ev.event_time_ns());
        if (ev.ingest_time_ns() > 0) local_.ingest_latency.observe_ns(now - ev.ingest_time_ns());
      }
      s->call.event = data;
      s->call.event_size = size;
      s->seq = next_seq_++;
      // Synchronous calls take well under a clock read's cost, so 1 in 64 is timed precisely;
      // asynchronous ones are timed from the batch's clock reading when they complete.
      s->timed = (s->seq & 63) == 0;
      s->start_ns = s->timed ? sluice::now_ns() : now;
      ++in_flight_;
      if (ordered_) order_.push_back(s);
      in_process_ = s;
      d.process(node_->plugin().self(), &s->call);
      in_process_ = nullptr;
    }
    if (received > 0 || eos_seen_ != eos_before) continue;
    items[0].events = can_take ? ZMQ_POLLIN : 0;
    items[0].revents = items[1].revents = 0;
    int rc = zmq_poll(items, 2, 200);
    if (rc < 0 && zmq_errno() != EINTR) {
      throw std::runtime_error(fmt::format("poll: {}", zmq_strerror(zmq_errno())));
    }
    if (items[1].revents & ZMQ_POLLIN) {
      uint64_t v;
      [[maybe_unused]] ssize_t n = read(wake_fd_, &v, sizeof(v));
    }
  }
  if (flushes && !flushed && !pipeline_.hard_stopped()) d.flush(node_->plugin().self());
  flush_metrics();
}

void Stage::emit_cb(sluice_call* call, const char* output, const uint8_t* data, size_t size) {
  auto* s = static_cast<Slot*>(call->host_data);
  Stage* self = s->stage;
  bool same = data == call->event;
  // Emit now when we are on the stage thread and order does not force us to wait.
  if (tls_stage == self && !self->ordered_) {
    self->send(output, data, size, same ? s : nullptr);
    return;
  }
  Slot::Pending p;
  p.output = output ? output : "";
  p.same = same;
  if (!same) p.bytes.assign(data, data + size);
  s->pending.push_back(std::move(p));
}

void Stage::done_cb(sluice_call* call, const sluice_outcome* outcome) {
  auto* s = static_cast<Slot*>(call->host_data);
  Stage* self = s->stage;
  if (tls_stage == self) {
    self->complete(s, *outcome);
    return;
  }
  sluice_outcome copy = *outcome;
  std::string msg = outcome->message ? outcome->message : "";
  self->post([self, s, copy, msg]() mutable {
    copy.message = msg.c_str();
    self->complete(s, copy);
  });
}

void Stage::complete(Slot* s, const sluice_outcome& outcome) {
  s->done = true;
  s->status = outcome.status;
  if (outcome.message) s->message = outcome.message;
  if (s->timed || in_process_ != s) local_.process_time.observe_ns(sluice::now_ns() - s->start_ns);
  if (metrics_) {
    if (outcome.status != SLUICE_OK && static_cast<size_t>(outcome.status) < metrics_->errors.size()) {
      metrics_->errors[outcome.status].fetch_add(1, std::memory_order_relaxed);
    }
  }
  --in_flight_;
  if (!ordered_) {
    finish(s);
    return;
  }
  while (!order_.empty() && order_.front()->done) {
    Slot* head = order_.front();
    order_.pop_front();
    finish(head);
  }
}

void Stage::finish(Slot* s) {
  for (Slot::Pending& p : s->pending) {
    send(p.output.c_str(), p.bytes.data(), p.bytes.size(), p.same ? s : nullptr);
  }
  if (s->status != SLUICE_OK) route_error(s);
  release_slot(s);
}

void Stage::route_error(Slot* s) {
  const char* cls = status_name(s->status);
  if (errors_out_ != nullptr && !errors_out_->sockets.empty()) {
    // Dead-letter path: the original event plus why it failed, as attrs.
    thread_local EventBuilder b;
    b.reset().copy_from(EventView(s->call.event, s->call.event_size));
    b.attr("error.class", cls)
        .attr("error.message", node_->host().redact(s->message))
        .attr("error.node", name());
    auto bytes = b.finish();
    send("errors", bytes.data(), bytes.size(), nullptr);
    return;
  }
  uint64_t suppressed = 0;
  if (error_log_.allow(&suppressed)) {
    node_->host().logger().warn(
        "event {} failed ({}): {}{}", EventView(s->call.event, s->call.event_size).id(), cls,
        node_->host().redact(s->message),
        suppressed ? fmt::format(" ({} similar suppressed)", suppressed) : "");
  }
}

}  // namespace sluice::core
