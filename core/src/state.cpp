// SQLite-backed settings store (values checked against their declared type and bounds, saved
// before they are acknowledged, re-read when another process changed them) and per-node state.
#include "sluice/core/state.hpp"

#include <sqlite3.h>

#include <filesystem>
#include <stdexcept>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "sluice/core/node_host.hpp"

namespace sluice::core {
namespace {

const char* json_kind(const nlohmann::json& v) {
  if (v.is_boolean()) return "boolean";
  if (v.is_number()) return "number";
  if (v.is_string()) return "string";
  return "other";
}

void exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, &err);
  // Processes of one pipeline open the database together; switching to WAL takes a lock that
  // the busy timeout does not cover, so setup retries for a while.
  for (int i = 0; (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) && i < 200; ++i) {
    sqlite3_free(err);
    err = nullptr;
    sqlite3_sleep(25);
    rc = sqlite3_exec(db, sql, nullptr, nullptr, &err);
  }
  if (rc != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    throw std::runtime_error(fmt::format("state database: {}", msg));
  }
}

}  // namespace

SettingsStore::SettingsStore(const std::vector<SettingSpec>& specs) {
  for (const SettingSpec& s : specs) {
    values_[s.name] = s.value;
    specs_[s.name] = s;
  }
}

SettingsStore::SettingsStore(const std::string& state_dir, const std::vector<SettingSpec>& specs)
    : SettingsStore(specs) {
  std::error_code ec;
  std::filesystem::create_directories(state_dir, ec);
  std::string path = (std::filesystem::path(state_dir) / "state.db").string();
  db_path_ = path;
  if (ec) throw std::runtime_error(fmt::format("cannot create state directory {}: {}", state_dir,
                                               ec.message()));
  if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw std::runtime_error(fmt::format("cannot open state database {}: {}", path, msg));
  }
  sqlite3_busy_timeout(db_, 2000);
  exec(db_, "PRAGMA journal_mode=WAL");
  exec(db_,
       "CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value TEXT NOT NULL, "
       "updated_ns INTEGER NOT NULL)");
  load_persisted();
}

SettingsStore::~SettingsStore() {
  if (db_ != nullptr) sqlite3_close(db_);
}

void SettingsStore::load_persisted() {
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db_, "PRAGMA data_version", -1, &st, nullptr) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW) {
    data_version_ = sqlite3_column_int64(st, 0);
  }
  sqlite3_finalize(st);
  if (sqlite3_prepare_v2(db_, "SELECT name, value FROM settings", -1, &st, nullptr) != SQLITE_OK) {
    return;
  }
  bool changed = false;
  while (sqlite3_step(st) == SQLITE_ROW) {
    std::string name = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    auto value = nlohmann::json::parse(reinterpret_cast<const char*>(sqlite3_column_text(st, 1)),
                                       nullptr, false);
    auto it = values_.find(name);
    // Settings no longer declared in the file, or whose type or bounds no longer admit the
    // saved value, keep the file's value.
    if (it == values_.end() || value.is_discarded() || it->second == value) continue;
    if (std::string why = check(name, value); !why.empty()) {
      make_logger("sluice")->warn("state database {}: saved value of setting '{}' ignored: {}",
                                  db_path_, name, why);
      continue;
    }
    it->second = value;
    changed = true;
  }
  sqlite3_finalize(st);
  if (changed) version_.fetch_add(1, std::memory_order_acq_rel);
}

std::optional<nlohmann::json> SettingsStore::get(const std::string& name) const {
  std::lock_guard lock(mu_);
  auto it = values_.find(name);
  if (it == values_.end()) return std::nullopt;
  return it->second;
}

std::map<std::string, nlohmann::json> SettingsStore::all() const {
  std::lock_guard lock(mu_);
  return values_;
}

std::string SettingsStore::check(const std::string& name, const nlohmann::json& value) const {
  // specs_ never changes after construction: no lock needed.
  auto it = specs_.find(name);
  if (it == specs_.end()) {
    std::vector<std::string> names;
    for (const auto& [n, spec] : specs_) names.push_back(n);
    return names.empty() ? fmt::format("unknown setting '{}' (the pipeline declares none)", name)
                         : fmt::format("unknown setting '{}' (settings: {})", name,
                                       fmt::join(names, ", "));
  }
  const SettingSpec& spec = it->second;
  if (std::string_view(json_kind(value)) != json_kind(spec.value)) {
    return fmt::format("setting '{}' is a {}, got a {}", name, json_kind(spec.value),
                       json_kind(value));
  }
  if (value.is_number() && (!spec.min.is_null() || !spec.max.is_null())) {
    double v = value.get<double>();
    bool low = !spec.min.is_null() && v < spec.min.get<double>();
    bool high = !spec.max.is_null() && v > spec.max.get<double>();
    if (low || high) {
      std::string range = spec.min.is_null()   ? fmt::format("at most {}", spec.max.dump())
                          : spec.max.is_null() ? fmt::format("at least {}", spec.min.dump())
                                               : fmt::format("between {} and {}",
                                                             spec.min.dump(), spec.max.dump());
      return fmt::format("setting '{}' must be {}, got {}", name, range, value.dump());
    }
  }
  return {};
}

std::string SettingsStore::set(const std::string& name, const nlohmann::json& value) {
  if (std::string why = check(name, value); !why.empty()) return why;
  std::lock_guard lock(mu_);
  // Saved first: a change the database did not take is refused, so nothing is acknowledged
  // that a restart (or another process) would not see.
  if (db_ != nullptr) {
    if (std::string why = persist(name, value); !why.empty()) {
      return fmt::format("setting '{}' not changed: cannot save it in {}: {}", name, db_path_,
                         why);
    }
  }
  values_[name] = value;
  version_.fetch_add(1, std::memory_order_acq_rel);
  return {};
}

std::string SettingsStore::persist(const std::string& name, const nlohmann::json& value) {
  sqlite3_stmt* st = nullptr;
  int rc = sqlite3_prepare_v2(db_,
                              "INSERT INTO settings(name, value, updated_ns) VALUES(?1, ?2, "
                              "CAST(strftime('%s','now') AS INTEGER) * 1000000000) ON "
                              "CONFLICT(name) DO UPDATE SET value = excluded.value, updated_ns = "
                              "excluded.updated_ns",
                              -1, &st, nullptr);
  if (rc == SQLITE_OK) {
    std::string text = value.dump();
    sqlite3_bind_text(st, 1, name.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, text.c_str(), -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(st);
  }
  std::string why = rc == SQLITE_DONE ? "" : sqlite3_errmsg(db_);
  sqlite3_finalize(st);
  return why;
}

void SettingsStore::refresh() {
  if (db_ == nullptr) return;
  std::lock_guard lock(mu_);
  sqlite3_stmt* st = nullptr;
  int64_t v = data_version_;
  if (sqlite3_prepare_v2(db_, "PRAGMA data_version", -1, &st, nullptr) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW) {
    v = sqlite3_column_int64(st, 0);
  }
  sqlite3_finalize(st);
  if (v != data_version_) load_persisted();
}

namespace {

// A prepared statement that finalizes itself.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &st_, nullptr) != SQLITE_OK) {
      throw std::runtime_error(fmt::format("state database: {}", sqlite3_errmsg(db)));
    }
  }
  ~Statement() { sqlite3_finalize(st_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& bind(int i, std::string_view text) {
    sqlite3_bind_text(st_, i, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Statement& bind_blob(int i, std::string_view bytes) {
    // A zero-length blob must not bind as NULL (the column is NOT NULL).
    sqlite3_bind_blob(st_, i, bytes.empty() ? "" : bytes.data(), static_cast<int>(bytes.size()),
                      SQLITE_TRANSIENT);
    return *this;
  }
  // True for a row, false when done; throws on an error.
  bool step() {
    int rc = sqlite3_step(st_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    throw std::runtime_error(fmt::format("state database: {}", sqlite3_errmsg(db_)));
  }
  std::string column_blob(int i) const {
    const void* p = sqlite3_column_blob(st_, i);
    int n = sqlite3_column_bytes(st_, i);
    return p == nullptr ? std::string() : std::string(static_cast<const char*>(p), n);
  }
  std::string column_text(int i) const {
    const unsigned char* p = sqlite3_column_text(st_, i);
    return p == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(p));
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* st_ = nullptr;
};

constexpr const char* kNowNs = "CAST(strftime('%s','now') AS INTEGER) * 1000000000";

}  // namespace

NodeStateStore::NodeStateStore(SettingsStore* settings) : settings_(settings) {}

NodeStateStore::NodeStateStore(const std::string& state_dir, SettingsStore* settings)
    : settings_(settings) {
  std::error_code ec;
  std::filesystem::create_directories(state_dir, ec);
  std::string path = (std::filesystem::path(state_dir) / "state.db").string();
  if (ec) {
    throw std::runtime_error(
        fmt::format("cannot create state directory {}: {}", state_dir, ec.message()));
  }
  if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw std::runtime_error(fmt::format("cannot open state database {}: {}", path, msg));
  }
  sqlite3_busy_timeout(db_, 5000);
  try {
    exec(db_, "PRAGMA journal_mode=WAL");
    // A committed command must survive a power loss, not only a crash of the process.
    exec(db_, "PRAGMA synchronous=FULL");
    exec(db_,
         "CREATE TABLE IF NOT EXISTS node_state (node TEXT NOT NULL, key TEXT NOT NULL, "
         "value BLOB NOT NULL, updated_ns INTEGER NOT NULL, PRIMARY KEY (node, key))");
  } catch (const std::runtime_error& e) {
    sqlite3_close(db_);
    db_ = nullptr;
    throw std::runtime_error(fmt::format("{} ({})", e.what(), path));
  }
}

NodeStateStore::~NodeStateStore() {
  if (db_ != nullptr) sqlite3_close(db_);
}

std::optional<std::string> NodeStateStore::get(const std::string& node,
                                               const std::string& key) const {
  std::lock_guard lock(mu_);
  if (db_ == nullptr) {
    auto it = memory_.find({node, key});
    if (it == memory_.end()) return std::nullopt;
    return it->second;
  }
  Statement st(db_, "SELECT value FROM node_state WHERE node = ?1 AND key = ?2");
  st.bind(1, node).bind(2, key);
  if (!st.step()) return std::nullopt;
  return st.column_blob(0);
}

std::map<std::string, std::string> NodeStateStore::all(const std::string& node) const {
  std::lock_guard lock(mu_);
  std::map<std::string, std::string> out;
  if (db_ == nullptr) {
    for (const auto& [k, v] : memory_) {
      if (k.first == node) out[k.second] = v;
    }
    return out;
  }
  Statement st(db_, "SELECT key, value FROM node_state WHERE node = ?1");
  st.bind(1, node);
  while (st.step()) out[st.column_text(0)] = st.column_blob(1);
  return out;
}

std::string NodeStateStore::commit(const std::string& node, const std::vector<Write>& writes,
                                   const std::vector<SettingWrite>& settings) {
  if (!settings.empty() && settings_ == nullptr) {
    return "this pipeline has no settings to change";
  }
  for (const SettingWrite& s : settings) {
    std::string err = settings_->check(s.name, s.value);
    if (!err.empty()) return err;
  }
  std::lock_guard lock(mu_);
  if (db_ != nullptr) {
    std::string err = commit_db(node, writes, settings);
    if (!err.empty()) return err;
  } else {
    for (const Write& w : writes) {
      if (w.value) {
        memory_[{node, w.key}] = *w.value;
      } else {
        memory_.erase({node, w.key});
      }
    }
  }
  if (!settings.empty()) {
    if (db_ != nullptr && settings_->persistent()) {
      // The settings store reads what this connection committed (PRAGMA data_version moved).
      settings_->refresh();
    } else {
      for (const SettingWrite& s : settings) settings_->set(s.name, s.value);
    }
  }
  return {};
}

std::string NodeStateStore::commit_db(const std::string& node, const std::vector<Write>& writes,
                                      const std::vector<SettingWrite>& settings) {
  try {
    exec(db_, "BEGIN IMMEDIATE");
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  try {
    const std::string upsert =
        fmt::format("INSERT INTO node_state(node, key, value, updated_ns) VALUES(?1, ?2, ?3, {}) "
                    "ON CONFLICT(node, key) DO UPDATE SET value = excluded.value, "
                    "updated_ns = excluded.updated_ns",
                    kNowNs);
    for (const Write& w : writes) {
      if (w.value) {
        Statement st(db_, upsert.c_str());
        st.bind(1, node).bind(2, w.key).bind_blob(3, *w.value);
        st.step();
      } else {
        Statement st(db_, "DELETE FROM node_state WHERE node = ?1 AND key = ?2");
        st.bind(1, node).bind(2, w.key);
        st.step();
      }
    }
    const std::string setting_upsert =
        fmt::format("INSERT INTO settings(name, value, updated_ns) VALUES(?1, ?2, {}) "
                    "ON CONFLICT(name) DO UPDATE SET value = excluded.value, "
                    "updated_ns = excluded.updated_ns",
                    kNowNs);
    for (const SettingWrite& s : settings) {
      Statement st(db_, setting_upsert.c_str());
      st.bind(1, s.name).bind(2, s.value.dump());
      st.step();
    }
    exec(db_, "COMMIT");
  } catch (const std::runtime_error& e) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    return e.what();
  }
  return {};
}

}  // namespace sluice::core
