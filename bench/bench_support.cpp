// Plugin loading, a quiet host and the counting source context for the benchmarks.
#include "bench_support.hpp"

#include <chrono>
#include <exception>
#include <thread>

#include "sluice/core/plugin_registry.hpp"

namespace sluice::bench {
namespace {

// The source context: counts what the plugin emits and never pushes back.
struct CountingContext {
  sluice_source_ctx ctx{};
  uint64_t events = 0;
  uint64_t bytes = 0;

  CountingContext() {
    ctx.emit = [](sluice_source_ctx* c, const uint8_t* data, size_t size) {
      auto* self = reinterpret_cast<CountingContext*>(c);
      ++self->events;
      self->bytes += size;
      benchmark::DoNotOptimize(data);
      return 0;
    };
    ctx.stopping = [](sluice_source_ctx*) { return 0; };
    ctx.sleep_ns = [](sluice_source_ctx*, int64_t ns) {
      std::this_thread::sleep_for(std::chrono::nanoseconds(ns));
      return 0;
    };
  }
};

}  // namespace

sluice_host quiet_host(const char* node_name) {
  sluice_host h{};
  h.abi_major = SLUICE_ABI_MAJOR;
  h.abi_minor = SLUICE_ABI_MINOR;
  h.pipeline_name = "bench";
  h.node_name = node_name;
  h.state_dir = "";
  h.log = [](void*, sluice_log_level, const char*, size_t) {};
  h.settings_version = [](void*) -> uint64_t { return 0; };
  h.setting_get = [](void*, const char*, char*, size_t) -> int64_t { return -1; };
  h.setting_set = [](void*, const char*, const char*) { return -1; };
  h.counter_add = [](void*, const char*, const char*, double) {};
  h.gauge_set = [](void*, const char*, const char*, double) {};
  h.histogram_observe = [](void*, const char*, const char*, double) {};
  h.child_count = [](void*) -> size_t { return 0; };
  return h;
}

BenchPlugin load_plugin(core::NodeKind kind, std::string_view type, std::string_view toml_options) {
  // One registry for the whole process: it keeps every loaded library mapped until exit.
  static core::PluginRegistry registry;
  BenchPlugin out;
  const std::string file = std::string(core::kind_name(kind)) + "_" + std::string(type) + ".so";
  if (registry.find(kind, type) == nullptr) {
    const std::string error =
        registry.load_file(std::string(SLUICE_BINARY_DIR) + "/plugins/" + file);
    if (!error.empty()) {
      out.error = error + " (build the plugin first)";
      return out;
    }
  }
  const core::Plugin* plugin = registry.find(kind, type);
  if (plugin == nullptr) {
    out.error =
        file + " does not provide the " + core::kind_name(kind) + " '" + std::string(type) + "'";
    return out;
  }
  out.descriptor = plugin->descriptor;
  try {
    core::NodeSpec node = core::load_node_text(toml_options, kind, type, registry.catalog());
    out.config_json = node.options.dump();
  } catch (const std::exception& e) {
    out.error = std::string("options: ") + e.what();
  }
  return out;
}

void* create_or_skip(benchmark::State& state, const BenchPlugin& plugin, const sluice_host& host) {
  if (!plugin.error.empty()) {
    state.SkipWithError(plugin.error.c_str());
    return nullptr;
  }
  sluice_error err{};
  void* self = plugin.descriptor->create(&host, plugin.config_json.c_str(), &err);
  if (self == nullptr) {
    state.SkipWithError((std::string(err.key) + ": " + err.message).c_str());
    return nullptr;
  }
  // As `sluice run` does: the start hook (ABI 1.1) before the first event.
  const sluice_plugin_descriptor& d = *plugin.descriptor;
  if (d.abi_minor >= 1 && d.start != nullptr && d.start(self, &err) != 0) {
    state.SkipWithError((std::string("start: ") + err.message).c_str());
    d.destroy(self);
    return nullptr;
  }
  return self;
}

void run_source(benchmark::State& state, const BenchPlugin& plugin, const sluice_host& host) {
  uint64_t events = 0;
  uint64_t bytes = 0;
  for (auto _ : state) {
    void* self = create_or_skip(state, plugin, host);
    if (self == nullptr) return;
    CountingContext counting;
    sluice_error err{};
    const int rc = plugin.descriptor->run(self, &counting.ctx, &err);
    plugin.descriptor->destroy(self);
    if (rc != 0) {
      state.SkipWithError(err.message);
      return;
    }
    events += counting.events;
    bytes += counting.bytes;
  }
  state.SetItemsProcessed(static_cast<int64_t>(events));
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
  state.counters["bytes/event"] =
      events > 0 ? static_cast<double>(bytes) / static_cast<double>(events) : 0;
}

}  // namespace sluice::bench
