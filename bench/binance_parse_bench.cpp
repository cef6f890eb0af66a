// Binance liquidation frames parsed and normalised per second on one core: the
// `binance_liquidations` source replaying the recorded frames (plain, and as a record_to
// recording) through its C ABI, with an emit that only counts. Each replayed line is parsed with
// simdjson, checked, de-duplicated and built into a 12-field event, as a live frame would be.
#include <benchmark/benchmark.h>

#include <dlfcn.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "sluice/abi.h"

namespace {

namespace fs = std::filesystem;

sluice_host quiet_host() {
  sluice_host h{};
  h.abi_major = SLUICE_ABI_MAJOR;
  h.abi_minor = SLUICE_ABI_MINOR;
  h.pipeline_name = "bench";
  h.node_name = "binance";
  h.log = [](void*, sluice_log_level, const char*, size_t) {};
  h.settings_version = [](void*) -> uint64_t { return 0; };
  h.setting_get = [](void*, const char*, char*, size_t) -> int64_t { return -1; };
  h.setting_set = [](void*, const char*, const char*) { return -1; };
  h.counter_add = [](void*, const char*, const char*, double) {};
  h.gauge_set = [](void*, const char*, const char*, double) {};
  h.histogram_observe = [](void*, const char*, const char*, double) {};
  h.child_count = [](void*) -> size_t { return 0; };
  return h;
}

const sluice_host kHost = quiet_host();

struct CountingContext {
  sluice_source_ctx ctx{};
  uint64_t events = 0;
  uint64_t bytes = 0;

  CountingContext() {
    ctx.emit = [](sluice_source_ctx* c, const uint8_t* data, size_t size) {
      auto* self = reinterpret_cast<CountingContext*>(c);
      ++self->events;
      self->bytes += size;
      benchmark::DoNotOptimize(data);
      return 0;
    };
    ctx.stopping = [](sluice_source_ctx*) { return 0; };
    ctx.sleep_ns = [](sluice_source_ctx*, int64_t) { return 0; };
  }
};

// 90,000 frames: the 9 recorded ones repeated, each with its own trade time so that
// de-duplication keeps every one; and the same frames as a record_to recording.
class BenchFiles {
 public:
  BenchFiles()
      : dir_(fs::temp_directory_path() / ("sluice_binance_bench_" + std::to_string(::getpid()))) {
    fs::create_directories(dir_);
    std::ifstream in(std::string(SLUICE_SOURCE_DIR) + "/pipelines/data/forceorder_frames.jsonl");
    std::vector<std::string> frames;
    for (std::string line; std::getline(in, line);) {
      if (!line.empty()) frames.push_back(line);
    }
    std::ofstream plain(plain_path());
    std::ofstream recording(recording_path());
    int64_t t = 1761125802300;
    for (int round = 0; round < 10000; ++round) {
      for (const std::string& f : frames) {
        // Every recorded frame has "T": followed by digits (one with a space after the colon).
        std::string frame = f;
        const size_t key = frame.find("\"T\":");
        size_t begin = frame.find_first_of("0123456789", key);
        size_t end = frame.find_first_not_of("0123456789", begin);
        frame.replace(begin, end - begin, std::to_string(t++));
        plain << frame << '\n';
        std::string escaped;
        for (char c : frame) {
          if (c == '"' || c == '\\') escaped += '\\';
          escaped += c;
        }
        recording << "{\"recv_ns\":" << t * 1'000'000 << ",\"frame\":\"" << escaped << "\"}\n";
      }
    }
  }
  ~BenchFiles() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string plain_path() const { return (dir_ / "frames.jsonl").string(); }
  std::string recording_path() const { return (dir_ / "recording.jsonl").string(); }

 private:
  fs::path dir_;
};

const BenchFiles& files() {
  static const BenchFiles instance;
  return instance;
}

// The options the host would pass after validation, defaults applied (durations in ns).
std::string config(const std::string& replay_file) {
  return R"({"replay_file": ")" + replay_file +
         R"(", "url": "wss://fstream.binance.com/market/ws/!forceOrder@arr", "timing": "fast",
           "speed": 1.0, "heartbeat": 60000000000, "heartbeat_timeout": 10000000000,
           "reconnect_min": 1000000000, "reconnect_max": 60000000000,
           "rollover": 82800000000000})";
}

void replay(benchmark::State& state, const std::string& path) {
  const std::string so = std::string(SLUICE_BINARY_DIR) + "/plugins/source_binance_liquidations.so";
  void* handle = dlopen(so.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    state.SkipWithError((std::string(dlerror()) + " (build the plugin first)").c_str());
    return;
  }
  auto entry = reinterpret_cast<sluice_entry_point_fn>(dlsym(handle, SLUICE_ENTRY_POINT_NAME));
  const sluice_plugin_descriptor* d = entry();
  const std::string json = config(path);
  uint64_t events = 0;
  uint64_t bytes = 0;
  for (auto _ : state) {
    sluice_error err{};
    void* self = d->create(&kHost, json.c_str(), &err);
    if (self == nullptr) {
      state.SkipWithError(err.message);
      return;
    }
    CountingContext counting;
    const int rc = d->run(self, &counting.ctx, &err);
    d->destroy(self);
    if (rc != 0) {
      state.SkipWithError(err.message);
      return;
    }
    events += counting.events;
    bytes += counting.bytes;
  }
  state.SetItemsProcessed(static_cast<int64_t>(events));
  state.counters["bytes/event"] =
      events > 0 ? static_cast<double>(bytes) / static_cast<double>(events) : 0;
}

void BM_BinancePlainFrames(benchmark::State& state) { replay(state, files().plain_path()); }
BENCHMARK(BM_BinancePlainFrames)->Unit(benchmark::kMillisecond);

void BM_BinanceRecording(benchmark::State& state) { replay(state, files().recording_path()); }
BENCHMARK(BM_BinanceRecording)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
