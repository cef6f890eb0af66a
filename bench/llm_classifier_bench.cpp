// Latency the `llm_classifier` processor adds to a call, against a local OpenAI-compatible server
// that answers at once. The plugin is driven through its C ABI at a fixed open-loop rate (1 k and
// 5 k requests/s): request i is started at start + i / rate whether or not earlier ones have
// finished. Per request:
//   node   = process() called → done() called (on the plugin's HTTP thread)
//   server = request fully read → response fully written, measured in the server
//   added  = node − server: prompt rendering, JSON encoding, the HTTP client's queueing, I/O and
//            parsing, the reply's validation and the output event's build
// Counters: added_p50/p99/max_us, node_p50_us, server_p50_us; the added time split in two,
// out_p99_us (process() called → request read by the server) and back_p99_us (response written →
// done()); and wake_late_p99_us: how late the driving thread woke for its own schedule, the
// machine's scheduling delay seen in the same run (on a loaded shared machine it, not the node,
// sets the tail). The first kWarmup requests (which open the kept-alive connections) are not
// counted.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "bench_support.hpp"
#include "sluice/event.hpp"

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

constexpr double kSeconds = 3.0;
constexpr size_t kWarmup = 200;

int64_t mono_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// A valid chat completion whose content is the verdict the classifier expects.
constexpr std::string_view kReply =
    R"({"id":"chatcmpl-bench","object":"chat.completion","created":1761125802,)"
    R"("model":"bench-model","choices":[{"index":0,"message":{"role":"assistant","content":)"
    R"("{\"risk_level\":\"LOW\",\"summary\":\"A small long was liquidated.\",)"
    R"(\"recommendation\":\"No action needed.\"}"},"finish_reason":"stop"}],)"
    R"("usage":{"prompt_tokens":150,"completion_tokens":30,"total_tokens":180}})";

// HTTP/1.1 with keep-alive on 127.0.0.1, one thread. Each request names its number as
// "request N" in the prompt; the server records its own handling time under that number.
class ZeroLatencyServer {
 public:
  explicit ZeroLatencyServer(size_t requests)
      : acceptor_(io_, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)),
        started_ns_(requests),
        handling_ns_(requests) {
    for (auto& h : handling_ns_) h.store(-1, std::memory_order_relaxed);
    accept();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~ZeroLatencyServer() {
    io_.stop();
    thread_.join();
  }
  ZeroLatencyServer(const ZeroLatencyServer&) = delete;
  ZeroLatencyServer& operator=(const ZeroLatencyServer&) = delete;

  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  // The server's handling time of request n, -1 until its response has been written.
  int64_t handling_ns(size_t n) const { return handling_ns_[n].load(std::memory_order_acquire); }
  // When the server had read request n (valid once handling_ns(n) is).
  int64_t started_ns(size_t n) const { return started_ns_[n].load(std::memory_order_relaxed); }

 private:
  struct Session : std::enable_shared_from_this<Session> {
    Session(ZeroLatencyServer& s, tcp::socket sock) : server(s), socket(std::move(sock)) {}

    void read() {
      request = {};
      http::async_read(socket, buffer, request,
                       [self = shared_from_this()](beast::error_code ec, size_t) {
                         if (!ec) self->respond();
                       });
    }
    void respond() {
      started_ns = mono_ns();
      number = request_number(request.body());
      response = {};
      response.result(http::status::ok);
      response.version(11);
      response.set(http::field::content_type, "application/json");
      response.keep_alive(request.keep_alive());
      response.body() = kReply;
      response.prepare_payload();
      http::async_write(socket, response,
                        [self = shared_from_this()](beast::error_code ec, size_t) {
                          if (ec) return;
                          self->server.record(self->number, self->started_ns, mono_ns());
                          self->read();
                        });
    }
    static size_t request_number(std::string_view body) {
      const size_t at = body.find("request ");
      size_t n = 0;
      for (size_t i = at == std::string_view::npos ? body.size() : at + 8;
           i < body.size() && body[i] >= '0' && body[i] <= '9'; ++i) {
        n = n * 10 + static_cast<size_t>(body[i] - '0');
      }
      return n;
    }

    ZeroLatencyServer& server;
    tcp::socket socket;
    beast::flat_buffer buffer;
    http::request<http::string_body> request;
    http::response<http::string_body> response;
    int64_t started_ns = 0;
    size_t number = 0;
  };

  void accept() {
    acceptor_.async_accept([this](beast::error_code ec, tcp::socket socket) {
      if (ec) return;
      socket.set_option(tcp::no_delay(true));
      std::make_shared<Session>(*this, std::move(socket))->read();
      accept();
    });
  }
  void record(size_t n, int64_t started, int64_t finished) {
    if (n >= handling_ns_.size()) return;
    started_ns_[n].store(started, std::memory_order_relaxed);
    handling_ns_[n].store(finished - started, std::memory_order_release);
  }

  net::io_context io_;
  tcp::acceptor acceptor_;
  std::vector<std::atomic<int64_t>> started_ns_;
  std::vector<std::atomic<int64_t>> handling_ns_;
  std::thread thread_;
};

// One request in flight: the C ABI call and when it started and finished.
struct TimedCall {
  sluice_call call{};
  int64_t started_ns = 0;
  std::atomic<int64_t> done_ns{0};
  std::atomic<int> status{-1};

  TimedCall() {
    call.emit = [](sluice_call*, const char*, const uint8_t* data, size_t) {
      benchmark::DoNotOptimize(data);
    };
    call.done = [](sluice_call* c, const sluice_outcome* o) {
      auto* self = reinterpret_cast<TimedCall*>(c);
      self->status.store(o->status, std::memory_order_relaxed);
      self->done_ns.store(mono_ns(), std::memory_order_release);
    };
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

// Nearest-rank percentile of sorted values, in microseconds.
double percentile_us(const std::vector<int64_t>& sorted, double q) {
  if (sorted.empty()) return 0;
  size_t rank = static_cast<size_t>(q * static_cast<double>(sorted.size()) + 0.999999);
  rank = std::clamp<size_t>(rank, 1, sorted.size());
  return static_cast<double>(sorted[rank - 1]) / 1e3;
}

void BM_LlmClassifierAddedLatency(benchmark::State& state) {
  const double rate = static_cast<double>(state.range(0));
  const size_t measured = static_cast<size_t>(rate * kSeconds);
  const size_t total = kWarmup + measured;
  ZeroLatencyServer server(total);
  const sluice_host host = sluice::bench::quiet_host("classify");
  const sluice::bench::BenchPlugin plugin = sluice::bench::load_plugin(
      sluice::core::NodeKind::kProcessor, "llm_classifier",
      "base_url = \"http://127.0.0.1:" + std::to_string(server.port()) +
          "/v1\"\n"
          "model = \"bench-model\"\n"
          "user_prompt = \"Liquidation of {{symbol}}: {{side}} {{notional_usd}} USD at "
          "{{avg_price}}. Answer in JSON. request {{_id}}\"");
  std::vector<std::vector<uint8_t>> events;
  events.reserve(total);
  for (size_t i = 0; i < total; ++i) events.push_back(liquidation(i));
  std::vector<TimedCall> calls(total);
  std::vector<int64_t> late;
  late.reserve(measured);

  for (auto _ : state) {
    void* self = sluice::bench::create_or_skip(state, plugin, host);
    if (self == nullptr) return;
    auto start_call = [&](size_t i) {
      TimedCall& c = calls[i];
      c.call.event = events[i].data();
      c.call.event_size = events[i].size();
      c.started_ns = mono_ns();
      plugin.descriptor->process(self, &c.call);
    };
    auto wait_done = [&](size_t i, int64_t deadline_ns) {
      while (calls[i].done_ns.load(std::memory_order_acquire) == 0 && mono_ns() < deadline_ns) {
        std::this_thread::sleep_for(std::chrono::microseconds(100));
      }
      return calls[i].done_ns.load(std::memory_order_acquire) != 0;
    };
    // Warm-up, one request at a time: opens the connection and touches every path once.
    for (size_t i = 0; i < kWarmup; ++i) {
      start_call(i);
      wait_done(i, mono_ns() + 5'000'000'000);
    }
    const auto interval = std::chrono::nanoseconds(static_cast<int64_t>(1e9 / rate));
    const auto begin = std::chrono::steady_clock::now();
    for (size_t k = 0; k < measured; ++k) {
      const auto due = begin + interval * static_cast<int64_t>(k);
      std::this_thread::sleep_until(due);
      start_call(kWarmup + k);
      late.push_back(
          calls[kWarmup + k].started_ns -
          std::chrono::duration_cast<std::chrono::nanoseconds>(due.time_since_epoch()).count());
    }
    const int64_t deadline = mono_ns() + 10'000'000'000;
    for (size_t i = kWarmup; i < total; ++i) wait_done(i, deadline);
    plugin.descriptor->destroy(self);
  }

  std::vector<int64_t> added;
  std::vector<int64_t> node;
  std::vector<int64_t> served;
  std::vector<int64_t> out;   // process() called → the server has read the request
  std::vector<int64_t> back;  // the server has written the response → done() called
  size_t errors = 0;
  for (size_t i = kWarmup; i < total; ++i) {
    const int64_t done = calls[i].done_ns.load(std::memory_order_acquire);
    // The client can see the response before the server's write handler has run.
    int64_t handling = server.handling_ns(i);
    for (int tries = 0; handling < 0 && done != 0 && tries < 1000; ++tries) {
      std::this_thread::sleep_for(std::chrono::microseconds(100));
      handling = server.handling_ns(i);
    }
    if (done == 0 || calls[i].status.load() != SLUICE_OK || handling < 0) {
      ++errors;
      continue;
    }
    node.push_back(done - calls[i].started_ns);
    served.push_back(handling);
    added.push_back(node.back() - handling);
    out.push_back(server.started_ns(i) - calls[i].started_ns);
    back.push_back(done - server.started_ns(i) - handling);
  }
  std::sort(added.begin(), added.end());
  std::sort(node.begin(), node.end());
  std::sort(served.begin(), served.end());
  std::sort(late.begin(), late.end());
  std::sort(out.begin(), out.end());
  std::sort(back.begin(), back.end());
  if (errors > 0) {
    state.SkipWithError((std::to_string(errors) + " requests failed or timed out").c_str());
  }
  state.SetItemsProcessed(static_cast<int64_t>(added.size()));
  state.counters["added_p50_us"] = percentile_us(added, 0.50);
  state.counters["added_p99_us"] = percentile_us(added, 0.99);
  state.counters["added_max_us"] = added.empty() ? 0 : static_cast<double>(added.back()) / 1e3;
  state.counters["node_p50_us"] = percentile_us(node, 0.50);
  state.counters["server_p50_us"] = percentile_us(served, 0.50);
  state.counters["wake_late_p99_us"] = percentile_us(late, 0.99);
  state.counters["out_p99_us"] = percentile_us(out, 0.99);
  state.counters["back_p99_us"] = percentile_us(back, 0.99);
}
BENCHMARK(BM_LlmClassifierAddedLatency)
    ->ArgName("per_s")
    ->Arg(1000)
    ->Arg(5000)
    ->Iterations(1)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
