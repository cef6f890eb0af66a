// Every ```toml block in README.md, docs/ and the plugins' and SDK's READMEs is checked by
// `sluice validate`, so the docs never show a node, option or value that does not exist.
//
// Most blocks are excerpts, so each is completed the least a reader would: inputs naming nodes
// the block does not declare become one-event generators, a block without a sink gets a
// blackhole fed by whatever nothing consumes, and a plugin README's bare option lines become
// that plugin's node. Everything the block does declare is validated as written. Files named
// in blocks resolve against a scratch directory that links the repository's `pipelines/` and
// `plugins/` and holds a `recordings/` directory, as a reader's checkout would.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "pipeline_runner.hpp"
#include "process.hpp"

namespace sluice::testing {
namespace {
namespace fs = std::filesystem;

struct Block {
  std::string file;  // relative to the repository
  size_t line = 0;   // of the opening fence
  std::string text;
};

std::vector<Block> toml_blocks() {
  const fs::path root(SLUICE_SOURCE_DIR);
  std::vector<fs::path> files = {root / "README.md"};
  for (const char* dir : {"docs", "plugins", "sdk"}) {
    for (const auto& e : fs::recursive_directory_iterator(root / dir)) {
      const fs::path& p = e.path();
      if (!e.is_regular_file() || p.extension() != ".md") continue;
      if (std::string(dir) != "docs" && p.filename() != "README.md") continue;
      files.push_back(p);
    }
  }
  std::sort(files.begin() + 1, files.end());
  std::vector<Block> blocks;
  for (const fs::path& path : files) {
    std::ifstream in(path);
    std::string line;
    size_t number = 0;
    Block* open = nullptr;
    while (std::getline(in, line)) {
      ++number;
      if (open == nullptr && line == "```toml") {
        blocks.push_back({fs::relative(path, root).string(), number, ""});
        open = &blocks.back();
      } else if (open != nullptr && line.rfind("```", 0) == 0) {
        open = nullptr;
      } else if (open != nullptr) {
        open->text += line + "\n";
      }
    }
  }
  return blocks;
}

// plugins/<kind>/<name>/README.md → {kind, name}; else empty.
std::pair<std::string, std::string> plugin_of(const std::string& file) {
  static const std::regex re(R"(plugins/(sources|processors|sinks)/([a-z0-9_]+)/README\.md)");
  std::smatch m;
  if (!std::regex_match(file, m, re)) return {};
  return {m[1], m[2]};
}

// The block plus the least that makes it a whole pipeline (see the file comment).
std::string complete(const Block& b, std::string* error) {
  std::string text = b.text;
  auto [kind, plugin] = plugin_of(b.file);
  if (!plugin.empty() && !std::regex_search(text, std::regex(R"((^|\n)\[)"))) {
    text = fmt::format("[{}.docs_node]\ntype = \"{}\"\n{}{}", kind, plugin,
                       kind == "sources" ? "" : "inputs = [\"docs_in\"]\n", text);
  }
  toml::table doc;
  try {
    doc = toml::parse(text);
  } catch (const toml::parse_error& e) {
    *error = fmt::format("not TOML: {} (block line {})", e.description(),
                         e.source().begin.line);
    return "";
  }
  std::map<std::string, const toml::table*> nodes;  // name → table
  for (const char* section : {"sources", "processors", "sinks"}) {
    if (const toml::table* t = doc[section].as_table()) {
      for (const auto& [name, node] : *t) nodes[std::string(name.str())] = node.as_table();
    }
  }
  // Undeclared inputs: a generator, or a filter fed by one when the block reads a named
  // output of it (`classify.errors`).
  std::set<std::string> consumed;
  std::map<std::string, bool> added;  // name → needs outputs
  for (const auto& [name, table] : nodes) {
    const toml::array* inputs = table != nullptr ? (*table)["inputs"].as_array() : nullptr;
    if (inputs == nullptr) continue;
    for (const auto& in : *inputs) {
      std::string ref = in.value_or(std::string());
      std::string base = ref.substr(0, ref.find('.'));
      consumed.insert(base);
      if (!base.empty() && nodes.count(base) == 0) added[base] |= base != ref;
    }
  }
  std::string extra;
  for (const auto& [name, outputs] : added) {
    if (!outputs) {
      extra += fmt::format("\n[sources.{}]\ntype = \"generator\"\ncount = 1\n", name);
    } else {
      extra += fmt::format(
          "\n[sources.{0}_in]\ntype = \"generator\"\ncount = 1\n\n[processors.{0}]\n"
          "type = \"filter\"\ninputs = [\"{0}_in\"]\nwhere = \"true\"\n",
          name);
    }
  }
  if (doc["sinks"].as_table() == nullptr || doc["sinks"].as_table()->empty()) {
    std::vector<std::string> loose;
    for (const auto& [name, table] : nodes) {
      bool top = doc["sources"][name] || (table != nullptr && table->contains("inputs"));
      if (top && consumed.count(name) == 0) loose.push_back("\"" + name + "\"");
    }
    if (nodes.empty()) {
      extra += "\n[sources.docs_gen]\ntype = \"generator\"\ncount = 1\n";
      loose.push_back("\"docs_gen\"");
    }
    if (!loose.empty()) {
      extra += fmt::format("\n[sinks.docs_out]\ntype = \"blackhole\"\ninputs = [{}]\n",
                           fmt::join(loose, ", "));
    }
  }
  return text + extra;
}

TEST(DocsToml, EveryBlockValidates) {
  std::vector<Block> blocks = toml_blocks();
  ASSERT_GT(blocks.size(), 30u);
  TempDir dir;
  const fs::path root(SLUICE_SOURCE_DIR);
  fs::create_directory_symlink(root / "pipelines", fs::path(dir.path()) / "pipelines");
  fs::create_directory_symlink(root / "plugins", fs::path(dir.path()) / "plugins");
  fs::create_directory_symlink(root / "pipelines" / "data", fs::path(dir.path()) / "data");
  fs::create_directory(fs::path(dir.path()) / "recordings");
  fs::copy_file(root / "pipelines" / "data" / "forceorder_frames.jsonl",
                fs::path(dir.path()) / "recordings" / "binance.jsonl");
  // Stand-ins for the variables the docs name; none is a real secret.
  const std::map<std::string, std::string> env = {
      {"LLM_API_KEY", "sk-docs"},
      {"OPENAI_API_KEY", "sk-docs"},
      {"DEEPSEEK_API_KEY", "sk-docs"},
      {"TELEGRAM_BOT_TOKEN", "1:docs"},
      {"TELEGRAM_CHAT_ID", "1"},
      {"TELEGRAM_ADMIN_ID", "1"},
      {"SLACK_WEBHOOK_URL", "https://hooks.slack.com/services/T0/B0/docs"},
      {"DISCORD_WEBHOOK_URL", "https://discord.com/api/webhooks/1/docs"},
      {"WEBHOOK_URL", "https://example.com/hook"},
      {"WEBHOOK_SECRET", "docs"},
      {"ALERTS_TOKEN", "docs"},
      {"SLUICE_ADMIN_TOKEN", "docs"},
      // Public halves of two pairs made by `sluice keys`; the secret halves were not kept.
      {"INGEST_PUBLIC_KEY", "gKEZoPivDUA)y(]>F+w{XC4?swVH$wBhm&F]m{BA"},
      {"NOTIFY_PUBLIC_KEY", "e2QyKkNgE8J-bJ$O[s*1/K!bV[(1f.<XXdf5ViVd"},
      // The template plugin (sdk/template) built for the docs that use it.
      {"SLUICE_PLUGIN_PATH", std::string(SLUICE_TEST_PLUGIN_DIR) + "-docs"},
  };
  for (const Block& b : blocks) {
    SCOPED_TRACE(fmt::format("{}:{}", b.file, b.line));
    std::string error;
    std::string text = complete(b, &error);
    if (text.empty()) {
      ADD_FAILURE() << b.file << ":" << b.line << ": " << error << "\n" << b.text;
      continue;
    }
    std::string path = dir.write("block.toml", text);
    auto r = run_command({sluice_binary(), "validate", path}, env, std::chrono::seconds(60),
                         dir.path());
    EXPECT_EQ(r.exit_code, 0) << b.file << ":" << b.line << " (block lines are numbered from "
                              << b.line + 1 << "):\n"
                              << r.err << "\n--- as validated:\n"
                              << text;
  }
}

}  // namespace
}  // namespace sluice::testing
