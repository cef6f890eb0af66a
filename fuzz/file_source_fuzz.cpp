// Fuzzes the `file` source: the whole source replaying the input as a JSON-lines or CSV file
// (flattening, renaming, time and key fields, bad lines), and its text rules on their own (CSV
// records, cell typing, recorded times). The first byte picks the format and the time field.
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_util.hpp"
#include "parse.hpp"
#include "sluice/testing.hpp"

using namespace sluice;

namespace {

void text_rules(std::string_view text) {
  std::vector<std::string> cells;
  const std::string error = file_source::split_csv_record(text, cells);
  if (error.empty()) {
    for (const std::string& cell : cells) {
      const file_source::Value v = file_source::type_cell(cell);
      std::string out;
      file_source::append_text(out, v);
      (void)file_source::time_ns(v);
    }
  }
  const std::string_view first = text.substr(0, text.find('\n'));
  if (auto ns = file_source::parse_time_text(first)) (void)*ns;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static fuzz::MemFile file;
  fuzz::Input in(data, size);
  const uint8_t mode = in.byte();
  const std::string_view text = in.rest();
  text_rules(text);

  file.write(text);
  Json config = {{"path", file.path()}, {"source_name", "fuzz"}};
  config["format"] = (mode & 3) == 0 ? "jsonl" : (mode & 3) == 1 ? "csv" : "auto";
  if ((mode & 4) != 0) config["time_field"] = (mode & 8) != 0 ? "" : "T";
  if ((mode & 16) != 0) config["rename"] = {{"o.s", "symbol"}, {"ts", "timestamp"}};
  if ((mode & 32) != 0) {
    config["timing"] = "original";
    config["speed"] = 1e9;
  }
  if (const auto error = testkit::TestPlugin::create_error(config)) {
    FUZZ_CHECK(!std::string(error->what()).empty());
    return 0;
  }
  testkit::TestPlugin source(config);
  testkit::RunLimits limits;
  limits.max_events = 10'000;
  const testkit::RunResult result = source.run(limits);
  for (const std::vector<uint8_t>& event : result.events) fuzz::check_event(event);
  return 0;
}
