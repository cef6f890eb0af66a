// At-least-once delivery of events as HTTP requests, shared by the webhook and chat sinks:
// retries with capped full-jitter backoff on timeouts, connection errors and 5xx, waits out
// 429s as the server asks, fails permanent rejections at once, and optionally paces and orders
// the requests (chat webhooks post one message at a time, about one per second).
//
// No event waits longer than max_retry_wait for one retry: a longer wait (a server's
// Retry-After, or the backoff) fails it at once, so the runtime sends it to `errors` instead of
// the sink stalling for as long as a server asks. stop() ends every wait the same way. Every
// message (log line or outcome) is redacted with the client's secrets first: a server echoing a
// secret URL in its error page cannot put it in a log or a dead letter.
//
// A call completes only when its request is answered for good: ok() after a 2xx (or whatever
// the sink's classifier accepts), fail() after a permanent error, the last retry, a wait over
// max_retry_wait or a stop. Metrics:
// sink_retries_total{reason} and sink_drops_total{reason}, reason being a status name; for each
// delivered request alerts_delivered_total{symbol} (the event's `symbol` field, "" without one)
// and alert_latency_seconds, the time from the event's own time (`trade_time_ms` when present,
// else its event time: the exchange's timestamp for a liquidation) to the moment the service
// accepted it — the exchange-to-alert latency a trading desk watches.
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <set>
#include <string>

#include "http_client.hpp"
#include "sluice/sdk.hpp"

namespace sluice::http {

// What to do after one response.
struct Verdict {
  enum class Next { kDone, kRetry, kFail };
  Next next = Next::kDone;
  Status status = Status::kOk;  // for kRetry: the status if this was the last attempt
  std::string message;          // for kRetry and kFail: what went wrong, without secrets
  // For kRetry: the server's requested wait; negative = use the backoff.
  std::chrono::nanoseconds retry_after{-1};

  static Verdict done() { return {}; }
  static Verdict fail(Status s, std::string msg) {
    return {Next::kFail, s, std::move(msg), std::chrono::nanoseconds(-1)};
  }
  static Verdict retry(Status s, std::string msg,
                       std::chrono::nanoseconds after = std::chrono::nanoseconds(-1)) {
    return {Next::kRetry, s, std::move(msg), after};
  }
};

using Classifier = std::function<Verdict(const Response&)>;

// The common HTTP rules: 2xx done; 429 retry after Retry-After (or the backoff); 5xx, timeouts,
// connection and protocol errors retried; 401/403 fail as kAuth; other statuses fail as
// kBadRequest. Messages start with `service` and carry up to 200 bytes of the response body.
Verdict classify_http(const Response& response, std::string_view service);

// Up to max bytes of a response body on one line, for error messages.
std::string body_snippet(std::string_view body, size_t max = 200);

struct DeliveryOptions {
  std::string service;  // message prefix ("slack")
  int max_retries = 3;  // retries after the first attempt
  std::chrono::nanoseconds backoff_base = std::chrono::milliseconds(200);
  std::chrono::nanoseconds backoff_max = std::chrono::seconds(10);
  // The longest wait before one retry; a longer one fails the event at once.
  std::chrono::nanoseconds max_retry_wait = std::chrono::seconds(60);
  // Sends one request at a time in arrival order; a retried request keeps its place.
  bool ordered = false;
  // With ordered: the least time between the starts of two requests.
  std::chrono::nanoseconds min_interval{0};
  ClientOptions client;
};

class Delivery {
 public:
  // Throws std::runtime_error when the client cannot be set up (a bad ca_file).
  Delivery(const Host& host, DeliveryOptions options, Classifier classify);
  // Stops: calls not yet completed fail with kCancelled.
  ~Delivery();
  Delivery(const Delivery&) = delete;
  Delivery& operator=(const Delivery&) = delete;

  // Takes the call; completes it once the request is delivered or given up. Any thread.
  void deliver(Call call, Request request);

  // Ends every wait, for a sink's flush on a stop: each event waiting to retry (or, in order,
  // for its turn) fails at once with kCancelled ("stopped while waiting to retry" after a failed
  // attempt), a request on the wire completes but is not retried, and later calls fail at once.
  // Returns once the waiting events are failed. Any thread but the client's callbacks.
  void stop();

 private:
  struct Item {
    Item(Call c, Request r) : call(std::move(c)), request(std::move(r)) {}
    Call call;
    Request request;
    int attempt = 0;
    std::string last_error;     // the last failed attempt's message, redacted
    std::string symbol_label;   // metric_label("symbol", …), read once from the event
    int64_t event_time_ns = 0;  // 0 = unknown
  };
  using ItemPtr = std::shared_ptr<Item>;

  // All below run on the client's thread.
  void enqueue(const ItemPtr& item);
  void pump();
  void send(const ItemPtr& item);
  void on_response(const ItemPtr& item, const Response& response);
  void delivered(const ItemPtr& item);
  // Fails the call of the request just answered, then moves the ordered queue on.
  void give_up(const ItemPtr& item, Status status, std::string message,
               std::chrono::nanoseconds retry_after = std::chrono::nanoseconds(-1));
  // Fails the call: counts the drop and logs the message.
  void fail(const ItemPtr& item, Status status, std::string message,
            std::chrono::nanoseconds retry_after);
  void finished_one();
  void cancel(const ItemPtr& item);
  void fail_waiting();

  Host host_;
  Metric alert_latency_ = host_.histogram("alert_latency_seconds");  // per alert: resolved once
  DeliveryOptions opts_;
  Classifier classify_;
  std::unique_ptr<Client> client_;
  std::atomic<bool> stopping_{false};
  std::deque<ItemPtr> queue_;  // ordered mode only
  std::set<ItemPtr> waiting_;  // unordered mode: waiting for their retry's timer
  bool busy_ = false;
  bool pump_scheduled_ = false;
  std::chrono::steady_clock::time_point next_send_{};
  // Ordered mode: until when a 429 asked the whole webhook to wait (over max_retry_wait, the
  // event that got it failed; those queued behind fail too while the rest of it is over).
  std::chrono::steady_clock::time_point paused_until_{};
};

}  // namespace sluice::http
