// The `file` source: options, the JSON-lines and CSV read loops, flattening and pacing.
#include "file.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>

namespace sluice::file_source {
namespace {

inline constexpr sluice_option_spec kOptions[] = {
    {.key = "path",
     .type = SLUICE_OPT_STRING,
     .default_toml = nullptr,
     .required = 1,
     .description = "File to replay, JSON lines or CSV; a relative path resolves against the "
                    "working directory of the sluice process",
     .choices = nullptr},
    {.key = "format",
     .type = SLUICE_OPT_STRING,
     .default_toml = "\"auto\"",
     .required = 0,
     .description = "auto: by extension (.jsonl/.ndjson/.json, .csv), else by content",
     .choices = "auto,jsonl,csv"},
    replay::timing_option("fast: as fast as downstream accepts; original: keep the recorded gaps "
                          "between event times (divided by speed)"),
    replay::kSpeedOption,
    {.key = "time_field",
     .type = SLUICE_OPT_STRING,
     .default_toml = nullptr,
     .required = 0,
     .description = "Field holding the event time: epoch s/ms/us/ns (by magnitude) or ISO-8601 "
                    "(UTC unless zoned); default: the first of timestamp, T, E, time, event_time; "
                    "\"\" = none, events get the current time",
     .choices = nullptr},
    {.key = "key_field",
     .type = SLUICE_OPT_STRING,
     .default_toml = "\"symbol\"",
     .required = 0,
     .description = "Field whose value becomes the event key; \"\" = no key",
     .choices = nullptr},
    {.key = "rename",
     .type = SLUICE_OPT_TABLE,
     .default_toml = nullptr,
     .required = 0,
     .description = "Field name -> new name, applied before time_field and key_field, "
                    "e.g. { usd_value = \"notional_usd\", \"o.s\" = \"symbol\" }",
     .choices = nullptr},
    {.key = "source_name",
     .type = SLUICE_OPT_STRING,
     .default_toml = nullptr,
     .required = 0,
     .description = "The events' source; default: the node name",
     .choices = nullptr},
    {.key = "loop",
     .type = SLUICE_OPT_BOOL,
     .default_toml = "false",
     .required = 0,
     .description = "Start over at the end of the file (ids keep counting up)",
     .choices = nullptr},
};

// Tried in this order when time_field is not set.
constexpr std::string_view kTimeFields[] = {"timestamp", "T", "E", "time", "event_time"};
// A quoted CSV value that never closes would otherwise swallow the rest of the file.
constexpr size_t kMaxRecordBytes = 1 << 20;
// Bad lines logged one by one before only every kBadLineLogEvery-th is.
constexpr uint64_t kBadLinesLogged = 10;
constexpr uint64_t kBadLineLogEvery = 1000;

std::string readable_error(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(path, ec)) return "'" + path + "' is a directory, not a file";
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f != nullptr) {
    std::fclose(f);
    return {};
  }
  std::string message = "cannot read '" + path + "': " + std::strerror(errno);
  if (fs::path(path).is_relative()) {
    message += " (relative paths resolve against the working directory " +
               fs::current_path(ec).string() + ")";
  }
  return message;
}

// Reads one CSV record: a non-blank line, joined with the following lines while a quoted value
// is open. At the end of the file an open quote comes back as it is, to be reported.
bool read_record(LineReader& reader, std::string& line, std::string& record, uint64_t& first) {
  record.clear();
  size_t quotes = 0;
  bool open = false;
  while (reader.next(line)) {
    if (!open) {
      if (is_blank(line)) continue;
      first = reader.line_number();
      record = line;
    } else {
      record += '\n';
      record += line;
    }
    quotes += count_quotes(line);
    if (quotes % 2 == 0 || record.size() > kMaxRecordBytes) return true;
    open = true;
  }
  return open;
}

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

Format detect_format(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (ext == ".jsonl" || ext == ".ndjson" || ext == ".json") return Format::kJsonl;
  if (ext == ".csv") return Format::kCsv;
  std::ifstream in(path, std::ios::binary);
  std::string line;
  LineReader reader(in);
  while (reader.next(line)) {
    const size_t first = line.find_first_not_of(" \t");
    if (first != std::string::npos) return line[first] == '{' ? Format::kJsonl : Format::kCsv;
  }
  return Format::kCsv;
}

FileSource::FileSource(const Host& host, const Config& config)
    : host_(host),
      path_(config.str("path")),
      timing_(replay::read_timing(config)),
      time_field_(config.str("time_field", "")),
      time_field_set_(config.has("time_field")),
      key_field_(config.str("key_field", "symbol")),
      source_(config.str("source_name", std::string(host.node_name()))),
      loop_(config.flag("loop", false)),
      pacer_(timing_.speed) {
  if (std::string error = readable_error(path_); !error.empty()) throw OptionError("path", error);
  if (config.has("rename")) {
    for (const auto& [from, to] : config.at("rename").items()) {
      if (!to.is_string() || to.get<std::string>().empty()) {
        throw OptionError("rename", "rename maps a field name to a new, non-empty name; '" + from +
                                        "' maps to " + to.dump());
      }
      rename_.emplace(from, to.get<std::string>());
    }
  }
  const std::string format = config.str("format", "auto");
  format_ = format == "auto"  ? detect_format(path_)
            : format == "csv" ? Format::kCsv
                              : Format::kJsonl;

  // A CSV file names its columns up front, so a time_field it lacks is caught by `validate`.
  if (format_ == Format::kCsv && !time_field_.empty()) {
    std::ifstream in = open();
    LineReader reader(in);
    std::string line;
    std::string record;
    std::vector<std::string> header;
    uint64_t first = 0;
    if (read_record(reader, line, record, first) && split_csv_record(record, header).empty()) {
      const std::vector<std::string> names = column_names(header);
      if (std::find(names.begin(), names.end(), time_field_) == names.end()) {
        throw OptionError("time_field", "no column '" + time_field_ + "' in " + path_ +
                                            " (columns: " + joined(names) + ")");
      }
    }
  }
}

std::ifstream FileSource::open() const {
  std::ifstream in(path_, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read '" + path_ + "': " + std::strerror(errno));
  return in;
}

std::string_view FileSource::renamed(std::string_view name) const {
  if (rename_.empty()) return name;
  auto it = rename_.find(name);
  return it == rename_.end() ? name : std::string_view(it->second);
}

std::vector<std::string> FileSource::column_names(const std::vector<std::string>& header) const {
  std::vector<std::string> names;
  for (size_t k = 0; k < header.size(); ++k) {
    names.emplace_back(header[k].empty() ? "column" + std::to_string(k + 1)
                                         : std::string(renamed(header[k])));
  }
  return names;
}

int FileSource::time_rank(std::string_view name) const {
  if (time_field_set_) return !time_field_.empty() && name == time_field_ ? 0 : -1;
  for (size_t r = 0; r < std::size(kTimeFields); ++r) {
    if (name == kTimeFields[r]) return static_cast<int>(r);
  }
  return -1;
}

void FileSource::put(std::string_view name, const Value& v) {
  switch (v.type) {
    case FieldType::Int:
      builder_.field(name, v.i);
      break;
    case FieldType::Double:
      builder_.field(name, v.d);
      break;
    case FieldType::Bool:
      builder_.field(name, v.b);
      break;
    case FieldType::String:
      builder_.field(name, v.s);
      break;
    default:
      builder_.null_field(name);
      break;
  }
}

void FileSource::keep_time(std::string_view name, const Value& v, int rank, Row& row) {
  row.time = v;
  if (v.type == FieldType::String) {
    row.time_text.assign(v.s);
    row.time.s = row.time_text;
  }
  row.time_name = name;
  row.time_rank = rank;
}

void FileSource::add_value(std::string_view name, const Value& v, Row& row) {
  const std::string_view final_name = renamed(name);
  put(final_name, v);
  const int rank = time_rank(final_name);
  // Later duplicates win, as they do in the event.
  if (rank >= 0 && (row.time_rank < 0 || rank <= row.time_rank)) {
    keep_time(time_field_set_ ? std::string_view(time_field_) : kTimeFields[rank], v, rank, row);
  }
  if (!key_field_.empty() && final_name == key_field_) {
    row.key.clear();
    append_text(row.key, v);
  }
}

void FileSource::add_json(const simdjson::dom::element& value, std::string& name, Row& row) {
  using simdjson::dom::element_type;
  Value v;
  switch (value.type()) {
    case element_type::OBJECT: {
      const size_t length = name.size();
      for (simdjson::dom::key_value_pair member : simdjson::dom::object(value)) {
        if (length > 0) name += '.';
        name.append(member.key);
        add_json(member.value, name, row);
        name.resize(length);
      }
      return;
    }
    case element_type::ARRAY: {
      const std::string text = simdjson::minify(value);
      v.type = FieldType::String;
      v.s = text;
      add_value(name, v, row);
      return;
    }
    case element_type::INT64:
      v.type = FieldType::Int;
      v.i = int64_t(value);
      break;
    case element_type::UINT64: {
      const uint64_t u = uint64_t(value);
      if (u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        v.type = FieldType::Int;
        v.i = static_cast<int64_t>(u);
      } else {
        v.type = FieldType::Double;
        v.d = static_cast<double>(u);
      }
      break;
    }
    case element_type::DOUBLE:
      v.type = FieldType::Double;
      v.d = double(value);
      break;
    case element_type::STRING:
      v.type = FieldType::String;
      v.s = std::string_view(value);
      break;
    case element_type::BOOL:
      v.type = FieldType::Bool;
      v.b = bool(value);
      break;
    case element_type::NULL_VALUE:
      break;
  }
  add_value(name, v, row);
}

FileSource::Emitted FileSource::emit_row(SourceContext& ctx, uint64_t id, const Row& row,
                                         uint64_t line) {
  int64_t event_ns = 0;
  if (row.time_rank >= 0) {
    std::optional<int64_t> t = time_ns(row.time);
    if (!t) {
      std::string shown;
      append_text(shown, row.time);
      bad_line(line, "bad timestamp in field '" + std::string(row.time_name) + "': '" + shown +
                         "' (expected epoch s/ms/us/ns or ISO-8601)");
      return Emitted::kBadLine;
    }
    if (!replay::file_time_ok(*t)) {
      std::string shown;
      append_text(shown, row.time);
      bad_line(line,
               "timestamp in field '" + std::string(row.time_name) + "' is out of range: '" +
                   shown + "' (event times run from 1970-01-01 up to 2200-01-01)",
               "out_of_range");
      return Emitted::kBadLine;
    }
    event_ns = *t;
    if (timing_.original && !pacer_.wait(ctx, event_ns)) return Emitted::kStopped;
  } else if (!time_field_.empty()) {
    bad_line(line, "no time field '" + time_field_ + "'");
    return Emitted::kBadLine;
  }
  const int64_t now = now_ns();
  builder_.id(id).event_time_ns(row.time_rank >= 0 ? event_ns : now).ingest_time_ns(now);
  builder_.source(source_).key(row.key);
  return ctx.emit(builder_.finish()) ? Emitted::kYes : Emitted::kStopped;
}

void FileSource::bad_line(uint64_t line, std::string_view why, std::string_view reason) {
  ++bad_lines_;
  host_.counter_add("source_parse_errors_total", 1, metric_label("reason", reason).c_str());
  if (bad_lines_ > kBadLinesLogged && bad_lines_ % kBadLineLogEvery != 0) return;
  std::string message =
      path_ + ":" + std::to_string(line) + ": " + std::string(why) + "; line skipped";
  if (bad_lines_ == kBadLinesLogged) {
    message +=
        " (from now on only every " + std::to_string(kBadLineLogEvery) + "th bad line is logged)";
  } else if (bad_lines_ > kBadLinesLogged) {
    message += " (" + std::to_string(bad_lines_) + " bad lines so far)";
  }
  host_.warn(message);
}

FileSource::Pass FileSource::run_jsonl(SourceContext& ctx, uint64_t id_offset) {
  Pass pass;
  std::ifstream in = open();
  LineReader reader(in);
  std::string line;
  std::string name;
  while (reader.next(line)) {
    const uint64_t n = reader.line_number();
    pass.data_lines = n;
    if (is_blank(line)) continue;
    // The parser reads a little past the text; capacity it may read saves copying every line.
    line.reserve(line.size() + simdjson::SIMDJSON_PADDING);
    simdjson::dom::element doc;
    if (auto error = json_.parse(line).get(doc); error != simdjson::SUCCESS) {
      bad_line(n, std::string("invalid JSON: ") + simdjson::error_message(error));
      continue;
    }
    if (!doc.is_object()) {
      bad_line(n, "expected a JSON object");
      continue;
    }
    builder_.reset();
    Row row;
    name.clear();
    add_json(doc, name, row);
    switch (emit_row(ctx, id_offset + n, row, n)) {
      case Emitted::kYes:
        ++pass.emitted;
        break;
      case Emitted::kBadLine:
        break;
      case Emitted::kStopped:
        pass.stopped = true;
        return pass;
    }
  }
  return pass;
}

FileSource::Pass FileSource::run_csv(SourceContext& ctx, uint64_t id_offset) {
  Pass pass;
  std::ifstream in = open();
  LineReader reader(in);
  std::string line;
  std::string record;
  std::vector<std::string> cells;
  uint64_t header_line = 0;
  if (!read_record(reader, line, record, header_line)) return pass;  // an empty file
  if (std::string error = split_csv_record(record, cells); !error.empty()) {
    throw std::runtime_error(path_ + ":" + std::to_string(header_line) +
                             ": cannot read the CSV header: " + error);
  }
  const std::vector<std::string> names = column_names(cells);
  // Columns of the time and key, resolved once.
  int time_rank_found = -1;
  size_t time_col = 0;
  size_t key_col = names.size();
  for (size_t k = 0; k < names.size(); ++k) {
    const int rank = time_rank(names[k]);
    if (rank >= 0 && (time_rank_found < 0 || rank <= time_rank_found)) {
      time_rank_found = rank;
      time_col = k;
    }
    if (!key_field_.empty() && names[k] == key_field_) key_col = k;
  }
  if (time_rank_found < 0 && !time_field_.empty()) {
    throw std::runtime_error("no column '" + time_field_ + "' in " + path_ +
                             " (columns: " + joined(names) + ")");
  }

  uint64_t first = 0;
  Row row;
  while (read_record(reader, line, record, first)) {
    pass.data_lines = reader.line_number() - header_line;
    if (std::string error = split_csv_record(record, cells); !error.empty()) {
      bad_line(first, error);
      continue;
    }
    if (cells.size() != names.size()) {
      bad_line(first, "expected " + std::to_string(names.size()) + " values, found " +
                          std::to_string(cells.size()));
      continue;
    }
    builder_.reset();
    row.time_rank = -1;
    row.key.clear();
    for (size_t k = 0; k < cells.size(); ++k) {
      const Value v = type_cell(cells[k]);
      put(names[k], v);
      if (k == key_col) append_text(row.key, v);
    }
    if (time_rank_found >= 0) {
      keep_time(names[time_col], type_cell(cells[time_col]), time_rank_found, row);
    }
    switch (emit_row(ctx, id_offset + first - header_line, row, first)) {
      case Emitted::kYes:
        ++pass.emitted;
        break;
      case Emitted::kBadLine:
        break;
      case Emitted::kStopped:
        pass.stopped = true;
        return pass;
    }
  }
  return pass;
}

void FileSource::run(SourceContext& ctx) {
  uint64_t id_offset = 0;
  uint64_t emitted = 0;
  while (true) {
    pacer_.restart();
    const Pass pass = format_ == Format::kCsv ? run_csv(ctx, id_offset) : run_jsonl(ctx, id_offset);
    emitted += pass.emitted;
    if (pass.stopped || !loop_) break;
    if (pass.emitted == 0) {
      host_.warn(path_ + ": a whole pass gave no events; not looping");
      break;
    }
    id_offset += pass.data_lines;
  }
  host_.info("replayed " + std::to_string(emitted) + " events from " + path_ + " (" +
             std::to_string(bad_lines_) + " bad lines skipped)");
}

}  // namespace sluice::file_source

SLUICE_PLUGIN(sluice::file_source::FileSource, "file", "1.0.0",
              "Replays a JSON-lines or CSV file, fast or with its recorded timing",
              sluice::file_source::kOptions);
