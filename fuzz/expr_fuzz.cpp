// Fuzzes the expression language (lexer, parser, compiler, evaluator): any text either
// compiles or throws expr::Error with a column inside the text (or just past it); whatever
// compiles is evaluated against events of every field type, before and after its $settings
// change type, as the filter and route processors do.
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_util.hpp"
#include "sluice/expr.hpp"
#include "sluice/testing.hpp"

using namespace sluice;

namespace {

std::vector<std::vector<uint8_t>> events() {
  std::vector<std::vector<uint8_t>> out;
  EventBuilder b;
  b.reset().id(1).event_time_ns(1'761'125'802'306'000'000).source("binance").key("BTCUSDT");
  b.field("symbol", "BTCUSDT").field("side", "SELL").field("price", 34603.03);
  b.field("quantity", int64_t{5}).field("notional_usd", 173015.15).field("liquidated", "long");
  b.field("maker", false).null_field("note").attr("exchange", "binance");
  const uint8_t raw[] = {0, 1, 2, 255};
  b.bytes_field("raw", raw);
  auto a = b.finish();
  out.emplace_back(a.begin(), a.end());
  b.reset().id(UINT64_MAX).event_time_ns(INT64_MIN).ingest_time_ns(INT64_MAX);
  b.field("symbol", "").field("price", -0.0).field("quantity", INT64_MIN);
  b.field("notional_usd", 1e308).field("side", true).field("x", int64_t{-1});
  auto c = b.finish();
  out.emplace_back(c.begin(), c.end());
  auto e = b.reset().finish();
  out.emplace_back(e.begin(), e.end());
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<std::vector<uint8_t>> kEvents = events();
  testkit::TestOptions options;
  options.settings = {{"min_usd", 100000}, {"side", "SELL"}, {"on", true}, {"ratio", 0.5}};
  static testkit::TestHost host(options);
  const std::string_view text = fuzz::as_text(data, size);

  std::optional<expr::Expression> e;
  try {
    e.emplace(expr::Expression::compile(text, host.raw()));
  } catch (const expr::Error& err) {
    FUZZ_CHECK(err.column >= 1);
    FUZZ_CHECK(err.column <= text.size() + 1);
    return 0;
  }
  FUZZ_CHECK(e->text() == text);
  for (const auto& bytes : kEvents) (void)e->matches(EventView(bytes.data(), bytes.size()));
  if (e->uses_settings()) {
    // Settings change type under a compiled expression: comparisons must stay defined.
    host.set_setting("min_usd", "not a number");
    host.set_setting("side", Json::array({1, 2}));
    for (const auto& bytes : kEvents) (void)e->matches(EventView(bytes.data(), bytes.size()));
    host.set_setting("min_usd", 100000);
    host.set_setting("side", "SELL");
  }
  return 0;
}
