// Plugin discovery and loading through Boost.DLL, with the ABI check done before any other use
// of the descriptor.
#include "sluice/core/plugin_registry.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include <boost/dll/library_info.hpp>
#include <boost/dll/runtime_symbol_info.hpp>
#include <boost/dll/shared_library.hpp>
#include <fmt/format.h>

namespace sluice::core {
namespace fs = std::filesystem;

NodeKind Plugin::kind() const {
  switch (descriptor->kind) {
    case SLUICE_KIND_SOURCE: return NodeKind::kSource;
    case SLUICE_KIND_SINK: return NodeKind::kSink;
    default: return NodeKind::kProcessor;
  }
}

namespace {

// "processor_llm_classifier.so" → (processor, llm_classifier): how sluice_add_plugin names files,
// the only clue to what a refused plugin of another ABI major provides (its descriptor's layout
// is unknown then).
std::optional<std::pair<NodeKind, std::string>> kind_and_type_of(const std::string& path) {
  std::string stem = fs::path(path).stem().string();
  for (NodeKind k : {NodeKind::kSource, NodeKind::kProcessor, NodeKind::kSink}) {
    std::string prefix = std::string(kind_name(k)) + "_";
    if (stem.rfind(prefix, 0) == 0 && stem.size() > prefix.size()) {
      return std::make_pair(k, stem.substr(prefix.size()));
    }
  }
  return std::nullopt;
}

NodeKind kind_of(sluice_kind k) {
  return k == SLUICE_KIND_SOURCE ? NodeKind::kSource
         : k == SLUICE_KIND_SINK ? NodeKind::kSink
                                 : NodeKind::kProcessor;
}

}  // namespace

std::optional<std::string> PluginRegistry::refusal(NodeKind kind, std::string_view type) const {
  for (const Refusal& r : refusals_) {
    if (r.kind == kind && r.type == type) return r.message;
  }
  return std::nullopt;
}

std::string PluginRegistry::load_file(const std::string& path) {
  // The same file reached twice (a directory listed twice, a symlinked plugin directory) is one
  // plugin, not a duplicate.
  std::error_code canon_ec;
  const std::string canonical = fs::canonical(path, canon_ec).string();
  if (!canon_ec &&
      std::find(loaded_files_.begin(), loaded_files_.end(), canonical) != loaded_files_.end()) {
    return {};
  }
  // Read the symbol table first: a file without our entry point is refused before any of its
  // code (static initialisers included) runs.
  try {
    boost::dll::library_info info(boost::dll::fs::path(path), /*throw_if_not_native=*/true);
    auto symbols = info.symbols();
    if (std::find(symbols.begin(), symbols.end(), SLUICE_ENTRY_POINT_NAME) == symbols.end()) {
      return fmt::format("{}: not a sluice plugin: no entry point '{}'", path,
                         SLUICE_ENTRY_POINT_NAME);
    }
  } catch (const std::exception& e) {
    return fmt::format("{}: cannot read shared object: {}", path, e.what());
  }

  std::shared_ptr<boost::dll::shared_library> lib;
  try {
    lib = std::make_shared<boost::dll::shared_library>(
        boost::dll::fs::path(path), boost::dll::load_mode::rtld_lazy |
                                        boost::dll::load_mode::rtld_local);
  } catch (const std::exception& e) {
    return fmt::format("{}: cannot load: {}", path, e.what());
  }
  auto entry = lib->get<const sluice_plugin_descriptor*()>(SLUICE_ENTRY_POINT_NAME);
  const sluice_plugin_descriptor* d = entry();
  if (d == nullptr) return fmt::format("{}: entry point returned no descriptor", path);
  if (d->abi_major != SLUICE_ABI_MAJOR || d->abi_minor > SLUICE_ABI_MINOR) {
    std::string message =
        fmt::format("{}: incompatible plugin ABI {}.{} (this sluice supports ABI {}.0 to {}.{})",
                    path, d->abi_major, d->abi_minor, SLUICE_ABI_MAJOR, SLUICE_ABI_MAJOR,
                    SLUICE_ABI_MINOR);
    // Within our major the descriptor's first members are ours to read; otherwise the file name
    // says what it provides.
    if (d->abi_major == SLUICE_ABI_MAJOR && d->name != nullptr) {
      refusals_.push_back({kind_of(d->kind), d->name, message});
    } else if (auto kt = kind_and_type_of(path)) {
      refusals_.push_back({kt->first, kt->second, message});
    }
    return message;
  }
  if (d->name == nullptr || d->create == nullptr || d->destroy == nullptr ||
      (d->kind == SLUICE_KIND_SOURCE ? d->run == nullptr : d->process == nullptr)) {
    return fmt::format("{}: incomplete plugin descriptor", path);
  }
  Plugin p{lib, d, path};
  if (const Plugin* other = find(p.kind(), p.name())) {
    // Which of the two a pipeline would get depends on directory order: using it is an error.
    refusals_.push_back({p.kind(), std::string(p.name()),
                         fmt::format("two files provide it: {} and {}", other->path, path)});
    return fmt::format("{}: duplicate {} plugin '{}' (already loaded from {})", path,
                       kind_name(p.kind()), p.name(), other->path);
  }
  plugins_.push_back(std::move(p));
  if (!canon_ec) loaded_files_.push_back(canonical);
  return {};
}

void PluginRegistry::load_dirs(const std::vector<std::string>& dirs,
                               std::vector<std::string>* errors) {
  for (const std::string& dir : dirs) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) continue;
    std::vector<std::string> files;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      if (entry.is_regular_file() && entry.path().extension() == ".so") {
        files.push_back(entry.path().string());
      }
    }
    std::sort(files.begin(), files.end());  // deterministic duplicate reports
    for (const std::string& f : files) {
      std::string err = load_file(f);
      if (!err.empty() && errors != nullptr) errors->push_back(std::move(err));
    }
  }
}

const Plugin* PluginRegistry::find(NodeKind kind, std::string_view name) const {
  for (const Plugin& p : plugins_) {
    if (p.kind() == kind && p.name() == name) return &p;
  }
  return nullptr;
}

std::vector<std::string> PluginRegistry::names(NodeKind kind) const {
  std::vector<std::string> out;
  for (const Plugin& p : plugins_) {
    if (p.kind() == kind) out.emplace_back(p.name());
  }
  std::sort(out.begin(), out.end());
  return out;
}

PluginCatalog PluginRegistry::catalog() const {
  return PluginCatalog{
      [this](NodeKind k, std::string_view t) -> const sluice_plugin_descriptor* {
        const Plugin* p = find(k, t);
        return p ? p->descriptor : nullptr;
      },
      [this](NodeKind k) { return names(k); },
      [this](NodeKind k, std::string_view t) { return refusal(k, t); }};
}

std::vector<std::string> PluginRegistry::default_dirs() {
  std::vector<std::string> dirs;
  fs::path exe_dir = boost::dll::program_location().parent_path().string();
  // Build tree: <build>/sluice and <build>/plugins; installed: <prefix>/bin and
  // <prefix>/lib/sluice/plugins.
  for (const fs::path& candidate :
       {exe_dir / "plugins", exe_dir.parent_path() / "plugins",
        exe_dir.parent_path() / "lib" / "sluice" / "plugins", fs::path(SLUICE_BUILD_PLUGIN_DIR),
        fs::path(SLUICE_INSTALL_PLUGIN_DIR)}) {
    std::error_code ec;
    if (fs::is_directory(candidate, ec)) {
      dirs.push_back(fs::weakly_canonical(candidate).string());
      break;
    }
  }
  if (const char* env = std::getenv("SLUICE_PLUGIN_PATH")) {
    std::string_view rest(env);
    while (!rest.empty()) {
      size_t colon = rest.find(':');
      std::string_view part = rest.substr(0, colon);
      if (!part.empty()) dirs.emplace_back(part);
      if (colon == std::string_view::npos) break;
      rest.remove_prefix(colon + 1);
    }
  }
  return dirs;
}

}  // namespace sluice::core
