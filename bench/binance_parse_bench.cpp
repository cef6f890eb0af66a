// Binance liquidation frames parsed and normalised per second on one core.
//   BM_BinancePlainFrames / BM_BinanceRecording: the `binance_liquidations` source replaying the
//     recorded frames (plain, and as a record_to recording) through its C ABI, with an emit that
//     only counts: each line is parsed with simdjson, checked, de-duplicated and made into a
//     12-field event, as a live frame would be.
//   BM_BinanceFrame*: the parser and the two ways to make the event (EventBuilder through
//     build_event, and the patched template of EventWriter), compiled in, without the plugin
//     around them. The EventWriter case first checks that both give the same event.
#include <benchmark/benchmark.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "bench_support.hpp"
#include "frame.hpp"
#include "sluice/event.hpp"

namespace {

namespace fs = std::filesystem;
using sluice::EventView;
using sluice::binance::FrameKind;
using sluice::binance::FrameParser;
using sluice::binance::Liquidation;

const sluice_host kHost = sluice::bench::quiet_host("binance");

// 90,000 frames: the 9 recorded ones repeated, each with its own trade time so that
// de-duplication keeps every one; as plain frames and as a record_to recording, in a temporary
// directory removed at exit, and in memory.
class BenchFiles {
 public:
  BenchFiles()
      : dir_(fs::temp_directory_path() / ("sluice_binance_bench_" + std::to_string(::getpid()))) {
    fs::create_directories(dir_);
    std::ifstream in(std::string(SLUICE_SOURCE_DIR) + "/pipelines/data/forceorder_frames.jsonl");
    std::vector<std::string> recorded;
    for (std::string line; std::getline(in, line);) {
      if (!line.empty()) recorded.push_back(line);
    }
    std::ofstream plain(plain_path());
    std::ofstream recording(recording_path());
    int64_t t = 1761125802300;
    for (int round = 0; round < 10000; ++round) {
      for (const std::string& f : recorded) {
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
        frames_.push_back(std::move(frame));
      }
    }
  }
  ~BenchFiles() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string plain_path() const { return (dir_ / "frames.jsonl").string(); }
  std::string recording_path() const { return (dir_ / "recording.jsonl").string(); }
  const std::vector<std::string>& frames() const { return frames_; }

 private:
  fs::path dir_;
  std::vector<std::string> frames_;
};

const BenchFiles& files() {
  static const BenchFiles instance;
  return instance;
}

void replay(benchmark::State& state, const std::string& path) {
  const sluice::bench::BenchPlugin plugin = sluice::bench::load_plugin(
      sluice::core::NodeKind::kSource, "binance_liquidations", "replay_file = \"" + path + "\"");
  sluice::bench::run_source(state, plugin, kHost);
}

void BM_BinancePlainFrames(benchmark::State& state) { replay(state, files().plain_path()); }
BENCHMARK(BM_BinancePlainFrames)->Unit(benchmark::kMillisecond);

void BM_BinanceRecording(benchmark::State& state) { replay(state, files().recording_path()); }
BENCHMARK(BM_BinanceRecording)->Unit(benchmark::kMillisecond);

// Parses every frame, then calls make(liquidation, frame, sequence number) for each; items =
// frames.
template <class Make>
void each_frame(benchmark::State& state, Make make) {
  FrameParser parser;
  Liquidation liq;
  uint64_t n = 0;
  for (auto _ : state) {
    for (const std::string& frame : files().frames()) {
      if (parser.parse(frame, liq).kind != FrameKind::kLiquidation) {
        state.SkipWithError("a bench frame does not parse");
        return;
      }
      make(liq, frame, ++n);
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(n));
}

void BM_BinanceFrameParse(benchmark::State& state) {
  each_frame(state, [](const Liquidation& liq, const std::string&, uint64_t) {
    benchmark::DoNotOptimize(liq.trade_time_ms);
  });
}
BENCHMARK(BM_BinanceFrameParse)->Unit(benchmark::kMillisecond);

void BM_BinanceFrameParseBuildEvent(benchmark::State& state) {
  sluice::EventBuilder builder;
  each_frame(state, [&](const Liquidation& liq, const std::string& frame, uint64_t n) {
    builder.reset();
    sluice::binance::build_event(liq, frame, builder);
    builder.id(n).ingest_time_ns(1).source("binance");
    benchmark::DoNotOptimize(builder.finish().data());
  });
}
BENCHMARK(BM_BinanceFrameParseBuildEvent)->Unit(benchmark::kMillisecond);

// "" when a and b hold the same metadata and fields (names, types and values), else the first
// difference.
std::string difference(const EventView& a, const EventView& b) {
  if (a.id() != b.id() || a.event_time_ns() != b.event_time_ns() ||
      a.ingest_time_ns() != b.ingest_time_ns() || a.source() != b.source() || a.key() != b.key()) {
    return "metadata differs";
  }
  if (a.field_count() != b.field_count() || a.attr_count() != b.attr_count() ||
      a.hop_count() != b.hop_count()) {
    return "field, attr or hop counts differ";
  }
  for (size_t i = 0; i < a.field_count(); ++i) {
    const sluice::fb::Field& x = *a.field_at(i);
    const sluice::fb::Field& y = *b.field_at(i);
    const std::string name(EventView::sv(x.name()));
    if (EventView::sv(x.name()) != EventView::sv(y.name()) || x.type() != y.type() ||
        x.i() != y.i() || x.d() != y.d() || x.b() != y.b() ||
        EventView::sv(x.s()) != EventView::sv(y.s())) {
      return "field " + name + " differs";
    }
  }
  return "";
}

void BM_BinanceFrameParseWrite(benchmark::State& state) {
  sluice::binance::EventWriter writer("binance");
  {
    FrameParser parser;
    Liquidation liq;
    sluice::EventBuilder builder;
    for (size_t i = 0; i < 2 * 9; ++i) {
      const std::string& frame = files().frames()[i];
      parser.parse(frame, liq);
      builder.reset();
      sluice::binance::build_event(liq, frame, builder);
      builder.id(i + 1).ingest_time_ns(7).source("binance");
      const std::span<const uint8_t> written = writer.write(liq, frame, i + 1, 7);
      if (!EventView::verified(written.data(), written.size())) {
        state.SkipWithError("EventWriter wrote an event that does not verify");
        return;
      }
      const std::string diff = difference(EventView(written), EventView(builder.finish()));
      if (!diff.empty()) {
        state.SkipWithError(("EventWriter and build_event disagree: " + diff).c_str());
        return;
      }
    }
  }
  each_frame(state, [&](const Liquidation& liq, const std::string& frame, uint64_t n) {
    benchmark::DoNotOptimize(writer.write(liq, frame, n, 1).data());
  });
}
BENCHMARK(BM_BinanceFrameParseWrite)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
