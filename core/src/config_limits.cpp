// The bounded parse of pipeline files (see pipeline_file.hpp): a size cap, then one pass over
// the text that measures how deep any value sits (table header parts + dotted key parts + inline
// arrays and tables around it) without building anything, then toml++.
//
// The scan understands just enough TOML to tell structure from text: strings of all four kinds,
// comments, headers, keys and values. It never rejects what it does not understand: odd input is
// counted leniently (brackets still count), and toml++ reports the syntax error afterwards.
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "sluice/core/config.hpp"
#include "sluice/core/pipeline_file.hpp"

namespace sluice::core {
namespace {

[[noreturn]] void fail(const std::string& file, std::string_view text, size_t at,
                       std::string message) {
  uint32_t line = 1;
  size_t line_start = 0;
  for (size_t k = 0; k < at && k < text.size(); ++k) {
    if (text[k] == '\n') {
      ++line;
      line_start = k + 1;
    }
  }
  const auto column = static_cast<uint32_t>(at - line_start + 1);
  throw ConfigError({Diagnostic{SourcePos{file, line, column}, std::move(message)}});
}

class NestingScan {
 public:
  NestingScan(std::string_view text, const std::string& file) : t_(text), file_(file) {}

  void run() {
    while (i_ < t_.size()) statement();
  }

 private:
  struct Frame {
    char close;    // ']' or '}'
    size_t depth;  // levels a value directly inside this frame sits under
  };

  bool at(char c) const { return i_ < t_.size() && t_[i_] == c; }
  bool starts(std::string_view s) const { return i_ < t_.size() && t_.substr(i_).starts_with(s); }

  void skip_blanks() {
    while (i_ < t_.size() && (t_[i_] == ' ' || t_[i_] == '\t' || t_[i_] == '\r')) ++i_;
  }
  void skip_comment() {
    while (i_ < t_.size() && t_[i_] != '\n') ++i_;
  }
  // Blanks, and inside brackets also newlines and comments.
  void skip_space(bool newlines) {
    for (;;) {
      skip_blanks();
      if (at('#')) {
        skip_comment();
      } else if (newlines && at('\n')) {
        ++i_;
      } else {
        return;
      }
    }
  }

  // A string starting at i_ (a quote); a string cut short by a newline or the end of the text
  // ends there (toml++ reports it).
  void skip_string() {
    const char q = t_[i_];
    const std::string_view triple = q == '"' ? "\"\"\"" : "'''";
    if (starts(triple)) {
      i_ += 3;
      while (i_ < t_.size() && !starts(triple)) i_ += (q == '"' && t_[i_] == '\\') ? 2 : 1;
      i_ = std::min(i_ + 3, t_.size());
      // Up to two quotes may end the content right before the closing three.
      for (int k = 0; k < 2 && at(q); ++k) ++i_;
      return;
    }
    ++i_;
    while (i_ < t_.size() && t_[i_] != q && t_[i_] != '\n') {
      i_ += (q == '"' && t_[i_] == '\\') ? 2 : 1;
    }
    if (at(q)) ++i_;
  }

  void check(size_t depth, size_t pos, const char* what) {
    if (depth <= kMaxPipelineNesting) return;
    fail(file_, t_, pos,
         std::string(what) + " nests deeper than " + std::to_string(kMaxPipelineNesting) +
             " levels (table header parts, dotted key parts and inline arrays and tables "
             "together); flatten the structure");
  }

  // The parts of a dotted key up to (not including) `end`; stops at a newline too.
  size_t key_parts(char end) {
    size_t parts = 1;
    while (i_ < t_.size() && t_[i_] != end && t_[i_] != '\n') {
      const char c = t_[i_];
      if (c == '"' || c == '\'') {
        skip_string();
      } else {
        if (c == '.') ++parts;
        ++i_;
      }
    }
    return parts;
  }

  void statement() {
    skip_space(true);
    if (i_ >= t_.size()) return;
    if (at('[')) {
      const size_t start = i_;
      const bool array = starts("[[");
      i_ += array ? 2 : 1;
      header_depth_ = key_parts(']') + (array ? 1 : 0);
      check(header_depth_, start, "this table header");
      while (at(']')) ++i_;
      return;
    }
    const size_t start = i_;
    const size_t parts = key_parts('=');
    check(header_depth_ + parts, start, "this key");
    if (!at('=')) return;  // not a key/value line: toml++ says why
    ++i_;
    value(header_depth_ + parts);
  }

  // One value whose own level is `base`, with everything nested in it.
  void value(size_t base) {
    std::vector<Frame> stack;
    size_t level = base;
    for (;;) {
      skip_space(!stack.empty());
      if (i_ >= t_.size()) return;
      const char c = t_[i_];
      if (c == '[' || c == '{') {
        check(level + 1, i_, "this value");
        stack.push_back({c == '[' ? ']' : '}', level + 1});
        ++i_;
        if (c == '{') {
          level = inline_key(stack.back().depth);
        } else {
          level = stack.back().depth;
        }
        continue;
      }
      if (c == '"' || c == '\'') {
        skip_string();
      } else if (c != ']' && c != '}' && c != ',') {
        // A bare scalar (number, boolean, date): up to the next delimiter. string_view::find,
        // not strchr: strchr finds a NUL byte in its own terminator, so a NUL in the file never
        // advanced the scan (found by the pipeline_toml fuzz target; regression input kept).
        constexpr std::string_view kDelimiters = ",]}\n# \t\r";
        while (i_ < t_.size() && kDelimiters.find(t_[i_]) == std::string_view::npos) ++i_;
      }
      // After a value: a separator, a closing bracket, or the end of the statement.
      for (;;) {
        skip_space(!stack.empty());
        if (stack.empty()) return;
        if (i_ >= t_.size()) return;
        if (at(']') || at('}')) {
          ++i_;
          stack.pop_back();
          continue;
        }
        if (at(',')) {
          ++i_;
          level = stack.back().close == '}' ? inline_key(stack.back().depth) : stack.back().depth;
        }
        break;
      }
    }
  }

  // A key inside an inline table whose entries sit at `depth`; returns the level of its value.
  // An empty table or a trailing comma leaves the '}' for the caller.
  size_t inline_key(size_t depth) {
    skip_space(true);
    if (at('}')) return depth;
    const size_t start = i_;
    const size_t parts = key_parts('=');
    check(depth + parts - 1, start, "this key");
    if (at('=')) ++i_;
    return depth + parts - 1;
  }

  std::string_view t_;
  const std::string& file_;
  size_t i_ = 0;
  size_t header_depth_ = 0;
};

std::string too_large(uintmax_t size) {
  return "the pipeline file is " + std::to_string(size) + " bytes; at most " +
         std::to_string(kMaxPipelineFileBytes) + " (4 MiB) are read (split it, or check that " +
         "this is the right file)";
}

}  // namespace

std::string read_pipeline_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw ConfigError({Diagnostic{
        SourcePos{path, 0, 0}, std::string("cannot read pipeline file: ") + std::strerror(errno)}});
  }
  // Read at most one byte past the cap, so a huge file (or /dev/zero) is never read whole.
  std::string text(kMaxPipelineFileBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > kMaxPipelineFileBytes) {
    struct stat st {};
    const uintmax_t size = ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode)
                               ? static_cast<uintmax_t>(st.st_size)
                               : text.size();
    throw ConfigError({Diagnostic{SourcePos{path, 0, 0}, too_large(size)}});
  }
  return text;
}

toml::table parse_pipeline_toml(std::string_view text, const std::string& file) {
  if (text.size() > kMaxPipelineFileBytes) {
    throw ConfigError({Diagnostic{SourcePos{file, 0, 0}, too_large(text.size())}});
  }
  NestingScan(text, file).run();
  try {
    return toml::parse(text, std::string_view(file));
  } catch (const toml::parse_error& e) {
    const toml::source_position p = e.source().begin;
    throw ConfigError({Diagnostic{SourcePos{file, p.line, p.column},
                                  "invalid TOML: " + std::string(e.description())}});
  }
}

}  // namespace sluice::core
