// Finds and loads plugin shared objects (Boost.DLL) and creates plugin instances.
//
// A library stays loaded while any Plugin or PluginInstance made from it is alive: each holds a
// shared_ptr to the library handle, so destroying the registry first is safe.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/abi.h"
#include "sluice/core/config.hpp"

namespace sluice::core {

struct Plugin {
  std::shared_ptr<void> library;  // keeps the .so mapped
  const sluice_plugin_descriptor* descriptor = nullptr;
  std::string path;
  NodeKind kind() const;
  std::string_view name() const { return descriptor->name; }
};

class PluginRegistry {
 public:
  // Loads one shared object. Returns "" on success, else a message naming the file: a missing
  // entry point, an incompatible ABI (both versions named), or a duplicate (kind, name).
  std::string load_file(const std::string& path);
  // Loads every *.so in each directory (missing directories are ignored). Problems are appended
  // to `errors`; good plugins are still registered.
  void load_dirs(const std::vector<std::string>& dirs, std::vector<std::string>* errors);

  const Plugin* find(NodeKind kind, std::string_view name) const;
  std::vector<std::string> names(NodeKind kind) const;
  const std::vector<Plugin>& plugins() const { return plugins_; }
  PluginCatalog catalog() const;
  // Why a (kind, type) that a pipeline uses cannot be: its file was refused for its ABI version
  // (the file and both versions named), or two files provide it (both named). nullopt when
  // nothing was refused for it.
  std::optional<std::string> refusal(NodeKind kind, std::string_view type) const;

  // The built-in plugin directory (next to the binary in a build tree, or the install prefix),
  // then SLUICE_PLUGIN_PATH (colon-separated).
  static std::vector<std::string> default_dirs();

 private:
  struct Refusal {
    NodeKind kind;
    std::string type;
    std::string message;
  };
  std::vector<Plugin> plugins_;
  std::vector<std::string> loaded_files_;  // canonical paths: the same file found twice is one
  std::vector<Refusal> refusals_;
};

// One live plugin object. Destroys it through the plugin's own destroy() and keeps its library
// loaded until then.
class PluginInstance {
 public:
  PluginInstance(const Plugin& plugin, void* self) : library_(plugin.library),
      d_(plugin.descriptor), self_(self) {}
  ~PluginInstance() {
    if (self_ != nullptr) d_->destroy(self_);
  }
  PluginInstance(const PluginInstance&) = delete;
  PluginInstance& operator=(const PluginInstance&) = delete;

  const sluice_plugin_descriptor& descriptor() const { return *d_; }
  void* self() const { return self_; }
  // Runs the plugin's start hook, if it has one. Returns false with err filled when it fails.
  // A descriptor of ABI 1.0 ends before the `start` field, so it is read only from 1.1 on.
  bool start(sluice_error* err) const {
    auto* hook = d_->abi_minor >= 1 ? d_->start : nullptr;
    return hook == nullptr || hook(self_, err) == 0;
  }

 private:
  std::shared_ptr<void> library_;
  const sluice_plugin_descriptor* d_;
  void* self_;
};

}  // namespace sluice::core
