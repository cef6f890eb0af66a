// The `fallback` processor (see fallback.hpp). Everything here runs on the node's stage thread:
// process(), child results and timers, so a chain's state needs no lock.
#include "fallback.hpp"

#include <algorithm>
#include <random>

#include "sluice/units.hpp"

namespace sluice::fallback {
namespace {

constexpr int64_t kMinute = 60'000'000'000;

// Classes a retry of the same child may cure; the rest move straight on.
bool retryable(Status s) {
  return s == Status::kTimeout || s == Status::kRateLimited || s == Status::kServerError;
}

// A key or credential problem: the next provider may work, but an operator must fix this one.
bool operator_error(Status s) { return s == Status::kAuth || s == Status::kBadRequest; }

std::optional<Status> status_from_name(std::string_view name) {
  for (int s = SLUICE_ERR_TIMEOUT; s <= SLUICE_ERR_CANCELLED; ++s) {
    if (name == status_name(s)) return static_cast<Status>(s);
  }
  return std::nullopt;
}

// Full jitter: uniform in [0, min(cap, base * 2^attempt)].
int64_t jittered_backoff(int attempt, int64_t base_ns, int64_t cap_ns) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  double ceiling =
      static_cast<double>(base_ns) * static_cast<double>(1ULL << std::min(attempt, 30));
  ceiling = std::min(ceiling, static_cast<double>(cap_ns));
  return static_cast<int64_t>(std::uniform_real_distribution<double>(0, ceiling)(rng));
}

std::string ms(int64_t ns) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.0f ms", static_cast<double>(ns) / 1e6);
  return buf;
}

int64_t duration_in(const Json& table, const std::string& where, const char* key, int64_t def) {
  auto it = table.find(key);
  if (it == table.end()) return def;
  std::string error;
  std::optional<int64_t> ns;
  if (it->is_string()) ns = units::parse_duration(it->get<std::string>(), &error);
  if (!ns || *ns <= 0) {
    throw OptionError("children", where + "." + key +
                                      " must be a positive duration such as "
                                      "\"30s\"" +
                                      (error.empty() ? "" : " (" + error + ")"));
  }
  return *ns;
}

int64_t count_in(const Json& table, const std::string& where, const char* key, int64_t def) {
  auto it = table.find(key);
  if (it == table.end()) return def;
  if (!it->is_number_integer() || it->get<int64_t>() < 0) {
    throw OptionError("children", where + "." + key + " must be a non-negative integer");
  }
  return it->get<int64_t>();
}

void only_keys(const Json& table, const std::string& where,
               std::initializer_list<const char*> keys) {
  if (!table.is_object()) throw OptionError("children", where + " must be a table");
  for (const auto& [key, value] : table.items()) {
    if (std::none_of(keys.begin(), keys.end(), [&](const char* k) { return key == k; })) {
      std::string list;
      for (const char* k : keys) list += std::string(list.empty() ? "" : ", ") + k;
      throw OptionError("children", where + ": unknown key '" + key + "' (keys: " + list + ")");
    }
  }
}

}  // namespace

const char* breaker_state_name(BreakerState s) {
  switch (s) {
    case BreakerState::kClosed:
      return "closed";
    case BreakerState::kOpen:
      return "open";
    case BreakerState::kHalfOpen:
      return "half_open";
  }
  return "closed";
}

bool Breaker::allow(int64_t now_ns) {
  if (state_ == BreakerState::kOpen) {
    if (now_ns - opened_at_ns_ < options_.cooldown_ns) return false;
    state_ = BreakerState::kHalfOpen;
    probe_in_flight_ = false;
  }
  if (state_ == BreakerState::kHalfOpen) {
    if (probe_in_flight_) return false;
    probe_in_flight_ = true;
  }
  return true;
}

void Breaker::open(int64_t now_ns) {
  state_ = BreakerState::kOpen;
  opened_at_ns_ = now_ns;
  probe_in_flight_ = false;
  consecutive_failures_ = 0;
  window_.clear();
}

bool Breaker::record(bool success, int64_t now_ns) {
  if (!options_.enabled()) return false;
  if (state_ == BreakerState::kHalfOpen) {
    if (success) {
      state_ = BreakerState::kClosed;
      probe_in_flight_ = false;
      consecutive_failures_ = 0;
      window_.clear();
    } else {
      open(now_ns);
    }
    return true;
  }
  if (state_ == BreakerState::kOpen) return false;  // a call started before it opened
  consecutive_failures_ = success ? 0 : consecutive_failures_ + 1;
  if (options_.failures > 0 && consecutive_failures_ >= options_.failures) {
    open(now_ns);
    return true;
  }
  if (options_.error_rate > 0) {
    window_.emplace_back(now_ns, success);
    while (!window_.empty() && now_ns - window_.front().first > options_.window_ns) {
      window_.pop_front();
    }
    if (static_cast<int64_t>(window_.size()) >= options_.min_requests) {
      auto failed =
          std::count_if(window_.begin(), window_.end(), [](const auto& e) { return !e.second; });
      if (static_cast<double>(failed) >=
          options_.error_rate * static_cast<double>(window_.size())) {
        open(now_ns);
        return true;
      }
    }
  }
  return false;
}

void Breaker::reset() {
  state_ = BreakerState::kClosed;
  opened_at_ns_ = 0;
  consecutive_failures_ = 0;
  probe_in_flight_ = false;
  window_.clear();
}

void Breaker::restore(BreakerState state, int64_t opened_at_ns) {
  state_ = state == BreakerState::kHalfOpen ? BreakerState::kOpen : state;
  opened_at_ns_ = opened_at_ns;
  probe_in_flight_ = false;
}

void Budget::expire(int64_t now_ns) {
  while (!requests_.empty() && now_ns - requests_.front() >= kMinute) requests_.pop_front();
  while (!tokens_.empty() && now_ns - tokens_.front().first >= kMinute) {
    token_sum_ -= tokens_.front().second;
    tokens_.pop_front();
  }
}

const char* Budget::refuses(int64_t now_ns) {
  expire(now_ns);
  if (rpm_ > 0 && static_cast<int64_t>(requests_.size()) >= rpm_) return "rpm";
  if (tpm_ > 0 && token_sum_ >= tpm_) return "tpm";
  return nullptr;
}

void Budget::started(int64_t now_ns) {
  if (rpm_ > 0) requests_.push_back(now_ns);
}

void Budget::spent(int64_t tokens, int64_t now_ns) {
  if (tpm_ <= 0 || tokens <= 0) return;
  tokens_.emplace_back(now_ns, tokens);
  token_sum_ += tokens;
}

// One link of the chain, with its metric series resolved once (the per-event ones; rarer
// counts such as skips and failures by class go by name).
struct Fallback::Child {
  size_t index = 0;  // in the host's child table
  std::string name;
  std::string labels;  // child="name"
  bool enabled = true;
  std::string enabled_setting;  // "" = the fixed `enabled`
  uint64_t settings_version = UINT64_MAX;
  Breaker breaker;
  Budget budget;
  Metric attempts;
  Metric successes;
};

// One event going through the chain. Kept small and allocation-light: the common case is one
// child answering at once, where this node's cost is the whole overhead.
struct Fallback::Run {
  explicit Run(Fallback* f, Call c) : owner(f), call(std::move(c)) {}
  struct Active {
    uint64_t id;
    size_t pos;
    int attempt;
    bool hedge;  // started by the hedge timer
  };
  struct Failure {
    std::string child;
    std::string cls;
    std::string message;
  };
  Fallback* owner;
  Call call;
  int64_t deadline = 0;         // mono_ns
  size_t preferred = SIZE_MAX;  // position the event asked to try first (prefer)
  size_t next = 0;              // how many positions were taken (see position())
  std::vector<Active> active;   // at most two (a hedged pair), plus a retry in waiting
  int attempts = 0;
  Status last_failure = Status::kInternal;  // the class the event fails with when all fail
  std::vector<Failure> errors;
  double cost = 0;
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;
  uint64_t hedge_timer = 0;
  uint64_t retry_timer = 0;
  bool finished = false;

  // The n-th position to try: the preferred child first, then the chain in order without it.
  size_t position(size_t n) const {
    if (preferred == SIZE_MAX) return n;
    if (n == 0) return preferred;
    return n - 1 < preferred ? n - 1 : n;
  }
  Active* find(uint64_t id) {
    for (Active& a : active) {
      if (a.id == id) return &a;
    }
    return nullptr;
  }
  // fallback_errors: [{"child", "class", "message"}...], "[]" when none.
  std::string errors_json() const {
    if (errors.empty()) return "[]";
    Json j = Json::array();
    for (const Failure& f : errors) {
      j.push_back({{"child", f.child}, {"class", f.cls}, {"message", f.message}});
    }
    return j.dump();
  }
};

Fallback::Fallback(const Host& host, const Config& config)
    : host_(host),
      deadline_ns_(config.duration("deadline").count()),
      retries_(config.i64("retries")),
      backoff_ns_(config.duration("retry_backoff").count()),
      backoff_max_ns_(config.duration("retry_backoff_max").count()),
      commands_(host) {
  if (deadline_ns_ <= 0) throw OptionError("deadline", "must be positive");
  if (retries_ < 0) throw OptionError("retries", "must not be negative");
  if (retries_ > 10) throw OptionError("retries", "must be at most 10");
  if (backoff_ns_ <= 0) throw OptionError("retry_backoff", "must be positive");
  if (backoff_max_ns_ < backoff_ns_) {
    throw OptionError("retry_backoff_max", "must not be below retry_backoff");
  }
  if (config.has("hedge_after")) {
    hedge_after_ns_ = config.duration("hedge_after").count();
    if (hedge_after_ns_ <= 0) throw OptionError("hedge_after", "must be positive");
    if (hedge_after_ns_ >= deadline_ns_) {
      throw OptionError("hedge_after",
                        "must be shorter than the deadline (" + ms(deadline_ns_) + ")");
    }
  }
  for (const std::string& name : config.strings("on")) {
    auto status = status_from_name(name);
    if (!status || *status == Status::kCancelled) {
      throw OptionError("on", "unknown error class '" + name +
                                  "' (classes: timeout, rate_limited, server_error, "
                                  "bad_response, rejected, auth, bad_request, "
                                  "insufficient_quota, internal)");
    }
    move_on_.insert(*status);
  }
  move_on_.insert(Status::kAuth);
  move_on_.insert(Status::kBadRequest);
  if (config.has("prefer")) {
    prefer_field_ = config.str("prefer");
    if (prefer_field_.rfind("attrs.", 0) == 0) {
      prefer_attr_ = true;
      prefer_field_ = prefer_field_.substr(6);
    }
    if (prefer_field_.empty()) throw OptionError("prefer", "must name a field or attrs.NAME");
  }

  std::vector<size_t> chain = config.children("chain");
  if (chain.empty()) throw OptionError("chain", "must name at least one processor");
  std::set<size_t> seen;
  for (size_t index : chain) {
    if (!seen.insert(index).second) {
      throw OptionError("chain", "names '" + std::string(host_.child_name(index)) + "' twice");
    }
    auto child = std::make_unique<Child>();
    child->index = index;
    child->name = std::string(host_.child_name(index));
    child->labels = metric_label("child", child->name);
    child->attempts = host_.counter("fallback_attempts_total", child->labels);
    child->successes = host_.counter("fallback_successes_total", child->labels);
    children_.push_back(std::move(child));
  }

  Json blocks = config.has("children") ? config.at("children") : Json::object();
  if (!blocks.is_object()) throw OptionError("children", "must be a table of child names");
  for (const auto& [name, block] : blocks.items()) {
    auto it = std::find_if(children_.begin(), children_.end(),
                           [&](const auto& c) { return c->name == name; });
    if (it == children_.end()) {
      throw OptionError("children", "'" + name + "' is not in the chain");
    }
    Child& child = **it;
    only_keys(block, name, {"enabled", "breaker", "rpm", "tpm"});
    if (auto e = block.find("enabled"); e != block.end()) {
      if (e->is_boolean()) {
        child.enabled = e->get<bool>();
      } else if (e->is_string() && e->get<std::string>().size() > 1 &&
                 e->get<std::string>()[0] == '$') {
        child.enabled_setting = e->get<std::string>().substr(1);
        auto value = host_.setting(child.enabled_setting);
        if (!value) {
          throw OptionError("children", name + ".enabled: no setting '" + child.enabled_setting +
                                            "' in [settings]");
        }
        if (!value->is_boolean()) {
          throw OptionError("children", name + ".enabled: setting '" + child.enabled_setting +
                                            "' must be a boolean");
        }
      } else {
        throw OptionError("children", name + ".enabled must be true, false or \"$setting\"");
      }
    }
    if (auto b = block.find("breaker"); b != block.end()) {
      const std::string where = name + ".breaker";
      only_keys(*b, where, {"failures", "error_rate", "window", "min_requests", "cooldown"});
      BreakerOptions o;
      o.failures = count_in(*b, where, "failures", 0);
      if (auto r = b->find("error_rate"); r != b->end()) {
        if (!r->is_number() || r->get<double>() <= 0 || r->get<double>() > 1) {
          throw OptionError("children", where + ".error_rate must be in (0, 1]");
        }
        o.error_rate = r->get<double>();
      }
      o.window_ns = duration_in(*b, where, "window", o.window_ns);
      o.min_requests = std::max<int64_t>(1, count_in(*b, where, "min_requests", o.min_requests));
      o.cooldown_ns = duration_in(*b, where, "cooldown", o.cooldown_ns);
      if (!o.enabled()) {
        throw OptionError("children", where + " needs failures or error_rate");
      }
      child.breaker = Breaker(o);
    }
    child.budget = Budget(count_in(block, name, "rpm", 0), count_in(block, name, "tpm", 0));
  }

  commands_.add("status", "Each child of the chain: enabled, breaker state (and cooldown left)",
                [this](const Json&) {
                  Json children = Json::array();
                  for (auto& c : children_) children.push_back(child_status(*c));
                  return Json{{"children", children}};
                });
  commands_.add("reset_breaker", "Close a child's circuit breaker now: {\"child\": \"NAME\"}",
                [this](const Json& args) {
                  Child& child = child_named(args);
                  BreakerState before = child.breaker.state();
                  child.breaker.reset();
                  if (before != BreakerState::kClosed) breaker_changed(child);
                  host_.info("breaker of " + child.name + " reset by an operator");
                  return child_status(child);
                });
}

Fallback::Child& Fallback::child_named(const Json& args) {
  if (!args.is_object() || !args.contains("child") || !args["child"].is_string()) {
    throw std::runtime_error("say which child: {\"child\": \"NAME\"}");
  }
  const std::string name = args["child"].get<std::string>();
  for (auto& c : children_) {
    if (c->name == name) return *c;
  }
  std::string known;
  for (auto& c : children_) known += (known.empty() ? "" : ", ") + c->name;
  throw std::runtime_error("no child '" + name + "' in the chain (" + known + ")");
}

Json Fallback::child_status(Child& child) {
  Json j = {{"name", child.name},
            {"enabled", child_enabled(child)},
            {"breaker", breaker_state_name(child.breaker.state())}};
  if (child.breaker.state() == BreakerState::kOpen) {
    int64_t left = child.breaker.options().cooldown_ns - (mono_ns() - child.breaker.opened_at_ns());
    j["breaker_cooldown_left_s"] = static_cast<double>(std::max<int64_t>(left, 0)) / 1e9;
  }
  return j;
}

// Breaker state survives a restart: an open breaker stays open for the rest of its cooldown.
void Fallback::start() {
  int64_t now_wall = now_ns();
  int64_t now = mono_ns();
  for (auto& child : children_) {
    if (child->breaker.options().enabled()) {
      std::optional<std::string> saved;
      try {
        saved = host_.state_get("breaker/" + child->name);
      } catch (const std::exception& e) {
        host_.warn(std::string("breaker state of ") + child->name + " not restored: " + e.what());
      }
      if (saved) {
        Json j = Json::parse(*saved, nullptr, false);
        if (j.is_object() && j.value("state", "") == "open" && j.contains("opened_at_unix_ns") &&
            j["opened_at_unix_ns"].is_number_integer()) {
          int64_t age = now_wall - j["opened_at_unix_ns"].get<int64_t>();
          child->breaker.restore(BreakerState::kOpen, now - std::max<int64_t>(age, 0));
          host_.info("breaker of " + child->name + " restored open (opened " + ms(age) + " ago)");
        }
      }
    }
    host_.gauge_set("fallback_breaker_state", static_cast<double>(child->breaker.state()),
                    child->labels.c_str());
  }
}

bool Fallback::child_enabled(Child& child) {
  if (child.enabled_setting.empty()) return child.enabled;
  uint64_t version = host_.settings_version();
  if (version != child.settings_version) {
    auto value = host_.setting(child.enabled_setting);
    child.enabled = value && value->is_boolean() ? value->get<bool>() : child.enabled;
    child.settings_version = version;
  }
  return child.enabled;
}

const char* Fallback::skip_reason(Child& child, int64_t now) {
  if (!child_enabled(child)) return "disabled";
  if (const char* r = child.budget.refuses(now)) return r;
  if (child.breaker.options().enabled() && !child.breaker.allow(now)) return "breaker_open";
  return nullptr;
}

void Fallback::breaker_changed(Child& child) {
  BreakerState s = child.breaker.state();
  host_.gauge_set("fallback_breaker_state", static_cast<double>(s), child.labels.c_str());
  std::string labels = child.labels + "," + metric_label("state", breaker_state_name(s));
  host_.counter_add("fallback_breaker_transitions_total", 1, labels.c_str());
  if (s == BreakerState::kOpen) {
    host_.warn("breaker of " + child.name + " opened: skipped for " +
               ms(child.breaker.options().cooldown_ns));
  } else if (s == BreakerState::kClosed) {
    host_.info("breaker of " + child.name + " closed again");
  }
  // Persist open/closed (half-open is a moment, restored as open).
  if (s == BreakerState::kHalfOpen) return;
  Json j = {{"state", breaker_state_name(s)}};
  if (s == BreakerState::kOpen) {
    j["opened_at_unix_ns"] = now_ns() - (mono_ns() - child.breaker.opened_at_ns());
  }
  auto result = host_.state_commit({{"breaker/" + child.name, j.dump()}});
  if (!result.ok()) host_.warn("breaker state of " + child.name + " not saved: " + result.error);
}

size_t Fallback::preferred_for(const EventView& event) const {
  if (prefer_field_.empty()) return SIZE_MAX;
  std::optional<std::string_view> wanted =
      prefer_attr_ ? event.attr(prefer_field_) : event.string(prefer_field_);
  if (!wanted) return SIZE_MAX;
  for (size_t i = 0; i < children_.size(); ++i) {
    if (children_[i]->name == *wanted) return i;
  }
  return SIZE_MAX;
}

void Fallback::process(Call call) {
  auto run = std::make_shared<Run>(this, std::move(call));
  int64_t now = mono_ns();
  run->deadline = now + deadline_ns_;
  if (int64_t outer = run->call.deadline_ns(); outer != 0)
    run->deadline = std::min(run->deadline, outer);
  run->preferred = preferred_for(run->call.event());
  start_next(run);
}

void Fallback::start_next(const std::shared_ptr<Run>& run) {
  while (run->next < children_.size()) {
    size_t pos = run->position(run->next++);
    Child& child = *children_[pos];
    int64_t now = mono_ns();
    if (now >= run->deadline) break;
    if (const char* reason = skip_reason(child, now)) {
      std::string labels = child.labels + "," + metric_label("reason", reason);
      host_.counter_add("fallback_skipped_total", 1, labels.c_str());
      run->errors.push_back({child.name, "skipped", reason});
      continue;
    }
    launch(run, pos, 0);
    return;
  }
  if (run->active.empty() && run->retry_timer == 0) {
    if (mono_ns() >= run->deadline) {
      fail_chain(run, Status::kTimeout, "the chain's deadline of " + ms(deadline_ns_) + " passed");
    } else {
      fail_chain(run, run->last_failure, "every child failed");
    }
  }
}

void Fallback::launch(const std::shared_ptr<Run>& run, size_t pos, int attempt) {
  Child& child = *children_[pos];
  ++run->attempts;
  if (child.budget.counts_requests()) child.budget.started(mono_ns());
  child.attempts.add();
  // A capture of one shared_ptr fits std::function's inline storage: no allocation for it.
  uint64_t id = host_.start_child(
      child.index, run->call.bytes(), run->deadline,
      [run](const Host::ChildResult& r) { run->owner->on_result(run, r.id, r); });
  run->active.push_back({id, pos, attempt, false});
  // The hedge waits hedge_after from the start of the call it would hedge: a child the chain
  // moved on to (or a retry) restarts it; the hedge call itself does not.
  if (hedge_after_ns_ > 0 && run->active.size() == 1) {
    host_.cancel_timer(std::exchange(run->hedge_timer, 0));
    schedule_hedge(run);
  }
}

void Fallback::schedule_hedge(const std::shared_ptr<Run>& run) {
  run->hedge_timer = host_.start_timer(std::chrono::nanoseconds(hedge_after_ns_), [this, run] {
    run->hedge_timer = 0;
    if (run->finished || run->active.size() != 1 || run->next >= children_.size()) return;
    size_t before = run->active.size();
    start_next(run);
    if (run->active.size() > before) {
      Run::Active& hedge = run->active.back();
      hedge.hedge = true;
      host_.counter_add("fallback_hedges_started_total", 1, children_[hedge.pos]->labels.c_str());
    }
  });
}

void Fallback::on_result(const std::shared_ptr<Run>& run, uint64_t id, const Host::ChildResult& r) {
  Run::Active* entry = run->find(id);
  if (entry == nullptr) return;
  const size_t pos = entry->pos;
  const int attempt = entry->attempt;
  const bool hedge = entry->hedge;
  run->active.erase(run->active.begin() + (entry - run->active.data()));
  Child& child = *children_[pos];
  const Outcome& o = r.outcome;
  int64_t now = mono_ns();
  run->cost += o.cost_usd;
  run->input_tokens += o.input_tokens;
  run->output_tokens += o.output_tokens;
  child.budget.spent(o.input_tokens + o.output_tokens, now);
  if (run->finished) return;  // a hedged loser that answered before its cancel took effect
  if (o.status != Status::kCancelled && child.breaker.record(o.ok(), now)) breaker_changed(child);
  if (o.ok()) {
    if (hedge) {
      host_.counter_add("fallback_hedges_won_total", 1, child.labels.c_str());
    }
    succeed(run, pos, r);
    return;
  }
  std::string labels =
      child.labels + "," + metric_label("class", status_name(static_cast<int>(o.status)));
  host_.counter_add("fallback_failures_total", 1, labels.c_str());
  run->last_failure = o.status;
  run->errors.push_back({child.name, status_name(static_cast<int>(o.status)), o.message});
  if (operator_error(o.status)) {
    host_.counter_add("fallback_operator_errors_total", 1, labels.c_str());
    host_.error(child.name + " failed with " + status_name(static_cast<int>(o.status)) +
                " (an operator must fix its key or request; moving on): " + o.message);
  }
  if (!move_on_.count(o.status)) {
    fail_chain(run, o.status, child.name + " failed with a class that ends the chain");
    return;
  }
  if (attempt < retries_ && retryable(o.status)) {
    int64_t wait = o.status == Status::kRateLimited && o.retry_after_ns > 0
                       ? o.retry_after_ns
                       : jittered_backoff(attempt, backoff_ns_, backoff_max_ns_);
    // Only when the retry could still start with time to spare; else move on at once.
    if (now + wait < run->deadline) {
      host_.counter_add("fallback_retries_total", 1, child.labels.c_str());
      size_t retry_pos = pos;
      int next_attempt = attempt + 1;
      run->retry_timer =
          host_.start_timer(std::chrono::nanoseconds(wait), [this, run, retry_pos, next_attempt] {
            run->retry_timer = 0;
            if (run->finished) return;
            if (mono_ns() >= run->deadline) {
              start_next(run);
              return;
            }
            launch(run, retry_pos, next_attempt);
          });
      if (run->retry_timer != 0) return;
    }
  }
  // A hedged call still running takes over; otherwise the next child.
  if (!run->active.empty()) return;
  start_next(run);
}

void Fallback::succeed(const std::shared_ptr<Run>& run, size_t pos, const Host::ChildResult& r) {
  run->finished = true;
  Child& child = *children_[pos];
  host_.cancel_timer(std::exchange(run->hedge_timer, 0));
  host_.cancel_timer(std::exchange(run->retry_timer, 0));
  // The other call of a hedged pair is abandoned: its child aborts its request.
  for (const Run::Active& a : run->active) host_.cancel_child(a.id);
  child.successes.add();
  bool first = pos == run->position(0) && run->errors.empty();
  (first ? events_first_ : events_failover_).add();
  const std::string errors = run->errors_json();
  thread_local EventBuilder builder;
  for (const auto& e : r.emitted) {
    // Only our three fields are encoded; the child's event is embedded as it is.
    builder.extend(EventView(e.bytes.data(), e.bytes.size()));
    builder.field("fallback_used", child.name)
        .field("fallback_attempts", static_cast<int64_t>(run->attempts))
        .field("fallback_errors", errors);
    auto bytes = builder.finish();
    run->call.emit(bytes, e.output.empty() ? nullptr : e.output.c_str());
  }
  Outcome out = Outcome::success(run->cost);
  out.with_usage(run->input_tokens, run->output_tokens, r.outcome.model);
  run->call.done(out);
}

void Fallback::fail_chain(const std::shared_ptr<Run>& run, Status status, const std::string& why) {
  if (run->finished) return;
  run->finished = true;
  host_.cancel_timer(std::exchange(run->hedge_timer, 0));
  host_.cancel_timer(std::exchange(run->retry_timer, 0));
  for (const Run::Active& a : run->active) host_.cancel_child(a.id);
  events_failed_.add();
  std::string message = why + ": ";
  bool any = false;
  for (const Run::Failure& e : run->errors) {
    message += std::string(any ? "; " : "") + e.child + " " + e.cls +
               (e.message.empty() ? "" : " (" + e.message + ")");
    any = true;
  }
  if (!any) message += "no child was tried";
  Outcome out = Outcome::failure(status, message);
  out.cost_usd = run->cost;
  out.with_usage(run->input_tokens, run->output_tokens, "");
  run->call.done(out);
}

}  // namespace sluice::fallback

SLUICE_PLUGIN(sluice::fallback::Fallback, "fallback", "1.0.0",
              "Tries child processors in order under one deadline: retries with backoff, "
              "hedging, circuit breakers, rpm/tpm budgets and runtime switches per child",
              sluice::fallback::kOptions);
