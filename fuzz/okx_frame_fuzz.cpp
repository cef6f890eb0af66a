// Fuzzes the OKX v5 message parser (liquidation pushes, acks, pong, refusals, notices) and the
// instruments reply that values contracts; every row it accepts must become a valid event with
// the contract found in the instruments reply (or a default one).
#include <cstdint>

#include "frame.hpp"
#include "fuzz_util.hpp"

using namespace sluice;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static okx::Parser parser;
  static okx::Message message;
  static EventBuilder builder;
  fuzz::Input in(data, size);
  // The first byte picks the reply under test: instruments (odd) or a stream message.
  const bool instruments = (in.byte() & 1) != 0;
  const std::string_view text = in.rest();

  if (instruments) {
    std::string error;
    const std::optional<okx::Contracts> contracts = okx::parse_instruments(text, &error);
    if (!contracts) FUZZ_CHECK(!error.empty());
    return 0;
  }
  parser.parse(text, message);
  if (message.kind == okx::MessageKind::kBad) FUZZ_CHECK(!message.reason.empty());
  if (message.kind != okx::MessageKind::kData) return 0;
  for (const okx::Row& row : message.rows) {
    const okx::Contract contract{0.01, okx::is_inverse(row.instrument)};
    (void)okx::long_liquidated(row);
    (void)okx::notional_usd(row, contract);
    (void)okx::base_quantity(row, contract);
    builder.reset();
    okx::build_event(row, okx::symbol_of(row.instrument), contract, text, builder);
    fuzz::check_event(builder.finish());
  }
  return 0;
}
