// Sluice SDK test double: runs one plugin class in-process, without the runtime.
//
// In the spirit of spdlog's tests/test_sink.h: a TestHost fills a sluice_host with working
// in-process services (captured log lines, a settings map with a version counter, metrics maps,
// per-node state in memory with atomic commits, timers on the test thread, scripted children for
// composites), and a TestPlugin creates the plugin through its SLUICE_PLUGIN descriptor and
// drives process()/consume()/run() from the test thread, collecting what the plugin emits and
// how each call ended.
//
// A composite is tested with scripted children (TestOptions::children): each answers a call
// after a delay with an outcome and events, and the host records every child call (start,
// deadline, end, whether it was cancelled), enforcing deadlines as the runtime does.
//
//   #include "sluice/testing.hpp"
//
//   sluice::testkit::TestPlugin upper({{"field", "symbol"}, {"missing", "forward"}});
//   auto r = upper.process(sluice::testkit::make_event({{"symbol", "btcusdt"}}));
//   EXPECT_TRUE(r.outcome.ok());
//   EXPECT_EQ(r.emitted.at(0).view().string("symbol"), "BTCUSDT");
//
// The test binary compiles the plugin's sources itself, so TestPlugin calls the plugin's exported
// entry point directly; no shared object is loaded and only the SDK headers are needed. Unlike
// the runtime, it validates nothing and applies no defaults: the JSON config reaches create()
// exactly as given, so a test spells out every option the constructor reads. Sleeps requested
// by a source are simulated (recorded, not slept), which keeps source tests fast.
//
// The in-tree harness (tests/support/plugin_harness.hpp) is the other tool: it loads the real
// .so through the real loader and option validator. This header is for plugin authors who have
// only the installed SDK.
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "sluice/sdk.hpp"
#include "sluice/units.hpp"

// Defined by the SLUICE_PLUGIN line of the plugin the test binary compiles in.
extern "C" SLUICE_EXPORT const sluice_plugin_descriptor* SLUICE_ENTRY_POINT(void);

namespace sluice::testkit {

struct LogLine {
  sluice_log_level level;
  std::string message;
};

// What a scripted child does with one call: after `after`, it completes with `outcome`,
// emitting `emit` (output name, event bytes) or, when `emit` is empty and the outcome is ok,
// the input unchanged on the default output.
struct ScriptedAnswer {
  std::chrono::nanoseconds after{0};
  Outcome outcome{};
  std::vector<std::pair<std::string, std::vector<uint8_t>>> emit{};
};
// Answers at once (or after `after`) with success, forwarding the input.
inline ScriptedAnswer answer(std::chrono::nanoseconds after = std::chrono::nanoseconds(0)) {
  return ScriptedAnswer{after, Outcome::success(), {}};
}
// Fails with `status` after `after`.
inline ScriptedAnswer fail_with(Status status, std::chrono::nanoseconds after = {},
                                std::string message = "scripted failure") {
  return ScriptedAnswer{after, Outcome::failure(status, std::move(message)), {}};
}

// A child processor of the composite under test: its name and how it answers its n-th call
// (n counts from 0, per child).
struct ScriptedChild {
  std::string name{};
  std::function<ScriptedAnswer(EventView event, size_t n)> script{};
};

// One child call the test host saw.
struct ChildCallRecord {
  size_t child = 0;
  std::string name{};
  int64_t start_ns = 0;     // mono_ns() when the composite started it
  int64_t deadline_ns = 0;  // as given to start_child (0 = none)
  int64_t end_ns = 0;       // when its outcome reached the composite (0 = not yet)
  Status status = Status::kOk;
  bool cancelled = false;  // abandoned by cancel_child (status kCancelled)
  bool timed_out = false;  // abandoned at its deadline (status kTimeout)
};

struct TestOptions {
  std::string pipeline_name = "test";
  std::string node_name = "under_test";
  std::string state_dir;           // "" = the plugin gets no state directory
  Json settings = Json::object();  // initial [settings]: name → value
  bool echo_logs = false;          // also print every log line to stderr
  // Calls the plugin's start hook (ABI 1.1) after create(), as `sluice run` does; false only
  // creates it, as `sluice validate` does (call TestPlugin::start() later).
  bool start = true;
  // Children of a composite, in the order of the host's child table (child index = position).
  std::vector<ScriptedChild> children{};
  // true: the config is written as in a pipeline file ("60s", "64KiB", child names, defaults
  // left out) and goes through apply_schema() first, as the host converts it; false: it is
  // already in the form create() receives (durations in ns, child indices, defaults filled).
  bool as_written = false;
};

// The host services one plugin instance sees. Thread-safe, like the runtime's: asynchronous
// plugins may log, count and read settings from their own threads.
class TestHost {
 public:
  explicit TestHost(const TestOptions& options = {})
      : pipeline_name_(options.pipeline_name),
        node_name_(options.node_name),
        state_dir_(options.state_dir),
        echo_logs_(options.echo_logs),
        children_(options.children) {
    for (const auto& [name, value] : options.settings.items()) settings_[name] = value.dump();
    host_.abi_major = SLUICE_ABI_MAJOR;
    host_.abi_minor = SLUICE_ABI_MINOR;
    host_.ctx = this;
    host_.pipeline_name = pipeline_name_.c_str();
    host_.node_name = node_name_.c_str();
    host_.state_dir = state_dir_.empty() ? nullptr : state_dir_.c_str();
    host_.log = &TestHost::log_cb;
    host_.settings_version = &TestHost::settings_version_cb;
    host_.setting_get = &TestHost::setting_get_cb;
    host_.setting_set = &TestHost::setting_set_cb;
    host_.counter_add = &TestHost::counter_add_cb;
    host_.gauge_set = &TestHost::gauge_set_cb;
    host_.histogram_observe = &TestHost::histogram_observe_cb;
    host_.child_count = &TestHost::child_count_cb;
    host_.child_name = &TestHost::child_name_cb;
    host_.child_process = &TestHost::child_process_cb;
    host_.state_get = &TestHost::state_get_cb;
    host_.state_commit = &TestHost::state_commit_cb;
    host_.timer_start = &TestHost::timer_start_cb;
    host_.timer_cancel = &TestHost::timer_cancel_cb;
    host_.child_start = &TestHost::child_start_cb;
    host_.child_cancel = &TestHost::child_cancel_cb;
    host_.command_register = &TestHost::command_register_cb;
    host_.command_unregister = &TestHost::command_unregister_cb;
    host_.emit = &TestHost::emit_cb;
    host_.metric_series = &TestHost::metric_series_cb;
    host_.metric_record = &TestHost::metric_record_cb;
  }
  ~TestHost() {
    // Timers still pending never run; their owners get the cancelled call that frees them.
    std::multimap<int64_t, Timer> pending;
    {
      std::lock_guard lock(mu_);
      pending.swap(timers_);
    }
    for (auto& [due, t] : pending) {
      if (t.plugin_fn != nullptr) t.plugin_fn(t.plugin_user, 1);
    }
  }
  // The plugin keeps a pointer to raw(), so the host never moves.
  TestHost(const TestHost&) = delete;
  TestHost& operator=(const TestHost&) = delete;

  const sluice_host* raw() const { return &host_; }

  std::vector<LogLine> logs() const {
    std::lock_guard lock(mu_);
    return logs_;
  }
  // True if a line at `level` contains `text`.
  bool logged(sluice_log_level level, std::string_view text) const {
    std::lock_guard lock(mu_);
    for (const LogLine& line : logs_) {
      if (line.level == level && line.message.find(text) != std::string::npos) return true;
    }
    return false;
  }
  void clear_logs() {
    std::lock_guard lock(mu_);
    logs_.clear();
  }

  // Changes a setting as `/setthreshold` or a pipeline reload would: bumps the version.
  void set_setting(const std::string& name, const Json& value) {
    std::lock_guard lock(mu_);
    settings_[name] = value.dump();
    ++settings_version_;
  }
  std::optional<Json> setting(const std::string& name) const {
    std::lock_guard lock(mu_);
    auto it = settings_.find(name);
    if (it == settings_.end()) return std::nullopt;
    return Json::parse(it->second);
  }
  uint64_t settings_version() const {
    std::lock_guard lock(mu_);
    return settings_version_;
  }

  // Node state (ABI 1.2), in memory: what the plugin committed, or what a test seeds before
  // creating it (as a restarted pipeline would find it).
  std::optional<std::string> state(const std::string& key) const {
    std::lock_guard lock(mu_);
    auto it = state_.find(key);
    if (it == state_.end()) return std::nullopt;
    return it->second;
  }
  void set_state(const std::string& key, std::string value) {
    std::lock_guard lock(mu_);
    state_[key] = std::move(value);
  }
  std::map<std::string, std::string, std::less<>> all_state() const {
    std::lock_guard lock(mu_);
    return state_;
  }
  // Every later commit fails with this reason (as a full disk would) and changes nothing; ""
  // lets them succeed again.
  void fail_commits(std::string reason) {
    std::lock_guard lock(mu_);
    commit_failure_ = std::move(reason);
  }
  size_t commits() const {
    std::lock_guard lock(mu_);
    return commits_;
  }

  // Runs the callbacks posted for the plugin (child results) and the timers that are due, as
  // the runtime's stage thread does between calls. TestPlugin runs them after each process()
  // and while waiting for done().
  void run_posted() {
    for (;;) {
      std::function<void()> fn;
      {
        std::lock_guard lock(mu_);
        if (!posted_.empty()) {
          fn = std::move(posted_.front());
          posted_.pop_front();
        } else if (!timers_.empty() && timers_.begin()->first <= mono_ns()) {
          Timer t = std::move(timers_.begin()->second);
          timers_.erase(timers_.begin());
          if (t.plugin_fn != nullptr) {
            fn = [t] { t.plugin_fn(t.plugin_user, 0); };
          } else {
            fn = std::move(t.fn);
          }
        } else {
          return;
        }
      }
      fn();
    }
  }
  // mono_ns() of the next pending timer, 0 when none.
  int64_t next_timer_ns() const {
    std::lock_guard lock(mu_);
    return timers_.empty() ? 0 : timers_.begin()->first;
  }
  // Timers the plugin has pending.
  size_t pending_timers() const {
    std::lock_guard lock(mu_);
    size_t n = 0;
    for (const auto& [due, t] : timers_) n += t.plugin_fn != nullptr ? 1 : 0;
    return n;
  }
  // Events the plugin sent on its own (Host::emit), in order: output name ("" = default), bytes.
  std::vector<std::pair<std::string, std::vector<uint8_t>>> host_emitted() const {
    std::lock_guard lock(mu_);
    return host_emitted_;
  }
  // A node command's answer: ok with its JSON, or the refusal's message.
  struct CommandReply {
    bool ok = false;
    Json value;
    std::string error;
  };
  // Calls a command the plugin registered, on this thread (as the runtime does on the stage
  // thread), and returns its reply; waits up to `timeout` for a reply given later.
  CommandReply command(const std::string& name, const Json& args = Json::object(),
                       std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    sluice_command_fn fn = nullptr;
    void* user = nullptr;
    {
      std::lock_guard lock(mu_);
      auto it = commands_.find(name);
      if (it == commands_.end()) return {false, nullptr, "no command '" + name + "'"};
      fn = it->second.fn;
      user = it->second.user;
    }
    auto state = std::make_shared<CommandState>();
    auto* ctx = new std::shared_ptr<CommandState>(state);
    const std::string text = args.dump();
    fn(user, text.data(), text.size(), &TestHost::command_reply_cb, ctx);
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      {
        std::lock_guard lock(state->mu);
        if (state->done) {
          if (state->status != 0) return {false, nullptr, state->text};
          Json value = Json::parse(state->text, nullptr, false);
          if (value.is_discarded()) return {false, nullptr, "the answer is not JSON"};
          return {true, value, ""};
        }
      }
      if (std::chrono::steady_clock::now() >= deadline) return {false, nullptr, "no reply"};
      run_posted();
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  // The commands registered: name → description.
  std::map<std::string, std::string> commands() const {
    std::lock_guard lock(mu_);
    std::map<std::string, std::string> out;
    for (const auto& [name, c] : commands_) out[name] = c.description;
    return out;
  }

  // Every child call so far, in start order.
  std::vector<ChildCallRecord> child_calls() const {
    std::lock_guard lock(mu_);
    std::vector<ChildCallRecord> out;
    out.reserve(child_calls_.size());
    for (const auto& c : child_calls_) out.push_back(c->record);
    return out;
  }

  // Sum of counter_add() for a name over all label sets, 0 if never counted.
  double counter(std::string_view name) const {
    std::lock_guard lock(mu_);
    double sum = 0;
    for (const auto& [key, value] : counters_) {
      if (key.first == name) sum += value;
    }
    return sum;
  }
  // Sum of counter_add() for a name and one exact label string ("" = no labels).
  double counter(std::string_view name, std::string_view labels) const {
    std::lock_guard lock(mu_);
    auto it = counters_.find({std::string(name), std::string(labels)});
    return it == counters_.end() ? 0 : it->second;
  }
  // Last gauge_set() value, nullopt if never set.
  std::optional<double> gauge(std::string_view name, std::string_view labels = {}) const {
    std::lock_guard lock(mu_);
    auto it = gauges_.find({std::string(name), std::string(labels)});
    if (it == gauges_.end()) return std::nullopt;
    return it->second;
  }
  // Every histogram_observe() value in call order.
  std::vector<double> observations(std::string_view name, std::string_view labels = {}) const {
    std::lock_guard lock(mu_);
    auto it = histograms_.find({std::string(name), std::string(labels)});
    return it == histograms_.end() ? std::vector<double>{} : it->second;
  }

 private:
  using MetricKey = std::pair<std::string, std::string>;  // name, labels

  static TestHost& self(void* ctx) { return *static_cast<TestHost*>(ctx); }
  static MetricKey metric_key(const char* name, const char* labels) {
    return {name, labels == nullptr ? "" : labels};
  }

  static void log_cb(void* ctx, sluice_log_level level, const char* msg, size_t len) {
    TestHost& h = self(ctx);
    std::lock_guard lock(h.mu_);
    h.logs_.push_back({level, std::string(msg, len)});
    if (h.echo_logs_) {
      std::fprintf(stderr, "[%s] %d %.*s\n", h.node_name_.c_str(), static_cast<int>(level),
                   static_cast<int>(len), msg);
    }
  }
  static uint64_t settings_version_cb(void* ctx) { return self(ctx).settings_version(); }
  static int64_t setting_get_cb(void* ctx, const char* name, char* buf, size_t cap) {
    TestHost& h = self(ctx);
    std::lock_guard lock(h.mu_);
    auto it = h.settings_.find(name);
    if (it == h.settings_.end()) return -1;
    std::memcpy(buf, it->second.data(), std::min(cap, it->second.size()));
    return static_cast<int64_t>(it->second.size());
  }
  static int setting_set_cb(void* ctx, const char* name, const char* value_json) {
    Json value = Json::parse(value_json, nullptr, false);
    if (value.is_discarded()) return -1;
    self(ctx).set_setting(name, value);
    return 0;
  }
  static int64_t state_get_cb(void* ctx, const char* key, uint8_t* buf, size_t cap) {
    TestHost& h = self(ctx);
    std::lock_guard lock(h.mu_);
    auto it = h.state_.find(key);
    if (it == h.state_.end()) return -1;
    if (!it->second.empty()) std::memcpy(buf, it->second.data(), std::min(cap, it->second.size()));
    return static_cast<int64_t>(it->second.size());
  }
  // All or nothing, as the runtime's: every setting must exist and keep its JSON type.
  static int state_commit_cb(void* ctx, const sluice_state_write* writes, size_t write_count,
                             const sluice_setting_write* settings, size_t setting_count, char* err,
                             size_t err_cap) {
    TestHost& h = self(ctx);
    auto fail = [&](const std::string& msg) {
      if (err != nullptr && err_cap > 0) std::snprintf(err, err_cap, "%s", msg.c_str());
      return 1;
    };
    std::lock_guard lock(h.mu_);
    if (!h.commit_failure_.empty()) return fail(h.commit_failure_);
    auto kind = [](const Json& v) {
      return v.is_boolean() ? 1 : v.is_number() ? 2 : v.is_string() ? 3 : 4;
    };
    std::vector<std::pair<std::string, Json>> changes;
    for (size_t i = 0; i < setting_count; ++i) {
      const std::string name = settings[i].name;
      Json value = Json::parse(settings[i].value_json, nullptr, false);
      auto it = h.settings_.find(name);
      if (it == h.settings_.end()) return fail("unknown setting '" + name + "'");
      if (value.is_discarded() || kind(value) != kind(Json::parse(it->second))) {
        return fail("setting '" + name + "' must keep its type");
      }
      changes.emplace_back(name, std::move(value));
    }
    for (size_t i = 0; i < write_count; ++i) {
      if (writes[i].key == nullptr || writes[i].key[0] == '\0') {
        return fail("a node state key must not be empty");
      }
    }
    for (size_t i = 0; i < write_count; ++i) {
      const sluice_state_write& w = writes[i];
      if (w.value == nullptr) {
        h.state_.erase(std::string(w.key));
      } else {
        h.state_[w.key] = std::string(reinterpret_cast<const char*>(w.value), w.value_size);
      }
    }
    for (auto& [name, value] : changes) h.settings_[name] = value.dump();
    if (!changes.empty()) ++h.settings_version_;
    ++h.commits_;
    return 0;
  }
  static void counter_add_cb(void* ctx, const char* name, const char* labels, double value) {
    TestHost& h = self(ctx);
    std::lock_guard lock(h.mu_);
    h.counters_[metric_key(name, labels)] += value;
  }
  static void gauge_set_cb(void* ctx, const char* name, const char* labels, double value) {
    TestHost& h = self(ctx);
    std::lock_guard lock(h.mu_);
    h.gauges_[metric_key(name, labels)] = value;
  }
  static void histogram_observe_cb(void* ctx, const char* name, const char* labels, double value) {
    TestHost& h = self(ctx);
    std::lock_guard lock(h.mu_);
    h.histograms_[metric_key(name, labels)].push_back(value);
  }
  // Resolved series (Host::counter/gauge/histogram) land in the same maps as by-name calls.
  static uint64_t metric_series_cb(void* ctx, int kind, const char* name, const char* labels) {
    TestHost& h = self(ctx);
    if (kind < SLUICE_METRIC_COUNTER || kind > SLUICE_METRIC_HISTOGRAM) return 0;
    std::lock_guard lock(h.mu_);
    h.series_.emplace_back(kind, metric_key(name, labels));
    return h.series_.size();
  }
  static void metric_record_cb(void* ctx, uint64_t id, double value) {
    TestHost& h = self(ctx);
    std::lock_guard lock(h.mu_);
    if (id == 0 || id > h.series_.size()) return;
    const auto& [kind, key] = h.series_[id - 1];
    if (kind == SLUICE_METRIC_COUNTER) h.counters_[key] += value;
    if (kind == SLUICE_METRIC_GAUGE) h.gauges_[key] = value;
    if (kind == SLUICE_METRIC_HISTOGRAM) h.histograms_[key].push_back(value);
  }
  static int emit_cb(void* ctx, const char* output, const uint8_t* data, size_t size) {
    TestHost& h = self(ctx);
    std::lock_guard lock(h.mu_);
    h.host_emitted_.emplace_back(output != nullptr ? output : "",
                                 std::vector<uint8_t>(data, data + size));
    return 0;
  }
  struct Command {
    std::string description;
    sluice_command_fn fn = nullptr;
    void* user = nullptr;
  };
  struct CommandState {
    std::mutex mu;
    bool done = false;
    int status = 0;
    std::string text;
  };
  static int command_register_cb(void* ctx, const char* name, const char* description,
                                 sluice_command_fn fn, void* user) {
    TestHost& h = self(ctx);
    std::lock_guard lock(h.mu_);
    if (name == nullptr || name[0] == '\0' || h.commands_.count(name) != 0) return 1;
    h.commands_[name] = Command{description ? description : "", fn, user};
    return 0;
  }
  static void command_unregister_cb(void* ctx, const char* name) {
    TestHost& h = self(ctx);
    std::lock_guard lock(h.mu_);
    if (name != nullptr) h.commands_.erase(name);
  }
  static void command_reply_cb(void* reply_ctx, int status, const char* text, size_t len) {
    std::unique_ptr<std::shared_ptr<CommandState>> holder(
        static_cast<std::shared_ptr<CommandState>*>(reply_ctx));
    CommandState& s = **holder;
    std::lock_guard lock(s.mu);
    s.done = true;
    s.status = status;
    s.text.assign(text != nullptr ? text : "", text != nullptr ? len : 0);
  }

  // A timer: either the plugin's (plugin_fn) or the host's own (fn, for scripted children).
  struct Timer {
    uint64_t id = 0;
    void (*plugin_fn)(void* user, int cancelled) = nullptr;
    void* plugin_user = nullptr;
    std::function<void()> fn;
  };
  // Caller holds mu_.
  uint64_t add_timer_locked(int64_t delay_ns, Timer t) {
    t.id = ++next_id_;
    uint64_t id = t.id;
    timers_.emplace(mono_ns() + std::max<int64_t>(delay_ns, 0), std::move(t));
    return id;
  }
  // Caller holds mu_; returns the removed timer.
  std::optional<Timer> remove_timer_locked(uint64_t id) {
    for (auto it = timers_.begin(); it != timers_.end(); ++it) {
      if (it->second.id == id) {
        Timer t = std::move(it->second);
        timers_.erase(it);
        return t;
      }
    }
    return std::nullopt;
  }
  static uint64_t timer_start_cb(void* ctx, int64_t delay_ns, void (*fn)(void*, int), void* user) {
    TestHost& h = self(ctx);
    std::lock_guard lock(h.mu_);
    Timer t;
    t.plugin_fn = fn;
    t.plugin_user = user;
    return h.add_timer_locked(delay_ns, std::move(t));
  }
  static int timer_cancel_cb(void* ctx, uint64_t id) {
    TestHost& h = self(ctx);
    std::optional<Timer> t;
    {
      std::lock_guard lock(h.mu_);
      t = h.remove_timer_locked(id);
    }
    if (!t || t->plugin_fn == nullptr) return 0;
    t->plugin_fn(t->plugin_user, 1);
    return 1;
  }

  // One scripted child call in progress (or finished: records stay for child_calls()).
  struct ChildRun {
    ChildCallRecord record;
    uint64_t id = 0;
    std::vector<uint8_t> input;
    sluice_child_callback cb = nullptr;
    void* user = nullptr;
    uint64_t answer_timer = 0;
    uint64_t deadline_timer = 0;
    bool finished = false;
  };

  static size_t child_count_cb(void* ctx) { return self(ctx).children_.size(); }
  static const char* child_name_cb(void* ctx, size_t i) {
    TestHost& h = self(ctx);
    return i < h.children_.size() ? h.children_[i].name.c_str() : "";
  }
  static void child_process_cb(void* ctx, size_t index, const uint8_t* event, size_t size,
                               sluice_child_callback cb, void* user) {
    child_start_cb(ctx, index, event, size, 0, cb, user);
  }
  // Delivers a child's outcome to the composite (on the test thread, through posted_).
  // Caller holds mu_.
  void finish_child_locked(ChildRun* run, Outcome outcome,
                           std::vector<std::pair<std::string, std::vector<uint8_t>>> emitted) {
    if (run->finished) return;
    run->finished = true;
    if (run->answer_timer != 0) remove_timer_locked(run->answer_timer);
    if (run->deadline_timer != 0) remove_timer_locked(run->deadline_timer);
    run->record.status = outcome.status;
    run->record.end_ns = mono_ns();
    int64_t latency = run->record.end_ns - run->record.start_ns;
    posted_.push_back([run, outcome = std::move(outcome), emitted = std::move(emitted), latency] {
      std::vector<const uint8_t*> data;
      std::vector<size_t> sizes;
      std::vector<const char*> outputs;
      for (const auto& [output, bytes] : emitted) {
        data.push_back(bytes.data());
        sizes.push_back(bytes.size());
        outputs.push_back(output.c_str());
      }
      sluice_outcome raw = outcome.raw();
      sluice_child_result result{&raw,        latency,      data.size(),
                                 data.data(), sizes.data(), outputs.data()};
      run->cb(run->user, &result);
    });
  }
  static uint64_t child_start_cb(void* ctx, size_t index, const uint8_t* event, size_t size,
                                 int64_t deadline_ns, sluice_child_callback cb, void* user) {
    TestHost& h = self(ctx);
    std::lock_guard lock(h.mu_);
    auto run = std::make_unique<ChildRun>();
    ChildRun* r = run.get();
    r->id = ++h.next_id_;
    r->input.assign(event, event + size);
    r->cb = cb;
    r->user = user;
    r->record.child = index;
    r->record.name = index < h.children_.size() ? h.children_[index].name : "";
    r->record.start_ns = mono_ns();
    r->record.deadline_ns = deadline_ns;
    h.child_calls_.push_back(std::move(run));
    if (index >= h.children_.size()) {
      h.finish_child_locked(r,
                            Outcome::failure(Status::kInternal, "the test host has no child " +
                                                                    std::to_string(index) +
                                                                    " (TestOptions::children)"),
                            {});
      return r->id;
    }
    if (deadline_ns != 0 && deadline_ns <= r->record.start_ns) {
      r->record.timed_out = true;
      h.finish_child_locked(r, Outcome::failure(Status::kTimeout, "deadline already passed"), {});
      return r->id;
    }
    size_t n = h.child_answers_[index]++;
    ScriptedAnswer a = h.children_[index].script(EventView(r->input.data(), r->input.size()), n);
    std::vector<std::pair<std::string, std::vector<uint8_t>>> emitted = std::move(a.emit);
    if (emitted.empty() && a.outcome.ok()) emitted.emplace_back("", r->input);
    Timer answer;
    answer.fn = [&h, r, outcome = std::move(a.outcome), emitted = std::move(emitted)] {
      std::lock_guard lock(h.mu_);
      r->answer_timer = 0;
      h.finish_child_locked(r, outcome, emitted);
    };
    r->answer_timer = h.add_timer_locked(a.after.count(), std::move(answer));
    if (deadline_ns != 0) {
      Timer deadline;
      deadline.fn = [&h, r] {
        std::lock_guard lock(h.mu_);
        r->deadline_timer = 0;
        if (r->finished) return;
        r->record.timed_out = true;
        h.finish_child_locked(r, Outcome::failure(Status::kTimeout, "no answer by the deadline"),
                              {});
      };
      r->deadline_timer = h.add_timer_locked(deadline_ns - r->record.start_ns, std::move(deadline));
    }
    return r->id;
  }
  static void child_cancel_cb(void* ctx, uint64_t id) {
    TestHost& h = self(ctx);
    std::lock_guard lock(h.mu_);
    for (auto& run : h.child_calls_) {
      if (run->id != id) continue;
      if (!run->finished) {
        run->record.cancelled = true;
        h.finish_child_locked(run.get(), Outcome::failure(Status::kCancelled, "cancelled"), {});
      }
      return;
    }
  }

  std::string pipeline_name_;
  std::string node_name_;
  std::string state_dir_;
  bool echo_logs_;
  sluice_host host_{};

  mutable std::mutex mu_;
  std::vector<LogLine> logs_;
  std::map<std::string, std::string, std::less<>> settings_;  // name → JSON text
  uint64_t settings_version_ = 0;
  std::map<MetricKey, double> counters_;
  std::map<MetricKey, double> gauges_;
  std::map<MetricKey, std::vector<double>> histograms_;
  std::deque<std::pair<int, MetricKey>> series_;  // metric_series handles, 1-based
  std::deque<std::function<void()>> posted_;
  std::vector<ScriptedChild> children_;
  std::map<std::string, Command> commands_;
  std::vector<std::pair<std::string, std::vector<uint8_t>>> host_emitted_;
  std::map<size_t, size_t> child_answers_;  // child index → calls answered so far
  std::vector<std::unique_ptr<ChildRun>> child_calls_;
  std::multimap<int64_t, Timer> timers_;  // due (mono_ns) → timer
  uint64_t next_id_ = 0;
  std::map<std::string, std::string, std::less<>> state_;  // node state: key → value
  std::string commit_failure_;
  size_t commits_ = 0;
};

// One event a plugin emitted.
struct Emitted {
  std::string output;          // "" = the default output
  std::vector<uint8_t> bytes;  // a copy, valid after the call
  bool forwarded = false;      // the plugin emitted the received bytes themselves (zero-copy)
  EventView view() const { return EventView(bytes.data(), bytes.size()); }
};

// How one process()/consume() call ended.
struct CallResult {
  Outcome outcome;
  std::vector<Emitted> emitted;
  bool completed = false;  // done() was called within the timeout
  // Breaches of the call contract (emit after done, done twice): always empty for plugins
  // written against the C++ SDK, whose Call enforces it.
  std::vector<std::string> contract_violations;
};

// What a source's run() produced.
struct RunResult {
  std::vector<std::vector<uint8_t>> events;
  int status = 0;        // run()'s return value: 0 = finished, else failed
  std::string error;     // the message run() reported when it failed
  bool stopped = false;  // the double asked the source to stop (a RunLimits limit was hit)
  size_t sleeps = 0;     // sleep_ns() calls
  int64_t slept_ns = 0;  // total simulated sleep
  EventView view(size_t i) const { return EventView(events.at(i).data(), events.at(i).size()); }
};

struct RunLimits {
  // After this many events stopping() turns true and further emits return "stopping".
  size_t max_events = std::numeric_limits<size_t>::max();
  // After this many sleeps the source is asked to stop, so a polling source cannot hang a test.
  size_t max_sleeps = 10'000;
};

// create() refused the configuration: which option, where in its value, and why.
class CreateError : public std::runtime_error {
 public:
  CreateError(std::string key, uint32_t column, const std::string& message)
      : std::runtime_error(message), key_(std::move(key)), column_(column) {}
  const std::string& key() const { return key_; }  // "" when not about one option
  uint32_t column() const { return column_; }      // 1-based inside the value, 0 = whole value

 private:
  std::string key_;
  uint32_t column_;
};

// One plugin instance under test. Not movable: the plugin holds pointers into it.
// The option schema applied to options as a pipeline file writes them, by the rules the host
// applies before create() (docs/pipeline-files.md §7, config_options.cpp): unknown keys and
// missing required ones refused, defaults filled from default_toml, durations to nanoseconds,
// sizes to bytes, numbers widened, choices and ABI 1.2 bounds checked, processor names turned
// into child indices (by the names of `children`). Throws CreateError naming the key.
// ${VAR} expansion is not applied: write the values.
inline Json apply_schema(const sluice_plugin_descriptor* d, const Json& written,
                         const std::vector<ScriptedChild>& children = {}) {
  auto fail = [](const std::string& key, const std::string& why) -> Json {
    throw CreateError(key, 0, "option '" + key + "' " + why);
  };
  auto spec_of = [&](std::string_view key) -> const sluice_option_spec* {
    for (size_t i = 0; i < d->option_count; ++i) {
      if (key == d->options[i].key) return &d->options[i];
    }
    return nullptr;
  };
  auto child_index = [&](const std::string& key, const Json& name) -> Json {
    if (!name.is_string()) return fail(key, "must name a processor");
    for (size_t i = 0; i < children.size(); ++i) {
      if (children[i].name == name.get<std::string>()) return i;
    }
    throw CreateError(key, 0,
                      "option '" + key + "': unknown processor '" + name.get<std::string>() + "'");
  };
  // One scalar of the option's (element) type.
  auto scalar = [&](const sluice_option_spec& spec, int type, const Json& v) -> Json {
    const std::string key = spec.key;
    switch (type) {
      case SLUICE_OPT_STRING: {
        if (!v.is_string()) return fail(key, "must be a string");
        if (spec.choices == nullptr) return v;
        std::string_view rest = spec.choices;
        std::string list;
        while (!rest.empty()) {
          size_t comma = rest.find(',');
          std::string_view item = rest.substr(0, comma);
          while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
          while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
          if (item == v.get<std::string>()) return v;
          list += (list.empty() ? "" : ", ") + std::string(item);
          if (comma == std::string_view::npos) break;
          rest.remove_prefix(comma + 1);
        }
        return fail(key, "must be one of: " + list + " (got '" + v.get<std::string>() + "')");
      }
      case SLUICE_OPT_SECRET:
      case SLUICE_OPT_EXPRESSION:
        if (!v.is_string()) return fail(key, "must be a string");
        return v;
      case SLUICE_OPT_INT:
        if (!v.is_number_integer()) return fail(key, "must be an integer");
        return v.get<int64_t>();
      case SLUICE_OPT_DOUBLE:
        if (!v.is_number()) return fail(key, "must be a number");
        return v.get<double>();
      case SLUICE_OPT_BOOL:
        if (!v.is_boolean()) return fail(key, "must be a boolean");
        return v;
      case SLUICE_OPT_DURATION: {
        if (!v.is_string()) return fail(key, "must be a duration (e.g. \"250ms\")");
        std::string error;
        auto ns = units::parse_duration(v.get<std::string>(), &error);
        if (!ns) return fail(key, "invalid duration '" + v.get<std::string>() + "': " + error);
        return *ns;
      }
      case SLUICE_OPT_SIZE: {
        if (v.is_number_unsigned()) return v.get<uint64_t>();
        if (!v.is_string()) return fail(key, "must be a size (e.g. \"64KiB\") or a byte count");
        std::string error;
        auto bytes = units::parse_size(v.get<std::string>(), &error);
        if (!bytes) return fail(key, "invalid size '" + v.get<std::string>() + "': " + error);
        return *bytes;
      }
      case SLUICE_OPT_PROCESSOR:
        return child_index(key, v);
      default:
        return fail(key, "has a type the test host does not know");
    }
  };
  auto convert = [&](const sluice_option_spec& spec, const Json& v) -> Json {
    auto list = [&](int element) -> Json {
      if (!v.is_array()) return fail(spec.key, "must be a list");
      Json out = Json::array();
      for (const Json& e : v) out.push_back(scalar(spec, element, e));
      return out;
    };
    switch (spec.type) {
      case SLUICE_OPT_STRING_LIST: return list(SLUICE_OPT_STRING);
      case SLUICE_OPT_INT_LIST: return list(SLUICE_OPT_INT);
      case SLUICE_OPT_DOUBLE_LIST: return list(SLUICE_OPT_DOUBLE);
      case SLUICE_OPT_PROCESSOR_LIST: return list(SLUICE_OPT_PROCESSOR);
      case SLUICE_OPT_TABLE:
        if (!v.is_object()) return fail(spec.key, "must be a table");
        return v;
      default: return scalar(spec, spec.type, v);
    }
  };
  if (!written.is_object()) throw CreateError("", 0, "options must be a table");
  Json out = Json::object();
  for (const auto& [key, value] : written.items()) {
    const sluice_option_spec* spec = spec_of(key);
    if (spec == nullptr) throw CreateError(key, 0, "unknown option '" + key + "'");
    out[key] = convert(*spec, value);
  }
  for (size_t i = 0; i < d->option_count; ++i) {
    const sluice_option_spec& spec = d->options[i];
    if (out.contains(spec.key)) continue;
    if (spec.default_toml != nullptr) {
      // Every default literal the SDK's plugins write (strings, numbers, booleans, lists of
      // them) reads the same as JSON.
      Json parsed = Json::parse(spec.default_toml, nullptr, false);
      if (parsed.is_discarded()) fail(spec.key, "has a default this test host cannot read");
      out[spec.key] = convert(spec, parsed);
    } else if (spec.required) {
      throw CreateError(spec.key, 0, "missing required option '" + std::string(spec.key) + "'");
    }
  }
  if (d->abi_minor >= 2 && d->option_bounds != nullptr) {
    for (size_t i = 0; i < d->option_bounds_count; ++i) {
      const sluice_option_bounds& b = d->option_bounds[i];
      const sluice_option_spec* spec = spec_of(b.key);
      if (spec == nullptr || !out.contains(b.key)) continue;
      int element = spec->type == SLUICE_OPT_INT_LIST      ? SLUICE_OPT_INT
                    : spec->type == SLUICE_OPT_DOUBLE_LIST ? SLUICE_OPT_DOUBLE
                                                           : spec->type;
      const Json& value = out[b.key];
      for (const Json& v : value.is_array() ? value : Json::array({value})) {
        for (int lower = 1; lower >= 0; --lower) {
          const char* literal = lower ? b.min : b.max;
          if (literal == nullptr) continue;
          Json limit = scalar(*spec, element, Json::parse(literal));
          bool outside = v.is_number_float() || limit.is_number_float()
                             ? (lower ? v.get<double>() < limit.get<double>()
                                      : v.get<double>() > limit.get<double>())
                             : (lower ? v.get<int64_t>() < limit.get<int64_t>()
                                      : v.get<int64_t>() > limit.get<int64_t>());
          if (outside) {
            fail(b.key, std::string("must be ") + (lower ? "at least " : "at most ") + literal +
                            ", got " + written.value(b.key, v).dump());
          }
        }
      }
    }
  }
  return out;
}

class TestPlugin {
 public:
  // Creates the plugin this test binary compiles in (its SLUICE_PLUGIN entry point).
  // Throws CreateError if create() refuses the config.
  explicit TestPlugin(const Json& config = Json::object(), const TestOptions& options = {})
      : TestPlugin(SLUICE_ENTRY_POINT(), config, options) {}
  // Lets a test write the config inline, TestPlugin p({{"field", "symbol"}}), which would
  // otherwise be ambiguous with the (deleted) copy constructor.
  explicit TestPlugin(Json::initializer_list_t config, const TestOptions& options = {})
      : TestPlugin(Json(config), options) {}
  // Creates a plugin from an explicit descriptor, for binaries that hold several plugin classes.
  TestPlugin(const sluice_plugin_descriptor* descriptor, const Json& config,
             const TestOptions& options = {})
      : d_(descriptor), host_(std::make_unique<TestHost>(options)) {
    sluice_error err{};
    const Json given = options.as_written ? apply_schema(d_, config, options.children) : config;
    self_ = d_->create(host_->raw(), given.dump().c_str(), &err);
    if (self_ == nullptr) throw CreateError(err.key, err.column, err.message);
    if (options.start) {
      try {
        start();
      } catch (...) {
        d_->destroy(self_);
        throw;
      }
    }
  }
  TestPlugin(const TestPlugin&) = delete;
  TestPlugin& operator=(const TestPlugin&) = delete;
  ~TestPlugin() { d_->destroy(self_); }

  // The error create() reports for a config, or nullopt if it accepts it.
  static std::optional<CreateError> create_error(const Json& config,
                                                 const TestOptions& options = {}) {
    return create_error(SLUICE_ENTRY_POINT(), config, options);
  }
  static std::optional<CreateError> create_error(const sluice_plugin_descriptor* descriptor,
                                                 const Json& config,
                                                 const TestOptions& options = {}) {
    TestOptions create_only = options;
    create_only.start = false;
    try {
      TestPlugin plugin(descriptor, config, create_only);
    } catch (const CreateError& e) {
      return e;
    }
    return std::nullopt;
  }

  // Runs the start hook (a plugin of ABI 1.0 has none); throws CreateError if it fails.
  void start() {
    if (d_->abi_minor < 1 || d_->start == nullptr) return;
    sluice_error err{};
    if (d_->start(self_, &err) != 0) throw CreateError(err.key, err.column, err.message);
  }

  const sluice_plugin_descriptor& descriptor() const { return *d_; }
  TestHost& host() { return *host_; }

  // Processors: process(); sinks: consume(). Returns once the plugin has called done(), or
  // after `timeout` with completed == false and an internal-error outcome saying so.
  CallResult process(Bytes event, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    return wait(start(event), timeout);
  }
  // The same with a deadline on the call (absolute mono_ns(), as a composite's child gets).
  CallResult process_by(Bytes event, int64_t deadline_ns,
                        std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    return wait(start(event, deadline_ns), timeout);
  }

  // A call started with begin(): cancel() abandons it as a composite would, finish() waits.
  class Pending {
   private:
    friend class TestPlugin;
    void* call = nullptr;
  };
  Pending begin(Bytes event, int64_t deadline_ns = 0) {
    Pending p;
    p.call = start(event, deadline_ns);
    return p;
  }
  // Runs the call's cancel handler (as the runtime does when a composite cancels a child);
  // false when the plugin registered none.
  bool cancel(const Pending& pending) {
    auto* p = static_cast<PendingCall*>(pending.call);
    void (*fn)(void*, int) = nullptr;
    void* user = nullptr;
    {
      std::lock_guard lock(p->mu);
      fn = std::exchange(p->cancel_fn, nullptr);
      user = p->cancel_user;
      p->cancel_requested = true;
    }
    if (fn == nullptr) return false;
    fn(user, 1);
    return true;
  }
  CallResult finish(const Pending& pending,
                    std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    return wait(static_cast<PendingCall*>(pending.call), timeout);
  }
  // Starts every call before waiting for any, as the runtime does up to max_in_flight, so an
  // asynchronous plugin has them all in flight at once. Results are in input order.
  std::vector<CallResult> process_all(
      const std::vector<std::vector<uint8_t>>& events,
      std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::vector<PendingCall*> started;
    started.reserve(events.size());
    for (const auto& event : events) started.push_back(start(event));
    std::vector<CallResult> results;
    results.reserve(started.size());
    for (PendingCall* call : started) results.push_back(wait(call, timeout));
    return results;
  }
  // Sinks: the end-of-input flush.
  void flush() {
    require_kind(d_->kind == SLUICE_KIND_SINK, "flush()");
    if (d_->flush != nullptr) d_->flush(self_);
  }

  // Sources: runs run() on this thread until it returns or a limit asks it to stop.
  RunResult run(const RunLimits& limits = {}) {
    require_kind(d_->kind == SLUICE_KIND_SOURCE, "run()");
    SourceRun state;
    state.limits = limits;
    state.ctx.host_data = &state;
    state.ctx.emit = &TestPlugin::source_emit;
    state.ctx.stopping = &TestPlugin::source_stopping;
    state.ctx.sleep_ns = &TestPlugin::source_sleep;
    sluice_error err{};
    int status = d_->run(self_, &state.ctx, &err);
    std::lock_guard lock(state.mu);
    state.result.status = status;
    if (status != 0) state.result.error = err.message;
    return std::move(state.result);
  }

 private:
  // Lives until the plugin is destroyed, so a plugin that completes a call after the test
  // stopped waiting still writes into valid memory.
  struct PendingCall {
    sluice_call call{};
    std::vector<uint8_t> input;
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    CallResult result;
    void (*cancel_fn)(void*, int) = nullptr;
    void* cancel_user = nullptr;
    bool cancel_requested = false;
    ~PendingCall() {
      if (cancel_fn != nullptr) cancel_fn(cancel_user, 0);
    }
  };

  struct SourceRun {
    sluice_source_ctx ctx{};
    RunLimits limits;
    std::mutex mu;
    bool stopping = false;
    RunResult result;
  };

  void require_kind(bool applies, const char* what) const {
    if (!applies) {
      throw std::logic_error(std::string(what) + " does not apply to plugin '" + d_->name +
                             "', a " + kind_name(d_->kind));
    }
  }
  static const char* kind_name(sluice_kind kind) {
    switch (kind) {
      case SLUICE_KIND_SOURCE:
        return "source";
      case SLUICE_KIND_PROCESSOR:
        return "processor";
      case SLUICE_KIND_SINK:
        return "sink";
    }
    return "plugin of unknown kind";
  }

  PendingCall* start(Bytes event, int64_t deadline_ns = 0) {
    require_kind(d_->kind == SLUICE_KIND_PROCESSOR || d_->kind == SLUICE_KIND_SINK, "process()");
    calls_.push_back(std::make_unique<PendingCall>());
    PendingCall* p = calls_.back().get();
    p->input.assign(event.begin(), event.end());
    p->call.event = p->input.data();
    p->call.event_size = p->input.size();
    p->call.host_data = p;
    p->call.emit = &TestPlugin::call_emit;
    p->call.done = &TestPlugin::call_done;
    p->call.deadline_ns = deadline_ns;
    p->call.on_cancel = &TestPlugin::call_on_cancel;
    d_->process(self_, &p->call);
    host_->run_posted();
    return p;
  }

  CallResult wait(PendingCall* p, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      host_->run_posted();
      std::unique_lock lock(p->mu);
      // Short slices, so callbacks posted meanwhile from the plugin's threads and due timers run
      // on this thread.
      auto slice = std::chrono::nanoseconds(std::chrono::milliseconds(5));
      if (int64_t next = host_->next_timer_ns(); next != 0) {
        slice = std::clamp(std::chrono::nanoseconds(next - mono_ns()), std::chrono::nanoseconds(0),
                           slice);
      }
      if (p->cv.wait_for(lock, slice, [p] { return p->done; })) {
        return p->result;
      }
      if (std::chrono::steady_clock::now() >= deadline) {
        CallResult late = p->result;
        late.outcome =
            Outcome::failure(Status::kInternal, "plugin did not call done() within " +
                                                    std::to_string(timeout.count()) + " ms");
        return late;
      }
    }
  }

  static void call_emit(sluice_call* call, const char* output, const uint8_t* data, size_t size) {
    auto* p = static_cast<PendingCall*>(call->host_data);
    std::lock_guard lock(p->mu);
    if (p->done) {
      p->result.contract_violations.push_back("emit() after done()");
      return;
    }
    p->result.emitted.push_back({output == nullptr ? "" : output,
                                 std::vector<uint8_t>(data, data + size), data == p->input.data()});
  }

  static void call_done(sluice_call* call, const sluice_outcome* outcome) {
    auto* p = static_cast<PendingCall*>(call->host_data);
    {
      std::lock_guard lock(p->mu);
      if (p->done) {
        p->result.contract_violations.push_back("done() called more than once");
        return;
      }
      // The plugin under test is built against this SDK, so its outcome has the 1.2 usage.
      p->result.outcome = Outcome::from(*outcome);
      p->result.completed = true;
      p->done = true;
    }
    p->cv.notify_all();
  }

  static void call_on_cancel(sluice_call* call, void (*fn)(void*, int), void* user) {
    auto* p = static_cast<PendingCall*>(call->host_data);
    bool now = false;
    {
      std::lock_guard lock(p->mu);
      if (p->cancel_requested) {
        now = true;
      } else {
        p->cancel_fn = fn;
        p->cancel_user = user;
      }
    }
    if (now) fn(user, 1);
  }

  static int source_emit(sluice_source_ctx* ctx, const uint8_t* data, size_t size) {
    auto* s = static_cast<SourceRun*>(ctx->host_data);
    std::lock_guard lock(s->mu);
    if (s->stopping) return -1;
    bool accepted = s->result.events.size() < s->limits.max_events;
    if (accepted) s->result.events.emplace_back(data, data + size);
    if (s->result.events.size() >= s->limits.max_events) {
      s->stopping = true;
      s->result.stopped = true;
    }
    return accepted ? 0 : -1;
  }
  static int source_stopping(sluice_source_ctx* ctx) {
    auto* s = static_cast<SourceRun*>(ctx->host_data);
    std::lock_guard lock(s->mu);
    return s->stopping ? 1 : 0;
  }
  static int source_sleep(sluice_source_ctx* ctx, int64_t ns) {
    auto* s = static_cast<SourceRun*>(ctx->host_data);
    std::lock_guard lock(s->mu);
    if (s->stopping) return 1;
    ++s->result.sleeps;
    s->result.slept_ns += ns;
    if (s->result.sleeps > s->limits.max_sleeps) {
      s->stopping = true;
      s->result.stopped = true;
      return 1;
    }
    return 0;
  }

  const sluice_plugin_descriptor* d_;
  std::unique_ptr<TestHost> host_;
  void* self_ = nullptr;
  std::vector<std::unique_ptr<PendingCall>> calls_;
};

// Event and ingest time of every make_event() event: fixed, so rendered events compare exactly.
inline constexpr int64_t kTestEventTimeNs = 1'700'000'000'000'000'000;

// Builds an event from a JSON object of fields: integers → Int, numbers with a fraction → Double,
// strings, bools, null → Null. Throws std::invalid_argument naming a field of another type.
// event_time_ns sets the event (and ingest) time, e.g. now_ns() for latency measurements.
inline std::vector<uint8_t> make_event(const Json& fields, std::string_view key = {},
                                       uint64_t id = 1, int64_t event_time_ns = kTestEventTimeNs) {
  if (!fields.is_object()) throw std::invalid_argument("make_event: fields must be a JSON object");
  EventBuilder b;
  b.id(id).key(key).event_time_ns(event_time_ns).ingest_time_ns(event_time_ns);
  for (const auto& [name, value] : fields.items()) {
    if (value.is_number_integer()) {
      b.field(name, value.get<int64_t>());
    } else if (value.is_number()) {
      b.field(name, value.get<double>());
    } else if (value.is_boolean()) {
      b.field(name, value.get<bool>());
    } else if (value.is_string()) {
      b.field(name, value.get_ref<const std::string&>());
    } else if (value.is_null()) {
      b.null_field(name);
    } else {
      throw std::invalid_argument("make_event: field '" + name +
                                  "' must be a number, string, bool or null, got " +
                                  value.type_name());
    }
  }
  auto bytes = b.finish();
  return {bytes.begin(), bytes.end()};
}

// Renders a whole event as JSON for assertions: id, times, source, key, attrs, fields (bytes
// fields as arrays of byte values) and hops.
inline Json event_to_json(Bytes bytes) {
  EventView ev(bytes);
  Json attrs = Json::object();
  for (size_t i = 0; i < ev.attr_count(); ++i) {
    const fb::Attr* a = ev.attr_at(i);
    attrs[std::string(EventView::sv(a->key()))] = EventView::sv(a->value());
  }
  Json fields = Json::object();
  for (size_t i = 0; i < ev.field_count(); ++i) {
    const fb::Field* f = ev.field_at(i);
    Json& out = fields[std::string(EventView::sv(f->name()))];
    switch (f->type()) {
      case FieldType::Int:
        out = f->i();
        break;
      case FieldType::Double:
        out = f->d();
        break;
      case FieldType::Bool:
        out = f->b();
        break;
      case FieldType::String:
        out = EventView::sv(f->s());
        break;
      case FieldType::Bytes:
        out = f->bin() ? std::vector<uint8_t>(f->bin()->begin(), f->bin()->end())
                       : std::vector<uint8_t>{};
        break;
      default:
        out = nullptr;
        break;
    }
  }
  Json hops = Json::array();
  for (size_t i = 0; i < ev.hop_count(); ++i) {
    const fb::Hop* h = ev.hop_at(i);
    hops.push_back({{"stage", EventView::sv(h->stage())}, {"time_ns", h->time_ns()}});
  }
  return {{"id", ev.id()},
          {"event_time_ns", ev.event_time_ns()},
          {"ingest_time_ns", ev.ingest_time_ns()},
          {"source", ev.source()},
          {"key", ev.key()},
          {"attrs", attrs},
          {"fields", fields},
          {"hops", hops}};
}

}  // namespace sluice::testkit
