// Durable pipeline state in an embedded SQLite database (<state_dir>/state.db): runtime
// settings now; later rollout phases, breaker state and outboxes (ARCHITECTURE.md §7).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sluice/core/config.hpp"

struct sqlite3;

namespace sluice::core {

// Runtime settings ([settings]): the file gives defaults, a value changed while running is
// persisted and wins at the next start. Reads are for hot paths: callers poll version() and
// re-read only after it moves.
class SettingsStore {
 public:
  // Opens (creating) the database. Throws std::runtime_error naming the path on failure.
  SettingsStore(const std::string& state_dir, const std::vector<SettingSpec>& specs);
  // In-memory only (tests, `sluice validate`).
  explicit SettingsStore(const std::vector<SettingSpec>& specs);
  ~SettingsStore();

  uint64_t version() const { return version_.load(std::memory_order_acquire); }
  std::optional<nlohmann::json> get(const std::string& name) const;
  // Whether `value` may become setting `name`: "" when it may, else why not (unknown setting,
  // type differs from the default's, outside the declared bounds), naming setting and bounds.
  std::string check(const std::string& name, const nlohmann::json& value) const;
  // Checks, saves to the database, and only then changes the value: returns "" or the error
  // (check() refusals, or the database write that failed, in which case nothing changed).
  std::string set(const std::string& name, const nlohmann::json& value);
  std::map<std::string, nlohmann::json> all() const;
  // Picks up changes another process made to the database; cheap when nothing changed.
  void refresh();

 private:
  // "" or the database's reason the write failed.
  std::string persist(const std::string& name, const nlohmann::json& value);
  void load_persisted();

  mutable std::mutex mu_;
  sqlite3* db_ = nullptr;
  std::string db_path_;
  std::map<std::string, SettingSpec> specs_;  // immutable after construction
  int64_t data_version_ = -1;
  std::map<std::string, nlohmann::json> values_;
  std::atomic<uint64_t> version_{1};
};

}  // namespace sluice::core
