// Fuzzes the llm_classifier's reading of /chat/completions replies end to end: the processor
// sends its request to a loopback server that answers with the input (the first byte picks the
// status, then "Name: value" header lines up to an empty line, then the body), so the reply's
// JSON, choices[0].message.content (fenced or not) and the verdict inside it, usage and
// error bodies (insufficient_quota, retry-after / retry-after-ms) are read as in production.
// Every call must complete, with an event or a classified failure that says why.
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "fuzz_util.hpp"
#include "loopback_server.hpp"
#include "sluice/testing.hpp"

using namespace sluice;

namespace {

std::mutex g_mu;
std::string g_response;

std::vector<uint8_t> liquidation() {
  EventBuilder b;
  b.reset().id(1).event_time_ns(1'761'125'802'306'000'000).source("binance").key("ETHUSDT");
  b.field("exchange", "binance").field("symbol", "ETHUSDT").field("side", "SELL");
  b.field("notional_usd", 250000.0).field("avg_price", 3890.5);
  auto bytes = b.finish();
  return {bytes.begin(), bytes.end()};
}

// Calls completed by a TestPlugin stay allocated until it is destroyed, so the processor is
// created afresh every so many inputs.
constexpr uint64_t kCallsPerInstance = 5000;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static auto* server = new fuzz::LoopbackServer([](const fuzz::LoopbackRequest&) {
    std::lock_guard lock(g_mu);
    return g_response;
  });
  static const std::vector<uint8_t> kEvent = liquidation();
  static std::unique_ptr<testkit::TestPlugin> llm;
  static uint64_t calls = 0;
  if (calls++ % kCallsPerInstance == 0) {
    llm.reset();
    llm = std::make_unique<testkit::TestPlugin>(Json{
        {"base_url", server->base_url() + "/v1"},
        {"api_key", "sk-fuzz-secret"},
        {"model", "gpt-4o-mini"},
        {"temperature", 0.0},
        {"max_tokens", 300},
        {"response_format", "json_object"},
        {"timeout", int64_t{20'000'000'000}},
        {"price_per_mtok", {{"input", 0.15}, {"output", 0.6}}},
        {"ca_file", ""},
        {"max_connections", 4},
    });
  }

  fuzz::Input in(data, size);
  static constexpr int kStatuses[] = {200, 200, 200, 200, 200, 200, 200, 200,
                                      429, 500, 503, 401, 403, 408, 400, 302};
  const int status = kStatuses[in.byte() % 16];
  std::string headers;
  for (;;) {
    const std::string_view line = in.until('\n');
    if (line.empty() || line.find(':') == std::string_view::npos) break;
    if (line.find('\r') != std::string_view::npos) break;
    headers.append(line).append("\r\n");
  }
  {
    std::lock_guard lock(g_mu);
    g_response = fuzz::LoopbackServer::response(status, headers, in.rest());
  }
  const testkit::CallResult r = llm->process(kEvent, std::chrono::seconds(30));
  FUZZ_CHECK(r.completed);
  if (!r.outcome.ok()) FUZZ_CHECK(!r.outcome.message.empty());
  FUZZ_CHECK(r.outcome.message.find("sk-fuzz-secret") == std::string::npos);
  for (const testkit::Emitted& e : r.emitted) fuzz::check_event(e.bytes);
  return 0;
}
