// Tests of the per-node state (NodeStateStore, and the ABI 1.2 host functions over it): values
// survive a reopen, belong to one node, and a commit (keys plus setting changes) is one atomic
// step: a refused setting or a failed database write leaves both the keys and the settings as
// they were.
#include <gtest/gtest.h>

#include <sqlite3.h>

#include <cstring>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "pipeline_runner.hpp"
#include "sluice/core/node_host.hpp"
#include "sluice/core/state.hpp"

namespace sluice::core {
namespace {

using nlohmann::json;

std::vector<SettingSpec> threshold_spec() { return {{"min_alert_usd", json(100000), {}}}; }

// Runs SQL on its own connection to <dir>/state.db, as another process would.
void exec_sql(const std::string& dir, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir + "/state.db").c_str(), &db), SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  char* err = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  EXPECT_EQ(rc, SQLITE_OK) << (err ? err : "");
  sqlite3_free(err);
  sqlite3_close(db);
}

TEST(NodeStateTest, ValuesSurviveAReopenAndBelongToOneNode) {
  testing::TempDir dir;
  const std::string bytes("a\0b\xff", 4);
  {
    SettingsStore settings(dir.path(), threshold_spec());
    NodeStateStore state(dir.path(), &settings);
    EXPECT_EQ(state.commit("telegram", {{"offset", "42"}, {"blob", bytes}, {"empty", ""}}), "");
    EXPECT_EQ(state.commit("other", {{"offset", "7"}}), "");
  }
  SettingsStore settings(dir.path(), threshold_spec());
  NodeStateStore state(dir.path(), &settings);
  EXPECT_EQ(state.get("telegram", "offset"), std::optional<std::string>("42"));
  EXPECT_EQ(state.get("telegram", "blob"), std::optional<std::string>(bytes));
  EXPECT_EQ(state.get("telegram", "empty"), std::optional<std::string>(""));
  EXPECT_EQ(state.get("other", "offset"), std::optional<std::string>("7"));
  EXPECT_EQ(state.get("telegram", "missing"), std::nullopt);
  EXPECT_EQ(state.all("telegram").size(), 3u);
  // nullopt erases.
  EXPECT_EQ(state.commit("telegram", {{"offset", std::nullopt}}), "");
  EXPECT_EQ(state.get("telegram", "offset"), std::nullopt);
  EXPECT_EQ(state.get("other", "offset"), std::optional<std::string>("7"));
}

TEST(NodeStateTest, ASettingChangeInACommitIsVisibleAtOnceAndPersisted) {
  testing::TempDir dir;
  {
    SettingsStore settings(dir.path(), threshold_spec());
    NodeStateStore state(dir.path(), &settings);
    const uint64_t version = settings.version();
    EXPECT_EQ(state.commit("telegram", {{"offset", "43"}}, {{"min_alert_usd", json(250000)}}), "");
    EXPECT_EQ(settings.get("min_alert_usd"), std::optional<json>(json(250000)));
    EXPECT_GT(settings.version(), version);
  }
  SettingsStore reopened(dir.path(), threshold_spec());
  EXPECT_EQ(reopened.get("min_alert_usd"), std::optional<json>(json(250000)));
}

TEST(NodeStateTest, ARefusedSettingLeavesTheNodeStateAndTheSettingsUnchanged) {
  for (const bool persistent : {true, false}) {
    SCOPED_TRACE(persistent ? "database" : "memory");
    testing::TempDir dir;
    auto settings = persistent ? std::make_unique<SettingsStore>(dir.path(), threshold_spec())
                               : std::make_unique<SettingsStore>(threshold_spec());
    auto state = persistent ? std::make_unique<NodeStateStore>(dir.path(), settings.get())
                            : std::make_unique<NodeStateStore>(settings.get());
    ASSERT_EQ(state->commit("telegram", {{"offset", "10"}}), "");
    EXPECT_EQ(state->commit("telegram", {{"offset", "11"}, {"mutes", "{}"}},
                            {{"min_alert_usd", json("lots")}}),
              "setting 'min_alert_usd' is a number, got a string");
    EXPECT_EQ(state->commit("telegram", {{"offset", "11"}}, {{"no_such", json(1)}}),
              "unknown setting 'no_such' (settings: min_alert_usd)");
    EXPECT_EQ(state->get("telegram", "offset"), std::optional<std::string>("10"));
    EXPECT_EQ(state->get("telegram", "mutes"), std::nullopt);
    EXPECT_EQ(settings->get("min_alert_usd"), std::optional<json>(json(100000)));
  }
}

TEST(NodeStateTest, AFailedDatabaseWriteRollsBackEveryPartOfTheCommit) {
  testing::TempDir dir;
  SettingsStore settings(dir.path(), threshold_spec());
  NodeStateStore state(dir.path(), &settings);
  ASSERT_EQ(state.commit("telegram", {{"offset", "10"}}), "");
  // The settings write fails after the node state rows were written in the same transaction.
  exec_sql(dir.path(),
           "CREATE TRIGGER refuse BEFORE INSERT ON settings "
           "BEGIN SELECT RAISE(ABORT, 'disk I/O error (test)'); END");
  const std::string err =
      state.commit("telegram", {{"offset", "11"}, {"mutes", "{}"}}, {{"min_alert_usd", json(5)}});
  EXPECT_NE(err.find("disk I/O error (test)"), std::string::npos) << err;
  EXPECT_EQ(state.get("telegram", "offset"), std::optional<std::string>("10"));
  EXPECT_EQ(state.get("telegram", "mutes"), std::nullopt);
  settings.refresh();
  EXPECT_EQ(settings.get("min_alert_usd"), std::optional<json>(json(100000)));
  SettingsStore reopened(dir.path(), threshold_spec());
  EXPECT_EQ(reopened.get("min_alert_usd"), std::optional<json>(json(100000)));
  // The store is usable afterwards: no transaction was left open.
  exec_sql(dir.path(), "DROP TRIGGER refuse");
  EXPECT_EQ(state.commit("telegram", {{"offset", "11"}}, {{"min_alert_usd", json(5)}}), "");
  EXPECT_EQ(settings.get("min_alert_usd"), std::optional<json>(json(5)));
}

// The same through the plugin ABI (sluice_host.state_get / state_commit at minor 2).
TEST(NodeStateTest, HostFunctionsOfAbi12ReadAndCommitTheNodesOwnState) {
  testing::TempDir dir;
  SettingsStore settings(dir.path(), threshold_spec());
  NodeStateStore state(dir.path(), &settings);
  HostServices services{"p", dir.path(), &settings, nullptr, &state};
  NodeSpec node;
  node.name = "bot";
  NodeHost host(services, node, nullptr);
  const sluice_host* h = host.raw();
  ASSERT_GE(h->abi_minor, 2u);
  uint8_t buf[4];
  EXPECT_EQ(h->state_get(h->ctx, "offset", buf, sizeof buf), -1);

  const std::string value = "123456789";
  sluice_state_write writes[] = {
      {"offset", reinterpret_cast<const uint8_t*>(value.data()), value.size()},
      {"gone", nullptr, 0}};
  sluice_setting_write ok_setting[] = {{"min_alert_usd", "250000"}};
  char err[64] = "";
  ASSERT_EQ(h->state_commit(h->ctx, writes, 2, ok_setting, 1, err, sizeof err), 0) << err;
  EXPECT_EQ(settings.get("min_alert_usd"), std::optional<json>(json(250000)));
  EXPECT_EQ(state.get("bot", "offset"), std::optional<std::string>(value));
  // Too small a buffer: the length needed, nothing written past it.
  EXPECT_EQ(h->state_get(h->ctx, "offset", buf, sizeof buf), 9);
  char big[16];
  ASSERT_EQ(h->state_get(h->ctx, "offset", reinterpret_cast<uint8_t*>(big), sizeof big), 9);
  EXPECT_EQ(std::string(big, 9), value);

  sluice_setting_write bad_setting[] = {{"min_alert_usd", "\"high\""}};
  sluice_state_write next[] = {{"offset", reinterpret_cast<const uint8_t*>("1"), 1}};
  EXPECT_NE(h->state_commit(h->ctx, next, 1, bad_setting, 1, err, sizeof err), 0);
  EXPECT_STREQ(err, "setting 'min_alert_usd' is a number, got a string");
  EXPECT_EQ(state.get("bot", "offset"), std::optional<std::string>(value));
  EXPECT_EQ(settings.get("min_alert_usd"), std::optional<json>(json(250000)));
}

}  // namespace
}  // namespace sluice::core
