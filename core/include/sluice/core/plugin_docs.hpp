// Everything generated from a plugin's declared option schema: `sluice plugins describe`,
// the Markdown reference in docs/plugins/, and a JSON Schema for pipeline files.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "sluice/core/plugin_registry.hpp"

namespace sluice::core {

std::string describe_text(const Plugin& plugin);
std::string describe_markdown(const Plugin& plugin);
// JSON Schema (draft 2020-12) for pipeline files using the registry's plugins.
nlohmann::json pipeline_json_schema(const PluginRegistry& registry);
// DOT rendering of a pipeline (nodes by kind, named outputs as edge labels, placement clusters,
// composite children as dashed edges).
std::string pipeline_dot(const PipelineSpec& spec);
const char* option_type_name(sluice_option_type t);

}  // namespace sluice::core
