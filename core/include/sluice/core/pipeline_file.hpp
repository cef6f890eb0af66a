// Reading a pipeline file's TOML within bounds. toml++ (and the loader after it) recurse once per
// level of nesting: a header of 100 000 dotted parts or 100 000 nested brackets overflowed the
// stack. Every parse of a pipeline file (the loader, and the CLI's early look at plugin_path)
// goes through parse_pipeline_toml, which checks size and nesting with a cheap scan first.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <toml++/toml.h>

namespace sluice::core {

// A pipeline file is a few kilobytes; 4 MiB leaves room for generated files.
inline constexpr size_t kMaxPipelineFileBytes = 4 * 1024 * 1024;
// Levels of tables and arrays one value may sit under: parts of its table header and dotted key,
// plus the inline arrays and tables around it. Real pipelines use fewer than 6.
inline constexpr size_t kMaxPipelineNesting = 64;

// Reads a pipeline file whole. Throws ConfigError when it cannot be read or is larger than
// kMaxPipelineFileBytes.
std::string read_pipeline_file(const std::string& path);

// Checks the size and nesting limits, then parses the TOML. Throws ConfigError naming
// file:line:column for a limit exceeded (which one, and the limit) or a syntax error.
toml::table parse_pipeline_toml(std::string_view text, const std::string& file);

}  // namespace sluice::core
