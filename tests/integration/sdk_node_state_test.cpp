// Tests of the SDK's node state (ABI 1.2): Host::state_get / state_commit over the SDK test
// double's in-memory state (sluice/testing.hpp), with its all-or-nothing commits, and a host of
// an older minor, which keeps no state.
#include <optional>
#include <string>

#include <gtest/gtest.h>

#include "sluice/testing.hpp"

namespace {

using sluice::Host;
using sluice::Json;
using sluice::testkit::TestHost;
using sluice::testkit::TestOptions;

TestOptions with_threshold() {
  TestOptions o;
  o.settings = {{"min_usd", 100}};
  return o;
}

TEST(SdkNodeStateTest, CommitsKeysAndSettingsTogetherAndReadsThemBack) {
  TestHost test_host(with_threshold());
  const Host host(test_host.raw());
  ASSERT_TRUE(host.has_state());
  EXPECT_EQ(host.state_get("offset"), std::nullopt);
  const std::string bytes(300, '\0');  // longer than the first read buffer, not text
  auto r = host.state_commit({{"offset", "42"}, {"blob", bytes}}, {{"min_usd", 250}});
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(host.state_get("offset"), std::optional<std::string>("42"));
  EXPECT_EQ(host.state_get("blob"), std::optional<std::string>(bytes));
  EXPECT_EQ(test_host.setting("min_usd"), std::optional<Json>(250));
  EXPECT_EQ(test_host.settings_version(), 1u);
  ASSERT_TRUE(host.state_commit({{"blob", std::nullopt}}).ok());
  EXPECT_EQ(test_host.state("blob"), std::nullopt);
  EXPECT_EQ(test_host.commits(), 2u);
}

TEST(SdkNodeStateTest, ARefusedSettingOrAFailingStoreChangesNothing) {
  TestHost test_host(with_threshold());
  test_host.set_state("offset", "10");
  const Host host(test_host.raw());
  auto r = host.state_commit({{"offset", "11"}}, {{"min_usd", "lots"}});
  EXPECT_EQ(r.error, "setting 'min_usd' must keep its type");
  r = host.state_commit({{"offset", "11"}}, {{"max_usd", 5}});
  EXPECT_EQ(r.error, "unknown setting 'max_usd'");
  test_host.fail_commits("disk full");
  r = host.state_commit({{"offset", "11"}}, {{"min_usd", 5}});
  EXPECT_EQ(r.error, "disk full");
  EXPECT_EQ(test_host.state("offset"), std::optional<std::string>("10"));
  EXPECT_EQ(test_host.setting("min_usd"), std::optional<Json>(100));
  EXPECT_EQ(test_host.commits(), 0u);
  test_host.fail_commits("");
  EXPECT_TRUE(host.state_commit({{"offset", "11"}}).ok());
  EXPECT_EQ(test_host.state("offset"), std::optional<std::string>("11"));
}

TEST(SdkNodeStateTest, AHostOfAnOlderMinorKeepsNoState) {
  TestHost test_host;
  sluice_host old = *test_host.raw();
  old.abi_minor = 1;  // its struct ends before state_get: the SDK must not read them
  const Host host(&old);
  EXPECT_FALSE(host.has_state());
  EXPECT_EQ(host.state_get("offset"), std::nullopt);
  EXPECT_EQ(host.state_commit({{"offset", "1"}}).error,
            "the host keeps no node state (plugin ABI older than 1.2)");
}

}  // namespace
