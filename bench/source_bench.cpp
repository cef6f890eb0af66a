// Source cost: events/s the `generator` makes and rows/s the `file` source parses from CSV and
// JSON lines, each driven through the C ABI of its built .so with an emit that only counts, so
// the numbers are the plugin's own ceiling (nothing downstream slows it).
#include <benchmark/benchmark.h>

#include <dlfcn.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "sluice/abi.h"

namespace {

namespace fs = std::filesystem;

sluice_host quiet_host() {
  sluice_host h{};
  h.abi_major = SLUICE_ABI_MAJOR;
  h.abi_minor = SLUICE_ABI_MINOR;
  h.pipeline_name = "bench";
  h.node_name = "source";
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

// The source context: counts what the plugin emits and never pushes back.
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
    ctx.sleep_ns = [](sluice_source_ctx*, int64_t ns) {
      std::this_thread::sleep_for(std::chrono::nanoseconds(ns));
      return 0;
    };
  }
};

// A built plugin, loaded once per process; nullptr (and why) when it has not been built.
const sluice_plugin_descriptor* load(const char* file, std::string& error) {
  const std::string path = std::string(SLUICE_BINARY_DIR) + "/plugins/" + file;
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    error = std::string(dlerror()) + " (build the plugin first)";
    return nullptr;
  }
  auto entry = reinterpret_cast<sluice_entry_point_fn>(dlsym(handle, SLUICE_ENTRY_POINT_NAME));
  return entry != nullptr ? entry() : nullptr;
}

// Runs one source instance to its end per iteration and reports items = events emitted.
void run_source(benchmark::State& state, const char* plugin, const std::string& config_json) {
  static std::string error;
  const sluice_plugin_descriptor* d = load(plugin, error);
  if (d == nullptr) {
    state.SkipWithError(error.c_str());
    return;
  }
  uint64_t events = 0;
  uint64_t bytes = 0;
  for (auto _ : state) {
    sluice_error err{};
    void* self = d->create(&kHost, config_json.c_str(), &err);
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
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
  state.counters["bytes/event"] =
      events > 0 ? static_cast<double>(bytes) / static_cast<double>(events) : 0;
}

// Inputs for the file source: the bundled recordings repeated to about 100k rows, in a temporary
// directory removed at exit.
class BenchFiles {
 public:
  BenchFiles()
      : dir_(fs::temp_directory_path() / ("sluice_source_bench_" + std::to_string(::getpid()))) {
    fs::create_directories(dir_);
    const std::string data = std::string(SLUICE_SOURCE_DIR) + "/pipelines/data/";
    std::ifstream sample(data + "liquidations_sample.csv");
    std::string header;
    std::getline(sample, header);
    const std::string rows(std::istreambuf_iterator<char>(sample), {});
    std::ofstream csv(csv_path());
    csv << header << '\n';
    for (int i = 0; i < 200; ++i) csv << rows;  // 473 rows each: 94,600 rows
    std::ifstream frames(data + "forceorder_frames.jsonl");
    const std::string lines(std::istreambuf_iterator<char>(frames), {});
    std::ofstream jsonl(jsonl_path());
    for (int i = 0; i < 10000; ++i) jsonl << lines;  // 9 frames each: 90,000 lines
  }
  ~BenchFiles() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string csv_path() const { return (dir_ / "liquidations.csv").string(); }
  std::string jsonl_path() const { return (dir_ / "frames.jsonl").string(); }

 private:
  fs::path dir_;
};

const BenchFiles& files() {
  static const BenchFiles instance;
  return instance;
}

void BM_GeneratorDefaultEvents(benchmark::State& state) {
  run_source(state, "source_generator.so", R"({"count": 1000000})");
}
BENCHMARK(BM_GeneratorDefaultEvents)->Unit(benchmark::kMillisecond);

void BM_GeneratorFieldTemplates(benchmark::State& state) {
  run_source(state, "source_generator.so",
             R"({"count": 1000000, "key": "{symbol}", "fields": {
                   "symbol": "{choice:BTCUSDT|ETHUSDT|SOLUSDT|DOGEUSDT}",
                   "side": "{choice:BUY|SELL}", "price": "{float:100:200}",
                   "qty": "{int:1:1000}", "order_id": "ord-{seq}", "venue": "bench"}})");
}
BENCHMARK(BM_GeneratorFieldTemplates)->Unit(benchmark::kMillisecond);

void BM_FileCsvRows(benchmark::State& state) {
  run_source(state, "source_file.so", R"({"path": ")" + files().csv_path() + R"("})");
}
BENCHMARK(BM_FileCsvRows)->Unit(benchmark::kMillisecond);

void BM_FileJsonLines(benchmark::State& state) {
  run_source(state, "source_file.so",
             R"({"path": ")" + files().jsonl_path() + R"(", "key_field": "o.s"})");
}
BENCHMARK(BM_FileJsonLines)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
