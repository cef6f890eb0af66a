// Fuzzes how the telegram sink reads the Bot API's sendMessage answers (ok/description/
// error_code, parameters.retry_after, the Retry-After header) and the HTML fitting applied to
// every message, and the bot's command argument parsers (/mute durations, /setthreshold
// amounts) on the same text.
#include <cstdint>

#include <nlohmann/json.hpp>

#include "bot.hpp"
#include "http_fuzz_util.hpp"
#include "message.hpp"
#include "telegram.hpp"

using namespace sluice;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Input in(data, size);
  const http::Response r = fuzz::response_from(in);
  fuzz::check_verdict(telegram_sink::classify_telegram(r, 42));
  const nlohmann::json body = nlohmann::json::parse(r.body, nullptr, false);
  const auto after = telegram_sink::retry_after_of(r, body);
  FUZZ_CHECK(after.count() >= -1);

  (void)telegram_sink::fit_html(r.body, 64);
  FUZZ_CHECK(http::utf16_length(telegram_sink::fit_html(r.body)) <= telegram_sink::kMaxText);
  if (auto d = telegram_sink::parse_mute_duration(r.body)) {
    FUZZ_CHECK(d->count() > 0 && *d <= telegram_sink::kMaxMute);
    (void)telegram_sink::duration_text(*d);
  }
  if (auto usd = telegram_sink::parse_usd(r.body)) {
    FUZZ_CHECK(*usd > 0 && *usd <= 1e15);
    (void)telegram_sink::usd_text(*usd);
    (void)telegram_sink::with_thousands(*usd);
  }
  (void)telegram_sink::mute_callback_data(r.body);
  return 0;
}
