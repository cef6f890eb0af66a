// The committed plugin reference (docs/plugins/) is exactly what the plugins declare today, and
// the quick start of docs/writing-plugins.md is the template plugin that its tests cover.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "pipeline_runner.hpp"
#include "process.hpp"

namespace sluice::testing {
namespace {
namespace fs = std::filesystem;

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(PluginReference, CommittedDocsMatchTheDeclaredSchemas) {
  TempDir dir;
  auto r = run_command({sluice_binary(), "plugins", "docs", "--out", dir.path()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  fs::path committed = fs::path(SLUICE_SOURCE_DIR) / "docs" / "plugins";
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(dir.path())) {
    ++files;
    fs::path mine = committed / e.path().filename();
    ASSERT_TRUE(fs::exists(mine)) << mine << " is missing: run `make docs`";
    EXPECT_EQ(slurp(e.path()), slurp(mine)) << mine << " is stale: run `make docs`";
  }
  EXPECT_GT(files, 3u);
}

TEST(WritingPlugins, TheQuickStartIsTheTemplatePluginItsTestsCover) {
  const fs::path root(SLUICE_SOURCE_DIR);
  const std::string doc = slurp(root / "docs" / "writing-plugins.md");
  std::string code = slurp(root / "sdk" / "template" / "uppercase.cpp");
  code = code.substr(code.find("#include <optional>"));
  while (!code.empty() && code.back() == '\n') code.pop_back();
  EXPECT_NE(doc.find("```cpp\n" + code + "\n```"), std::string::npos)
      << "docs/writing-plugins.md's quick start differs from sdk/template/uppercase.cpp";
}

}  // namespace
}  // namespace sluice::testing
