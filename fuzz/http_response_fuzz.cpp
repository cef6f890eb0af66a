// Fuzzes the HTTP response reader: the plugins' HTTP client (Beast's parser under the
// project's own handling: status, headers, bodies cut short or too large, connections closed
// early) gets the input verbatim as the server's response over loopback; and what the plugins
// read from a response (Retry-After as seconds or an HTTP date, retry-after-ms, the shared
// classification) and the URL parser get the input's text directly.
#include <chrono>
#include <cstdint>
#include <future>
#include <mutex>
#include <string>

#include "delivery.hpp"
#include "fuzz_util.hpp"
#include "http_client.hpp"
#include "loopback_server.hpp"

using namespace sluice;

namespace {

std::mutex g_mu;
std::string g_response;  // what the server sends for the current input

void check_response(const http::Response& r) {
  if (!r.ok()) {
    FUZZ_CHECK(!r.error_message.empty());
    return;
  }
  FUZZ_CHECK(r.status >= 0 && r.status <= 999);
  if (auto v = r.header("Retry-After")) (void)http::parse_retry_after(*v);
  if (auto v = r.header("retry-after-ms")) (void)http::parse_retry_after_ms(*v);
  const http::Verdict v = http::classify_http(r, "fuzz");
  if (v.next != http::Verdict::Next::kDone) FUZZ_CHECK(!v.message.empty());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static auto* server = new fuzz::LoopbackServer([](const fuzz::LoopbackRequest&) {
    std::lock_guard lock(g_mu);
    return g_response;
  });
  static auto* client = new http::Client([] {
    http::ClientOptions o;
    o.max_body_bytes = 64 << 10;
    o.redact = {"s3cret"};
    return o;
  }());
  const std::string_view text = fuzz::as_text(data, size);

  // The parsers that read header values and URLs, on the raw text.
  const std::string_view line = text.substr(0, text.find('\n'));
  (void)http::parse_retry_after(line);
  (void)http::parse_retry_after(line, std::chrono::system_clock::time_point{});
  if (auto ms = http::parse_retry_after_ms(line)) FUZZ_CHECK(ms->count() >= 0);
  std::string error;
  if (!http::parse_url(line, &error)) FUZZ_CHECK(!error.empty());

  // The input as the whole response to a request.
  {
    std::lock_guard lock(g_mu);
    g_response.assign(text);
  }
  http::Request req;
  req.method = (size & 1) != 0 ? "GET" : "POST";
  req.url = server->base_url() + "/s3cret/hook";
  req.body = "{}";
  req.timeout = std::chrono::seconds(20);
  std::promise<http::Response> done;
  client->send(std::move(req), [&done](http::Response r) { done.set_value(std::move(r)); });
  const http::Response r = done.get_future().get();
  FUZZ_CHECK(r.error != http::ErrorKind::kTimeout);
  FUZZ_CHECK(r.error_message.find("s3cret") == std::string::npos);
  check_response(r);
  return 0;
}
