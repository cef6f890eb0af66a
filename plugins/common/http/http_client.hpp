// An asynchronous HTTP/1.1 client for plugins (https with certificate verification, plain http
// for loopback), plus the retry helpers every HTTP-speaking plugin needs: Retry-After parsing,
// capped exponential backoff with full jitter, HMAC-SHA256 and secret redaction.
//
// The client owns one io_context thread: a plugin crosses a C ABI, so it cannot share the host's
// event loop. Callbacks run on that thread. Connections are kept alive and reused per
// (scheme, host, port), at most max_connections at once per origin; further requests queue.
// Every request has one absolute deadline covering resolve, connect, TLS, write and read, so a
// server that trickles bytes cannot hold a request past it. A caller that no longer wants an
// answer (a hedged call lost, a deadline of its own passed) cancels the request by its id, which
// frees its connection slot at once. Beast and Asio stay in the .cpp.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::http {

using Headers = std::vector<std::pair<std::string, std::string>>;

// Case-insensitive header lookup; the first match, or nullopt.
std::optional<std::string_view> find_header(const Headers& headers, std::string_view name);

struct Url {
  bool tls = false;
  std::string host;
  uint16_t port = 0;
  std::string target;  // path and query, at least "/"
};

// Parses http://host[:port][/path][?query] and https://… (IPv6 as [addr]). On failure returns
// nullopt and sets *error to a message that never repeats the URL (it may hold a token).
std::optional<Url> parse_url(std::string_view url, std::string* error);

struct Request {
  std::string method = "POST";
  std::string url;
  Headers headers;  // Host, Content-Length and User-Agent are added unless given
  std::string body;
  std::chrono::nanoseconds timeout = std::chrono::seconds(10);  // from send() to the last byte
};

enum class ErrorKind {
  kNone,       // a complete response arrived (any status)
  kBadUrl,     // the request's URL did not parse
  kTimeout,    // the deadline passed
  kConnect,    // resolve or connect failed, or the connection broke before a response
  kTls,        // TLS handshake or certificate verification failed
  kProtocol,   // the response was not valid HTTP/1.1 or was cut short
  kTooLarge,   // the response body exceeded max_body_bytes
  kCancelled,  // cancel() or the client's shutdown came first
};

const char* error_kind_name(ErrorKind kind);

struct Response {
  ErrorKind error = ErrorKind::kNone;
  std::string error_message;  // redacted; empty when error == kNone
  int status = 0;
  Headers headers;
  std::string body;
  bool reused_connection = false;  // answered over a kept-alive connection

  bool ok() const { return error == ErrorKind::kNone; }
  std::optional<std::string_view> header(std::string_view name) const {
    return find_header(headers, name);
  }
};

// Names one request for Client::cancel(); never 0, never reused by the same client.
using RequestId = uint64_t;

struct ClientOptions {
  std::string ca_file;                // PEM bundle trusted instead of the system store
  bool insecure_skip_verify = false;  // no certificate or host name checks (explicit opt-in)
  size_t max_connections = 4;         // per origin
  size_t max_body_bytes = 4 << 20;
  std::string user_agent = "sluice/0.1";
  // Kept-alive connections idle longer than this are closed instead of reused.
  std::chrono::nanoseconds idle_timeout = std::chrono::seconds(30);
  // Secrets masked as "<redacted>" in every error message and by redact(): tokens, keys,
  // secret URLs, each in every form sluice/redact.hpp lists (a URL's path and query too,
  // %-encoded and JSON-escaped).
  std::vector<std::string> redact;
};

class Client {
 public:
  using Callback = std::function<void(Response)>;

  // Throws std::runtime_error when ca_file cannot be loaded.
  explicit Client(ClientOptions options);
  // Same as shutdown().
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Starts a request; `done` runs exactly once on the client thread (at once, on the calling
  // thread, with kCancelled after shutdown()). The id is for cancel(); ignoring it is fine.
  RequestId send(Request request, Callback done);
  // Gives up on a request: a queued one leaves the queue, a running one has its connection
  // closed (never kept alive) so the next queued request of its origin can start; its `done`
  // then runs once on the client thread with kCancelled, soon but never inside this call. A
  // no-op once `done` ran and for unknown ids. Callable from any thread, callbacks of this
  // client included.
  void cancel(RequestId id);
  // Runs fn(false) on the client thread after delay, or fn(true) if the client shuts down first
  // (then at once on the calling thread after shutdown()).
  void schedule(std::chrono::nanoseconds delay, std::function<void(bool cancelled)> fn);
  void post(std::function<void(bool cancelled)> fn) { schedule(std::chrono::nanoseconds(0), fn); }

  // Fails every queued and running request with kCancelled, cancels scheduled work (its fn gets
  // true), closes connections and joins the thread. Idempotent; not callable from a callback.
  void shutdown();

  // Masks the configured secrets in s, e.g. a message quoting a response body.
  std::string redact(std::string_view s) const;

  // Connections opened so far (for tests of keep-alive reuse).
  uint64_t connections_opened() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// The longest wait the Retry-After parsers return: a larger request is read as this much.
inline constexpr std::chrono::seconds kMaxRetryAfter{100'000'000};

// Retry-After: delta-seconds ("120") or an HTTP date ("Wed, 21 Oct 2015 07:28:00 GMT"), relative
// to now, at most kMaxRetryAfter. A date in the past gives 0. nullopt when the value is neither.
std::optional<std::chrono::milliseconds> parse_retry_after(
    std::string_view value,
    std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

// retry-after-ms: a non-negative number of milliseconds (fractions allowed, as OpenAI sends),
// at most kMaxRetryAfter.
std::optional<std::chrono::milliseconds> parse_retry_after_ms(std::string_view value);

// Full-jitter backoff: a delay drawn uniformly from [0, min(cap, base * 2^attempt)], attempt
// counting from 0. `unit` in [0, 1) is the random draw, so callers and tests control it.
std::chrono::nanoseconds backoff_delay(int attempt, std::chrono::nanoseconds base,
                                       std::chrono::nanoseconds cap, double unit);
// The same with a draw from a thread-local generator.
std::chrono::nanoseconds backoff_delay(int attempt, std::chrono::nanoseconds base,
                                       std::chrono::nanoseconds cap);

// Lowercase hex HMAC-SHA256 of data under key.
std::string hmac_sha256_hex(std::string_view key, std::string_view data);

// Replaces every form (sluice/redact.hpp) of each secret in s with "<redacted>".
std::string redact(std::string_view s, const std::vector<std::string>& secrets);

}  // namespace sluice::http
