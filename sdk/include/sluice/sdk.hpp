// Sluice C++ plugin SDK: header-only wrappers over the C ABI in abi.h.
//
// A plugin author writes one class deriving from Source, Processor or Sink, with a constructor
// taking (const Host&, const Config&), declares its options once, and adds one line:
//
//   SLUICE_PLUGIN(MyFilter, "my_filter", "1.0.0", "Drops boring events", kMyFilterOptions);
//
// Lifecycle: the constructor only checks options and prepares (`sluice validate` constructs and
// destroys every node); start() begins background work (polling, connections, timers) once the
// pipeline runs; the destructor stops it. Exceptions are for the control plane only: a
// constructor throws OptionError / std::exception to reject its configuration, start() throws to
// fail the run. process()/consume() report failures through Call::fail().
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "sluice/abi.h"
#include "sluice/event.hpp"

namespace sluice {

using Json = nlohmann::json;
using Bytes = std::span<const uint8_t>;

// Wall-clock nanoseconds since the Unix epoch: event times and latency across processes.
inline int64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// Monotonic nanoseconds: intervals within one process.
inline int64_t mono_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

enum class Status : int {
  kOk = SLUICE_OK,
  kTimeout = SLUICE_ERR_TIMEOUT,
  kRateLimited = SLUICE_ERR_RATE_LIMITED,
  kServerError = SLUICE_ERR_SERVER,
  kBadResponse = SLUICE_ERR_BAD_RESPONSE,
  kRejected = SLUICE_ERR_REJECTED,
  kAuth = SLUICE_ERR_AUTH,
  kBadRequest = SLUICE_ERR_BAD_REQUEST,
  kQuota = SLUICE_ERR_QUOTA,
  kInternal = SLUICE_ERR_INTERNAL,
  kCancelled = SLUICE_ERR_CANCELLED,
};

// Stable snake_case names, used as the `class` metric label and in error events.
inline const char* status_name(int status) {
  switch (status) {
    case SLUICE_OK:
      return "ok";
    case SLUICE_ERR_TIMEOUT:
      return "timeout";
    case SLUICE_ERR_RATE_LIMITED:
      return "rate_limited";
    case SLUICE_ERR_SERVER:
      return "server_error";
    case SLUICE_ERR_BAD_RESPONSE:
      return "bad_response";
    case SLUICE_ERR_REJECTED:
      return "rejected";
    case SLUICE_ERR_AUTH:
      return "auth";
    case SLUICE_ERR_BAD_REQUEST:
      return "bad_request";
    case SLUICE_ERR_QUOTA:
      return "insufficient_quota";
    case SLUICE_ERR_INTERNAL:
      return "internal";
    case SLUICE_ERR_CANCELLED:
      return "cancelled";
    default:
      return "unknown";
  }
}

// One Prometheus label pair, `key="value"`, with the value escaped as the text format requires,
// for the labels argument of Host::counter_add/gauge_set/observe (join pairs with ',').
inline std::string metric_label(std::string_view key, std::string_view value) {
  std::string out(key);
  out += "=\"";
  for (char c : value) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

// Outcome of one call, as a plugin reports it and as a composite observes it for a child.
struct Outcome {
  // Every member has a default initializer, so aggregate initialisation that names only the
  // first ones ({status, message, cost, retry_after}) stays warning-free as members are added.
  Status status = Status::kOk;
  std::string message{};
  double cost_usd = 0;
  int64_t retry_after_ns = 0;
  // Usage (ABI 1.2): tokens the call spent and the model that answered ("" = none), so
  // composites, limits and reports count them without parsing events.
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;
  std::string model{};

  bool ok() const { return status == Status::kOk; }
  static Outcome success(double cost_usd = 0) {
    Outcome o;
    o.cost_usd = cost_usd;
    return o;
  }
  static Outcome failure(Status s, std::string msg) {
    Outcome o;
    o.status = s;
    o.message = std::move(msg);
    return o;
  }
  Outcome& with_usage(int64_t input, int64_t output, std::string answered_by) {
    input_tokens = input;
    output_tokens = output;
    model = std::move(answered_by);
    return *this;
  }

  // From the C struct; usage is read only when the struct has it (its writer's ABI minor >= 2).
  static Outcome from(const sluice_outcome& o, bool has_usage = true) {
    Outcome r;
    r.status = static_cast<Status>(o.status);
    if (o.message != nullptr) r.message = o.message;
    r.cost_usd = o.cost_usd;
    r.retry_after_ns = o.retry_after_ns;
    if (has_usage) {
      r.input_tokens = o.input_tokens;
      r.output_tokens = o.output_tokens;
      if (o.model != nullptr) r.model = o.model;
    }
    return r;
  }
  // The C view; valid while this Outcome lives.
  sluice_outcome raw() const {
    sluice_outcome o{};
    o.status = static_cast<sluice_status>(status);
    o.message = message.empty() ? nullptr : message.c_str();
    o.cost_usd = cost_usd;
    o.retry_after_ns = retry_after_ns;
    o.input_tokens = input_tokens;
    o.output_tokens = output_tokens;
    o.model = model.empty() ? nullptr : model.c_str();
    return o;
  }
};

// A configuration problem: which option, where in its value (1-based column, 0 = whole value).
// The message states just the problem ("must not be empty"): the host prefixes the option.
class OptionError : public std::runtime_error {
 public:
  OptionError(std::string key, std::string message, uint32_t column = 0)
      : std::runtime_error(std::move(message)), key_(std::move(key)), column_(column) {}
  const std::string& key() const { return key_; }
  uint32_t column() const { return column_; }

 private:
  std::string key_;
  uint32_t column_;
};

// A node's options, validated by the host against the plugin's declared schema, with defaults
// applied. Durations arrive as nanoseconds and sizes as bytes.
class Config {
 public:
  explicit Config(Json json) : json_(std::move(json)) {}

  bool has(std::string_view key) const {
    auto it = json_.find(key);
    return it != json_.end() && !it->is_null();
  }
  const Json& json() const { return json_; }
  const Json& at(std::string_view key) const {
    auto it = json_.find(key);
    if (it == json_.end() || it->is_null()) {
      throw OptionError(std::string(key), "is required");
    }
    return *it;
  }
  std::string str(std::string_view key) const { return get<std::string>(key, "a string"); }
  std::string str(std::string_view key, std::string def) const {
    return has(key) ? str(key) : std::move(def);
  }
  int64_t i64(std::string_view key) const { return get<int64_t>(key, "an integer"); }
  int64_t i64(std::string_view key, int64_t def) const { return has(key) ? i64(key) : def; }
  double f64(std::string_view key) const { return get<double>(key, "a number"); }
  double f64(std::string_view key, double def) const { return has(key) ? f64(key) : def; }
  bool flag(std::string_view key) const { return get<bool>(key, "a boolean"); }
  bool flag(std::string_view key, bool def) const { return has(key) ? flag(key) : def; }
  std::chrono::nanoseconds duration(std::string_view key) const {
    return std::chrono::nanoseconds(get<int64_t>(key, "a duration"));
  }
  uint64_t size_bytes(std::string_view key) const { return get<uint64_t>(key, "a size"); }
  std::vector<std::string> strings(std::string_view key) const {
    return has(key) ? get<std::vector<std::string>>(key, "a list of strings")
                    : std::vector<std::string>{};
  }
  std::vector<int64_t> ints(std::string_view key) const {
    return has(key) ? get<std::vector<int64_t>>(key, "a list of integers") : std::vector<int64_t>{};
  }
  // Child indices of a PROCESSOR / PROCESSOR_LIST option (see Host::child_process).
  std::vector<size_t> children(std::string_view key) const {
    const Json& v = at(key);
    if (v.is_number_unsigned()) return {v.get<size_t>()};
    return v.get<std::vector<size_t>>();
  }

 private:
  template <class T>
  T get(std::string_view key, const char* what) const {
    const Json& v = at(key);
    try {
      return v.get<T>();
    } catch (const Json::exception&) {
      throw OptionError(std::string(key), std::string("must be ") + what);
    }
  }
  Json json_;
};

// The host's services for one plugin instance.
// An option schema put together from shared fragments: std::array<sluice_option_spec, N>
// fragments (e.g. the HTTP sinks' retry options) and single specs (e.g. an exchange source's
// reconnect options), joined in order into one C array for SLUICE_PLUGIN(..., list.specs):
//
//   inline constexpr auto kOptions = sluice::option_list(
//       std::to_array<sluice_option_spec>({{.key = "url", ...}, {.key = "template", ...}}),
//       http::retry_options(), ws::kReconnectMinOption);
template <size_t N>
struct OptionList {
  sluice_option_spec specs[N];
};

namespace detail {
template <class T>
struct SpecCount;
template <size_t N>
struct SpecCount<std::array<sluice_option_spec, N>> {
  static constexpr size_t value = N;
};
template <>
struct SpecCount<sluice_option_spec> {
  static constexpr size_t value = 1;
};
template <size_t N>
struct SpecCount<OptionList<N>> {
  static constexpr size_t value = N;
};
template <size_t N>
constexpr void put_specs(sluice_option_spec* out, size_t& i, const OptionList<N>& part) {
  for (const sluice_option_spec& s : part.specs) out[i++] = s;
}
template <size_t N>
constexpr void put_specs(sluice_option_spec* out, size_t& i,
                         const std::array<sluice_option_spec, N>& part) {
  for (const sluice_option_spec& s : part) out[i++] = s;
}
constexpr void put_specs(sluice_option_spec* out, size_t& i, const sluice_option_spec& s) {
  out[i++] = s;
}
}  // namespace detail

template <class... Parts>
constexpr auto option_list(const Parts&... parts) {
  OptionList<(detail::SpecCount<Parts>::value + ...)> out{};
  size_t i = 0;
  (detail::put_specs(out.specs, i, parts), ...);
  return out;
}

// A plugin metric series resolved once (Host::counter / gauge / histogram): on a hot path,
// add/set/observe cost one atomic update in the host, where counter_add formats the series name
// and takes the registry's lock on every call. Default-constructed: records nothing.
class Metric {
 public:
  Metric() = default;
  void add(double v = 1) const { record(v); }       // a counter
  void set(double v) const { record(v); }           // a gauge
  void observe(double v) const { record(v); }       // a histogram (seconds)
  void record(double v) const {
    if (id_ != 0) {
      h_->metric_record(h_->ctx, id_, v);
    } else if (h_ != nullptr) {  // a host without handles (ABI < 1.2): by name
      const char* labels = labels_.empty() ? nullptr : labels_.c_str();
      if (kind_ == SLUICE_METRIC_COUNTER) h_->counter_add(h_->ctx, name_.c_str(), labels, v);
      if (kind_ == SLUICE_METRIC_GAUGE) h_->gauge_set(h_->ctx, name_.c_str(), labels, v);
      if (kind_ == SLUICE_METRIC_HISTOGRAM) {
        h_->histogram_observe(h_->ctx, name_.c_str(), labels, v);
      }
    }
  }

 private:
  friend class Host;
  const sluice_host* h_ = nullptr;
  uint64_t id_ = 0;
  int kind_ = SLUICE_METRIC_COUNTER;
  std::string name_;
  std::string labels_;
};

class Host {
 public:
  explicit Host(const sluice_host* h) : h_(h) {}
  const sluice_host* raw() const { return h_; }

  std::string_view pipeline_name() const { return h_->pipeline_name; }
  std::string_view node_name() const { return h_->node_name; }
  std::string_view state_dir() const { return h_->state_dir ? h_->state_dir : ""; }

  void log(sluice_log_level level, std::string_view msg) const {
    h_->log(h_->ctx, level, msg.data(), msg.size());
  }
  void debug(std::string_view msg) const { log(SLUICE_LOG_DEBUG, msg); }
  void info(std::string_view msg) const { log(SLUICE_LOG_INFO, msg); }
  void warn(std::string_view msg) const { log(SLUICE_LOG_WARN, msg); }
  void error(std::string_view msg) const { log(SLUICE_LOG_ERROR, msg); }

  // Settings: cheap version counter, so hot paths re-read only after a change.
  uint64_t settings_version() const { return h_->settings_version(h_->ctx); }
  std::optional<Json> setting(const std::string& name) const {
    char buf[512];
    int64_t n = h_->setting_get(h_->ctx, name.c_str(), buf, sizeof(buf));
    if (n < 0) return std::nullopt;
    if (static_cast<size_t>(n) <= sizeof(buf)) {
      return Json::parse(std::string_view(buf, static_cast<size_t>(n)), nullptr, false);
    }
    std::string big(static_cast<size_t>(n), '\0');
    n = h_->setting_get(h_->ctx, name.c_str(), big.data(), big.size());
    big.resize(static_cast<size_t>(std::max<int64_t>(n, 0)));
    return Json::parse(big, nullptr, false);
  }
  bool set_setting(const std::string& name, const Json& value) const {
    return h_->setting_set(h_->ctx, name.c_str(), value.dump().c_str()) == 0;
  }

  void counter_add(const char* name, double v, const char* labels = nullptr) const {
    h_->counter_add(h_->ctx, name, labels, v);
  }
  void gauge_set(const char* name, double v, const char* labels = nullptr) const {
    h_->gauge_set(h_->ctx, name, labels, v);
  }
  void observe(const char* name, double v, const char* labels = nullptr) const {
    h_->histogram_observe(h_->ctx, name, labels, v);
  }
  // Series resolved once, for per-event counting: keep the Metric (e.g. per child, per class)
  // and call add/set/observe. Labels as for counter_add (metric_label, joined with ',').
  Metric counter(const char* name, const std::string& labels = {}) const {
    return metric(SLUICE_METRIC_COUNTER, name, labels);
  }
  Metric gauge(const char* name, const std::string& labels = {}) const {
    return metric(SLUICE_METRIC_GAUGE, name, labels);
  }
  Metric histogram(const char* name, const std::string& labels = {}) const {
    return metric(SLUICE_METRIC_HISTOGRAM, name, labels);
  }

  // Per-node state (ABI 1.2, docs/design/node-state.md): keys and values this node keeps across
  // restarts, in the pipeline's state database (never a private file). Off hot paths: each
  // call may touch the database.
  struct StateWrite {
    std::string key;
    std::optional<std::string> value;  // nullopt erases the key
  };
  struct SettingChange {
    std::string name;
    Json value;
  };
  // Why a commit wrote nothing; ok() when it was written.
  struct [[nodiscard]] CommitResult {
    std::string error;
    bool ok() const { return error.empty(); }
  };

  // False on a host older than ABI 1.2, which keeps no state: state_get then returns nullopt
  // and state_commit fails.
  bool has_state() const { return h_->abi_minor >= 2 && h_->state_get != nullptr; }
  // The key's value, nullopt when it has none. Throws std::runtime_error when the state cannot
  // be read (the host logged why).
  std::optional<std::string> state_get(const std::string& key) const {
    if (!has_state()) return std::nullopt;
    std::string buf(256, '\0');
    for (;;) {
      int64_t n = h_->state_get(h_->ctx, key.c_str(), reinterpret_cast<uint8_t*>(buf.data()),
                                buf.size());
      if (n == -1) return std::nullopt;
      if (n < 0) throw std::runtime_error("cannot read the node state key '" + key + "'");
      if (static_cast<size_t>(n) <= buf.size()) {
        buf.resize(static_cast<size_t>(n));
        return buf;
      }
      buf.resize(static_cast<size_t>(n));  // grew since the first call: ask again
    }
  }
  // Writes every key and applies every setting change in one atomic step: all of it, or (with
  // the reason in error) nothing. A setting must exist and keep its type.
  CommitResult state_commit(const std::vector<StateWrite>& writes,
                            const std::vector<SettingChange>& settings = {}) const {
    if (!has_state()) return {"the host keeps no node state (plugin ABI older than 1.2)"};
    std::vector<sluice_state_write> w;
    w.reserve(writes.size());
    for (const StateWrite& x : writes) {
      w.push_back({x.key.c_str(),
                   x.value ? reinterpret_cast<const uint8_t*>(x.value->data()) : nullptr,
                   x.value ? x.value->size() : 0});
    }
    std::vector<std::string> texts;
    texts.reserve(settings.size());
    std::vector<sluice_setting_write> s;
    s.reserve(settings.size());
    for (const SettingChange& c : settings) {
      texts.push_back(c.value.dump());
      s.push_back({c.name.c_str(), texts.back().c_str()});
    }
    char err[1024] = "";
    if (h_->state_commit(h_->ctx, w.data(), w.size(), s.data(), s.size(), err, sizeof(err)) ==
        0) {
      return {};
    }
    return {err[0] != '\0' ? std::string(err) : std::string("the node state was not written")};
  }

  struct ChildResult {
    uint64_t id = 0;  // the call's id, as start_child returned it (0 on a host older than 1.2)
    Outcome outcome;
    int64_t latency_ns = 0;
    struct Emitted {
      std::string output;
      std::span<const uint8_t> bytes;  // valid only inside the callback
    };
    std::vector<Emitted> emitted;
  };
  using ChildCallback = std::function<void(const ChildResult&)>;

  size_t child_count() const { return h_->child_count(h_->ctx); }
  std::string_view child_name(size_t i) const { return h_->child_name(h_->ctx, i); }
  // Runs child i on the event; cb runs on this node's stage thread when the child is done.
  void child_process(size_t i, Bytes event, ChildCallback cb) const {
    auto* pending = new PendingChild{std::move(cb), 0};
    h_->child_process(h_->ctx, i, event.data(), event.size(), &Host::child_trampoline, pending);
  }

  // ABI 1.2: true when the host has timers and child deadlines/cancel.
  bool has_timers() const { return h_->abi_minor >= 2 && h_->timer_start != nullptr; }

  // Runs child i with an absolute mono_ns() deadline (0 = none), which the host enforces: no
  // outcome by then gives Status::kTimeout. Returns the id for cancel_child(). Stage thread
  // only; cb runs there, exactly once. On a host older than 1.2 the deadline is not enforced
  // and the id is 0 (cancel_child() then does nothing).
  uint64_t start_child(size_t i, Bytes event, int64_t deadline_ns, ChildCallback cb) const {
    auto* pending = new PendingChild{std::move(cb), 0};
    if (!has_timers()) {
      h_->child_process(h_->ctx, i, event.data(), event.size(), &Host::child_trampoline,
                        pending);
      return 0;
    }
    // The result never arrives inside child_start, so the id is set before the callback runs.
    pending->id = h_->child_start(h_->ctx, i, event.data(), event.size(), deadline_ns,
                                  &Host::child_trampoline, pending);
    return pending->id;
  }
  // Abandons a child call: cb gets Status::kCancelled unless the child answered first.
  void cancel_child(uint64_t id) const {
    if (id != 0 && has_timers()) h_->child_cancel(h_->ctx, id);
  }

  // Runs fn on this node's stage thread after delay; returns its id for cancel_timer(), or 0
  // when the node cannot have timers (a source, `sluice validate`, a host older than 1.2).
  uint64_t start_timer(std::chrono::nanoseconds delay, std::function<void()> fn) const {
    if (!has_timers()) return 0;
    auto* heap = new std::function<void()>(std::move(fn));
    uint64_t id = h_->timer_start(h_->ctx, delay.count(), &Host::timer_trampoline, heap);
    if (id == 0) delete heap;
    return id;
  }
  // True when the timer was pending and now never runs.
  bool cancel_timer(uint64_t id) const {
    return id != 0 && has_timers() && h_->timer_cancel(h_->ctx, id) != 0;
  }

  // ABI 1.2: sends an event the node produced on its own (an alert from a timer) to an output
  // (nullptr = the default one). Stage thread only; false when the node cannot (a composite's
  // child, a source, a host older than 1.2).
  bool emit(Bytes data, const char* output = nullptr) const {
    if (h_->abi_minor < 2 || h_->emit == nullptr) return false;
    return h_->emit(h_->ctx, output, data.data(), data.size()) == 0;
  }

 private:
  static void timer_trampoline(void* user, int cancelled) {
    std::unique_ptr<std::function<void()>> fn(static_cast<std::function<void()>*>(user));
    if (cancelled == 0) (*fn)();
  }
  struct PendingChild {
    ChildCallback cb;
    uint64_t id;
  };
  static void child_trampoline(void* user, const sluice_child_result* r) {
    std::unique_ptr<PendingChild> pending(static_cast<PendingChild*>(user));
    ChildResult res;
    res.id = pending->id;
    // The host fills this struct, and a plugin never runs on a host older than itself.
    res.outcome = Outcome::from(*r->outcome);
    res.latency_ns = r->latency_ns;
    res.emitted.reserve(r->emitted_count);
    for (size_t i = 0; i < r->emitted_count; ++i) {
      res.emitted.push_back({r->emitted_output[i] ? r->emitted_output[i] : "",
                             {r->emitted_data[i], r->emitted_size[i]}});
    }
    pending->cb(res);
  }
  Metric metric(int kind, const char* name, const std::string& labels) const {
    Metric m;
    m.h_ = h_;
    m.kind_ = kind;
    if (h_->abi_minor >= 2 && h_->metric_series != nullptr) {
      m.id_ = h_->metric_series(h_->ctx, kind, name, labels.empty() ? nullptr : labels.c_str());
    }
    if (m.id_ == 0) {
      m.name_ = name;
      m.labels_ = labels;
    }
    return m;
  }

  const sluice_host* h_;
};

// A node's commands (ABI 1.2), served by the admin endpoint as POST /nodes/NODE/NAME and by
// `sluice ctl node NODE NAME [JSON]`. Keep one as a member of the plugin, declared after what
// the handlers use: its destructor unregisters them. Handlers run on the node's stage thread
// (like process() and timers), take the request's JSON (an object, {} when none was sent) and
// return the answer's JSON; a thrown exception's message is the refusal (HTTP 400).
class Commands {
 public:
  using Handler = std::function<Json(const Json& args)>;

  explicit Commands(const Host& host) : host_(host) {}
  Commands(const Commands&) = delete;
  Commands& operator=(const Commands&) = delete;
  ~Commands() {
    if (!supported()) return;
    for (const auto& e : entries_) {
      host_.raw()->command_unregister(host_.raw()->ctx, e->name.c_str());
    }
  }

  // False on a host older than 1.2, which serves no commands.
  bool supported() const {
    return host_.raw()->abi_minor >= 2 && host_.raw()->command_register != nullptr;
  }
  // Registers a command; throws std::runtime_error when the name is taken or not [a-z0-9_]+.
  void add(std::string name, const std::string& description, Handler handler) {
    if (!supported()) return;
    auto entry = std::make_unique<Entry>(Entry{std::move(name), std::move(handler)});
    if (host_.raw()->command_register(host_.raw()->ctx, entry->name.c_str(), description.c_str(),
                                      &Commands::trampoline, entry.get()) != 0) {
      throw std::runtime_error("cannot register the command '" + entry->name + "'");
    }
    entries_.push_back(std::move(entry));
  }

 private:
  struct Entry {
    std::string name;
    Handler handler;
  };
  static void trampoline(void* user, const char* json, size_t len, sluice_command_reply reply,
                         void* reply_ctx) {
    auto* e = static_cast<Entry*>(user);
    std::string out;
    int status = 0;
    try {
      Json args = Json::parse(json, json + len, nullptr, false);
      if (args.is_discarded()) throw std::runtime_error("the request is not JSON");
      out = e->handler(args).dump();
    } catch (const std::exception& ex) {
      status = 1;
      out = ex.what();
    }
    reply(reply_ctx, status, out.data(), out.size());
  }
  Host host_;
  std::vector<std::unique_ptr<Entry>> entries_;
};

// One in-flight event. Move-only; emit() any number of times, then exactly one done()/ok()/
// fail(). Destroying an unfinished Call reports an internal error, so no event is ever stuck.
class Call {
 public:
  // host_minor: the ABI minor of the host that made the call (its 1.2 members exist only then).
  explicit Call(sluice_call* c, uint32_t host_minor = SLUICE_ABI_MINOR)
      : c_(c), host_minor_(host_minor) {}
  Call(Call&& o) noexcept : c_(std::exchange(o.c_, nullptr)), host_minor_(o.host_minor_) {}
  Call& operator=(Call&& o) noexcept {
    if (this != &o) {
      abandon();
      c_ = std::exchange(o.c_, nullptr);
      host_minor_ = o.host_minor_;
    }
    return *this;
  }
  Call(const Call&) = delete;
  Call& operator=(const Call&) = delete;
  ~Call() { abandon(); }

  Bytes bytes() const { return {c_->event, c_->event_size}; }
  EventView event() const { return EventView(c_->event, c_->event_size); }

  // The absolute mono_ns() time by which the caller wants the outcome; 0 = none.
  int64_t deadline_ns() const { return host_minor_ >= 2 ? c_->deadline_ns : 0; }
  // The smaller of `own` (the plugin's timeout) and the time left before the deadline; zero or
  // negative when the deadline has passed.
  std::chrono::nanoseconds time_left(std::chrono::nanoseconds own) const {
    int64_t deadline = deadline_ns();
    if (deadline == 0) return own;
    return std::min(own, std::chrono::nanoseconds(deadline - mono_ns()));
  }
  // Runs fn (once, on any thread) if the caller abandons this call: stop the work (abort the
  // request) and still complete the call, whose outcome is then ignored. fn may run while
  // done() runs on another thread, so it must touch only what outlives the call. At most once
  // per call, before done(); a no-op on hosts older than 1.2 (they never cancel).
  void on_cancel(std::function<void()> fn) {
    if (host_minor_ < 2 || c_->on_cancel == nullptr) return;
    auto* heap = new std::function<void()>(std::move(fn));
    c_->on_cancel(c_, &Call::cancel_trampoline, heap);
  }

  // Forwards the received bytes unchanged (zero-copy) to an output.
  void forward(const char* output = nullptr) { c_->emit(c_, output, c_->event, c_->event_size); }
  void emit(Bytes data, const char* output = nullptr) {
    c_->emit(c_, output, data.data(), data.size());
  }

  void done(const Outcome& o) {
    sluice_outcome out = o.raw();
    sluice_call* c = std::exchange(c_, nullptr);
    c->done(c, &out);
  }
  void ok(double cost_usd = 0) { done(Outcome::success(cost_usd)); }
  void fail(Status s, std::string message) { done(Outcome::failure(s, std::move(message))); }

 private:
  void abandon() {
    if (c_ == nullptr) return;
    sluice_outcome out{};
    out.status = SLUICE_ERR_INTERNAL;
    out.message = "plugin dropped the event without completing it";
    sluice_call* c = std::exchange(c_, nullptr);
    c->done(c, &out);
  }
  static void cancel_trampoline(void* user, int cancelled) {
    std::unique_ptr<std::function<void()>> fn(static_cast<std::function<void()>*>(user));
    if (cancelled != 0) (*fn)();
  }
  sluice_call* c_;
  uint32_t host_minor_;
};

// One call split into parts that complete on their own (one message per chat, one request per
// endpoint) and joined back into the call's outcome: ok when every part is ok (on_ok runs
// first, e.g. to record what was sent), else the first failure's class with every failure's
// message joined by "; "; costs add up. Each part is an ordinary Call over the same event, with
// the same deadline; what a part emits is dropped (parts report, the split call emits).
// Thread-safe: parts may complete on any thread, in any order. Call part() exactly `parts`
// times; a part dropped without completing counts as failed (as any dropped Call does).
class Split {
 public:
  Split(Call call, size_t parts, std::function<void()> on_ok = {})
      : join_(std::make_shared<Join>(std::move(call), parts, std::move(on_ok))) {}

  Call part() {
    auto* p = new Part;
    const Bytes bytes = join_->call.bytes();
    p->raw.event = bytes.data();
    p->raw.event_size = bytes.size();
    p->raw.host_data = p;
    p->raw.emit = [](sluice_call*, const char*, const uint8_t*, size_t) {};
    p->raw.done = &Split::part_done;
    p->raw.deadline_ns = join_->call.deadline_ns();
    p->join = join_;
    return Call(&p->raw);
  }

 private:
  struct Join {
    Join(Call c, size_t n, std::function<void()> ok)
        : call(std::move(c)), on_ok(std::move(ok)), remaining(n) {}
    Call call;
    std::function<void()> on_ok;
    std::mutex mu;
    size_t remaining;
    Status status = Status::kOk;
    std::string message;
    double cost = 0;
  };
  struct Part {
    sluice_call raw{};
    std::shared_ptr<Join> join;
  };
  static void part_done(sluice_call* c, const sluice_outcome* outcome) {
    std::unique_ptr<Part> part(static_cast<Part*>(c->host_data));
    std::shared_ptr<Join> join = std::move(part->join);
    bool last;
    {
      std::lock_guard lock(join->mu);
      join->cost += outcome->cost_usd;
      if (outcome->status != SLUICE_OK) {
        if (join->status == Status::kOk) join->status = static_cast<Status>(outcome->status);
        if (!join->message.empty()) join->message += "; ";
        join->message += outcome->message != nullptr ? outcome->message : "failed";
      }
      last = --join->remaining == 0;
    }
    if (!last) return;
    if (join->status == Status::kOk) {
      if (join->on_ok) join->on_ok();
      join->call.ok(join->cost);
    } else {
      Outcome failed = Outcome::failure(join->status, std::move(join->message));
      failed.cost_usd = join->cost;
      join->call.done(failed);
    }
  }
  std::shared_ptr<Join> join_;
};

// Handed to Source::run: blocking emit (backpressure) and cooperative stop.
class SourceContext {
 public:
  explicit SourceContext(sluice_source_ctx* c) : c_(c) {}
  // False once the pipeline is stopping: return from run() then.
  bool emit(Bytes data) { return c_->emit(c_, data.data(), data.size()) == 0; }
  bool stopping() const { return c_->stopping(c_) != 0; }
  // Sleeps up to d; false if woken because the pipeline is stopping.
  bool sleep_for(std::chrono::nanoseconds d) { return c_->sleep_ns(c_, d.count()) == 0; }

 private:
  sluice_source_ctx* c_;
};

// start(), in every kind: called once when the pipeline starts running, after every node was
// constructed and before the first run()/process()/consume(); never by `sluice validate`. Begin
// background work here, not in the constructor. It runs on a runtime thread, not the stage
// thread. Throw (OptionError to name an option) to fail the run; the object is then destroyed.

class Source {
 public:
  virtual ~Source() = default;
  virtual void start() {}
  // Emits until finished or stopping; throws to report a failure.
  virtual void run(SourceContext& ctx) = 0;
};

class Processor {
 public:
  virtual ~Processor() = default;
  virtual void start() {}
  virtual void process(Call call) = 0;
};

class Sink {
 public:
  virtual ~Sink() = default;
  virtual void start() {}
  virtual void consume(Call call) = 0;
  // Called once when the input is drained, before destruction; on a stop with calls still in
  // flight, called then instead: end every wait (retries) and complete those calls promptly.
  virtual void flush() {}
};

namespace detail {

inline void copy_to(char* dst, size_t cap, std::string_view s) {
  size_t n = std::min(cap - 1, s.size());
  std::memcpy(dst, s.data(), n);
  dst[n] = '\0';
}

// Fills err from a control-plane exception: the option an OptionError names, else none.
inline void fill_error(sluice_error* err, const std::exception& e) {
  const auto* option = dynamic_cast<const OptionError*>(&e);
  copy_to(err->key, sizeof(err->key), option ? std::string_view(option->key()) : "");
  err->column = option ? option->column() : 0;
  copy_to(err->message, sizeof(err->message), e.what());
}

// What the host holds as the plugin's `self`: the object and the host's ABI minor, which tells
// each Call whether its 1.2 members exist.
template <class T>
struct Instance {
  std::unique_ptr<T> object;
  uint32_t host_minor;
};

template <class T>
struct Adapter {
  static T* object(void* self) { return static_cast<Instance<T>*>(self)->object.get(); }
  static uint32_t host_minor(void* self) { return static_cast<Instance<T>*>(self)->host_minor; }

  static void* create(const sluice_host* host, const char* config_json, sluice_error* err) {
    try {
      Config cfg(Json::parse(config_json));
      auto object = std::make_unique<T>(Host(host), cfg);
      return new Instance<T>{std::move(object), host->abi_minor};
    } catch (const std::exception& e) {
      fill_error(err, e);
    }
    return nullptr;
  }
  static void destroy(void* self) { delete static_cast<Instance<T>*>(self); }
  static int start(void* self, sluice_error* err) {
    try {
      object(self)->start();
      return 0;
    } catch (const std::exception& e) {
      fill_error(err, e);
      return 1;
    }
  }
  static int run(void* self, sluice_source_ctx* c, sluice_error* err) {
    if constexpr (std::is_base_of_v<Source, T>) {
      try {
        SourceContext ctx(c);
        object(self)->run(ctx);
        return 0;
      } catch (const std::exception& e) {
        err->key[0] = '\0';
        err->column = 0;
        copy_to(err->message, sizeof(err->message), e.what());
        return 1;
      }
    }
    return 1;
  }
  static void process(void* self, sluice_call* call) {
    try {
      if constexpr (std::is_base_of_v<Processor, T>) {
        object(self)->process(Call(call, host_minor(self)));
      } else if constexpr (std::is_base_of_v<Sink, T>) {
        object(self)->consume(Call(call, host_minor(self)));
      }
    } catch (...) {
      // The Call was moved into the plugin and has already reported itself as abandoned.
    }
  }
  static void flush(void* self) {
    if constexpr (std::is_base_of_v<Sink, T>) object(self)->flush();
  }
};

template <class T>
concept HasOutputs = requires {
  T::kOutputs;
};

// `static constexpr sluice_option_bounds kOptionBounds[] = {{"retries", "0", "10"}};` in the
// class: bounds the host checks (ABI 1.2).
template <class T>
concept HasOptionBounds = requires {
  T::kOptionBounds;
};

template <class T, size_t N>
const sluice_plugin_descriptor* describe(const char* name, const char* version,
                                         const char* description,
                                         const sluice_option_spec (&options)[N]) {
  static_assert(
      std::is_base_of_v<Source, T> || std::is_base_of_v<Processor, T> || std::is_base_of_v<Sink, T>,
      "a plugin class derives from sluice::Source, Processor or Sink");
  static const sluice_plugin_descriptor d = [&] {
    sluice_plugin_descriptor x{};
    x.abi_major = SLUICE_ABI_MAJOR;
    x.abi_minor = SLUICE_ABI_MINOR;
    x.kind = std::is_base_of_v<Source, T>      ? SLUICE_KIND_SOURCE
             : std::is_base_of_v<Processor, T> ? SLUICE_KIND_PROCESSOR
                                               : SLUICE_KIND_SINK;
    x.name = name;
    x.version = version;
    x.description = description;
    x.options = options;
    x.option_count = (N == 1 && options[0].key == nullptr) ? 0 : N;
    if constexpr (HasOutputs<T>) x.outputs = T::kOutputs;
    if constexpr (HasOptionBounds<T>) {
      x.option_bounds = T::kOptionBounds;
      x.option_bounds_count = std::size(T::kOptionBounds);
    }
    x.create = &Adapter<T>::create;
    x.destroy = &Adapter<T>::destroy;
    x.run = &Adapter<T>::run;
    x.process = &Adapter<T>::process;
    x.flush = &Adapter<T>::flush;
    x.start = &Adapter<T>::start;
    return x;
  }();
  return &d;
}

}  // namespace detail
}  // namespace sluice

// Registers the plugin class. Options: an array of sluice_option_spec (use {} for none).
// Optional: `static constexpr const char* kOutputs[] = {"unmatched", nullptr};` in the class, and
// `static constexpr sluice_option_bounds kOptionBounds[] = {{"retries", "0", "10"}};` for bounds
// of numeric options that the host checks (ABI 1.2).
#define SLUICE_PLUGIN(Class, name, version, description, options)                     \
  extern "C" SLUICE_EXPORT const sluice_plugin_descriptor* SLUICE_ENTRY_POINT(void) { \
    return ::sluice::detail::describe<Class>(name, version, description, options);    \
  }
