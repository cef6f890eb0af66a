// Fuzzes the Telegram bot's getUpdates handling end to end: the bot (commands = true) long-polls
// a loopback Bot API whose getUpdates answer is the input (after a first byte that picks the
// status), so the reply's JSON, every update in it (messages, commands with their arguments,
// callback queries from the mute button, users allowed or not) and the offset bookkeeping run
// as in production. One input is done when the bot polls again. 429 is left out here: its
// parameters.retry_after (up to a day, by design) would park the poll; telegram_reply fuzzes
// that reading directly.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

#include "bot.hpp"
#include "fuzz_util.hpp"
#include "loopback_server.hpp"
#include "sluice/testing.hpp"

using namespace sluice;

namespace {

// Never destroyed: at exit, server threads still wait on g_cv for an answer that will not come,
// and destroying a condition variable with waiters blocks for ever (the smoke run hung there).
std::mutex& g_mu = *new std::mutex;
std::condition_variable& g_cv = *new std::condition_variable;
std::optional<std::string> g_pending;  // the next getUpdates answer
uint64_t g_arrivals = 0;               // getUpdates requests so far
uint64_t g_consumed_at = 0;            // the arrival that took the last answer

std::string respond(const fuzz::LoopbackRequest& req) {
  if (req.target.ends_with("/getMe")) {
    return fuzz::LoopbackServer::response(
        200, "", R"({"ok":true,"result":{"id":1,"is_bot":true,"username":"SluiceAlertsBot"}})");
  }
  if (!req.target.ends_with("/getUpdates")) {
    return fuzz::LoopbackServer::response(200, "", R"({"ok":true,"result":true})");
  }
  std::unique_lock lock(g_mu);
  const uint64_t arrival = ++g_arrivals;
  g_cv.notify_all();
  g_cv.wait(lock, [] { return g_pending.has_value(); });
  std::string answer = std::move(*g_pending);
  g_pending.reset();
  g_consumed_at = arrival;
  g_cv.notify_all();
  return answer;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static auto* server = new fuzz::LoopbackServer(respond);
  static auto* host = new testkit::TestHost([] {
    testkit::TestOptions o;
    o.settings = {{"min_alert_usd", 100000}};
    return o;
  }());
  static auto* bot = [] {
    telegram_sink::BotOptions o;
    o.api_url = server->base_url() + "/bot123:TESTTOKEN";
    o.allowed_user_ids = {1001};
    o.threshold_setting = "min_alert_usd";
    o.backoff_base = std::chrono::nanoseconds(0);
    o.backoff_max = std::chrono::nanoseconds(0);
    o.client.redact = {"123:TESTTOKEN"};
    auto* b = new telegram_sink::Bot(Host(host->raw()), o);
    b->start();
    return b;
  }();
  (void)bot;
  fuzz::Input in(data, size);
  static constexpr int kStatuses[] = {200, 200, 200, 200, 200, 200, 401, 404, 409, 500, 502, 400};
  const int status = kStatuses[in.byte() % 12];
  std::string answer = fuzz::LoopbackServer::response(status, "", in.rest());

  std::unique_lock lock(g_mu);
  g_pending = std::move(answer);
  g_cv.notify_all();
  // Done when the bot took this answer and came back for the next one.
  const bool polled_again = g_cv.wait_for(lock, std::chrono::seconds(30), [] {
    return !g_pending.has_value() && g_arrivals > g_consumed_at;
  });
  FUZZ_CHECK(polled_again);
  return 0;
}
