// Fuzzes the Bybit v5 message parser (pushes of allLiquidation rows, acks, pongs, refusals);
// every row it accepts must become a valid event.
#include <cstdint>

#include "frame.hpp"
#include "fuzz_util.hpp"

using namespace sluice;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static bybit::Parser parser;
  static bybit::Message message;
  static EventBuilder builder;
  const std::string_view text = fuzz::as_text(data, size);

  parser.parse(text, message);
  if (message.kind == bybit::MessageKind::kBad) FUZZ_CHECK(!message.reason.empty());
  if (message.kind == bybit::MessageKind::kData) {
    for (const bybit::Row& row : message.rows) {
      builder.reset();
      bybit::build_event(row, message.push_time_ms, text, builder);
      fuzz::check_event(builder.finish());
    }
  }
  return 0;
}
