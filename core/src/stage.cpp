// Stage loop: receive → process (async, capped by max_in_flight, optionally ordered) → send,
// with completions from plugin threads marshalled back through an eventfd-woken queue.
#include "stage.hpp"

#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cstring>
#include <random>

#include <fmt/format.h>

#include "sluice/core/runtime.hpp"
#include "sluice/sdk.hpp"
#include "zmq_handoff.hpp"

namespace sluice::core {
namespace {

constexpr char kEosTag[4] = {'S', 'E', 'O', 'S'};
constexpr char kAckTag[4] = {'S', 'A', 'C', 'K'};
constexpr char kByeTag[4] = {'S', 'B', 'Y', 'E'};
// How long a blocked send waits before re-checking for a forced stop.
constexpr int kSendTimeoutMs = 100;
constexpr int kRecvBatch = 256;
// Edges to other processes: when a blocked send or a missing acknowledgement is first logged,
// how often after that, and how often an unacknowledged end of stream is sent again (for a
// receiver that restarted and never saw it).
constexpr int64_t kWaitLogFirstNs = 1'000'000'000;
constexpr int64_t kWaitLogEveryNs = 10'000'000'000;
constexpr int64_t kEosResendNs = 1'000'000'000;
// A bound receiving socket keeps unsent acknowledgements this long after it is closed.
constexpr int kAckLingerMs = 1000;
// A receiver waits at most this long for its upstreams' SBYE after the last end of stream:
// past the resend interval, so a lost confirmation is asked for again and answered.
constexpr int64_t kByeWaitNs = 3'000'000'000;
// An upstream keeps its SBYE this long after closing the edge.
constexpr int kByeLingerMs = 500;
// Largest frame an upstream's DEALER accepts: acknowledgements are 16 bytes, but ZeroMQ applies
// the limit to handshake commands too (READY carries the socket type and routing id).
constexpr int64_t kAckSocketMaxMessage = 4096;

// Markers: tag at offset 4, a little-endian count at offset 8 (see stage.hpp).
void make_marker(uint8_t* out, const char* tag, uint64_t count) {
  std::memset(out, 0, kEosSize);
  std::memcpy(out + 4, tag, 4);
  for (int i = 0; i < 8; ++i) out[8 + i] = static_cast<uint8_t>(count >> (8 * i));
}

uint64_t marker_count(const uint8_t* marker) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(marker[8 + i]) << (8 * i);
  return v;
}

bool is_ack(const void* data, size_t size) {
  return size == kEosSize && std::memcmp(static_cast<const char*>(data) + 4, kAckTag, 4) == 0;
}

bool is_bye(const void* data, size_t size) {
  return size == kEosSize && std::memcmp(static_cast<const char*>(data) + 4, kByeTag, 4) == 0;
}

void set_int(void* socket, int option, int value) {
  zmq_setsockopt(socket, option, &value, sizeof(value));
}

void set_text(void* socket, int option, const std::string& value) {
  zmq_setsockopt(socket, option, value.c_str(), value.size() + 1);
}

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
  timer_fd_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  zmq_msg_init(&peer_id_);
  node_->set_executor(this);
}

Stage::~Stage() {
  join();
  // Timers still pending never fire; their owners release what they hold while the plugin is
  // still alive. Then destroy the plugin: it may complete outstanding calls, which post into
  // our queue.
  timers_.clear();
  node_.reset();
  close_sockets();  // when the run ended before the thread started (another stage's bind failed)
  for (auto& s : slot_pool_) zmq_msg_close(&s->msg);
  zmq_msg_close(&peer_id_);
  if (wake_fd_ >= 0) close(wake_fd_);
  if (timer_fd_ >= 0) close(timer_fd_);
}

void Stage::start() {
  thread_ = std::thread([this] { thread_main(); });
}

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

uint64_t Stage::schedule(int64_t delay_ns, std::function<void(bool cancelled)> fn) {
  bool earliest = false;
  uint64_t id =
      timers_.add(sluice::mono_ns() + std::max<int64_t>(delay_ns, 0), std::move(fn), &earliest);
  if (earliest && tls_stage != this) {
    uint64_t one = 1;  // the loop re-arms its timer before it sleeps again
    [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof(one));
  }
  return id;
}

bool Stage::cancel_scheduled(uint64_t id) { return timers_.cancel(id); }

bool Stage::emit(const char* output, const uint8_t* data, size_t size) {
  if (tls_stage != this || node_->spec().kind == NodeKind::kSource) return false;
  send(output, data, size, nullptr);
  return true;
}

void Stage::run_timers() {
  if (timers_.maybe_empty() && armed_due_ == 0) return;  // the common case: no timers
  timers_.run_due(sluice::mono_ns());
  int64_t next = timers_.next_due();
  if (next == armed_due_) return;
  itimerspec spec{};
  if (next != 0) {
    spec.it_value.tv_sec = next / 1'000'000'000;
    spec.it_value.tv_nsec = next % 1'000'000'000;
  }
  timerfd_settime(timer_fd_, next != 0 ? TFD_TIMER_ABSTIME : 0, &spec, nullptr);
  armed_due_ = next;
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
    if (node_->spec().kind == NodeKind::kSource) {
      run_source();
    } else {
      run_consumer();
    }
  } catch (const std::exception& e) {
    fail(e.what());
  }
  // Whatever happened above, the stages after this one must not wait for an end of stream
  // that never comes.
  try {
    send_eos();
    await_upstream_byes();
    await_acks();
  } catch (const std::exception& e) {
    fail(e.what());
  }
  report_undelivered();
  close_sockets();
  if (metrics_) metrics_->finished_ns.store(sluice::now_ns());
  tls_stage = nullptr;
}

void Stage::fail(const std::string& reason) {
  node_->host().logger().error(
      "stage failed: {}; ending its output edges and stopping the "
      "pipeline",
      node_->host().redact(reason));
  if (!failed_) failure_ = node_->host().redact(reason);
  failed_ = true;
  pipeline_.stop_for_failure();
}

void Stage::open_sockets() {
  void* ctx = pipeline_.zmq_context();
  int hwm = pipeline_.options().queue_capacity;
  int64_t max_size = static_cast<int64_t>(pipeline_.spec().max_event_size);
  if (node_->spec().kind != NodeKind::kSource) {
    pull_ = zmq_socket(ctx, ZMQ_PULL);
    set_int(pull_, ZMQ_RCVHWM, hwm);
    zmq_setsockopt(pull_, ZMQ_MAXMSGSIZE, &max_size, sizeof(max_size));
    std::string ep = "inproc://" + name();
    if (zmq_bind(pull_, ep.c_str()) != 0) {
      throw std::runtime_error(fmt::format("cannot bind {}: {}", ep, zmq_strerror(zmq_errno())));
    }
  }
  if (!wiring_.remote_bind.empty()) {
    // A ROUTER, not a PULL: it can answer each upstream edge's end of stream.
    router_ = zmq_socket(ctx, ZMQ_ROUTER);
    set_int(router_, ZMQ_RCVHWM, hwm);
    // A restarted connection of the same upstream edge (same routing id) takes over at once.
    set_int(router_, ZMQ_ROUTER_HANDOVER, 1);
    set_int(router_, ZMQ_LINGER, kAckLingerMs);
    // A peer can announce any frame size; ZeroMQ would allocate it before we see a byte.
    zmq_setsockopt(router_, ZMQ_MAXMSGSIZE, &max_size, sizeof(max_size));
    if (wiring_.curve_server) {
      set_int(router_, ZMQ_CURVE_SERVER, 1);
      set_text(router_, ZMQ_CURVE_SECRETKEY, pipeline_.curve_identity().secret_key);
      zmq_setsockopt(router_, ZMQ_ZAP_DOMAIN, name().data(), name().size());
    }
    if (zmq_bind(router_, wiring_.remote_bind.c_str()) != 0) {
      throw std::runtime_error(
          fmt::format("cannot listen on {}: {}", wiring_.remote_bind, zmq_strerror(zmq_errno())));
    }
  }
  std::random_device rd;
  for (const StageWiring::Output& o : wiring_.outputs) {
    OutSocket out{o.name, {}};
    for (const StageWiring::Edge& e : o.edges) {
      Link link;
      if (e.process.empty()) {
        link.socket = zmq_socket(ctx, ZMQ_PUSH);
        set_int(link.socket, ZMQ_LINGER, 0);
      } else {
        auto r = std::make_unique<RemoteEdge>();
        r->edge = e;
        link.socket = r->socket = zmq_socket(ctx, ZMQ_DEALER);
        link.remote = r.get();
        // Nothing is queued for a receiver that is not connected: a send waits for it, so an
        // upstream never believes events went out while no process was there to take them.
        set_int(link.socket, ZMQ_IMMEDIATE, 1);
        // What is unacknowledged at close is counted, not lingered on.
        set_int(link.socket, ZMQ_LINGER, 0);
        // One routing id per edge and run, kept across reconnects, so the receiver's count for
        // this edge survives a dropped connection.
        std::string id = fmt::format("{}-{:08x}{:08x}", name(), rd(), rd());
        zmq_setsockopt(link.socket, ZMQ_ROUTING_ID, id.data(), id.size());
        // It only receives acknowledgements; the limit also bounds the handshake's commands.
        int64_t small = kAckSocketMaxMessage;
        zmq_setsockopt(link.socket, ZMQ_MAXMSGSIZE, &small, sizeof(small));
        if (!e.server_key.empty()) {
          set_text(link.socket, ZMQ_CURVE_SERVERKEY, e.server_key);
          set_text(link.socket, ZMQ_CURVE_PUBLICKEY, pipeline_.curve_identity().public_key);
          set_text(link.socket, ZMQ_CURVE_SECRETKEY, pipeline_.curve_identity().secret_key);
        }
        remote_edges_.push_back(std::move(r));
      }
      set_int(link.socket, ZMQ_SNDHWM, hwm);
      set_int(link.socket, ZMQ_SNDTIMEO, kSendTimeoutMs);
      if (zmq_connect(link.socket, e.endpoint.c_str()) != 0) {
        std::string why = zmq_strerror(zmq_errno());
        zmq_close(link.socket);
        throw std::runtime_error(fmt::format("cannot connect {}: {}", e.endpoint, why));
      }
      out.links.push_back(link);
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
  if (router_ != nullptr) {
    if (pipeline_.hard_stopped()) zmq_setsockopt(router_, ZMQ_LINGER, &zero, sizeof(zero));
    zmq_close(router_);
    router_ = nullptr;
  }
  for (OutSocket& o : outputs_) {
    for (const Link& l : o.links) zmq_close(l.socket);
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

bool Stage::send_one(const Link& link, zmq_msg_t* msg) {
  // Blocking send with a periodic check: a full downstream is backpressure, never a drop, but
  // a forced stop must still be able to end the stage.
  while (zmq_handoff::msg_send(msg, link.socket, 0) < 0) {
    int err = zmq_errno();
    if (err == EINTR) continue;
    if (err != EAGAIN || pipeline_.hard_stopped()) {
      zmq_msg_close(msg);
      return false;
    }
    if (link.remote != nullptr) note_blocked(*link.remote);
  }
  if (link.remote != nullptr) link.remote->blocked_since = 0;
  return true;
}

void Stage::note_blocked(RemoteEdge& r) {
  int64_t now = sluice::mono_ns();
  if (r.blocked_since == 0) {
    r.blocked_since = now;
    r.next_log = now + kWaitLogFirstNs;
    return;
  }
  if (now < r.next_log) return;
  r.next_log = now + kWaitLogEveryNs;
  node_->host().logger().info(
      "waiting for downstream process '{}' at {} (node '{}'; {} events sent on this edge so far, "
      "waiting {:.0f}s)",
      r.edge.process, r.edge.endpoint, r.edge.node, r.sent,
      static_cast<double>(now - r.blocked_since) / 1e9);
}

void Stage::send(const char* output, const uint8_t* data, size_t size, Slot* same) {
  OutSocket* out = find_output(output);
  if (out == nullptr || out->links.empty()) {
    ++local_.dropped;
    return;
  }
  for (const Link& l : out->links) {
    zmq_msg_t m;
    if (same != nullptr) {
      zmq_msg_init(&m);
      zmq_msg_copy(&m, &same->msg);  // shares the buffer: zero-copy forward
    } else {
      zmq_msg_init_size(&m, size);
      std::memcpy(zmq_msg_data(&m), data, size);
    }
    bool ok = send_one(l, &m);
    if (l.remote != nullptr) ++(ok ? l.remote->sent : l.remote->failed);
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
  for (OutSocket& o : outputs_) {
    for (const Link& l : o.links) {
      zmq_msg_t m;
      zmq_msg_init_size(&m, kEosSize);
      make_marker(static_cast<uint8_t*>(zmq_msg_data(&m)), kEosTag,
                  l.remote != nullptr ? l.remote->sent : 0);
      send_one(l, &m);
    }
  }
}

void Stage::await_acks() {
  for (auto& r : remote_edges_) {
    int64_t start = sluice::mono_ns();
    int64_t next_log = start + kWaitLogFirstNs;
    int64_t next_resend = start + kEosResendNs;
    zmq_pollitem_t item{r->socket, 0, ZMQ_POLLIN, 0};
    while (!r->acked && !pipeline_.hard_stopped()) {
      item.revents = 0;
      if (zmq_poll(&item, 1, kSendTimeoutMs) > 0 && (item.revents & ZMQ_POLLIN)) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_handoff::msg_recv(&m, r->socket, ZMQ_DONTWAIT) >= 0 &&
            is_ack(zmq_msg_data(&m), zmq_msg_size(&m))) {
          r->acked = true;
          r->ack_count = marker_count(static_cast<const uint8_t*>(zmq_msg_data(&m)));
          // Tell the receiver its confirmation arrived, so it may close; kept briefly past our
          // own close (the receiver asks again by not seeing it: it waits, then gives up).
          uint8_t bye[kEosSize];
          make_marker(bye, kByeTag, r->ack_count);
          set_int(r->socket, ZMQ_LINGER, kByeLingerMs);
          zmq_handoff::send(r->socket, bye, kEosSize, ZMQ_DONTWAIT);
        }
        zmq_msg_close(&m);
        continue;
      }
      int64_t now = sluice::mono_ns();
      if (now >= next_log) {
        next_log = now + kWaitLogEveryNs;
        node_->host().logger().info(
            "waiting for downstream process '{}' at {} to confirm the end of stream ({} events "
            "sent on the edge to node '{}')",
            r->edge.process, r->edge.endpoint, r->sent, r->edge.node);
      }
      if (now >= next_resend) {
        next_resend = now + kEosResendNs;
        uint8_t marker[kEosSize];
        make_marker(marker, kEosTag, r->sent);
        zmq_handoff::send(r->socket, marker, kEosSize, ZMQ_DONTWAIT);
      }
    }
  }
}

void Stage::report_undelivered() {
  uint64_t total = 0;
  for (auto& r : remote_edges_) {
    uint64_t delivered = r->acked ? std::min(r->ack_count, r->sent) : 0;
    uint64_t lost = r->failed + (r->sent - delivered);
    if (lost == 0) continue;
    total += lost;
    node_->host().logger().error(
        "{} of {} events on the edge to node '{}' (process '{}' at {}) were not delivered{}", lost,
        r->sent + r->failed, r->edge.node, r->edge.process, r->edge.endpoint,
        r->acked ? fmt::format(" (the receiver counted {})", r->ack_count)
                 : ": the downstream process never confirmed the end of stream");
  }
  undelivered_.store(total);
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
    failure_ = node_->host().redact(err.message);
    node_->host().logger().error("source failed: {}", failure_);
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
    s->call.deadline_ns = 0;  // events between stages carry no deadline
    // Nothing abandons a stage's own call: release the handler's data at once.
    s->call.on_cancel = [](sluice_call*, void (*fn)(void*, int), void* user) { fn(user, 0); };
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

bool Stage::recv_message(zmq_msg_t* msg, Peer** peer) {
  if (router_ == nullptr) return zmq_handoff::msg_recv(msg, pull_, ZMQ_DONTWAIT) >= 0;
  prefer_remote_ = !prefer_remote_;
  for (int i = 0; i < 2; ++i) {
    if ((i == 0) != prefer_remote_) {
      if (zmq_handoff::msg_recv(msg, pull_, ZMQ_DONTWAIT) >= 0) return true;
      continue;
    }
    if (recv_remote(msg, peer)) return true;
  }
  return false;
}

bool Stage::recv_remote(zmq_msg_t* msg, Peer** peer) {
  // A ROUTER message is [routing id][payload]; frames after the payload are not ours to read.
  if (zmq_handoff::msg_recv(&peer_id_, router_, ZMQ_DONTWAIT) < 0) return false;
  if (!zmq_msg_more(&peer_id_) || zmq_handoff::msg_recv(msg, router_, 0) < 0) return false;
  while (zmq_msg_more(msg)) {
    zmq_msg_t extra;
    zmq_msg_init(&extra);
    zmq_handoff::msg_recv(&extra, router_, 0);
    bool more = zmq_msg_more(&extra);
    zmq_msg_close(&extra);
    if (!more) break;
  }
  *peer = find_peer(peer_id_);
  return true;
}

Stage::Peer* Stage::find_peer(const zmq_msg_t& id_msg) {
  std::string_view id(static_cast<const char*>(zmq_msg_data(const_cast<zmq_msg_t*>(&id_msg))),
                      zmq_msg_size(const_cast<zmq_msg_t*>(&id_msg)));
  if (last_peer_ != nullptr && last_peer_->id == id) return last_peer_;
  for (Peer& p : peers_) {
    if (p.id == id) return last_peer_ = &p;
  }
  peers_.push_back(Peer{std::string(id), 0, false});
  return last_peer_ = &peers_.back();
}

void Stage::end_remote_edge(Peer* peer, const uint8_t* marker) {
  uint64_t sent = marker_count(marker);
  if (!peer->ended) {
    peer->ended = true;
    ++remote_eos_;
    if (sent != peer->received) {
      node_->host().logger().warn(
          "an upstream process ended its edge after sending {} events, of which {} arrived "
          "here; it reports the difference as not delivered",
          sent, peer->received);
    }
  }
  // Answered every time: an upstream that did not hear the first answer sends the marker again.
  uint8_t ack[kEosSize];
  make_marker(ack, kAckTag, peer->received);
  zmq_handoff::send(router_, peer->id.data(), peer->id.size(), ZMQ_SNDMORE | ZMQ_DONTWAIT);
  zmq_handoff::send(router_, ack, kEosSize, ZMQ_DONTWAIT);
}

void Stage::await_upstream_byes() {
  if (router_ == nullptr || remote_stopped_) return;
  auto waiting = [this] {
    return std::any_of(peers_.begin(), peers_.end(), [](const Peer& p) { return p.ended && !p.bye; });
  };
  const int64_t deadline = sluice::mono_ns() + kByeWaitNs;
  zmq_pollitem_t item{router_, 0, ZMQ_POLLIN, 0};
  while (waiting() && !pipeline_.hard_stopped() && sluice::mono_ns() < deadline) {
    item.revents = 0;
    if (zmq_poll(&item, 1, kSendTimeoutMs) <= 0 || !(item.revents & ZMQ_POLLIN)) continue;
    zmq_msg_t m;
    zmq_msg_init(&m);
    Peer* peer = nullptr;
    if (recv_remote(&m, &peer)) {
      const void* data = zmq_msg_data(&m);
      size_t size = zmq_msg_size(&m);
      if (is_bye(data, size)) {
        peer->bye = true;
      } else if (is_eos(data, size)) {
        end_remote_edge(peer, static_cast<const uint8_t*>(data));  // answers it again
      }
    }
    zmq_msg_close(&m);
  }
  if (waiting()) {
    node_->host().logger().debug(
        "closing without every upstream's goodbye after {} ms (they confirmed by other means or "
        "are gone)",
        kByeWaitNs / 1'000'000);
  }
}

void Stage::stop_remote_inputs() {
  node_->host().logger().info(
      "stop requested: no longer taking events from other processes ({} of {} input edges from "
      "other processes had not ended; what their senders could not deliver, they report)",
      wiring_.remote_inputs - remote_eos_, wiring_.remote_inputs);
  zmq_close(router_);  // lingers briefly for acknowledgements already answered
  router_ = nullptr;
  remote_stopped_ = true;
}

void Stage::run_consumer() {
  const sluice_plugin_descriptor& d = node_->descriptor();
  zmq_pollitem_t items[4] = {{nullptr, wake_fd_, ZMQ_POLLIN, 0},
                             {nullptr, timer_fd_, ZMQ_POLLIN, 0},
                             {pull_, 0, ZMQ_POLLIN, 0},
                             {nullptr, 0, ZMQ_POLLIN, 0}};
  auto inputs_done = [this] {
    return local_eos_ >= wiring_.local_inputs &&
           (remote_eos_ >= wiring_.remote_inputs || remote_stopped_);
  };
  const bool flushes = d.flush != nullptr && node_->spec().kind == NodeKind::kSink;
  bool flushed = false;
  while (true) {
    run_posted();
    run_timers();
    flush_metrics();
    // A stop ends what comes from other processes at once: their end of stream may never come
    // while they run. Edges inside this process still end with their own markers.
    if (router_ != nullptr && remote_eos_ < wiring_.remote_inputs && pipeline_.stopping()) {
      stop_remote_inputs();
    }
    bool done = inputs_done();
    if (done && in_flight_ == 0) break;
    if (flushes && !flushed && in_flight_ > 0 && pipeline_.stopping() &&
        (done || pipeline_.hard_stopped())) {
      // A stop does not wait out a sink's retries: its flush sends the events waiting to retry
      // to `errors` (their completions are posted here and routed on the next turn).
      flushed = true;
      d.flush(node_->plugin().self());
      continue;
    }
    if (pipeline_.hard_stopped()) {
      if (in_flight_ > 0) {
        node_->host().logger().warn("forced stop with {} events in flight", in_flight_);
        failure_ = fmt::format("forced stop with {} events in flight", in_flight_);
      }
      failed_ = in_flight_ > 0;
      break;
    }
    bool can_take = !done && in_flight_ < max_in_flight_;
    // Drain without a system call while messages are queued; poll only when idle (or full).
    int received = 0;
    int eos_before = local_eos_ + remote_eos_;
    int64_t now = 0;
    for (; can_take && received < kRecvBatch && in_flight_ < max_in_flight_; ++received) {
      Slot* s = acquire_slot();
      Peer* peer = nullptr;
      if (!recv_message(&s->msg, &peer)) {
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
      if (peer != nullptr && is_bye(data, size)) {
        peer->bye = true;
        release_slot(s);
        continue;
      }
      if (is_eos(data, size)) {
        if (peer != nullptr) {
          end_remote_edge(peer, data);
        } else {
          ++local_eos_;
        }
        release_slot(s);
        if (inputs_done()) break;
        continue;
      }
      if (peer != nullptr) {
        ++peer->received;
        // Events from other processes are verified before use.
        if (!EventView::verified(data, size)) {
          if (metrics_) metrics_->errors[SLUICE_ERR_BAD_RESPONSE].fetch_add(1);
          uint64_t suppressed = 0;
          if (bad_input_log_.allow(&suppressed)) {
            node_->host().logger().warn(
                "dropped a malformed event of {} bytes from the wire{}", size,
                suppressed ? fmt::format(" ({} more suppressed)", suppressed) : "");
          }
          release_slot(s);
          continue;
        }
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
    if (received > 0 || local_eos_ + remote_eos_ != eos_before) continue;
    items[2].events = can_take ? ZMQ_POLLIN : 0;
    items[3].socket = router_;
    items[3].events = can_take ? ZMQ_POLLIN : 0;
    items[0].revents = items[1].revents = items[2].revents = items[3].revents = 0;
    int rc = zmq_poll(items, router_ != nullptr ? 4 : 3, 200);
    if (rc < 0 && zmq_errno() != EINTR) {
      throw std::runtime_error(fmt::format("poll: {}", zmq_strerror(zmq_errno())));
    }
    if (items[0].revents & ZMQ_POLLIN) {
      uint64_t v;
      [[maybe_unused]] ssize_t n = read(wake_fd_, &v, sizeof(v));
    }
    if (items[1].revents & ZMQ_POLLIN) {
      uint64_t expirations;
      [[maybe_unused]] ssize_t n = read(timer_fd_, &expirations, sizeof(expirations));
      armed_due_ = 0;  // a one-shot timer disarms itself when it fires
    }
  }
  if (flushes && !flushed && !pipeline_.hard_stopped()) d.flush(node_->plugin().self());
  // What is still queued: the outcomes of child calls a composite abandoned (cancelled, or
  // past their deadline) after it had finished its event, which release those calls.
  run_posted();
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
  // Only the 1.0 members: an older plugin's struct ends before the 1.2 usage.
  sluice_outcome copy{};
  copy.status = outcome->status;
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
    if (outcome.status != SLUICE_OK &&
        static_cast<size_t>(outcome.status) < metrics_->errors.size()) {
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
  if (errors_out_ != nullptr && !errors_out_->links.empty()) {
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
