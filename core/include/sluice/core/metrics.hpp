// Process-wide metrics: per-node built-ins (events in/out/errors, in-flight, latency histograms)
// on atomics cheap enough for the hot path, plus plugin-defined counters/gauges/histograms,
// rendered in the Prometheus text format (PROTOCOLS.md).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace sluice::core {

// Fixed buckets in seconds, from 1 µs to 60 s, dense around the 10–150 µs a hop takes.
// Updates are lock-free.
class Histogram {
 public:
  static constexpr std::array<double, 27> kBounds = {
      1e-6, 2e-6, 5e-6, 1e-5, 2e-5, 3e-5, 5e-5, 7.5e-5, 1e-4, 1.5e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3,
      5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0};

  // kBounds in integer nanoseconds, for a bucket search without floating point.
  static constexpr std::array<int64_t, kBounds.size()> kBoundsNs = [] {
    std::array<int64_t, kBounds.size()> ns{};
    for (size_t i = 0; i < kBounds.size(); ++i) {
      ns[i] = static_cast<int64_t>(kBounds[i] * 1e9 + 0.5);
    }
    return ns;
  }();

  void observe_ns(int64_t ns);
  void observe_seconds(double s) { observe_ns(static_cast<int64_t>(s * 1e9)); }
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  double sum_seconds() const { return static_cast<double>(sum_ns_.load()) / 1e9; }
  uint64_t bucket(size_t i) const { return buckets_[i].load(std::memory_order_relaxed); }
  // Upper bound of the bucket holding quantile q (0..1); 0 when empty.
  double quantile_upper_bound(double q) const;
  static size_t bucket_of(int64_t ns);
  // Adds observations collected elsewhere (see LocalHistogram).
  void merge(const uint64_t* buckets, uint64_t count, int64_t sum_ns);

 private:
  std::array<std::atomic<uint64_t>, kBounds.size() + 1> buckets_{};
  std::atomic<uint64_t> count_{0};
  std::atomic<int64_t> sum_ns_{0};
};

// A single thread's histogram, merged into the shared one once per batch: the hot path then
// does plain increments instead of three atomic read-modify-writes per observation.
class LocalHistogram {
 public:
  void observe_ns(int64_t ns) {
    if (ns < 0) ns = 0;
    ++buckets_[Histogram::bucket_of(ns)];
    ++count_;
    sum_ns_ += ns;
  }
  void flush_into(Histogram& h) {
    if (count_ == 0) return;
    h.merge(buckets_.data(), count_, sum_ns_);
    buckets_.fill(0);
    count_ = 0;
    sum_ns_ = 0;
  }

 private:
  std::array<uint64_t, Histogram::kBounds.size() + 1> buckets_{};
  uint64_t count_ = 0;
  int64_t sum_ns_ = 0;
};

struct NodeMetrics {
  std::string node;
  std::string kind;  // source | processor | sink
  std::string type;  // plugin name
  std::atomic<uint64_t> events_in{0};
  std::atomic<uint64_t> events_out{0};
  std::atomic<uint64_t> bytes_in{0};
  std::atomic<uint64_t> dropped{0};  // emitted to an output nothing is wired to
  std::atomic<int64_t> in_flight{0};
  std::array<std::atomic<uint64_t>, 11> errors{};  // by sluice_status
  Histogram event_latency;   // receive time - event time
  Histogram ingest_latency;  // receive time - ingest time (cumulative transport latency)
  Histogram process_time;    // process() call → done()
  int64_t started_ns = 0;
  std::atomic<int64_t> finished_ns{0};

  uint64_t error_total() const;
};

class MetricsRegistry {
 public:
  NodeMetrics& node(const std::string& name, const std::string& kind, const std::string& type);
  const NodeMetrics* find_node(const std::string& name) const;

  // Plugin metrics, named without the sluice_ prefix; labels pre-rendered (k="v",...).
  void counter_add(const std::string& node, std::string_view name, std::string_view labels,
                   double v);
  void gauge_set(const std::string& node, std::string_view name, std::string_view labels,
                 double v);
  void observe(const std::string& node, std::string_view name, std::string_view labels,
               double v);
  double counter_value(const std::string& node, std::string_view name) const;  // all labels

  // A plugin's series resolved once (ABI 1.2 metric_series): record() is then one atomic
  // update, without formatting a name or taking the registry's lock. The pointer stays valid
  // as long as the registry. kind: 0 counter (adds), 1 gauge (sets), 2 histogram (observes).
  struct Series {
    enum class Type { kCounter, kGauge, kHistogram } type = Type::kCounter;
    std::string family;  // sluice_<name>
    std::string labels;  // full rendered label set
    std::string node;
    std::atomic<double> value{0};  // counters and gauges: updated without the registry's lock
    std::unique_ptr<Histogram> hist;
  };
  Series* resolve(int kind, const std::string& node, std::string_view name,
                  std::string_view labels);
  static void record(Series* series, double v);

  std::string render_prometheus() const;
  std::deque<NodeMetrics>& nodes() { return nodes_; }

 private:
  Series& series(Series::Type t, const std::string& node, std::string_view name,
                 std::string_view labels);

  mutable std::mutex mu_;
  std::deque<NodeMetrics> nodes_;  // stable addresses
  std::map<std::string, Series> series_;
};

// Escapes a Prometheus label value (\\, \", \n).
std::string escape_label(std::string_view v);

}  // namespace sluice::core
