// Durable pipeline state in an embedded SQLite database (<state_dir>/state.db): runtime
// settings (SettingsStore) and per-node key/value state (NodeStateStore), which a node commits
// together with setting changes in one transaction (docs/design/node-state.md).
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
  // True when values are kept in a database (else in memory only).
  bool persistent() const { return db_ != nullptr; }

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

// Per-node key/value state (ARCHITECTURE.md §7): what a plugin must remember across restarts
// (an update offset, mutes, a checkpoint), keyed by (node name, key), in the `node_state` table
// of the same database as the settings, through its own connection. commit() writes several
// keys of one node, and optionally setting changes, in ONE transaction: after a crash either
// all of it is there or none. Values are opaque bytes. Thread-safe.
class NodeStateStore {
 public:
  // One write of a commit: value nullopt erases the key.
  struct Write {
    std::string key;
    std::optional<std::string> value;
  };
  struct SettingWrite {
    std::string name;
    nlohmann::json value;
  };

  // Opens (creating) <state_dir>/state.db and its node_state table; settings (may be null) is
  // the store whose changes a commit may carry. Throws std::runtime_error naming the path.
  NodeStateStore(const std::string& state_dir, SettingsStore* settings);
  // In memory only (tests, pipelines without a state directory).
  explicit NodeStateStore(SettingsStore* settings);
  ~NodeStateStore();
  NodeStateStore(const NodeStateStore&) = delete;
  NodeStateStore& operator=(const NodeStateStore&) = delete;

  // The value of a key of a node; nullopt when absent. Throws std::runtime_error when the
  // database cannot be read.
  std::optional<std::string> get(const std::string& node, const std::string& key) const;
  // Every key of a node with its value.
  std::map<std::string, std::string> all(const std::string& node) const;
  // Checks every setting (SettingsStore::check), then writes the node's keys and the settings
  // in one transaction. Returns "" or an error naming what failed; on error nothing changed.
  // Committed setting changes are visible through the SettingsStore when it returns.
  std::string commit(const std::string& node, const std::vector<Write>& writes,
                     const std::vector<SettingWrite>& settings = {});

 private:
  std::string commit_db(const std::string& node, const std::vector<Write>& writes,
                        const std::vector<SettingWrite>& settings);

  mutable std::mutex mu_;
  sqlite3* db_ = nullptr;
  SettingsStore* settings_;
  std::map<std::pair<std::string, std::string>, std::string> memory_;  // without a database
};

}  // namespace sluice::core
