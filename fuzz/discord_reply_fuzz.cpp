// Fuzzes how the discord sink reads Discord's answers: 429 bodies with retry_after (float
// seconds), error bodies with message/code, and everything else through the shared rules.
#include <cstdint>

#include "discord.hpp"
#include "http_fuzz_util.hpp"

using namespace sluice;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Input in(data, size);
  const http::Response r = fuzz::response_from(in);
  fuzz::check_verdict(discord_sink::classify(r));
  return 0;
}
