// SQLite-backed settings store.
#include "sluice/core/state.hpp"

#include <sqlite3.h>

#include <filesystem>
#include <stdexcept>

#include <fmt/format.h>

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
  for (const SettingSpec& s : specs) values_[s.name] = s.value;
}

SettingsStore::SettingsStore(const std::string& state_dir, const std::vector<SettingSpec>& specs)
    : SettingsStore(specs) {
  std::error_code ec;
  std::filesystem::create_directories(state_dir, ec);
  std::string path = (std::filesystem::path(state_dir) / "state.db").string();
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
    // Settings no longer declared in the file, or whose type changed, are ignored.
    if (it == values_.end() || value.is_discarded() ||
        std::string_view(json_kind(value)) != json_kind(it->second) || it->second == value) {
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

std::string SettingsStore::set(const std::string& name, const nlohmann::json& value) {
  std::lock_guard lock(mu_);
  auto it = values_.find(name);
  if (it == values_.end()) return fmt::format("unknown setting '{}'", name);
  if (std::string_view(json_kind(value)) != json_kind(it->second)) {
    return fmt::format("setting '{}' is a {}, got a {}", name, json_kind(it->second),
                       json_kind(value));
  }
  it->second = value;
  if (db_ != nullptr) persist(name, value);
  version_.fetch_add(1, std::memory_order_acq_rel);
  return {};
}

void SettingsStore::persist(const std::string& name, const nlohmann::json& value) {
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db_,
                     "INSERT INTO settings(name, value, updated_ns) VALUES(?1, ?2, "
                     "CAST(strftime('%s','now') AS INTEGER) * 1000000000) ON CONFLICT(name) DO "
                     "UPDATE SET value = excluded.value, updated_ns = excluded.updated_ns",
                     -1, &st, nullptr);
  std::string text = value.dump();
  sqlite3_bind_text(st, 1, name.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 2, text.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_step(st);
  sqlite3_finalize(st);
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

}  // namespace sluice::core
