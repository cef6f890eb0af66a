// Fuzzes the replay-file reader every exchange source uses for replay_file: recording lines
// ({"recv_ns":…,"frame":"…"}) and plain messages, mixed, as a whole file; and the JSON string
// escaping the recorder writes, which must read back to the same frame.
#include <cstdint>
#include <string>

#include "fuzz_util.hpp"
#include "replay.hpp"

using namespace sluice;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static fuzz::MemFile file;
  const std::string_view text = fuzz::as_text(data, size);
  file.write(text);
  replay::RecordingReader reader(file.path());
  replay::RecordingReader::Entry entry;
  uint64_t last_line = 0;
  while (reader.next(entry)) {
    FUZZ_CHECK(entry.line > last_line);
    last_line = entry.line;
    if (!entry.error.empty()) FUZZ_CHECK(entry.frame.empty());
  }

  // A frame the recorder writes reads back byte for byte (the frame is one line of the input).
  const std::string_view frame = text.substr(0, text.find('\n'));
  if (frame.empty()) return 0;
  std::string line = "{\"recv_ns\":5,\"frame\":\"";
  replay::append_json_string_body(line, frame);
  line += "\"}\n";
  file.write(line);
  replay::RecordingReader again(file.path());
  FUZZ_CHECK(again.next(entry));
  if (entry.error.empty()) {
    FUZZ_CHECK(entry.frame == frame);
    FUZZ_CHECK(entry.recv_ns == 5);
  }
  return 0;
}
