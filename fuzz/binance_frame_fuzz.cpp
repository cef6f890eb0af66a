// Fuzzes the Binance forceOrder frame parser with what a live stream, a recording or a pasted
// frame can hold; every liquidation it accepts must become a valid event, the same through
// build_event() and the fast EventWriter. Also the decimal reader on its own.
#include <cstdint>

#include "frame.hpp"
#include "fuzz_util.hpp"

using namespace sluice;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static binance::FrameParser parser;
  static binance::EventWriter writer("binance");
  static EventBuilder builder;
  const std::string_view text = fuzz::as_text(data, size);

  binance::Liquidation liq;
  const binance::FrameResult r = parser.parse(text, liq);
  if (r.kind == binance::FrameKind::kBad) FUZZ_CHECK(!r.reason.empty());
  if (r.kind == binance::FrameKind::kLiquidation) {
    builder.reset();
    binance::build_event(liq, text, builder);
    const std::span<const uint8_t> built = builder.finish();
    fuzz::check_event(built);
    const std::span<const uint8_t> written = writer.write(liq, text, 7, 1);
    fuzz::check_event(written);
    const auto a = EventView(built);
    const auto b = EventView(written);
    FUZZ_CHECK(a.field_count() == b.field_count());
    FUZZ_CHECK(a.key() == b.key());
    FUZZ_CHECK(a.event_time_ns() == b.event_time_ns());
  }

  double d = 0;
  (void)binance::parse_decimal(text.substr(0, 64), d);
  return 0;
}
