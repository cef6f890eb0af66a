// Metrics storage and Prometheus text exposition.
#include "sluice/core/metrics.hpp"

#include <algorithm>
#include <vector>

#include <fmt/format.h>

#include "sluice/sdk.hpp"

namespace sluice::core {

size_t Histogram::bucket_of(int64_t ns) {
  return static_cast<size_t>(std::lower_bound(kBoundsNs.begin(), kBoundsNs.end(), ns) -
                             kBoundsNs.begin());
}

void Histogram::observe_ns(int64_t ns) {
  if (ns < 0) ns = 0;
  buckets_[bucket_of(ns)].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_ns_.fetch_add(ns, std::memory_order_relaxed);
}

void Histogram::merge(const uint64_t* buckets, uint64_t count, int64_t sum_ns) {
  for (size_t i = 0; i < buckets_.size(); ++i) {
    if (buckets[i] != 0) buckets_[i].fetch_add(buckets[i], std::memory_order_relaxed);
  }
  count_.fetch_add(count, std::memory_order_relaxed);
  sum_ns_.fetch_add(sum_ns, std::memory_order_relaxed);
}

double Histogram::quantile_upper_bound(double q) const {
  uint64_t total = count();
  if (total == 0) return 0;
  uint64_t rank = static_cast<uint64_t>(q * static_cast<double>(total));
  if (rank >= total) rank = total - 1;
  uint64_t seen = 0;
  for (size_t i = 0; i < buckets_.size(); ++i) {
    seen += bucket(i);
    if (seen > rank) return i < kBounds.size() ? kBounds[i] : kBounds.back();
  }
  return kBounds.back();
}

uint64_t NodeMetrics::error_total() const {
  uint64_t n = 0;
  for (const auto& e : errors) n += e.load(std::memory_order_relaxed);
  return n;
}

NodeMetrics& MetricsRegistry::node(const std::string& name, const std::string& kind,
                                   const std::string& type) {
  std::lock_guard lock(mu_);
  for (NodeMetrics& m : nodes_) {
    if (m.node == name) return m;
  }
  NodeMetrics& m = nodes_.emplace_back();
  m.node = name;
  m.kind = kind;
  m.type = type;
  return m;
}

const NodeMetrics* MetricsRegistry::find_node(const std::string& name) const {
  std::lock_guard lock(mu_);
  for (const NodeMetrics& m : nodes_) {
    if (m.node == name) return &m;
  }
  return nullptr;
}

std::string escape_label(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

MetricsRegistry::Series& MetricsRegistry::series(Series::Type t, const std::string& node,
                                                 std::string_view name,
                                                 std::string_view labels) {
  std::string full_labels = fmt::format("node=\"{}\"", escape_label(node));
  if (!labels.empty()) fmt::format_to(std::back_inserter(full_labels), ",{}", labels);
  std::string key = fmt::format("sluice_{}{{{}}}", name, full_labels);
  auto [it, inserted] = series_.try_emplace(std::move(key));
  if (inserted) {
    Series& s = it->second;
    s.type = t;
    s.family = fmt::format("sluice_{}", name);
    s.labels = std::move(full_labels);
    s.node = node;
    if (t == Series::Type::kHistogram) s.hist = std::make_unique<Histogram>();
  }
  return it->second;
}

void MetricsRegistry::counter_add(const std::string& node, std::string_view name,
                                  std::string_view labels, double v) {
  std::lock_guard lock(mu_);
  series(Series::Type::kCounter, node, name, labels).value.fetch_add(v, std::memory_order_relaxed);
}

void MetricsRegistry::gauge_set(const std::string& node, std::string_view name,
                                std::string_view labels, double v) {
  std::lock_guard lock(mu_);
  series(Series::Type::kGauge, node, name, labels).value.store(v, std::memory_order_relaxed);
}

MetricsRegistry::Series* MetricsRegistry::resolve(int kind, const std::string& node,
                                                  std::string_view name,
                                                  std::string_view labels) {
  if (kind < 0 || kind > 2) return nullptr;
  std::lock_guard lock(mu_);
  // A name already used with another kind keeps its first kind (as counter_add and gauge_set
  // do); record() follows the series' own kind.
  return &series(static_cast<Series::Type>(kind), node, name, labels);
}

void MetricsRegistry::record(Series* s, double v) {
  switch (s->type) {
    case Series::Type::kCounter:
      s->value.fetch_add(v, std::memory_order_relaxed);
      break;
    case Series::Type::kGauge:
      s->value.store(v, std::memory_order_relaxed);
      break;
    case Series::Type::kHistogram:
      if (s->hist) s->hist->observe_seconds(v);
      break;
  }
}

void MetricsRegistry::observe(const std::string& node, std::string_view name,
                              std::string_view labels, double v) {
  std::lock_guard lock(mu_);
  series(Series::Type::kHistogram, node, name, labels).hist->observe_seconds(v);
}

double MetricsRegistry::counter_value(const std::string& node, std::string_view name) const {
  std::lock_guard lock(mu_);
  std::string family = fmt::format("sluice_{}", name);
  double total = 0;
  for (const auto& [key, s] : series_) {
    if (s.node == node && s.family == family) total += s.value.load(std::memory_order_relaxed);
  }
  return total;
}

namespace {

void render_histogram(std::string& out, const std::string& family, const std::string& labels,
                      const Histogram& h) {
  uint64_t cumulative = 0;
  for (size_t i = 0; i < Histogram::kBounds.size(); ++i) {
    cumulative += h.bucket(i);
    fmt::format_to(std::back_inserter(out), "{}_bucket{{{},le=\"{}\"}} {}\n", family, labels,
                   Histogram::kBounds[i], cumulative);
  }
  cumulative += h.bucket(Histogram::kBounds.size());
  fmt::format_to(std::back_inserter(out), "{}_bucket{{{},le=\"+Inf\"}} {}\n", family, labels,
                 cumulative);
  fmt::format_to(std::back_inserter(out), "{}_sum{{{}}} {}\n{}_count{{{}}} {}\n", family, labels,
                 h.sum_seconds(), family, labels, cumulative);
}

void header(std::string& out, std::string_view name, std::string_view type,
            std::string_view help) {
  fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

}  // namespace

std::string MetricsRegistry::render_prometheus() const {
  std::lock_guard lock(mu_);
  std::string out;
  auto labels = [](const NodeMetrics& m) {
    return fmt::format("node=\"{}\",kind=\"{}\",type=\"{}\"", escape_label(m.node), m.kind,
                       escape_label(m.type));
  };
  auto counter_family = [&](const char* name, const char* help, auto get) {
    header(out, name, "counter", help);
    for (const NodeMetrics& m : nodes_) {
      fmt::format_to(std::back_inserter(out), "{}{{{}}} {}\n", name, labels(m), get(m));
    }
  };
  counter_family("sluice_node_events_in_total", "Events received by the node.",
                 [](const NodeMetrics& m) { return m.events_in.load(); });
  counter_family("sluice_node_events_out_total", "Events emitted by the node.",
                 [](const NodeMetrics& m) { return m.events_out.load(); });
  counter_family("sluice_node_bytes_in_total", "Event bytes received by the node.",
                 [](const NodeMetrics& m) { return m.bytes_in.load(); });
  counter_family("sluice_node_events_dropped_total",
                 "Events emitted to an output that nothing consumes.",
                 [](const NodeMetrics& m) { return m.dropped.load(); });
  header(out, "sluice_node_errors_total", "counter", "Failed events by error class.");
  for (const NodeMetrics& m : nodes_) {
    for (size_t c = 1; c < m.errors.size(); ++c) {
      fmt::format_to(std::back_inserter(out), "sluice_node_errors_total{{{},class=\"{}\"}} {}\n",
                     labels(m), status_name(static_cast<int>(c)), m.errors[c].load());
    }
  }
  header(out, "sluice_node_in_flight", "gauge", "Events being processed by the node now.");
  for (const NodeMetrics& m : nodes_) {
    fmt::format_to(std::back_inserter(out), "sluice_node_in_flight{{{}}} {}\n", labels(m),
                   m.in_flight.load());
  }
  auto hist_family = [&](const char* name, const char* help, auto get) {
    header(out, name, "histogram", help);
    for (const NodeMetrics& m : nodes_) render_histogram(out, name, labels(m), get(m));
  };
  hist_family("sluice_node_event_latency_seconds",
              "Time from the event's own timestamp to its arrival at the node.",
              [](const NodeMetrics& m) -> const Histogram& { return m.event_latency; });
  hist_family("sluice_node_ingest_latency_seconds",
              "Time from ingestion at the source to arrival at the node (sum of hop latencies).",
              [](const NodeMetrics& m) -> const Histogram& { return m.ingest_latency; });
  hist_family("sluice_node_process_seconds", "Duration of one process/consume call.",
              [](const NodeMetrics& m) -> const Histogram& { return m.process_time; });

  // Plugin series, grouped by family so HELP/TYPE appear once.
  std::map<std::string, std::vector<const Series*>> families;
  for (const auto& [key, s] : series_) families[s.family].push_back(&s);
  for (const auto& [family, list] : families) {
    const char* type = list.front()->type == Series::Type::kCounter  ? "counter"
                       : list.front()->type == Series::Type::kGauge ? "gauge"
                                                                     : "histogram";
    header(out, family, type, "Plugin metric.");
    for (const Series* s : list) {
      if (s->hist) {
        render_histogram(out, family, s->labels, *s->hist);
      } else {
        fmt::format_to(std::back_inserter(out), "{}{{{}}} {}\n", family, s->labels,
                       s->value.load(std::memory_order_relaxed));
      }
    }
  }
  return out;
}

}  // namespace sluice::core
