// Pipeline: builds the stages of this process from the spec and placement, wires their
// ZeroMQ edges, runs them, drains on stop, serves the admin endpoint, reports a summary.
#include "sluice/core/runtime.hpp"

#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "admin_routes.hpp"
#include "edge_auth.hpp"
#include "sluice/core/edge_keys.hpp"
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

const PlacementGroup* Pipeline::group_spec(const std::string& name) const {
  for (const PlacementGroup& g : spec_.placement) {
    if (g.name == name) return &g;
  }
  return nullptr;
}

// Directory of this pipeline's ipc sockets: $XDG_RUNTIME_DIR (private to the user by design)
// or the temporary directory, one per pipeline name and state directory.
std::string Pipeline::ipc_dir() const {
  const char* runtime = std::getenv("XDG_RUNTIME_DIR");
  fs::path base = runtime ? fs::path(runtime) : fs::temp_directory_path();
  size_t h = std::hash<std::string>{}(fs::weakly_canonical(spec_.state_dir).string());
  return (base / fmt::format("sluice-{}-{:08x}", spec_.name, h & 0xffffffffu)).string();
}

// Endpoint a node binds for edges from other processes: tcp when its placement group has a
// port (stage i of the group listens on port + i), else ipc in the pipeline's ipc directory.
std::string Pipeline::remote_endpoint(const std::string& node) const {
  for (const PlacementGroup& g : spec_.placement) {
    auto it = std::find(g.nodes.begin(), g.nodes.end(), node);
    if (it == g.nodes.end()) continue;
    if (g.port != 0) {
      return fmt::format("tcp://{}:{}", g.host, g.port + (it - g.nodes.begin()));
    }
  }
  return fmt::format("ipc://{}/{}.ipc", ipc_dir(), node);
}

namespace {

// The ipc directory is predictable, so whoever creates it first controls the sockets in it:
// create it private, and use an existing one only when it is ours and private. Returns an
// error message, or "" when the directory is fit for use.
std::string ensure_private_dir(const std::string& dir) {
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return fmt::format("cannot create the ipc directory {}: {}", dir, std::strerror(errno));
  }
  struct stat st{};
  if (lstat(dir.c_str(), &st) != 0) {
    return fmt::format("cannot inspect the ipc directory {}: {}", dir, std::strerror(errno));
  }
  std::string what;
  if (!S_ISDIR(st.st_mode)) {
    what = "it is not a directory (a symbolic link or a file is in its place)";
  } else if (st.st_uid != geteuid()) {
    what = fmt::format("it is owned by uid {}, not by this user (uid {})", st.st_uid, geteuid());
  } else if ((st.st_mode & 077) != 0) {
    what = fmt::format("group or others have access to it (mode {:04o})", st.st_mode & 07777);
  }
  if (what.empty()) return {};
  return fmt::format("refusing the ipc directory {}: {}; someone else may be able to read or "
                     "replace this pipeline's sockets. Remove it (or set XDG_RUNTIME_DIR to a "
                     "private directory) and start again",
                     dir, what);
}

}  // namespace

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
  if (options_.dry_run) {
    settings_ = std::make_unique<SettingsStore>(spec_.settings);
    node_state_ = std::make_unique<NodeStateStore>(settings_.get());
  } else {
    settings_ = std::make_unique<SettingsStore>(spec_.state_dir, spec_.settings);
    node_state_ = std::make_unique<NodeStateStore>(spec_.state_dir, settings_.get());
  }
  HostServices services{spec_.name, spec_.state_dir, settings_.get(), &metrics_,
                        node_state_.get(), &commands_};

  std::vector<std::string> local = local_nodes();
  std::vector<Diagnostic> refused;
  auto is_local = [&](const std::string& n) {
    return std::find(local.begin(), local.end(), n) != local.end();
  };
  const PlacementGroup* own = group_spec(options_.process);
  for (const std::string& name : local) {
    const NodeSpec& node = *spec_.find(name);
    StageWiring w;
    if (node.kind != NodeKind::kSource) {
      for (const InputRef& in : node.inputs) ++(is_local(in.node) ? w.local_inputs : w.remote_inputs);
      if (w.remote_inputs > 0) {
        w.remote_bind = remote_endpoint(name);
        w.curve_server = own != nullptr && own->port != 0 && !own->curve_public_key.empty();
      }
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
        StageWiring::Edge edge;
        edge.node = down.name;
        if (is_local(down.name)) {
          edge.endpoint = "inproc://" + down.name;
        } else {
          edge.endpoint = remote_endpoint(down.name);
          edge.process = group_of(down.name);
          const PlacementGroup* g = group_spec(edge.process);
          if (g != nullptr && g->port != 0) edge.server_key = g->curve_public_key;
        }
        it->edges.push_back(std::move(edge));
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
  auth_.reset();  // its socket must close before the context ends
  if (zmq_ctx_ != nullptr) zmq_ctx_term(zmq_ctx_);
}

void Pipeline::stop() {
  if (stopping_.exchange(true)) hard_stop_.store(true);
  for (auto& s : stages_) s->wake();
}

void Pipeline::stop_for_failure() {
  stopping_.store(true);
  for (auto& s : stages_) s->wake();
}

std::string Pipeline::prepare_edges() {
  // ipc: the directory must be private before anything binds or connects in it.
  bool uses_ipc = false;
  for (const std::string& name : local_nodes()) {
    const NodeSpec& n = *spec_.find(name);
    for (const InputRef& in : n.inputs) {
      if (group_of(in.node) != group_of(name)) uses_ipc |= remote_endpoint(name).rfind("ipc", 0) == 0;
    }
    for (const NodeSpec& down : spec_.nodes) {
      for (const InputRef& in : down.inputs) {
        if (in.node == name && !down.is_child && group_of(down.name) != group_of(name)) {
          uses_ipc |= remote_endpoint(down.name).rfind("ipc", 0) == 0;
        }
      }
    }
  }
  if (uses_ipc && !options_.process.empty()) {
    if (std::string err = ensure_private_dir(ipc_dir()); !err.empty()) return err;
  }
  // CURVE: this process's secret, and which senders each of its tcp endpoints accepts.
  const PlacementGroup* own = group_spec(options_.process);
  if (own == nullptr || own->curve_public_key.empty()) return {};
  std::map<std::string, std::set<std::string>> allowed;
  bool uses_curve = false;
  for (const std::string& name : local_nodes()) {
    const NodeSpec& n = *spec_.find(name);
    for (const InputRef& in : n.inputs) {
      const PlacementGroup* up = group_spec(group_of(in.node));
      if (up == nullptr || up == own || own->port == 0) continue;
      allowed[name].insert(up->curve_public_key);
      uses_curve = true;
    }
    for (const NodeSpec& down : spec_.nodes) {
      for (const InputRef& in : down.inputs) {
        const PlacementGroup* g = group_spec(group_of(down.name));
        if (in.node == name && !down.is_child && g != nullptr && g != own && g->port != 0 &&
            !g->curve_public_key.empty()) {
          uses_curve = true;
        }
      }
    }
  }
  if (!uses_curve) return {};
  std::string secret = own->curve_secret_key;
  if (secret.empty() && !own->curve_secret_key_file.empty()) {
    std::string err;
    auto key = read_curve_secret_key_file(own->curve_secret_key_file, &err);
    if (!key) return fmt::format("placement.{}: {}", own->name, err);
    secret = *key;
  }
  if (secret.empty()) {
    return fmt::format("placement.{}: its tcp edges use CURVE but this process has no secret key: "
                       "set curve_secret_key = \"${{VAR}}\" (with VAR set here) or "
                       "curve_secret_key_file",
                       own->name);
  }
  if (curve_public_of(secret) != own->curve_public_key) {
    return fmt::format("placement.{}: the secret key does not belong to curve_public_key "
                       "(generate a matching pair with `sluice keys {}`)",
                       own->name, own->name);
  }
  curve_ = CurveIdentity{own->curve_public_key, std::move(secret)};
  if (!allowed.empty()) {
    auth_ = std::make_unique<EdgeAuthenticator>(zmq_ctx_, std::move(allowed),
                                                make_logger(spec_.name));
  }
  return {};
}

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
  // Sockets are opened here, before any stage runs: an endpoint that cannot be used ends the
  // run before the first event flows, naming the stage.
  if (std::string err = prepare_edges(); !err.empty()) {
    start_error_ = Diagnostic{{spec_.file, 0, 0}, err};
    logger->error("{}", start_error_->format());
    return 1;
  }
  for (auto& s : stages_) {
    try {
      s->open_sockets();
    } catch (const std::exception& e) {
      const NodeSpec& n = s->node().spec();
      start_error_ = Diagnostic{n.pos, fmt::format("{}.{}: {}", kind_section(n.kind), n.name,
                                                   e.what())};
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
    try {
      admin = std::make_unique<AdminServer>(
          AdminAccess{spec_.admin.address, spec_.admin.token, spec_.admin.hosts},
          static_cast<uint16_t>(port),
          [this](const HttpRequest& r) { return handle_admin(*this, r); });
    } catch (const std::exception& e) {
      // A busy port: say which, and end the run (the nodes started above stop as they are
      // destroyed) rather than let the exception abort the process.
      logger->error("{} (choose another [admin] port or --admin-port, or stop the process that "
                    "holds it)",
                    e.what());
      return 1;
    }
    admin_port_ = admin->port();
    logger->info("admin endpoint on http://{}:{}/metrics{}", spec_.admin.address, admin->port(),
                 spec_.admin.token.empty() ? "" : " (bearer token required)");
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
  uint64_t undelivered = 0;
  for (auto& s : stages_) {
    failed = failed || s->failed();
    undelivered += s->undelivered();
    if (s->failed() && !s->failure().empty()) {
      const NodeSpec& n = s->node().spec();
      logger->error("{}.{} failed: {}", kind_section(n.kind), n.name, s->failure());
    }
  }
  if (undelivered > 0) {
    logger->error("{} events could not be delivered to other processes", undelivered);
    failed = true;
  }
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
    for (const auto& s : stages_) {
      if (s->name() == m.node) r.undelivered = s->undelivered();
    }
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
  std::string out =
      fmt::format("{:<20} {:<10} {:<18} {:>10} {:>10} {:>8} {:>8} {:>11} {:>12} {:>8} {:>8}\n",
                  "node", "kind", "type", "in", "out", "errors", "dropped", "undelivered",
                  "events/s", "p50<=", "p99<=");
  for (const NodeSummary& r : rows) {
    uint64_t n = r.kind == "source" ? r.events_out : r.events_in;
    double rate = r.seconds > 0 ? static_cast<double>(n) / r.seconds : 0;
    fmt::format_to(std::back_inserter(out),
                   "{:<20} {:<10} {:<18} {:>10} {:>10} {:>8} {:>8} {:>11} {:>12.0f} {:>8} {:>8}\n",
                   r.node, r.kind, r.type, r.events_in, r.events_out, r.errors, r.dropped,
                   r.undelivered, rate, latency(r.latency_p50), latency(r.latency_p99));
  }
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  fmt::format_to(std::back_inserter(out), "peak RSS: {:.1f} MiB\n",
                 static_cast<double>(usage.ru_maxrss) / 1024.0);
  return out;
}

}  // namespace sluice::core
