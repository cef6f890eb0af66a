// PluginHarness: one plugin through the real registry, option validation and NodeHost.
#include "plugin_harness.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <thread>

#include <spdlog/sinks/sink.h>
#include <spdlog/spdlog.h>

#include "sluice/core/config.hpp"
#include "sluice/core/metrics.hpp"
#include "sluice/core/node_host.hpp"
#include "sluice/core/plugin_registry.hpp"
#include "sluice/core/state.hpp"
#include "sluice/core/timer_queue.hpp"

namespace sluice::testing {
namespace fs = std::filesystem;
using namespace sluice::core;

namespace {

NodeKind parse_kind(const std::string& k) {
  if (k == "source") return NodeKind::kSource;
  if (k == "sink") return NodeKind::kSink;
  if (k == "processor") return NodeKind::kProcessor;
  throw std::invalid_argument("harness kind must be source, processor or sink, got " + k);
}

// Captures plugin log lines (the harness installs it on the node's logger).
class CaptureSink : public spdlog::sinks::sink {
 public:
  void log(const spdlog::details::log_msg& msg) override {
    std::lock_guard lock(mu_);
    sluice_log_level lvl = msg.level <= spdlog::level::trace   ? SLUICE_LOG_TRACE
                           : msg.level == spdlog::level::debug ? SLUICE_LOG_DEBUG
                           : msg.level == spdlog::level::info  ? SLUICE_LOG_INFO
                           : msg.level == spdlog::level::warn  ? SLUICE_LOG_WARN
                                                               : SLUICE_LOG_ERROR;
    lines_.push_back({lvl, std::string(msg.payload.data(), msg.payload.size())});
  }
  void flush() override {}
  void set_pattern(const std::string&) override {}
  void set_formatter(std::unique_ptr<spdlog::formatter>) override {}
  std::vector<LogLine> lines() const {
    std::lock_guard lock(mu_);
    return lines_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<LogLine> lines_;
};

}  // namespace

struct PluginHarness::Impl : Executor {
  PluginRegistry registry;
  PipelineSpec spec;
  MetricsRegistry metrics;
  std::unique_ptr<SettingsStore> settings;
  std::unique_ptr<NodeStateStore> node_state;
  std::unique_ptr<NodeInstance> node;
  std::shared_ptr<CaptureSink> capture = std::make_shared<CaptureSink>();
  std::string state_dir;
  bool own_state_dir = false;

  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::function<void()>> posted;

  TimerQueue timers;

  void post(std::function<void()> fn) override {
    std::lock_guard lock(mu);
    posted.push_back(std::move(fn));
    cv.notify_all();
  }
  uint64_t schedule(int64_t delay_ns, std::function<void(bool)> fn) override {
    uint64_t id = timers.add(sluice::mono_ns() + std::max<int64_t>(delay_ns, 0), std::move(fn));
    std::lock_guard lock(mu);
    cv.notify_all();
    return id;
  }
  bool cancel_scheduled(uint64_t id) override { return timers.cancel(id); }
  // Posted callbacks and due timers, as a stage thread runs them between events.
  void run_posted(std::unique_lock<std::mutex>& lock) {
    for (;;) {
      if (!posted.empty()) {
        auto fns = std::move(posted);
        posted.clear();
        lock.unlock();
        for (auto& f : fns) f();
        lock.lock();
        continue;
      }
      int64_t next = timers.next_due();
      if (next == 0 || next > sluice::mono_ns()) return;
      lock.unlock();
      timers.run_due(sluice::mono_ns());
      lock.lock();
    }
  }
  // Waits for a post, the next timer or the deadline.
  std::cv_status wait(std::unique_lock<std::mutex>& lock,
                      std::chrono::steady_clock::time_point deadline) {
    int64_t next = timers.next_due();
    if (next != 0) {
      auto until = std::chrono::steady_clock::now() +
                   std::chrono::nanoseconds(std::max<int64_t>(next - sluice::mono_ns(), 0));
      if (until < deadline) {
        cv.wait_until(lock, until);
        return std::cv_status::no_timeout;
      }
    }
    return cv.wait_until(lock, deadline);
  }

  struct HarnessCall {
    sluice_call call{};
    Impl* impl = nullptr;
    std::vector<uint8_t> input;
    CallResult result;
    bool done = false;
    // ABI 1.2 cancel handler the plugin registered (sluice_call.on_cancel).
    void (*cancel_fn)(void*, int) = nullptr;
    void* cancel_user = nullptr;
    bool cancel_resolved = false;

    ~HarnessCall() { resolve(0); }
    void resolve(int cancelled) {
      void (*fn)(void*, int) = nullptr;
      void* user = nullptr;
      {
        std::lock_guard lock(impl->mu);
        if (cancel_resolved) return;
        cancel_resolved = true;
        fn = std::exchange(cancel_fn, nullptr);
        user = cancel_user;
      }
      if (fn != nullptr) fn(user, cancelled);
    }
    static void on_cancel(sluice_call* c, void (*fn)(void*, int), void* user) {
      auto* self = reinterpret_cast<HarnessCall*>(c);
      {
        std::lock_guard lock(self->impl->mu);
        if (!self->cancel_resolved) {
          self->cancel_fn = fn;
          self->cancel_user = user;
          return;
        }
      }
      fn(user, 1);
    }

    static void emit(sluice_call* c, const char* output, const uint8_t* data, size_t size) {
      auto* self = reinterpret_cast<HarnessCall*>(c);
      std::lock_guard lock(self->impl->mu);
      if (data == self->call.event) self->result.forwarded_same_bytes = true;
      self->result.emitted.push_back(
          {output ? output : "", std::vector<uint8_t>(data, data + size)});
    }
    static void finish(sluice_call* c, const sluice_outcome* o) {
      auto* self = reinterpret_cast<HarnessCall*>(c);
      std::lock_guard lock(self->impl->mu);
      self->result.outcome = Outcome::from(*o, self->impl->node->descriptor().abi_minor >= 2);
      self->done = true;
      self->impl->cv.notify_all();
    }
  };
};

PluginHarness::PluginHarness(const std::string& kind, const std::string& type,
                             const std::string& options_toml, HarnessOptions opts)
    : impl_(std::make_unique<Impl>()) {
  std::vector<std::string> errors;
  impl_->registry.load_dirs(PluginRegistry::default_dirs(), &errors);
  EnvLookup env = [&opts](const std::string& name) -> std::optional<std::string> {
    auto it = opts.env.find(name);
    if (it != opts.env.end()) return it->second;
    return std::nullopt;
  };
  NodeSpec node =
      load_node_text(options_toml, parse_kind(kind), type, impl_->registry.catalog(), env);
  node.name = "test";
  impl_->spec.file = "<options>";
  impl_->spec.name = "test";
  impl_->spec.nodes.push_back(node);
  for (auto& [k, v] : opts.settings.items()) impl_->spec.settings.push_back({k, v, {}});
  if (opts.state_dir.empty()) {
    char tmpl[] = "/tmp/sluice-harness-XXXXXX";
    impl_->state_dir = mkdtemp(tmpl);
    impl_->own_state_dir = true;
  } else {
    impl_->state_dir = opts.state_dir;
  }
  impl_->spec.state_dir = impl_->state_dir;
  // The pipeline's state database, as `sluice run` opens it: a harness made again on the same
  // state_dir sees what the previous one committed, as a restarted pipeline does.
  impl_->settings = std::make_unique<SettingsStore>(impl_->state_dir, impl_->spec.settings);
  impl_->node_state = std::make_unique<NodeStateStore>(impl_->state_dir, impl_->settings.get());
  // Capture this node's log lines as well as printing them.
  auto logger = make_logger("test.test");
  logger->sinks().push_back(impl_->capture);
  HostServices services{"test", impl_->state_dir, impl_->settings.get(), &impl_->metrics,
                        impl_->node_state.get()};
  try {
    impl_->node =
        NodeInstance::create(impl_->spec, impl_->spec.nodes.front(), impl_->registry, services);
    impl_->node->set_executor(impl_.get());
    if (opts.start) impl_->node->start(impl_->spec);
  } catch (const ConfigError& e) {
    impl_->node.reset();
    logger->sinks().pop_back();
    throw std::runtime_error(e.what());
  }
}

void PluginHarness::start() {
  try {
    impl_->node->start(impl_->spec);
  } catch (const ConfigError& e) {
    throw std::runtime_error(e.what());
  }
}

PluginHarness::~PluginHarness() {
  impl_->timers.clear();
  impl_->node.reset();
  if (auto logger = spdlog::get("test.test")) {
    auto& sinks = logger->sinks();
    sinks.erase(std::remove(sinks.begin(), sinks.end(), impl_->capture), sinks.end());
  }
  if (impl_->own_state_dir) {
    std::error_code ec;
    fs::remove_all(impl_->state_dir, ec);
  }
}

std::vector<CallResult> PluginHarness::process_all(const std::vector<std::vector<uint8_t>>& events,
                                                   std::chrono::milliseconds timeout) {
  std::vector<std::unique_ptr<Impl::HarnessCall>> calls;
  const sluice_plugin_descriptor& d = impl_->node->descriptor();
  for (const auto& ev : events) {
    auto c = std::make_unique<Impl::HarnessCall>();
    c->impl = impl_.get();
    c->input = ev;
    c->call.event = c->input.data();
    c->call.event_size = c->input.size();
    c->call.emit = &Impl::HarnessCall::emit;
    c->call.done = &Impl::HarnessCall::finish;
    calls.push_back(std::move(c));
  }
  for (auto& c : calls) d.process(impl_->node->plugin().self(), &c->call);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::unique_lock lock(impl_->mu);
  while (true) {
    impl_->run_posted(lock);
    bool all = std::all_of(calls.begin(), calls.end(), [](auto& c) { return c->done; });
    if (all) break;
    if (impl_->wait(lock, deadline) == std::cv_status::timeout) {
      impl_->run_posted(lock);
      if (std::all_of(calls.begin(), calls.end(), [](auto& c) { return c->done; })) break;
      ADD_FAILURE() << "harness timeout: the plugin did not complete every call";
      std::vector<CallResult> out;
      for (auto& c : calls) {
        CallResult r = c->done ? c->result : CallResult{};
        if (!c->done) r.outcome = Outcome::failure(Status::kInternal, "harness timeout");
        out.push_back(std::move(r));
      }
      // Calls still pending are leaked on purpose: the plugin may still touch them.
      for (auto& c : calls) {
        if (!c->done) c.release();
      }
      return out;
    }
  }
  std::vector<CallResult> out;
  for (auto& c : calls) out.push_back(std::move(c->result));
  return out;
}

CallResult PluginHarness::process_as_child(std::span<const uint8_t> event, int64_t deadline_ns,
                                           std::optional<std::chrono::milliseconds> cancel_after,
                                           std::chrono::milliseconds timeout) {
  auto c = std::make_unique<Impl::HarnessCall>();
  c->impl = impl_.get();
  c->input.assign(event.begin(), event.end());
  c->call.event = c->input.data();
  c->call.event_size = c->input.size();
  c->call.emit = &Impl::HarnessCall::emit;
  c->call.done = &Impl::HarnessCall::finish;
  c->call.deadline_ns = deadline_ns;
  c->call.on_cancel = &Impl::HarnessCall::on_cancel;
  const sluice_plugin_descriptor& d = impl_->node->descriptor();
  auto started = std::chrono::steady_clock::now();
  d.process(impl_->node->plugin().self(), &c->call);
  auto deadline = started + timeout;
  bool cancelled = false;
  std::unique_lock lock(impl_->mu);
  while (!c->done) {
    impl_->run_posted(lock);
    if (c->done) break;
    auto wake = deadline;
    if (cancel_after && !cancelled) wake = std::min(wake, started + *cancel_after);
    impl_->wait(lock, wake);
    if (cancel_after && !cancelled && std::chrono::steady_clock::now() >= started + *cancel_after &&
        !c->done) {
      cancelled = true;
      lock.unlock();
      c->resolve(1);
      lock.lock();
    }
    if (!c->done && std::chrono::steady_clock::now() >= deadline) {
      ADD_FAILURE() << "harness timeout: the plugin did not complete the call";
      c.release();  // the plugin may still touch it
      CallResult r;
      r.outcome = Outcome::failure(Status::kInternal, "harness timeout");
      return r;
    }
  }
  CallResult r = c->result;
  lock.unlock();
  return r;
}

CallResult PluginHarness::process(std::span<const uint8_t> event,
                                  std::chrono::milliseconds timeout) {
  return process_all({std::vector<uint8_t>(event.begin(), event.end())}, timeout).front();
}

void PluginHarness::flush() {
  const sluice_plugin_descriptor& d = impl_->node->descriptor();
  if (d.flush != nullptr) d.flush(impl_->node->plugin().self());
}

namespace {

struct SourceRun {
  sluice_source_ctx ctx{};
  std::vector<std::vector<uint8_t>> events;
  size_t max_events = 0;
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::condition_variable cv;

  static int emit(sluice_source_ctx* c, const uint8_t* data, size_t size) {
    auto* self = static_cast<SourceRun*>(c->host_data);
    if (self->stop) return -1;
    self->events.emplace_back(data, data + size);
    if (self->events.size() >= self->max_events) self->stop = true;
    return self->stop ? -1 : 0;
  }
  static int stopping(sluice_source_ctx* c) {
    return static_cast<SourceRun*>(c->host_data)->stop ? 1 : 0;
  }
  static int sleep(sluice_source_ctx* c, int64_t ns) {
    auto* self = static_cast<SourceRun*>(c->host_data);
    std::unique_lock lock(self->mu);
    self->cv.wait_for(lock, std::chrono::nanoseconds(ns), [self] { return self->stop.load(); });
    return self->stop ? 1 : 0;
  }
};

}  // namespace

std::vector<std::vector<uint8_t>> PluginHarness::run_source(size_t max_events,
                                                            std::chrono::milliseconds timeout) {
  SourceRun run;
  run.max_events = max_events;
  run.ctx = {&run, &SourceRun::emit, &SourceRun::stopping, &SourceRun::sleep};
  bool finished = false;
  std::mutex done_mu;
  std::condition_variable done_cv;
  std::thread watchdog([&] {
    std::unique_lock lock(done_mu);
    if (!done_cv.wait_for(lock, timeout, [&] { return finished; })) {
      ADD_FAILURE() << "harness timeout: the source did not stop";
      run.stop = true;
      std::lock_guard l2(run.mu);
      run.cv.notify_all();
    }
  });
  sluice_error err{};
  const sluice_plugin_descriptor& d = impl_->node->descriptor();
  int rc = d.run(impl_->node->plugin().self(), &run.ctx, &err);
  {
    std::lock_guard lock(done_mu);
    finished = true;
  }
  done_cv.notify_all();
  watchdog.join();
  if (rc != 0) throw std::runtime_error(err.message);
  return std::move(run.events);
}

void PluginHarness::set_setting(const std::string& name, const nlohmann::json& value) {
  std::string err = impl_->settings->set(name, value);
  if (!err.empty()) throw std::runtime_error(err);
}

nlohmann::json PluginHarness::setting(const std::string& name) const {
  return impl_->settings->get(name).value_or(nlohmann::json());
}

std::optional<std::string> PluginHarness::node_state(const std::string& key) const {
  return impl_->node_state->get("test", key);
}

std::vector<LogLine> PluginHarness::logs() const { return impl_->capture->lines(); }

std::string PluginHarness::prometheus() const { return impl_->metrics.render_prometheus(); }

double PluginHarness::counter(const std::string& name) const {
  return impl_->metrics.counter_value("test", name);
}

const std::string& PluginHarness::state_dir() const { return impl_->state_dir; }

std::vector<uint8_t> make_event(const nlohmann::json& fields, std::string_view key, uint64_t id) {
  EventBuilder b;
  b.id(id).key(key).source("test").event_time_ns(now_ns()).ingest_time_ns(now_ns());
  for (auto& [name, v] : fields.items()) {
    if (v.is_boolean())
      b.field(name, v.get<bool>());
    else if (v.is_number_integer())
      b.field(name, v.get<int64_t>());
    else if (v.is_number())
      b.field(name, v.get<double>());
    else if (v.is_string())
      b.field(name, v.get<std::string>());
    else if (v.is_null())
      b.null_field(name);
    else
      b.field(name, v.dump());
  }
  auto bytes = b.finish();
  return {bytes.begin(), bytes.end()};
}

nlohmann::json event_to_json(std::span<const uint8_t> bytes) {
  EventView ev(bytes.data(), bytes.size());
  nlohmann::json fields = nlohmann::json::object();
  for (size_t i = 0; i < ev.field_count(); ++i) {
    const fb::Field* f = ev.field_at(i);
    std::string name(EventView::sv(f->name()));
    switch (f->type()) {
      case FieldType::Int:
        fields[name] = f->i();
        break;
      case FieldType::Double:
        fields[name] = f->d();
        break;
      case FieldType::Bool:
        fields[name] = f->b();
        break;
      case FieldType::String:
        fields[name] = std::string(EventView::sv(f->s()));
        break;
      case FieldType::Bytes:
        fields[name] = f->bin() ? f->bin()->size() : 0;
        break;
      default:
        fields[name] = nullptr;
    }
  }
  nlohmann::json attrs = nlohmann::json::object();
  for (size_t i = 0; i < ev.attr_count(); ++i) {
    attrs[std::string(EventView::sv(ev.attr_at(i)->key()))] =
        std::string(EventView::sv(ev.attr_at(i)->value()));
  }
  return {{"id", ev.id()},
          {"event_time_ns", ev.event_time_ns()},
          {"ingest_time_ns", ev.ingest_time_ns()},
          {"source", std::string(ev.source())},
          {"key", std::string(ev.key())},
          {"attrs", attrs},
          {"fields", fields}};
}

}  // namespace sluice::testing
