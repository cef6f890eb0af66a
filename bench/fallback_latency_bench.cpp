// Latency of a `fallback` chain of two `llm_classifier` children against local OpenAI-compatible
// servers on 127.0.0.1 (plain HTTP, keep-alive), through the runtime's real host (NodeInstance,
// child calls and their deadlines, metrics) on a thread that runs the node as a processor stage
// does: callbacks posted from other threads woken by an eventfd, timers on a timerfd. Events are
// fed open loop at kRate (event i is handed to the stage thread at start + i / kRate whatever
// became of the earlier ones); the first kWarmup events (which open the connections) are not
// counted. Every case reports wake_late_p99_us, how late the feeding thread woke for its own
// schedule: the machine's scheduling delay in the same run.
//
// BM_FallbackFailoverDelay: the first child's server reads each request and never answers; the
// child's own `timeout` (kFailoverTimeout) fails it and the chain moves on to a server that
// answers at once. (A fallback chain has no per-child budget: every child gets the chain's
// deadline, so a child's `timeout` is what fails it over.) The delay wanted is D = the timeout
// fired → the second server has read the next request. The timeout fires on the HTTP client's
// thread, out of sight, so each event's D is bracketed from both sides:
//   failover      = second server read it − (process() called + timeout)     ≥ D
//     (the first child's HTTP thread arms the timer after process() was called, and timers fire
//     late, never early; not from process()'s return: the HTTP thread may arm the timer before
//     the stage thread returns); so it also counts how late the first child's timeout fired;
//   close_to_next = second server read it − first server saw its connection closed   ≤ D
//     (the client closes the connection when the timeout fires; the server sees it after).
// Per-event bounds bound the percentiles too; timeout_late (process() called + timeout → the
// first server saw the close) is the gap between them. `failover` is also split at the stage
// thread: to_outcome (process() called + timeout → the first child's timeout outcome posted to
// the stage thread by the HTTP client's thread), stage_wait (→ the stage thread runs it),
// next_start (→ the second server has read the request: the host's delivery, the chain's
// decision, the second child's start, its HTTP thread, the server), and stage_run (the stage
// thread's whole callback).
//
// BM_FallbackFastChildAlone and BM_FallbackHeavyTail: end to end per event, process() called →
// done() called. The first child's server answers events 0, 3 and 6 of every 10 after 2 s (30 %)
// and the rest at once; the second answers at once. Without hedging the slow 30 % wait their 2 s;
// with `hedge_after` the second child starts then and wins. The hedged p99's target is
// hedge_after + the fast child's p99 + 1 ms (target_ms), the fast child's p99 taken from
// BM_FallbackFastChildAlone (a chain of the fast child alone) in the same run. timer_late_p99_us:
// how late the stage thread ran its due timers (the hedges).
#include <benchmark/benchmark.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "sluice/core/config.hpp"
#include "sluice/core/metrics.hpp"
#include "sluice/core/node_host.hpp"
#include "sluice/core/plugin_registry.hpp"
#include "sluice/core/state.hpp"
#include "sluice/core/timer_queue.hpp"
#include "sluice/event.hpp"
#include "sluice/sdk.hpp"

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using sluice::mono_ns;

constexpr double kRate = 100;  // events/s
constexpr size_t kWarmup = 20;
constexpr size_t kMeasured = 300;
constexpr size_t kEvents = kWarmup + kMeasured;
constexpr int64_t kFailoverTimeoutNs = 50'000'000;
constexpr const char* kFailoverTimeout = "50ms";
constexpr auto kSlowAnswer = std::chrono::seconds(2);

// A valid chat completion whose content is the verdict the classifier expects.
constexpr std::string_view kReply =
    R"({"id":"chatcmpl-bench","object":"chat.completion","created":1761125802,)"
    R"("model":"bench-model","choices":[{"index":0,"message":{"role":"assistant","content":)"
    R"("{\"risk_level\":\"LOW\",\"summary\":\"A small long was liquidated.\",)"
    R"(\"recommendation\":\"No action needed.\"}"},"finish_reason":"stop"}],)"
    R"("usage":{"prompt_tokens":150,"completion_tokens":30,"total_tokens":180}})";

enum class Answers { kAtOnce, kNever, kHeavyTail };

// The heavy tail's deterministic pattern: events 0, 3 and 6 of every 10.
bool slow_event(size_t n) { return n % 10 == 0 || n % 10 == 3 || n % 10 == 6; }

// An OpenAI-compatible server on 127.0.0.1, HTTP/1.1 keep-alive, one thread. Each request names
// its event as "request N" in the prompt; the server records when it had read request N and, for
// one it never answers, when the client closed that request's connection.
class LoopbackLlm {
 public:
  explicit LoopbackLlm(Answers answers)
      : answers_(answers),
        acceptor_(io_, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)),
        read_ns_(kEvents),
        closed_ns_(kEvents) {
    accept();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~LoopbackLlm() {
    io_.stop();
    thread_.join();
  }
  LoopbackLlm(const LoopbackLlm&) = delete;
  LoopbackLlm& operator=(const LoopbackLlm&) = delete;

  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  // When request n had been read (mono_ns), 0 when it never came.
  int64_t read_ns(size_t n) const { return read_ns_[n].load(std::memory_order_acquire); }
  // When the client closed the connection of unanswered request n, 0 when not (yet).
  int64_t closed_ns(size_t n) const { return closed_ns_[n].load(std::memory_order_acquire); }

 private:
  struct Session : std::enable_shared_from_this<Session> {
    Session(LoopbackLlm& s, tcp::socket sock) : server(s), socket(std::move(sock)), timer(s.io_) {}

    void read() {
      request = {};
      http::async_read(socket, buffer, request,
                       [self = shared_from_this()](beast::error_code ec, size_t) {
                         if (!ec) self->answer();
                       });
    }
    void answer() {
      number = request_number(request.body());
      if (number < kEvents) server.read_ns_[number].store(mono_ns(), std::memory_order_release);
      if (server.answers_ == Answers::kNever) return watch_close();
      if (server.answers_ == Answers::kHeavyTail && slow_event(number)) {
        timer.expires_after(kSlowAnswer);
        timer.async_wait([self = shared_from_this()](beast::error_code ec) {
          if (!ec) self->write();
        });
        return;
      }
      write();
    }
    void write() {
      response = {};
      response.result(http::status::ok);
      response.version(11);
      response.set(http::field::content_type, "application/json");
      response.keep_alive(request.keep_alive());
      response.body() = kReply;
      response.prepare_payload();
      http::async_write(socket, response,
                        [self = shared_from_this()](beast::error_code ec, size_t) {
                          if (!ec) self->read();
                        });
    }
    // The client sends nothing more on a connection it waits on: a read ends only when it closes.
    void watch_close() {
      socket.async_read_some(
          net::buffer(&byte, 1), [self = shared_from_this()](beast::error_code ec, size_t) {
            if (!ec) return self->watch_close();
            if (self->number < kEvents) {
              self->server.closed_ns_[self->number].store(mono_ns(), std::memory_order_release);
            }
          });
    }
    static size_t request_number(std::string_view body) {
      const size_t at = body.find("request ");
      if (at == std::string_view::npos) return kEvents;
      size_t n = 0;
      for (size_t i = at + 8; i < body.size() && body[i] >= '0' && body[i] <= '9'; ++i) {
        n = n * 10 + static_cast<size_t>(body[i] - '0');
      }
      return n;
    }

    LoopbackLlm& server;
    tcp::socket socket;
    net::steady_timer timer;
    beast::flat_buffer buffer;
    http::request<http::string_body> request;
    http::response<http::string_body> response;
    char byte = 0;
    size_t number = kEvents;
  };

  void accept() {
    acceptor_.async_accept([this](beast::error_code ec, tcp::socket socket) {
      if (ec) return;
      socket.set_option(tcp::no_delay(true));
      std::make_shared<Session>(*this, std::move(socket))->read();
      accept();
    });
  }

  Answers answers_;
  net::io_context io_;
  tcp::acceptor acceptor_;
  std::vector<std::atomic<int64_t>> read_ns_;
  std::vector<std::atomic<int64_t>> closed_ns_;
  std::thread thread_;
};

// The stage thread of a processor, reduced to what runs a composite between events: callbacks
// posted from other threads (child outcomes from the HTTP client's thread) woken through an
// eventfd, timers (hedges, child deadlines) armed on a timerfd, one poll(). core/src/stage.cpp
// does the same (Stage is internal to the core, so its mechanism is repeated here). It also
// records when each callback another thread posted was queued, started and finished, and how late
// its timers ran: what the failover's time is split into.
class StageLoop final : public sluice::core::Executor {
 public:
  struct Posted {
    int64_t queued_ns = 0;
    int64_t started_ns = 0;
    int64_t finished_ns = 0;
  };

  StageLoop()
      : wake_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)),
        timer_fd_(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)) {
    posted_log_.reserve(4 * kEvents);
    timer_late_ns_.reserve(4 * kEvents);
    thread_ = std::thread([this] { loop(); });
  }
  ~StageLoop() override {
    stop();
    close(wake_fd_);
    close(timer_fd_);
  }
  StageLoop(const StageLoop&) = delete;
  StageLoop& operator=(const StageLoop&) = delete;

  void post(std::function<void()> fn) override { queue(std::move(fn), true); }
  // An event handed to the node, as a stage's receive would: run, not recorded.
  void feed(std::function<void()> fn) { queue(std::move(fn), false); }
  uint64_t schedule(int64_t delay_ns, std::function<void(bool)> fn) override {
    bool earliest = false;
    uint64_t id = timers_.add(mono_ns() + std::max<int64_t>(delay_ns, 0), std::move(fn), &earliest);
    if (earliest && tls_loop != this) wake();  // the loop re-arms its timer before it sleeps
    return id;
  }
  bool cancel_scheduled(uint64_t id) override { return timers_.cancel(id); }

  // Ends the thread; timers still pending never fire (each gets fn(true)), as when a stage ends.
  void stop() {
    if (!thread_.joinable()) return;
    stopping_.store(true);
    wake();
    thread_.join();
    timers_.clear();
  }
  // Valid once stopped: the posted callbacks in the order they ran, and how late each due timer
  // was when the loop ran it.
  const std::vector<Posted>& posted_log() const { return posted_log_; }
  const std::vector<int64_t>& timer_late_ns() const { return timer_late_ns_; }

 private:
  struct Entry {
    std::function<void()> fn;
    int64_t queued_ns = 0;
    bool recorded = false;
  };
  static inline thread_local const StageLoop* tls_loop = nullptr;

  void queue(std::function<void()> fn, bool recorded) {
    {
      std::lock_guard lock(mu_);
      posted_.push_back({std::move(fn), mono_ns(), recorded});
    }
    wake();
  }
  void wake() {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof(one));
  }
  void loop() {
    tls_loop = this;
    pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {timer_fd_, POLLIN, 0}};
    std::vector<Entry> running;
    while (!stopping_.load()) {
      {
        std::lock_guard lock(mu_);
        running.swap(posted_);
      }
      for (Entry& e : running) {
        const int64_t started = mono_ns();
        e.fn();
        if (e.recorded) posted_log_.push_back({e.queued_ns, started, mono_ns()});
      }
      running.clear();
      run_timers();
      fds[0].revents = fds[1].revents = 0;
      if (poll(fds, 2, 200) <= 0) continue;
      uint64_t v = 0;
      if (fds[0].revents & POLLIN) {
        [[maybe_unused]] ssize_t n = read(wake_fd_, &v, sizeof(v));
      }
      if (fds[1].revents & POLLIN) {
        [[maybe_unused]] ssize_t n = read(timer_fd_, &v, sizeof(v));
        armed_due_ = 0;  // a one-shot timer disarms itself when it fires
      }
    }
  }
  void run_timers() {
    if (const int64_t due = timers_.next_due(); due != 0) {
      const int64_t now = mono_ns();
      if (due <= now) timer_late_ns_.push_back(now - due);
      timers_.run_due(now);
    }
    const int64_t next = timers_.next_due();
    if (next == armed_due_) return;
    itimerspec spec{};
    if (next != 0) {
      spec.it_value.tv_sec = next / 1'000'000'000;
      spec.it_value.tv_nsec = next % 1'000'000'000;
    }
    timerfd_settime(timer_fd_, next != 0 ? TFD_TIMER_ABSTIME : 0, &spec, nullptr);
    armed_due_ = next;
  }

  int wake_fd_;
  int timer_fd_;
  std::mutex mu_;
  std::vector<Entry> posted_;
  sluice::core::TimerQueue timers_;
  int64_t armed_due_ = 0;               // stage thread only
  std::vector<Posted> posted_log_;      // stage thread only until stopped
  std::vector<int64_t> timer_late_ns_;  // same
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

// The built plugins, loaded once (they stay loaded); a missing one shows as a refused pipeline.
sluice::core::PluginRegistry& registry() {
  static sluice::core::PluginRegistry r;
  static std::once_flag loaded;
  std::call_once(loaded, [] {
    std::vector<std::string> errors;
    r.load_dirs({std::string(SLUICE_BINARY_DIR) + "/plugins"}, &errors);
  });
  return r;
}

// An llm_classifier child block. max_connections is above the most requests one child has open
// at once here (30 % of 100 events/s waiting 2 s: ~60), so the HTTP client's pool never queues
// and what is measured is the chain, not the pool's limit.
std::string child(const std::string& name, uint16_t port, const char* timeout) {
  return "[processors." + name +
         "]\n"
         "type = \"llm_classifier\"\n"
         "base_url = \"http://127.0.0.1:" +
         std::to_string(port) +
         "/v1\"\n"
         "model = \"bench-model\"\n"
         "timeout = \"" +
         timeout +
         "\"\n"
         "max_connections = 128\n"
         "user_prompt = \"Liquidation of {{symbol}}: {{side}} {{notional_usd}} USD. Answer in "
         "JSON. request {{_id}}\"\n\n";
}

// A fallback node `chain` over llm_classifier children, created through the runtime's host and
// started on its own stage thread.
class Chain {
 public:
  // chain_options: the fallback's options after `inputs`; children: the child blocks.
  Chain(const std::string& chain_options, const std::string& children) {
    const std::string text =
        "[pipeline]\nname = \"bench\"\n\n"
        "[sources.gen]\ntype = \"generator\"\ncount = 1\n\n"
        "[processors.chain]\ntype = \"fallback\"\ninputs = [\"gen\"]\n" +
        chain_options + "\n" + children +
        "[sinks.out]\ntype = \"blackhole\"\ninputs = [\"chain\"]\n";
    try {
      spec_ = sluice::core::load_pipeline_text(text, "<bench>", registry().catalog());
      settings_ = std::make_unique<sluice::core::SettingsStore>(spec_.settings);
      state_ = std::make_unique<sluice::core::NodeStateStore>(settings_.get());
      sluice::core::HostServices services{"bench", "", settings_.get(), &metrics_, state_.get()};
      node_ = sluice::core::NodeInstance::create(spec_, *spec_.find("chain"), registry(), services);
      node_->set_executor(&loop_);
      node_->start(spec_);
    } catch (const std::exception& e) {
      error_ = e.what();
    }
  }
  // As a stage ends: its thread first, then the plugins (which complete what they still hold).
  ~Chain() {
    loop_.stop();
    node_.reset();
  }
  Chain(const Chain&) = delete;
  Chain& operator=(const Chain&) = delete;

  const std::string& error() const { return error_; }
  StageLoop& loop() { return loop_; }
  sluice::core::NodeInstance& node() { return *node_; }

 private:
  sluice::core::PipelineSpec spec_;
  sluice::core::MetricsRegistry metrics_;
  std::unique_ptr<sluice::core::SettingsStore> settings_;
  std::unique_ptr<sluice::core::NodeStateStore> state_;
  StageLoop loop_;
  std::unique_ptr<sluice::core::NodeInstance> node_;
  std::string error_;
};

// One event through the chain: when process() was called and done() came, on the stage thread.
struct TimedCall {
  sluice_call call{};
  std::vector<uint8_t> event;
  int64_t started_ns = 0;
  std::atomic<int64_t> done_ns{0};
  int status = -1;
  std::string used;  // the output's fallback_used

  TimedCall() {
    call.host_data = this;
    call.emit = [](sluice_call* c, const char*, const uint8_t* data, size_t size) {
      auto used = sluice::EventView(data, size).string("fallback_used");
      static_cast<TimedCall*>(c->host_data)->used = used ? std::string(*used) : "";
    };
    call.done = [](sluice_call* c, const sluice_outcome* o) {
      auto* self = static_cast<TimedCall*>(c->host_data);
      self->status = o->status;
      self->done_ns.store(mono_ns(), std::memory_order_release);
    };
    // A top-level call is never abandoned by its caller, as on a stage.
    call.on_cancel = [](sluice_call*, void (*fn)(void*, int), void* user) { fn(user, 0); };
  }
};

// A liquidation like the ones the classifier judges; its id is the request number.
std::vector<uint8_t> liquidation(uint64_t n) {
  sluice::EventBuilder b;
  b.id(n).event_time_ns(1761125802306000000).source("binance").key("SOLUSDT");
  b.field("avg_price", 184.22)
      .field("exchange", "binance")
      .field("notional_usd", 18422.0)
      .field("quantity", 100.0)
      .field("side", "SELL")
      .field("symbol", "SOLUSDT");
  const std::span<const uint8_t> bytes = b.finish();
  return {bytes.begin(), bytes.end()};
}

struct Fed {
  std::vector<TimedCall> calls = std::vector<TimedCall>(kEvents);
  std::vector<int64_t> wake_late;  // feeding thread's lateness for its schedule, measured events
  size_t unfinished = 0;
  std::vector<StageLoop::Posted> posted;  // the stage loop's record (StageLoop::posted_log)
  std::vector<int64_t> timer_late_ns;
};

// Feeds kEvents events open loop at kRate into the chain's stage thread (process() runs there,
// as on a stage), waits for every done(), then stops the stage thread and keeps its record.
std::unique_ptr<Fed> feed(Chain& chain) {
  auto fed = std::make_unique<Fed>();
  const sluice_plugin_descriptor& d = chain.node().descriptor();
  void* self = chain.node().plugin().self();
  const auto interval = std::chrono::nanoseconds(static_cast<int64_t>(1e9 / kRate));
  const auto begin = std::chrono::steady_clock::now();
  for (size_t i = 0; i < kEvents; ++i) {
    TimedCall& c = fed->calls[i];
    c.event = liquidation(i);
    c.call.event = c.event.data();
    c.call.event_size = c.event.size();
    const auto due = begin + interval * static_cast<int64_t>(i);
    std::this_thread::sleep_until(due);
    if (i >= kWarmup) fed->wake_late.push_back((std::chrono::steady_clock::now() - due).count());
    chain.loop().feed([&d, self, &c] {
      c.started_ns = mono_ns();
      d.process(self, &c.call);
    });
  }
  const int64_t deadline = mono_ns() + 10'000'000'000;
  for (TimedCall& c : fed->calls) {
    while (c.done_ns.load(std::memory_order_acquire) == 0 && mono_ns() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (c.done_ns.load(std::memory_order_acquire) == 0) ++fed->unfinished;
  }
  // The outcomes of calls the chain cancelled (hedge losers) are still delivered, just ignored.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  chain.loop().stop();
  fed->posted = chain.loop().posted_log();
  fed->timer_late_ns = chain.loop().timer_late_ns();
  return fed;
}

// Nearest-rank percentile of sorted values, in microseconds.
double percentile_us(std::vector<int64_t> values, double q) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  size_t rank = static_cast<size_t>(q * static_cast<double>(values.size()) + 0.999999);
  rank = std::clamp<size_t>(rank, 1, values.size());
  return static_cast<double>(values[rank - 1]) / 1e3;
}

double max_us(const std::vector<int64_t>& values) {
  return values.empty()
             ? 0
             : static_cast<double>(*std::max_element(values.begin(), values.end())) / 1e3;
}

// Fails the benchmark when an event did not come back answered, or not by the child
// `expected(n)` names (nullptr: either child).
bool check(benchmark::State& state, const Fed& fed,
           const std::function<const char*(size_t)>& expected) {
  size_t wrong = fed.unfinished;
  for (size_t i = 0; i < kEvents; ++i) {
    const TimedCall& c = fed.calls[i];
    if (c.done_ns.load(std::memory_order_acquire) == 0) continue;
    const char* child = expected(i);
    if (c.status != SLUICE_OK || (child != nullptr && c.used != child)) ++wrong;
  }
  if (wrong == 0) return true;
  state.SkipWithError((std::to_string(wrong) + " events failed, timed out or were answered by "
                                               "the wrong child")
                          .c_str());
  return false;
}

void BM_FallbackFailoverDelay(benchmark::State& state) {
  LoopbackLlm hang(Answers::kNever);
  LoopbackLlm fast(Answers::kAtOnce);
  std::unique_ptr<Fed> fed;
  for (auto _ : state) {
    Chain chain("chain = [\"hang\", \"fast\"]\ndeadline = \"5s\"\n",
                child("hang", hang.port(), kFailoverTimeout) + child("fast", fast.port(), "5s"));
    if (!chain.error().empty()) return state.SkipWithError(chain.error().c_str());
    fed = feed(chain);
  }
  if (!check(state, *fed, [](size_t) { return "fast"; })) return;
  std::vector<int64_t> failover;
  std::vector<int64_t> close_to_next;
  // The gap between the two bounds: process() called + timeout → the first server saw the close
  // (the first child's start up to its HTTP thread arming the timer, the timer's lateness, the
  // close reaching the server).
  std::vector<int64_t> timeout_late;
  // The failover split at the stage thread, for events whose first child's outcome is the one
  // callback posted to the stage after the deadline that started before the second request came
  // (events are 10 ms apart, so others' fall outside unless a thread stalled that long; those
  // are left out). failover = to_outcome + stage_wait + next_start.
  std::vector<int64_t> to_outcome;  // deadline → the timeout outcome posted to the stage thread
  std::vector<int64_t> stage_wait;  // → the stage thread runs it
  std::vector<int64_t> next_start;  // → the second server has read the next child's request
  // The callback's whole run: host delivery, the chain's decision, the next child's start. On two
  // cores the threads it wakes may preempt it, so this bounds its CPU time from above; it can
  // end after the second server read the request.
  std::vector<int64_t> stage_run;
  size_t unsplit = 0;
  for (size_t i = kWarmup; i < kEvents; ++i) {
    const TimedCall& c = fed->calls[i];
    const int64_t deadline = c.started_ns + kFailoverTimeoutNs;
    const int64_t arrived = fast.read_ns(i);
    failover.push_back(arrived - deadline);
    if (hang.closed_ns(i) != 0) {
      close_to_next.push_back(arrived - hang.closed_ns(i));
      timeout_late.push_back(hang.closed_ns(i) - deadline);
    }
    const StageLoop::Posted* outcome = nullptr;
    size_t in_window = 0;
    for (const StageLoop::Posted& p : fed->posted) {
      if (p.queued_ns >= deadline && p.started_ns <= arrived) {
        outcome = &p;
        ++in_window;
      }
    }
    if (in_window != 1) {
      ++unsplit;
      continue;
    }
    to_outcome.push_back(outcome->queued_ns - deadline);
    stage_wait.push_back(outcome->started_ns - outcome->queued_ns);
    next_start.push_back(arrived - outcome->started_ns);
    stage_run.push_back(outcome->finished_ns - outcome->started_ns);
  }
  state.counters["failover_p50_us"] = percentile_us(failover, 0.50);
  state.counters["failover_p99_us"] = percentile_us(failover, 0.99);
  state.counters["failover_max_us"] = max_us(failover);
  state.counters["close_to_next_p50_us"] = percentile_us(close_to_next, 0.50);
  state.counters["close_to_next_p99_us"] = percentile_us(close_to_next, 0.99);
  state.counters["timeout_late_p50_us"] = percentile_us(timeout_late, 0.50);
  state.counters["timeout_late_p99_us"] = percentile_us(timeout_late, 0.99);
  for (auto [name, values] : {std::pair{"to_outcome", &to_outcome},
                              {"stage_wait", &stage_wait},
                              {"next_start", &next_start},
                              {"stage_run", &stage_run}}) {
    state.counters[std::string(name) + "_p50_us"] = percentile_us(*values, 0.50);
    state.counters[std::string(name) + "_p99_us"] = percentile_us(*values, 0.99);
  }
  state.counters["unsplit"] = static_cast<double>(unsplit);
  state.counters["wake_late_p99_us"] = percentile_us(fed->wake_late, 0.99);
}

// The fast child's p99 through the chain in this run (BM_FallbackFastChildAlone), for the hedged
// case's target; < 0 when that case was not run.
double g_fast_p99_us = -1;

void report_end_to_end(benchmark::State& state, const Fed& fed) {
  std::vector<int64_t> end_to_end;
  for (size_t i = kWarmup; i < kEvents; ++i) {
    end_to_end.push_back(fed.calls[i].done_ns.load() - fed.calls[i].started_ns);
  }
  state.counters["p50_ms"] = percentile_us(end_to_end, 0.50) / 1e3;
  state.counters["p99_ms"] = percentile_us(end_to_end, 0.99) / 1e3;
  state.counters["max_ms"] = max_us(end_to_end) / 1e3;
  state.counters["wake_late_p99_us"] = percentile_us(fed.wake_late, 0.99);
  state.counters["timer_late_p99_us"] = percentile_us(fed.timer_late_ns, 0.99);
}

void BM_FallbackFastChildAlone(benchmark::State& state) {
  LoopbackLlm fast(Answers::kAtOnce);
  std::unique_ptr<Fed> fed;
  for (auto _ : state) {
    Chain chain("chain = [\"fast\"]\ndeadline = \"8s\"\n", child("fast", fast.port(), "5s"));
    if (!chain.error().empty()) return state.SkipWithError(chain.error().c_str());
    fed = feed(chain);
  }
  if (!check(state, *fed, [](size_t) { return "fast"; })) return;
  report_end_to_end(state, *fed);
  g_fast_p99_us = state.counters["p99_ms"] * 1e3;
}

void BM_FallbackHeavyTail(benchmark::State& state) {
  const int64_t hedge_ms = state.range(0);
  LoopbackLlm tail(Answers::kHeavyTail);
  LoopbackLlm fast(Answers::kAtOnce);
  std::unique_ptr<Fed> fed;
  for (auto _ : state) {
    std::string options = "chain = [\"tail\", \"fast\"]\ndeadline = \"8s\"\n";
    if (hedge_ms > 0) options += "hedge_after = \"" + std::to_string(hedge_ms) + "ms\"\n";
    Chain chain(options, child("tail", tail.port(), "5s") + child("fast", fast.port(), "5s"));
    if (!chain.error().empty()) return state.SkipWithError(chain.error().c_str());
    fed = feed(chain);
  }
  // With hedging a quick answer of `tail` late by more than hedge_after (a stalled thread) may
  // lose to `fast`: either child is right then.
  if (!check(state, *fed, [hedge_ms](size_t n) -> const char* {
        if (hedge_ms == 0) return "tail";
        return slow_event(n) ? "fast" : nullptr;
      })) {
    return;
  }
  report_end_to_end(state, *fed);
  size_t hedged = 0;
  for (size_t i = kWarmup; i < kEvents; ++i) hedged += fed->calls[i].used == "fast" ? 1 : 0;
  state.counters["answered_by_fast"] = static_cast<double>(hedged);
  if (hedge_ms > 0 && g_fast_p99_us >= 0) {
    state.counters["target_ms"] = static_cast<double>(hedge_ms) + g_fast_p99_us / 1e3 + 1;
  }
}

BENCHMARK(BM_FallbackFailoverDelay)->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_FallbackFastChildAlone)->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_FallbackHeavyTail)
    ->ArgName("hedge_ms")
    ->Arg(0)
    ->Arg(50)
    ->Iterations(1)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
