// Host services behind the plugin ABI (logging, settings, metrics, node state), and
// child-processor calls for composites.
#include "sluice/core/node_host.hpp"

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstring>
#include <mutex>

#include <fmt/format.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "sluice/redact.hpp"
#include "sluice/sdk.hpp"

namespace sluice::core {

bool RateLimitedLog::allow(uint64_t* suppressed) {
  int64_t now = sluice::mono_ns();
  if (now - window_start_ >= interval_ns_) {
    window_start_ = now;
    used_ = 0;
  }
  if (used_ < burst_) {
    ++used_;
    *suppressed = std::exchange(suppressed_, 0);
    return true;
  }
  ++suppressed_;
  return false;
}

namespace {

// JSON log lines: one object per line, message escaped properly (a pattern cannot escape).
class JsonFormatter : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    auto secs = std::chrono::duration_cast<std::chrono::microseconds>(msg.time.time_since_epoch());
    nlohmann::json j = {{"time_us", secs.count()},
                        {"level", std::string(spdlog::level::to_string_view(msg.level).data(),
                                              spdlog::level::to_string_view(msg.level).size())},
                        {"logger", std::string(msg.logger_name.data(), msg.logger_name.size())},
                        {"msg", std::string(msg.payload.data(), msg.payload.size())}};
    std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    line += '\n';
    dest.append(line.data(), line.data() + line.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

std::mutex g_log_mu;
std::string g_log_format = "text";
spdlog::level::level_enum g_log_level = spdlog::level::info;

void apply_format(spdlog::logger& l) {
  if (g_log_format == "json") {
    l.set_formatter(std::make_unique<JsonFormatter>());
  } else {
    l.set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ [%n] %v");
  }
  l.set_level(g_log_level);
}

}  // namespace

std::shared_ptr<spdlog::logger> make_logger(const std::string& name) {
  std::lock_guard lock(g_log_mu);
  if (auto existing = spdlog::get(name)) return existing;
  auto logger = spdlog::stderr_color_mt(name);
  apply_format(*logger);
  return logger;
}

void configure_logging(const std::string& level, const std::string& format) {
  std::lock_guard lock(g_log_mu);
  g_log_format = format;
  g_log_level = spdlog::level::from_str(level);
  spdlog::apply_all([](const std::shared_ptr<spdlog::logger>& l) { apply_format(*l); });
}

NodeHost::NodeHost(const HostServices& services, const NodeSpec& node, NodeMetrics* metrics)
    : services_(services),
      node_name_(node.name),
      metrics_(metrics),
      logger_(make_logger(services.pipeline + "." + node.name)) {
  state_dir_ = services.state_dir.empty() ? "" : services.state_dir + "/nodes/" + node.name;
  // Each secret option in every form it can come back in (a server echoing a webhook URL's
  // path, %-encoded or JSON-escaped), so logs, dead letters and metrics never carry it.
  for (const std::string& key : node.secret_keys) {
    auto it = node.options.find(key);
    if (it != node.options.end() && it->is_string()) {
      add_secret(secrets_, it->get<std::string>());
    }
  }
  host_.abi_major = SLUICE_ABI_MAJOR;
  host_.abi_minor = SLUICE_ABI_MINOR;
  host_.ctx = this;
  host_.pipeline_name = services_.pipeline.c_str();
  host_.node_name = node_name_.c_str();
  host_.state_dir = state_dir_.c_str();
  host_.log = &log_cb;
  host_.settings_version = &settings_version_cb;
  host_.setting_get = &setting_get_cb;
  host_.setting_set = &setting_set_cb;
  host_.counter_add = &counter_add_cb;
  host_.gauge_set = &gauge_set_cb;
  host_.histogram_observe = &observe_cb;
  host_.child_count = &child_count_cb;
  host_.child_name = &child_name_cb;
  host_.child_process = &child_process_cb;
  host_.state_get = &state_get_cb;
  host_.state_commit = &state_commit_cb;
  host_.timer_start = &timer_start_cb;
  host_.timer_cancel = &timer_cancel_cb;
  host_.child_start = &child_start_cb;
  host_.child_cancel = &child_cancel_cb;
  host_.command_register = &command_register_cb;
  host_.command_unregister = &command_unregister_cb;
  host_.emit = &emit_cb;
  host_.metric_series = &metric_series_cb;
  host_.metric_record = &metric_record_cb;
  is_source_ = node.kind == NodeKind::kSource;
  is_child_ = node.is_child;
}

NodeHost::~NodeHost() {
  // Before the stage that runs them goes: no command call can reach this node any more.
  if (services_.commands != nullptr) services_.commands->remove_node(node_name_);
}

int NodeHost::command_register_cb(void* ctx, const char* name, const char* description,
                                  sluice_command_fn fn, void* user) {
  auto* self = static_cast<NodeHost*>(ctx);
  if (self->services_.commands == nullptr) return 0;  // `sluice validate`: served nowhere
  std::string err =
      self->services_.commands->add(self->node_name_, name ? name : "",
                                    description ? description : "", fn, user, &self->executor_);
  if (err.empty()) return 0;
  self->logger_->error("{}", err);
  return 1;
}

int NodeHost::emit_cb(void* ctx, const char* output, const uint8_t* data, size_t size) {
  auto* self = static_cast<NodeHost*>(ctx);
  if (self->is_source_ || self->is_child_ || self->executor_ == nullptr) return -1;
  return self->executor_->emit(output, data, size) ? 0 : -1;
}

void NodeHost::command_unregister_cb(void* ctx, const char* name) {
  auto* self = static_cast<NodeHost*>(ctx);
  if (self->services_.commands != nullptr && name != nullptr) {
    self->services_.commands->remove(self->node_name_, name);
  }
}

std::string NodeHost::redact(std::string msg) const {
  if (secrets_.empty()) return msg;
  return redact_secrets(msg, secrets_, "***");
}

void NodeHost::log_cb(void* ctx, sluice_log_level level, const char* msg, size_t len) {
  auto* self = static_cast<NodeHost*>(ctx);
  static constexpr spdlog::level::level_enum kLevels[] = {spdlog::level::trace,
                                                          spdlog::level::debug, spdlog::level::info,
                                                          spdlog::level::warn, spdlog::level::err};
  auto lvl = kLevels[std::min<int>(std::max<int>(level, 0), 4)];
  if (!self->logger_->should_log(lvl)) return;
  self->logger_->log(lvl, "{}", self->redact(std::string(msg, len)));
}

uint64_t NodeHost::settings_version_cb(void* ctx) {
  auto* self = static_cast<NodeHost*>(ctx);
  return self->services_.settings ? self->services_.settings->version() : 0;
}

int64_t NodeHost::setting_get_cb(void* ctx, const char* name, char* buf, size_t cap) {
  auto* self = static_cast<NodeHost*>(ctx);
  if (self->services_.settings == nullptr) return -1;
  auto v = self->services_.settings->get(name);
  if (!v) return -1;
  std::string text = v->dump();
  if (text.size() <= cap) std::memcpy(buf, text.data(), text.size());
  return static_cast<int64_t>(text.size());
}

int NodeHost::setting_set_cb(void* ctx, const char* name, const char* value_json) {
  auto* self = static_cast<NodeHost*>(ctx);
  if (self->services_.settings == nullptr) return -1;
  auto v = nlohmann::json::parse(value_json, nullptr, false);
  if (v.is_discarded()) return -1;
  std::string err = self->services_.settings->set(name, v);
  if (!err.empty()) {
    self->logger_->warn("cannot change setting: {}", err);
    return -1;
  }
  self->logger_->info("setting '{}' changed to {}", name, v.dump());
  return 0;
}

int64_t NodeHost::state_get_cb(void* ctx, const char* key, uint8_t* buf, size_t cap) {
  auto* self = static_cast<NodeHost*>(ctx);
  if (self->services_.node_state == nullptr || key == nullptr) return -1;
  try {
    auto v = self->services_.node_state->get(self->node_name_, key);
    if (!v) return -1;
    if (v->size() <= cap && !v->empty()) std::memcpy(buf, v->data(), v->size());
    return static_cast<int64_t>(v->size());
  } catch (const std::exception& e) {
    self->logger_->error("cannot read node state '{}': {}", key, e.what());
    return -2;
  }
}

int NodeHost::state_commit_cb(void* ctx, const sluice_state_write* writes, size_t write_count,
                              const sluice_setting_write* settings, size_t setting_count, char* err,
                              size_t err_cap) {
  auto* self = static_cast<NodeHost*>(ctx);
  auto fail = [&](const std::string& msg) {
    if (err != nullptr && err_cap > 0) {
      size_t n = std::min(msg.size(), err_cap - 1);
      std::memcpy(err, msg.data(), n);
      err[n] = '\0';
    }
    return 1;
  };
  if (self->services_.node_state == nullptr) return fail("this host keeps no node state");
  std::vector<NodeStateStore::Write> w;
  w.reserve(write_count);
  for (size_t i = 0; i < write_count; ++i) {
    const sluice_state_write& x = writes[i];
    if (x.key == nullptr || x.key[0] == '\0') return fail("a node state key must not be empty");
    std::optional<std::string> value;
    if (x.value != nullptr) value.emplace(reinterpret_cast<const char*>(x.value), x.value_size);
    w.push_back({x.key, std::move(value)});
  }
  std::vector<NodeStateStore::SettingWrite> s;
  s.reserve(setting_count);
  for (size_t i = 0; i < setting_count; ++i) {
    const char* name = settings[i].name != nullptr ? settings[i].name : "";
    auto v = nlohmann::json::parse(settings[i].value_json != nullptr ? settings[i].value_json : "",
                                   nullptr, false);
    if (v.is_discarded()) return fail(fmt::format("setting '{}': value is not JSON", name));
    s.push_back({name, std::move(v)});
  }
  std::string e = self->services_.node_state->commit(self->node_name_, w, s);
  if (!e.empty()) {
    e = self->redact(e);
    self->logger_->warn("node state not written: {}", e);
    return fail(e);
  }
  for (const auto& c : s) self->logger_->info("setting '{}' changed to {}", c.name, c.value.dump());
  return 0;
}

// Metric labels are redacted like messages: a plugin may build one from what a server sent.
void NodeHost::counter_add_cb(void* ctx, const char* name, const char* labels, double v) {
  auto* self = static_cast<NodeHost*>(ctx);
  if (self->services_.metrics) {
    self->services_.metrics->counter_add(self->node_name_, name, self->redact(labels ? labels : ""),
                                         v);
  }
}

void NodeHost::gauge_set_cb(void* ctx, const char* name, const char* labels, double v) {
  auto* self = static_cast<NodeHost*>(ctx);
  if (self->services_.metrics) {
    self->services_.metrics->gauge_set(self->node_name_, name, self->redact(labels ? labels : ""),
                                       v);
  }
}

void NodeHost::observe_cb(void* ctx, const char* name, const char* labels, double v) {
  auto* self = static_cast<NodeHost*>(ctx);
  if (self->services_.metrics) {
    self->services_.metrics->observe(self->node_name_, name, self->redact(labels ? labels : ""), v);
  }
}

uint64_t NodeHost::metric_series_cb(void* ctx, int kind, const char* name, const char* labels) {
  auto* self = static_cast<NodeHost*>(ctx);
  if (self->services_.metrics == nullptr || name == nullptr) return 0;
  MetricsRegistry::Series* s = self->services_.metrics->resolve(
      kind, self->node_name_, name, self->redact(labels ? labels : ""));
  return reinterpret_cast<uintptr_t>(s);
}

void NodeHost::metric_record_cb(void*, uint64_t series, double v) {
  if (series != 0) MetricsRegistry::record(reinterpret_cast<MetricsRegistry::Series*>(series), v);
}

size_t NodeHost::child_count_cb(void* ctx) { return static_cast<NodeHost*>(ctx)->children_.size(); }

const char* NodeHost::child_name_cb(void* ctx, size_t i) {
  auto* self = static_cast<NodeHost*>(ctx);
  return i < self->children_.size() ? self->children_[i]->spec().name.c_str() : "";
}

namespace {

// A plugin's outcome, reading the ABI 1.2 usage members only from a plugin built with them
// (an older plugin's struct ends before them).
sluice_outcome read_outcome(const sluice_outcome* o, uint32_t plugin_minor) {
  sluice_outcome out{};
  if (plugin_minor >= 2) {
    out = *o;
  } else {
    std::memcpy(&out, o, offsetof(sluice_outcome, input_tokens));
  }
  return out;
}

}  // namespace

// One call of a child processor. The child may emit and finish on any thread; the composite's
// callback always runs on the composite's stage thread, through its executor, exactly once:
// with the child's outcome, or with cancelled / timeout when the composite or the deadline
// abandoned the call first (`state` decides which, by one compare-and-swap). Two references
// keep it alive: the child's (until its done) and the delivery's (until the callback ran).
struct NodeHost::ChildCall {
  enum State : int { kRunning = 0, kDone = 1, kAbandoned = 2 };

  sluice_call call{};  // call.host_data points back here
  NodeHost* parent = nullptr;
  uint64_t id = 0;
  std::vector<uint8_t> input;
  std::vector<std::vector<uint8_t>> emitted;
  std::vector<std::string> outputs;
  NodeInstance* child = nullptr;
  Executor* executor = nullptr;
  sluice_child_callback cb = nullptr;
  void* user = nullptr;
  int64_t start_ns = 0;
  int64_t latency_ns = 0;
  uint64_t deadline_timer = 0;  // stage thread only
  sluice_outcome outcome{};
  std::string message;
  std::string model;
  std::atomic<int> state{kRunning};
  std::atomic<int> refs{2};
  // The child's cancel handler (sluice_call.on_cancel), resolved exactly once.
  std::mutex cancel_mu;
  void (*cancel_fn)(void*, int) = nullptr;
  void* cancel_user = nullptr;
  int resolved = -1;  // -1 not yet, else the `cancelled` argument it was resolved with

  void release() {
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }
  // Tells the child's handler, once, whether the call was abandoned.
  void resolve_cancel(int cancelled) {
    void (*fn)(void*, int) = nullptr;
    void* u = nullptr;
    {
      std::lock_guard lock(cancel_mu);
      if (resolved >= 0) return;
      resolved = cancelled;
      fn = std::exchange(cancel_fn, nullptr);
      u = cancel_user;
    }
    if (fn != nullptr) fn(u, cancelled);
  }
  void set_message(const char* text) {
    message = text ? text : "";
    outcome.message = message.empty() ? nullptr : message.c_str();
  }

  static void on_cancel(sluice_call* c, void (*fn)(void*, int), void* u) {
    auto* self = static_cast<ChildCall*>(c->host_data);
    int now = -1;
    {
      std::lock_guard lock(self->cancel_mu);
      if (self->resolved >= 0) {
        now = self->resolved;
      } else {
        self->cancel_fn = fn;
        self->cancel_user = u;
      }
    }
    if (now >= 0) fn(u, now);
  }
  static void emit(sluice_call* c, const char* output, const uint8_t* data, size_t size) {
    auto* self = static_cast<ChildCall*>(c->host_data);
    if (self->state.load(std::memory_order_acquire) != kRunning) return;  // abandoned
    self->emitted.emplace_back(data, data + size);
    self->outputs.emplace_back(output ? output : "");
  }
  static void done(sluice_call* c, const sluice_outcome* o) {
    auto* self = static_cast<ChildCall*>(c->host_data);
    int64_t latency = sluice::mono_ns() - self->start_ns;
    NodeMetrics* m = self->child->host().metrics();
    if (m != nullptr) {
      m->in_flight.fetch_sub(1, std::memory_order_relaxed);
      m->process_time.observe_ns(latency);
      if (o->status == SLUICE_OK) {
        m->events_out.fetch_add(self->emitted.size(), std::memory_order_relaxed);
      } else if (static_cast<size_t>(o->status) < m->errors.size()) {
        m->errors[o->status].fetch_add(1, std::memory_order_relaxed);
      }
    }
    int expected = kRunning;
    if (self->state.compare_exchange_strong(expected, kDone, std::memory_order_acq_rel)) {
      self->outcome = read_outcome(o, self->child->descriptor().abi_minor);
      self->set_message(o->message);
      self->model = self->outcome.model ? self->outcome.model : "";
      self->outcome.model = self->model.empty() ? nullptr : self->model.c_str();
      self->latency_ns = latency;
      self->resolve_cancel(0);
      self->executor->post([self] { self->deliver(); });
    }
    // else: abandoned first; the composite has its cancelled/timeout outcome already.
    self->release();
  }

  // Abandons the call (stage thread): the composite gets `status` unless the child's outcome
  // came first.
  void abandon(sluice_status status, const std::string& why) {
    int expected = kRunning;
    if (!state.compare_exchange_strong(expected, kAbandoned, std::memory_order_acq_rel)) return;
    outcome = sluice_outcome{};
    outcome.status = status;
    set_message(why.c_str());
    latency_ns = sluice::mono_ns() - start_ns;
    resolve_cancel(1);
    executor->post([this] { deliver(); });
  }

  // Runs the composite's callback (stage thread), once.
  void deliver() {
    parent->child_calls_.erase(id);
    if (deadline_timer != 0) executor->cancel_scheduled(std::exchange(deadline_timer, 0));
    // Most children emit one event: the arrays live on the stack up to 4, on the heap beyond.
    constexpr size_t kInline = 4;
    const size_t n = state.load(std::memory_order_acquire) == kDone ? emitted.size() : 0;
    const uint8_t* data_inline[kInline];
    size_t sizes_inline[kInline];
    const char* outs_inline[kInline];
    std::vector<const uint8_t*> data_heap;
    std::vector<size_t> sizes_heap;
    std::vector<const char*> outs_heap;
    const uint8_t** data = data_inline;
    size_t* sizes = sizes_inline;
    const char** outs = outs_inline;
    if (n > kInline) {
      data_heap.resize(n);
      sizes_heap.resize(n);
      outs_heap.resize(n);
      data = data_heap.data();
      sizes = sizes_heap.data();
      outs = outs_heap.data();
    }
    for (size_t i = 0; i < n; ++i) {
      data[i] = emitted[i].data();
      sizes[i] = emitted[i].size();
      outs[i] = outputs[i].c_str();
    }
    sluice_child_result r{&outcome, latency_ns, n, data, sizes, outs};
    cb(user, &r);
    release();
  }
};

namespace {

std::string format_ms(int64_t ns) {
  return fmt::format("{:.1f} ms", static_cast<double>(ns) / 1e6);
}

}  // namespace

void NodeHost::child_process_cb(void* ctx, size_t i, const uint8_t* event, size_t size,
                                sluice_child_callback cb, void* user) {
  child_start_cb(ctx, i, event, size, 0, cb, user);
}

uint64_t NodeHost::child_start_cb(void* ctx, size_t i, const uint8_t* event, size_t size,
                                  int64_t deadline_ns, sluice_child_callback cb, void* user) {
  auto* self = static_cast<NodeHost*>(ctx);
  auto* c = new ChildCall();
  c->parent = self;
  c->id = ++self->next_child_call_;
  c->input.assign(event, event + size);
  c->cb = cb;
  c->user = user;
  c->executor = self->executor_;
  c->start_ns = sluice::mono_ns();
  self->child_calls_.emplace(c->id, c);
  auto fail_now = [c](sluice_status status, const std::string& why) {
    c->refs.store(1);  // no child will ever call done
    c->state.store(ChildCall::kAbandoned);
    c->outcome.status = status;
    c->set_message(why.c_str());
    c->resolved = 1;
    c->executor->post([c] { c->deliver(); });
    return c->id;
  };
  if (i >= self->children_.size()) return fail_now(SLUICE_ERR_INTERNAL, "no such child");
  c->child = self->children_[i];
  if (deadline_ns != 0 && deadline_ns <= c->start_ns) {
    return fail_now(SLUICE_ERR_TIMEOUT,
                    fmt::format("{}: no time left before the deadline (passed {} ago)",
                                c->child->spec().name, format_ms(c->start_ns - deadline_ns)));
  }
  c->call.event = c->input.data();
  c->call.event_size = c->input.size();
  c->call.host_data = c;
  c->call.emit = &ChildCall::emit;
  c->call.done = &ChildCall::done;
  c->call.deadline_ns = deadline_ns;
  c->call.on_cancel = &ChildCall::on_cancel;
  if (deadline_ns != 0 && c->executor != nullptr) {
    int64_t budget = deadline_ns - c->start_ns;
    c->deadline_timer = c->executor->schedule(budget, [c, budget](bool cancelled) {
      if (cancelled) return;
      c->deadline_timer = 0;
      c->abandon(SLUICE_ERR_TIMEOUT, fmt::format("{}: no answer within its deadline ({})",
                                                 c->child->spec().name, format_ms(budget)));
    });
  }
  if (NodeMetrics* m = c->child->host().metrics()) {
    m->events_in.fetch_add(1, std::memory_order_relaxed);
    m->in_flight.fetch_add(1, std::memory_order_relaxed);
  }
  uint64_t id = c->id;  // the child may complete (and the call be freed) inside process()
  const sluice_plugin_descriptor& d = c->child->descriptor();
  d.process(c->child->plugin().self(), &c->call);
  return id;
}

void NodeHost::child_cancel_cb(void* ctx, uint64_t call_id) {
  auto* self = static_cast<NodeHost*>(ctx);
  auto it = self->child_calls_.find(call_id);
  if (it == self->child_calls_.end()) return;
  it->second->abandon(SLUICE_ERR_CANCELLED, "cancelled by " + self->node_name_);
}

uint64_t NodeHost::timer_start_cb(void* ctx, int64_t delay_ns, void (*fn)(void*, int), void* user) {
  auto* self = static_cast<NodeHost*>(ctx);
  if (self->is_source_ || self->executor_ == nullptr) return 0;
  return self->executor_->schedule(delay_ns,
                                   [fn, user](bool cancelled) { fn(user, cancelled ? 1 : 0); });
}

int NodeHost::timer_cancel_cb(void* ctx, uint64_t id) {
  auto* self = static_cast<NodeHost*>(ctx);
  return self->executor_ != nullptr && self->executor_->cancel_scheduled(id) ? 1 : 0;
}

void NodeInstance::set_executor(Executor* e) {
  host_->set_executor(e);
  for (auto& c : children_) c->set_executor(e);
}

void NodeInstance::start(const PipelineSpec& spec) {
  if (started_) return;
  for (auto& c : children_) c->start(spec);
  sluice_error err{};
  if (!plugin_->start(&err)) {
    sluice_error safe = err;
    std::string msg =
        host_->redact(std::string(err.message, strnlen(err.message, sizeof(err.message))));
    msg = msg.empty() ? "failed to start" : "failed to start: " + msg;
    size_t n = std::min(msg.size(), sizeof(safe.message) - 1);
    std::memcpy(safe.message, msg.data(), n);
    safe.message[n] = '\0';
    throw ConfigError({plugin_error(spec, *spec_, safe)});
  }
  started_ = true;
}

std::unique_ptr<NodeInstance> NodeInstance::create(const PipelineSpec& spec, const NodeSpec& node,
                                                   const PluginRegistry& plugins,
                                                   const HostServices& services) {
  auto inst = std::unique_ptr<NodeInstance>(new NodeInstance());
  inst->spec_ = &node;
  std::vector<NodeInstance*> child_ptrs;
  for (const std::string& child_name : node.children) {
    const NodeSpec* child = spec.find(child_name);
    if (child == nullptr) {
      throw ConfigError({Diagnostic{node.pos, fmt::format("unknown child '{}'", child_name)}});
    }
    inst->children_.push_back(create(spec, *child, plugins, services));
    child_ptrs.push_back(inst->children_.back().get());
  }
  const Plugin* plugin = plugins.find(node.kind, node.type);
  if (plugin == nullptr) {
    throw ConfigError(
        {Diagnostic{node.pos, fmt::format("{}.{}: unknown {} type '{}'", kind_section(node.kind),
                                          node.name, kind_name(node.kind), node.type)}});
  }
  NodeMetrics* metrics = services.metrics
                             ? &services.metrics->node(node.name, kind_name(node.kind), node.type)
                             : nullptr;
  inst->host_ = std::make_unique<NodeHost>(services, node, metrics);
  inst->host_->set_children(std::move(child_ptrs));
  sluice_error err{};
  std::string config = node.options.dump();
  void* self = plugin->descriptor->create(inst->host_->raw(), config.c_str(), &err);
  if (self == nullptr) {
    sluice_error safe = err;
    std::string msg = inst->host_->redact(err.message);
    std::snprintf(safe.message, sizeof(safe.message), "%s", msg.c_str());
    throw ConfigError({plugin_error(spec, node, safe)});
  }
  inst->plugin_ = std::make_unique<PluginInstance>(*plugin, self);
  return inst;
}

}  // namespace sluice::core
