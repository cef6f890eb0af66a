// The `file` source: replays a JSON-lines or CSV file as events, as fast as downstream accepts
// or with the gaps recorded in the file's event times. A bad line is counted, logged and
// skipped; it never stops the stream.
#pragma once

#include <cstdint>
#include <fstream>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <simdjson.h>

#include "parse.hpp"
#include "replay.hpp"
#include "sluice/sdk.hpp"

namespace sluice::file_source {

enum class Format { kJsonl, kCsv };

// Chooses the format from the extension (.jsonl/.ndjson/.json, .csv), else from the first
// non-blank byte ('{' means JSON lines).
Format detect_format(const std::string& path);

class FileSource final : public Source {
 public:
  FileSource(const Host& host, const Config& config);
  void run(SourceContext& ctx) override;

 private:
  struct Pass {
    bool stopped = false;
    uint64_t emitted = 0;
    uint64_t data_lines = 0;  // ids of the next pass start after these
  };
  // What one row says about its event, gathered while its fields are added.
  struct Row {
    Value time;
    std::string time_text;       // owns time.s when the time is a string
    std::string_view time_name;  // the field the time came from, for error messages
    int time_rank = -1;          // which time field was found; -1 = none
    std::string key;
  };
  enum class Emitted { kYes, kBadLine, kStopped };
  // Heterogeneous lookup, so renaming a field needs no std::string per lookup.
  struct NameHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  Pass run_csv(SourceContext& ctx, uint64_t id_offset);
  Pass run_jsonl(SourceContext& ctx, uint64_t id_offset);
  // Flattens one JSON value into fields named with '.' between levels.
  void add_json(const simdjson::dom::element& value, std::string& name, Row& row);
  void add_value(std::string_view name, const Value& v, Row& row);
  void put(std::string_view name, const Value& v);
  void keep_time(std::string_view name, const Value& v, int rank, Row& row);
  // Rank of a field name as the time field: 0 for an explicit time_field, else the position in
  // the default list; -1 when it is not a time field.
  int time_rank(std::string_view name) const;
  std::string_view renamed(std::string_view name) const;
  // Field names of CSV columns: renamed, and "columnN" (1-based) for an empty header cell.
  std::vector<std::string> column_names(const std::vector<std::string>& header) const;
  // Finishes the event the builder holds and emits it on schedule.
  Emitted emit_row(SourceContext& ctx, uint64_t id, const Row& row, uint64_t line);
  std::ifstream open() const;
  // Counts source_parse_errors_total{reason} ("bad_line", or "out_of_range" for a time outside
  // 1970..2200) and logs why, rate-limited.
  void bad_line(uint64_t line, std::string_view why, std::string_view reason = "bad_line");

  Host host_;
  std::string path_;
  Format format_;
  replay::Timing timing_;
  std::string time_field_;  // "" with time_field_set_: no time field, events get "now"
  bool time_field_set_;
  std::string key_field_;
  std::unordered_map<std::string, std::string, NameHash, std::equal_to<>> rename_;
  std::string source_;
  bool loop_;
  replay::Pacer pacer_;
  EventBuilder builder_;
  simdjson::dom::parser json_;
  uint64_t bad_lines_ = 0;
};

}  // namespace sluice::file_source
