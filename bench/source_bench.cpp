// Source cost: events/s the `generator` makes and rows/s the `file` source parses from CSV and
// JSON lines, each driven through the C ABI of its built .so with an emit that only counts, so
// the numbers are the plugin's own ceiling (nothing downstream slows it).
#include <benchmark/benchmark.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "bench_support.hpp"

namespace {

namespace fs = std::filesystem;

const sluice_host kHost = sluice::bench::quiet_host("source");

void run_source(benchmark::State& state, const char* type, const std::string& toml_options) {
  const sluice::bench::BenchPlugin plugin =
      sluice::bench::load_plugin(sluice::core::NodeKind::kSource, type, toml_options);
  sluice::bench::run_source(state, plugin, kHost);
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
  run_source(state, "generator", "count = 1000000");
}
BENCHMARK(BM_GeneratorDefaultEvents)->Unit(benchmark::kMillisecond);

void BM_GeneratorFieldTemplates(benchmark::State& state) {
  run_source(state, "generator",
             "count = 1000000\n"
             "key = \"{symbol}\"\n"
             // One line: TOML inline tables cannot span lines.
             "fields = { symbol = \"{choice:BTCUSDT|ETHUSDT|SOLUSDT|DOGEUSDT}\", "
             "side = \"{choice:BUY|SELL}\", price = \"{float:100:200}\", "
             "qty = \"{int:1:1000}\", order_id = \"ord-{seq}\", venue = \"bench\" }");
}
BENCHMARK(BM_GeneratorFieldTemplates)->Unit(benchmark::kMillisecond);

void BM_FileCsvRows(benchmark::State& state) {
  run_source(state, "file", "path = \"" + files().csv_path() + "\"");
}
BENCHMARK(BM_FileCsvRows)->Unit(benchmark::kMillisecond);

void BM_FileJsonLines(benchmark::State& state) {
  run_source(state, "file", "path = \"" + files().jsonl_path() + "\"\nkey_field = \"o.s\"");
}
BENCHMARK(BM_FileJsonLines)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
