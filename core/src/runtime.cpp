// Pipeline: builds the stages of this process from the spec and placement, wires their
// ZeroMQ edges, runs them, drains on stop, serves the admin endpoint, reports a summary.
#include "sluice/core/runtime.hpp"

#include <sys/resource.h>
#include <zmq.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "sluice/core/admin_server.hpp"
#include "sluice/sdk.hpp"
#include "stage.hpp"

namespace sluice::core {
namespace fs = std::filesystem;

std::string Pipeline::group_of(const std::string& node) const {
  for (const PlacementGroup& g : spec_.placement) {
    if (std::find(g.nodes.begin(), g.nodes.end(), node) != g.nodes.end()) return g.name;
  }
  return {};
}

std::vector<std::string> Pipeline::local_nodes() const {
  std::vector<std::string> out;
  for (const NodeSpec& n : spec_.nodes) {
    if (n.is_child) continue;
    if (options_.process.empty() || group_of(n.name) == options_.process) out.push_back(n.name);
  }
  return out;
}

// Endpoint a node's PULL socket binds for edges from other processes: tcp when its placement
// group has a port (stage i of the group listens on port + i), else ipc in a per-pipeline
// runtime directory.
std::string Pipeline::remote_endpoint(const std::string& node) const {
  for (const PlacementGroup& g : spec_.placement) {
    auto it = std::find(g.nodes.begin(), g.nodes.end(), node);
    if (it == g.nodes.end()) continue;
    if (g.port != 0) {
      return fmt::format("tcp://{}:{}", g.host, g.port + (it - g.nodes.begin()));
    }
  }
  const char* runtime = std::getenv("XDG_RUNTIME_DIR");
  fs::path base = runtime ? fs::path(runtime) : fs::temp_directory_path();
  size_t h = std::hash<std::string>{}(fs::weakly_canonical(spec_.state_dir).string());
  fs::path dir = base / fmt::format("sluice-{}-{:08x}", spec_.name, h & 0xffffffffu);
  std::error_code ec;
  fs::create_directories(dir, ec);
  return fmt::format("ipc://{}/{}.ipc", dir.string(), node);
}

Pipeline::Pipeline(const PipelineSpec& spec, const PluginRegistry& plugins, RunOptions options)
    : spec_(spec), options_(std::move(options)) {
  if (!options_.process.empty()) {
    bool known = std::any_of(spec_.placement.begin(), spec_.placement.end(),
                             [&](const PlacementGroup& g) { return g.name == options_.process; });
    if (!known) {
      std::vector<std::string> names;
      for (const PlacementGroup& g : spec_.placement) names.push_back(g.name);
      throw std::runtime_error(
          names.empty()
              ? fmt::format("--process {}: the pipeline has no [placement]", options_.process)
              : fmt::format("--process {}: no such placement group (groups: {})",
                            options_.process, fmt::join(names, ", ")));
    }
  }
  settings_ = std::make_unique<SettingsStore>(spec_.state_dir, spec_.settings);
  node_state_ = std::make_unique<NodeStateStore>(spec_.state_dir, settings_.get());
  HostServices services{spec_.name, spec_.state_dir, settings_.get(), &metrics_,
                        node_state_.get()};

  std::vector<std::string> local = local_nodes();
  std::vector<Diagnostic> refused;
  auto is_local = [&](const std::string& n) {
    return std::find(local.begin(), local.end(), n) != local.end();
  };
  for (const std::string& name : local) {
    const NodeSpec& node = *spec_.find(name);
    StageWiring w;
    bool remote_input = false;
    for (const InputRef& in : node.inputs) {
      if (!is_local(in.node)) remote_input = true;
    }
    if (node.kind != NodeKind::kSource) {
      w.bind.push_back("inproc://" + name);
      if (remote_input) w.bind.push_back(remote_endpoint(name));
      w.expected_eos = static_cast<int>(node.inputs.size());
      w.verify_inputs = remote_input;
    }
    // Outgoing edges: every input entry of another node that names this one.
    for (const NodeSpec& down : spec_.nodes) {
      if (down.is_child) continue;
      for (const InputRef& in : down.inputs) {
        if (in.node != name) continue;
        auto it = std::find_if(w.outputs.begin(), w.outputs.end(),
                               [&](const StageWiring::Output& o) { return o.name == in.output; });
        if (it == w.outputs.end()) {
          w.outputs.push_back({in.output, {}});
          it = std::prev(w.outputs.end());
        }
        bool local_down = is_local(down.name);
        it->endpoints.push_back(local_down ? "inproc://" + down.name
                                           : remote_endpoint(down.name));
        if (!local_down) w.remote_outputs = true;
      }
    }
    try {
      auto instance = NodeInstance::create(spec_, node, plugins, services);
      stages_.push_back(std::make_unique<Stage>(*this, std::move(instance), std::move(w)));
    } catch (const ConfigError& e) {
      // Keep going: every node's refusal is reported at once, as the loader does.
      refused.insert(refused.end(), e.diagnostics().begin(), e.diagnostics().end());
    }
  }
  if (!refused.empty()) throw ConfigError(std::move(refused));
  // Last, so a plugin refusing its options (a throw above) leaves nothing to clean up here.
  zmq_ctx_ = zmq_ctx_new();
}

Pipeline::~Pipeline() {
  stop();
  stop();
  stages_.clear();
  if (zmq_ctx_ != nullptr) zmq_ctx_term(zmq_ctx_);
}

void Pipeline::stop() {
  if (stopping_.exchange(true)) hard_stop_.store(true);
  for (auto& s : stages_) s->wake();
}

namespace {

HttpResponse handle_admin(Pipeline& p, const HttpRequest& req) {
  std::string path = req.target.substr(0, req.target.find('?'));
  if (req.method == "GET" && path == "/metrics") {
    return {200, "text/plain; version=0.0.4; charset=utf-8", p.metrics().render_prometheus()};
  }
  if (req.method == "GET" && path == "/health") return {200, "text/plain; charset=utf-8", "ok\n"};
  if (req.method == "GET" && path == "/ready") {
    return p.stopping() ? HttpResponse{503, "text/plain; charset=utf-8", "draining\n"}
                        : HttpResponse{200, "text/plain; charset=utf-8", "ready\n"};
  }
  if (req.method == "GET" && path == "/settings") {
    nlohmann::json j = p.settings().all();
    return {200, "application/json", j.dump() + "\n"};
  }
  const std::string prefix = "/settings/";
  if ((req.method == "PUT" || req.method == "POST") && path.rfind(prefix, 0) == 0) {
    auto value = nlohmann::json::parse(req.body, nullptr, false);
    if (value.is_discarded()) {
      return {400, "text/plain; charset=utf-8", "body must be a JSON value, e.g. 25000\n"};
    }
    std::string err = p.settings().set(path.substr(prefix.size()), value);
    if (!err.empty()) return {400, "text/plain; charset=utf-8", err + "\n"};
    return {200, "application/json", value.dump() + "\n"};
  }
  return {404, "text/plain; charset=utf-8", "not found: try /metrics, /health, /ready, /settings\n"};
}

}  // namespace

int Pipeline::run() {
  auto logger = make_logger(spec_.name);
  // Every node of this process exists (the constructor made them all). Start them before any
  // stage thread, so no event flows until every node is ready and a failing start ends the run
  // before it begins; `sluice validate` constructs a Pipeline but never gets here. The nodes
  // already started are stopped by their destruction, as after any run.
  for (auto& s : stages_) {
    try {
      s->node().start(spec_);
    } catch (const ConfigError& e) {
      start_error_ = e.diagnostics().front();
      logger->error("{}", start_error_->format());
      return 1;
    }
  }
  started_ns_ = sluice::now_ns();
  std::unique_ptr<AdminServer> admin;
  int port = options_.admin_port.value_or(spec_.admin.enabled ? spec_.admin.port : -1);
  if (port >= 0 && !options_.admin_port && port != 0 && !options_.process.empty()) {
    for (size_t i = 0; i < spec_.placement.size(); ++i) {
      if (spec_.placement[i].name == options_.process) port += static_cast<int>(i);
    }
  }
  if (port >= 0) {
    admin = std::make_unique<AdminServer>(spec_.admin.address, static_cast<uint16_t>(port),
                                          [this](const HttpRequest& r) {
                                            return handle_admin(*this, r);
                                          });
    admin_port_ = admin->port();
    logger->info("admin endpoint on http://{}:{}/metrics", spec_.admin.address, admin->port());
  }
  logger->info("running {} stage(s){}", stages_.size(),
               options_.process.empty() ? "" : fmt::format(" of process '{}'", options_.process));
  for (auto& s : stages_) s->start();

  // Housekeeping: settings changed by other processes, and the drain deadline after stop().
  int64_t deadline = 0;
  std::atomic<bool> all_done{false};
  std::thread joiner([&] {
    for (auto& s : stages_) s->join();
    all_done = true;
  });
  while (!all_done) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    settings_->refresh();
    if (stopping_ && deadline == 0) deadline = sluice::mono_ns() + spec_.grace_period_ns;
    if (deadline != 0 && sluice::mono_ns() > deadline && !hard_stop_) {
      logger->warn("drain exceeded the grace period ({} ms); forcing stop",
                   spec_.grace_period_ns / 1'000'000);
      hard_stop_ = true;
      for (auto& s : stages_) s->wake();
    }
  }
  joiner.join();
  bool failed = hard_stop_.load();
  for (auto& s : stages_) failed = failed || s->failed();
  if (options_.print_summary) {
    std::string table = format_summary(summary());
    std::fwrite(table.data(), 1, table.size(), stderr);
  }
  return failed ? 1 : 0;
}

std::vector<NodeSummary> Pipeline::summary() const {
  std::vector<NodeSummary> rows;
  for (const NodeMetrics& m : const_cast<MetricsRegistry&>(metrics_).nodes()) {
    NodeSummary r{m.node, m.kind, m.type, m.events_in.load(), m.events_out.load(),
                  m.error_total(), m.dropped.load(), 0};
    int64_t end = m.finished_ns.load();
    int64_t start = m.started_ns ? m.started_ns : started_ns_;
    if (end == 0) end = sluice::now_ns();
    r.seconds = static_cast<double>(end - start) / 1e9;
    r.latency_p50 = m.ingest_latency.quantile_upper_bound(0.50);
    r.latency_p99 = m.ingest_latency.quantile_upper_bound(0.99);
    rows.push_back(std::move(r));
  }
  return rows;
}

std::string format_summary(const std::vector<NodeSummary>& rows) {
  auto latency = [](double s) {
    if (s <= 0) return std::string("-");
    return s < 1e-3 ? fmt::format("{:.0f}us", s * 1e6) : fmt::format("{:.1f}ms", s * 1e3);
  };
  std::string out = fmt::format("{:<20} {:<10} {:<18} {:>10} {:>10} {:>8} {:>8} {:>12} {:>8} {:>8}\n",
                                "node", "kind", "type", "in", "out", "errors", "dropped",
                                "events/s", "p50<=", "p99<=");
  for (const NodeSummary& r : rows) {
    uint64_t n = r.kind == "source" ? r.events_out : r.events_in;
    double rate = r.seconds > 0 ? static_cast<double>(n) / r.seconds : 0;
    fmt::format_to(std::back_inserter(out),
                   "{:<20} {:<10} {:<18} {:>10} {:>10} {:>8} {:>8} {:>12.0f} {:>8} {:>8}\n", r.node,
                   r.kind, r.type, r.events_in, r.events_out, r.errors, r.dropped, rate,
                   latency(r.latency_p50), latency(r.latency_p99));
  }
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  fmt::format_to(std::back_inserter(out), "peak RSS: {:.1f} MiB\n",
                 static_cast<double>(usage.ru_maxrss) / 1024.0);
  return out;
}

}  // namespace sluice::core
