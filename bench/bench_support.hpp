// What the benchmarks that drive built plugins through their C ABI share: loading a plugin from
// the build tree with its options validated against its schema (defaults applied, as the host
// would pass them), a host that logs and records nothing, and running a source to its end.
#pragma once

#include <benchmark/benchmark.h>

#include <string>
#include <string_view>

#include "sluice/abi.h"
#include "sluice/core/config.hpp"

namespace sluice::bench {

// A host that drops logs and metrics and has no settings or children, so a bench measures the
// plugin alone. node_name is what sources stamp as the events' source.
sluice_host quiet_host(const char* node_name);

struct BenchPlugin {
  const sluice_plugin_descriptor* descriptor = nullptr;
  // The node's options validated against the plugin's schema, defaults applied: what create()
  // gets from the host.
  std::string config_json;
  // Why the plugin cannot run (not built, refused by the loader, bad options); "" when it can.
  std::string error;
};

// Loads <build>/plugins/<kind>_<type>.so (once per process; it stays loaded) and validates
// toml_options, the body of the node's table without `type`, e.g. "count = 1000".
BenchPlugin load_plugin(core::NodeKind kind, std::string_view type, std::string_view toml_options);

// Creates the plugin instance and runs its start hook, as `sluice run` does, or skips the
// benchmark with the reason; nullptr then.
void* create_or_skip(benchmark::State& state, const BenchPlugin& plugin, const sluice_host& host);

// Runs one source instance to its end per iteration, with an emit that only counts. Reports
// items = events and the bytes/event counter.
void run_source(benchmark::State& state, const BenchPlugin& plugin, const sluice_host& host);

}  // namespace sluice::bench
