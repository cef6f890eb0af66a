// Tests of the shared HTTP client and its helpers against the scripted test server: requests on
// the wire, keep-alive reuse and the connection cap, the deadline against slow and trickling
// servers, dropped and malformed responses, body limits, TLS verification, cancelling requests,
// and redaction.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "delivery.hpp"
#include "http_client.hpp"
#include "http_test_server.hpp"
#include "message.hpp"

namespace {

using namespace std::chrono_literals;
using sluice::http::Client;
using sluice::http::ClientOptions;
using sluice::http::ErrorKind;
using sluice::http::Request;
using sluice::http::RequestId;
using sluice::http::Response;
using sluice::testing::HttpTestServer;
using sluice::testing::HttpTestServerOptions;
using sluice::testing::Reply;

Response fetch(Client& client, Request req) {
  std::promise<Response> p;
  auto f = p.get_future();
  client.send(std::move(req), [&p](Response r) { p.set_value(std::move(r)); });
  return f.get();
}

ClientOptions trusting(const std::string& ca_file) {
  ClientOptions o;
  o.ca_file = ca_file;
  return o;
}

Request post(const std::string& url, std::string body = "{}",
             std::chrono::nanoseconds timeout = 5s) {
  Request r;
  r.url = url;
  r.headers = {{"Content-Type", "application/json"}, {"X-Test", "yes"}};
  r.body = std::move(body);
  r.timeout = timeout;
  return r;
}

// A response that arrives through a callback, for tests that keep the request's id.
struct Pending {
  std::promise<Response> promise;
  std::future<Response> future = promise.get_future();
  Client::Callback callback() {
    return [this](Response r) { promise.set_value(std::move(r)); };
  }
  bool arrives_within(std::chrono::milliseconds d) {
    return future.wait_for(d) == std::future_status::ready;
  }
};

// A server on 127.0.0.1 that accepts one connection, reads whatever the client sends and never
// answers, reporting how the client ended the connection. HttpTestServer cannot tell: while a
// reply waits it does not read.
class SilentServer {
 public:
  enum class End { kOpen, kEof, kError };

  SilentServer() {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    auto* sa = reinterpret_cast<sockaddr*>(&addr);
    if (listen_fd_ < 0 || ::bind(listen_fd_, sa, len) != 0 || ::listen(listen_fd_, 1) != 0 ||
        ::getsockname(listen_fd_, sa, &len) != 0) {
      throw std::runtime_error("SilentServer: cannot listen on 127.0.0.1");
    }
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  ~SilentServer() {
    stop_ = true;
    thread_.join();
    ::close(listen_fd_);
  }
  SilentServer(const SilentServer&) = delete;
  SilentServer& operator=(const SilentServer&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/"; }

  // True once some bytes of a request arrived.
  bool wait_for_request(std::chrono::milliseconds timeout = 10s) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [this] { return received_ > 0; });
  }
  // How the client ended the connection; kOpen when it did not within timeout.
  End wait_for_end(std::chrono::milliseconds timeout = 10s) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [this] { return end_ != End::kOpen; });
    return end_;
  }

 private:
  // Polls in short steps so the destructor's stop_ ends it even when no client came.
  void run() {
    int fd = -1;
    while (!stop_ && fd < 0) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) > 0) fd = ::accept(listen_fd_, nullptr, nullptr);
    }
    if (fd < 0) return;
    char buf[4096];
    while (!stop_) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      std::lock_guard lock(mu_);
      if (n > 0) {
        received_ += static_cast<size_t>(n);
      } else {
        end_ = n == 0 ? End::kEof : End::kError;
      }
      cv_.notify_all();
      if (n <= 0) break;
    }
    ::close(fd);
  }

  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  size_t received_ = 0;
  End end_ = End::kOpen;
  std::thread thread_;
};

TEST(HttpClientTest, SendsMethodTargetHeadersAndBodyAndReturnsTheResponse) {
  HttpTestServer server;
  server.enqueue(Reply::json(201, R"({"id":7})", {{"X-Reply", "abc"}}));
  Client client({});
  Response r = fetch(client, post(server.url("/hooks/a?x=1"), R"({"a":1})"));
  ASSERT_TRUE(r.ok()) << r.error_message;
  EXPECT_EQ(r.status, 201);
  EXPECT_EQ(r.body, R"({"id":7})");
  EXPECT_EQ(r.header("x-reply").value_or(""), "abc");
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "POST");
  EXPECT_EQ(reqs[0].target, "/hooks/a?x=1");
  EXPECT_EQ(reqs[0].body, R"({"a":1})");
  EXPECT_EQ(reqs[0].header("Content-Type").value_or(""), "application/json");
  EXPECT_EQ(reqs[0].header("X-Test").value_or(""), "yes");
  EXPECT_EQ(reqs[0].header("Host").value_or(""), "127.0.0.1:" + std::to_string(server.port()));
  EXPECT_EQ(reqs[0].header("Content-Length").value_or(""), "7");
  EXPECT_EQ(reqs[0].header("User-Agent").value_or(""), "sluice/0.1");
}

TEST(HttpClientTest, ReusesOneKeptAliveConnectionForSequentialRequests) {
  HttpTestServer server;
  Client client({});
  for (int i = 0; i < 3; ++i) {
    Response r = fetch(client, post(server.url("/")));
    ASSERT_TRUE(r.ok()) << r.error_message;
    EXPECT_EQ(r.reused_connection, i > 0);
  }
  EXPECT_EQ(server.connection_count(), 1u);
  EXPECT_EQ(client.connections_opened(), 1u);
}

TEST(HttpClientTest, OpensANewConnectionWhenTheServerClosedTheKeptAliveOne) {
  HttpTestServer server;
  Reply closing;
  closing.close = true;
  server.enqueue(closing);
  Client client({});
  EXPECT_TRUE(fetch(client, post(server.url("/"))).ok());
  Response r = fetch(client, post(server.url("/")));
  ASSERT_TRUE(r.ok()) << r.error_message;
  EXPECT_EQ(server.request_count(), 2u);
  EXPECT_EQ(server.connection_count(), 2u);
}

TEST(HttpClientTest, RetriesOnceOnAFreshConnectionWhenAKeptAliveOneTurnsOutClosed) {
  HttpTestServer server;
  server.enqueue(Reply::text(200, "first"));
  server.enqueue(Reply::drop());  // as a server closing an idle connection just as it is reused
  Client client({});
  EXPECT_TRUE(fetch(client, post(server.url("/"))).ok());
  Response r = fetch(client, post(server.url("/")));
  ASSERT_TRUE(r.ok()) << r.error_message;
  EXPECT_FALSE(r.reused_connection);
  EXPECT_EQ(server.request_count(), 3u);
  EXPECT_EQ(server.connection_count(), 2u);
}

TEST(HttpClientTest, NeverOpensMoreThanMaxConnectionsPerOrigin) {
  HttpTestServer server;
  server.set_handler([](const auto&) { return Reply::text(200, "ok").after(20ms); });
  ClientOptions o;
  o.max_connections = 2;
  Client client(o);
  std::vector<std::future<Response>> futures;
  std::vector<std::promise<Response>> promises(6);
  for (auto& p : promises) {
    futures.push_back(p.get_future());
    client.send(post(server.url("/")), [&p](Response r) { p.set_value(std::move(r)); });
  }
  for (auto& f : futures) {
    Response r = f.get();
    EXPECT_TRUE(r.ok()) << r.error_message;
    EXPECT_EQ(r.body, "ok");
  }
  EXPECT_EQ(server.request_count(), 6u);
  EXPECT_EQ(server.connection_count(), 2u);
}

TEST(HttpClientTest, TimesOutASlowServer) {
  HttpTestServer server;
  server.enqueue(Reply::text(200, "late").after(5000ms));
  Client client({});
  Response r = fetch(client, post(server.url("/"), "{}", 100ms));
  EXPECT_EQ(r.error, ErrorKind::kTimeout);
  EXPECT_EQ(r.error_message, "no complete response from http://127.0.0.1:" +
                                 std::to_string(server.port()) + " within 100 ms");
}

TEST(HttpClientTest, DeadlineCutsAServerTricklingBytes) {
  HttpTestServer server;
  Reply slow = Reply::text(200, std::string(100, 'x'));
  slow.trickle = 20ms;  // the whole reply would take seconds; each byte comes well in time
  server.enqueue(slow);
  Client client({});
  Response r = fetch(client, post(server.url("/"), "{}", 200ms));
  EXPECT_EQ(r.error, ErrorKind::kTimeout) << r.error_message;
}

TEST(HttpClientTest, ReportsAConnectionClosedWithoutAnswer) {
  HttpTestServer server;
  server.enqueue(Reply::drop());
  Client client({});
  Response r = fetch(client, post(server.url("/")));
  EXPECT_EQ(r.error, ErrorKind::kConnect);
  EXPECT_EQ(r.error_message, "http://127.0.0.1:" + std::to_string(server.port()) +
                                 " closed the connection without answering");
}

TEST(HttpClientTest, ReportsATruncatedResponse) {
  HttpTestServer server;
  server.enqueue(Reply::raw_bytes("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"));
  Client client({});
  Response r = fetch(client, post(server.url("/")));
  EXPECT_EQ(r.error, ErrorKind::kProtocol);
  EXPECT_EQ(r.error_message,
            "response from http://127.0.0.1:" + std::to_string(server.port()) + " was cut short");
}

TEST(HttpClientTest, ReportsAMalformedResponse) {
  HttpTestServer server;
  server.enqueue(Reply::raw_bytes("SPLAT 200 nope\r\n\r\n"));
  Client client({});
  Response r = fetch(client, post(server.url("/")));
  EXPECT_EQ(r.error, ErrorKind::kProtocol) << r.error_message;
}

TEST(HttpClientTest, RefusesABodyOverTheLimit) {
  HttpTestServer server;
  server.enqueue(Reply::text(200, std::string(2000, 'x')));
  ClientOptions o;
  o.max_body_bytes = 1000;
  Client client(o);
  Response r = fetch(client, post(server.url("/")));
  EXPECT_EQ(r.error, ErrorKind::kTooLarge) << r.status << " " << r.body.size();
  EXPECT_EQ(r.error_message, "response body from http://127.0.0.1:" +
                                 std::to_string(server.port()) + " exceeds 1000 bytes");
}

TEST(HttpClientTest, ReportsConnectionRefused) {
  uint16_t port;
  {
    HttpTestServer gone;
    port = gone.port();
  }
  Client client({});
  Response r = fetch(client, post("http://127.0.0.1:" + std::to_string(port) + "/"));
  EXPECT_EQ(r.error, ErrorKind::kConnect);
  EXPECT_EQ(r.error_message,
            "connect to http://127.0.0.1:" + std::to_string(port) + " failed: Connection refused");
}

TEST(HttpClientTest, RejectsABadUrlWithoutRepeatingIt) {
  Client client({});
  Response r = fetch(client, post("ftp://secret-token@example.com/"));
  EXPECT_EQ(r.error, ErrorKind::kBadUrl);
  EXPECT_EQ(r.error_message, "URL must start with http:// or https://");
}

TEST(HttpClientTest, SpeaksHttpsVerifiedAgainstTheGivenCa) {
  HttpTestServer server(HttpTestServerOptions{.tls = true});
  server.enqueue(Reply::json(200, R"({"ok":true})"));
  Client client(trusting(server.ca_file()));
  Response r = fetch(client, post(server.url("/secure")));
  ASSERT_TRUE(r.ok()) << r.error_message;
  EXPECT_EQ(r.body, R"({"ok":true})");
  EXPECT_EQ(server.requests().at(0).target, "/secure");
  EXPECT_TRUE(fetch(client, post(server.url("/again"))).reused_connection);
}

TEST(HttpClientTest, RefusesACertificateFromAnUntrustedCa) {
  HttpTestServer server(HttpTestServerOptions{.tls = true});
  HttpTestServer other(HttpTestServerOptions{.tls = true});
  Client client(trusting(other.ca_file()));
  Response r = fetch(client, post(server.url("/")));
  EXPECT_EQ(r.error, ErrorKind::kTls);
  EXPECT_EQ(r.error_message,
            "TLS handshake with https://127.0.0.1:" + std::to_string(server.port()) +
                " failed: certificate verify failed: unable to get local "
                "issuer certificate");
  EXPECT_EQ(server.request_count(), 0u);
}

TEST(HttpClientTest, InsecureSkipVerifyAcceptsAnyCertificate) {
  HttpTestServer server(HttpTestServerOptions{.tls = true});
  ClientOptions o;
  o.insecure_skip_verify = true;
  Client client(o);
  EXPECT_TRUE(fetch(client, post(server.url("/"))).ok());
}

TEST(HttpClientTest, RefusesAMissingCaFile) {
  try {
    Client client(trusting("/nonexistent/ca.pem"));
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot load CA file '/nonexistent/ca.pem'"),
              std::string::npos)
        << e.what();
  }
}

TEST(HttpClientTest, RedactsSecretsInErrors) {
  uint16_t port;
  {
    HttpTestServer gone;
    port = gone.port();
  }
  const std::string secret = "127.0.0.1:" + std::to_string(port);
  ClientOptions o;
  o.redact = {secret};
  Client client(o);
  Response r = fetch(client, post("http://" + secret + "/bot123/send"));
  EXPECT_EQ(r.error_message, "connect to http://<redacted> failed: Connection refused");
}

TEST(HttpClientTest, ShutdownCancelsRequestsInFlight) {
  HttpTestServer server;
  server.enqueue(Reply::text(200, "late").after(5000ms));
  auto client = std::make_unique<Client>(ClientOptions{});
  std::promise<Response> p;
  client->send(post(server.url("/")), [&p](Response r) { p.set_value(std::move(r)); });
  ASSERT_TRUE(server.wait_for_requests(1));
  client.reset();
  Response r = p.get_future().get();
  EXPECT_EQ(r.error, ErrorKind::kCancelled);
}

TEST(HttpClientTest, CancelClosesARunningRequestsConnectionAndReportsCancelled) {
  SilentServer server;
  Pending p;
  Client client({});
  const RequestId id = client.send(post(server.url(), "{}", 30s), p.callback());
  EXPECT_NE(id, 0u);
  ASSERT_TRUE(server.wait_for_request());
  client.cancel(id);
  ASSERT_TRUE(p.arrives_within(2s)) << "not cancelled well before the 30 s timeout";
  Response r = p.future.get();
  EXPECT_EQ(r.error, ErrorKind::kCancelled);
  EXPECT_EQ(r.error_message, "cancelled by the caller");
  EXPECT_EQ(server.wait_for_end(), SilentServer::End::kEof);
}

TEST(HttpClientTest, CancelClosesARunningHttpsRequest) {
  HttpTestServer server(HttpTestServerOptions{.tls = true});
  server.enqueue(Reply::text(200, "never").after(30000ms));
  Pending p;
  Client client(trusting(server.ca_file()));
  const RequestId id = client.send(post(server.url("/"), "{}", 30s), p.callback());
  ASSERT_TRUE(server.wait_for_requests(1));
  client.cancel(id);
  ASSERT_TRUE(p.arrives_within(2s));
  EXPECT_EQ(p.future.get().error, ErrorKind::kCancelled);
}

TEST(HttpClientTest, CancelRemovesAQueuedRequestAndLeavesTheRunningOneAlone) {
  HttpTestServer server;
  // The server records a request only once its handler returns, so the handler says when the
  // first one arrived, then holds its answer until the test releases it.
  std::promise<void> arrive;
  std::future<void> arrived = arrive.get_future();
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  server.set_handler([&arrive, released](const auto& req) {
    if (req.target == "/first") {
      arrive.set_value();
      released.wait_for(10s);
    }
    return Reply::text(200, req.target);
  });
  ClientOptions o;
  o.max_connections = 1;
  Pending first;
  Pending queued;
  Client client(o);
  client.send(post(server.url("/first"), "{}", 30s), first.callback());
  ASSERT_EQ(arrived.wait_for(10s), std::future_status::ready);
  const RequestId id = client.send(post(server.url("/queued"), "{}", 30s), queued.callback());
  client.cancel(id);
  ASSERT_TRUE(queued.arrives_within(2s));
  Response q = queued.future.get();
  EXPECT_EQ(q.error, ErrorKind::kCancelled);
  EXPECT_EQ(q.error_message, "cancelled by the caller");
  EXPECT_FALSE(first.arrives_within(0ms));
  release.set_value();
  Response f = first.future.get();
  ASSERT_TRUE(f.ok()) << f.error_message;
  EXPECT_EQ(f.body, "/first");
  // On the one connection, a cancelled request that was sent anyway would come before this one.
  EXPECT_TRUE(fetch(client, post(server.url("/third"))).ok());
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].target, "/first");
  EXPECT_EQ(reqs[1].target, "/third");
}

TEST(HttpClientTest, CancellingTheRunningRequestFreesItsSlotForTheNextOfItsOrigin) {
  HttpTestServer server;
  server.enqueue(Reply::text(200, "never").after(30000ms));
  ClientOptions o;
  o.max_connections = 1;
  Pending hanging;
  Pending queued;
  Client client(o);
  const RequestId id = client.send(post(server.url("/hang"), "{}", 30s), hanging.callback());
  ASSERT_TRUE(server.wait_for_requests(1));
  client.send(post(server.url("/queued"), "{}", 30s), queued.callback());
  client.cancel(id);
  ASSERT_TRUE(hanging.arrives_within(2s));
  EXPECT_EQ(hanging.future.get().error, ErrorKind::kCancelled);
  ASSERT_TRUE(queued.arrives_within(10s)) << "the queued request never got the freed slot";
  Response r = queued.future.get();
  ASSERT_TRUE(r.ok()) << r.error_message;
  EXPECT_FALSE(r.reused_connection);  // the cancelled request's connection is never pooled
  EXPECT_TRUE(fetch(client, post(server.url("/after"))).ok());
  EXPECT_EQ(server.connection_count(), 2u);
}

TEST(HttpClientTest, CancelAfterCompletionOrOfAnUnknownIdIsANoOp) {
  HttpTestServer server;
  std::atomic<int> calls{0};
  Pending p;
  Client client({});
  const RequestId id = client.send(post(server.url("/")), [&](Response r) {
    ++calls;
    p.promise.set_value(std::move(r));
  });
  ASSERT_TRUE(p.future.get().ok());
  client.cancel(id);
  client.cancel(id + 1000);
  client.cancel(0);
  // Handled in order on the client thread, so the cancels above ran before this answer.
  Response next = fetch(client, post(server.url("/")));
  ASSERT_TRUE(next.ok()) << next.error_message;
  EXPECT_TRUE(next.reused_connection);  // the finished request's connection stayed pooled
  EXPECT_EQ(calls.load(), 1);
}

TEST(HttpClientTest, CancelWorksFromInsideAnotherRequestsCallback) {
  HttpTestServer server;
  server.set_handler([](const auto& req) {
    return req.target == "/hang" ? Reply::text(200, "late").after(30000ms) : Reply::text(200, "ok");
  });
  Pending hanging;
  Pending quick;
  Client client({});
  const RequestId id = client.send(post(server.url("/hang"), "{}", 30s), hanging.callback());
  ASSERT_TRUE(server.wait_for_requests(1));
  client.send(post(server.url("/quick")), [&](Response r) {
    client.cancel(id);
    quick.promise.set_value(std::move(r));
  });
  ASSERT_TRUE(quick.future.get().ok());
  ASSERT_TRUE(hanging.arrives_within(2s));
  EXPECT_EQ(hanging.future.get().error, ErrorKind::kCancelled);
}

TEST(HttpClientTest, CancelRacingCompletionAndTimeoutRunsDoneExactlyOnce) {
  HttpTestServer server;
  constexpr int kRequests = 64;
  std::vector<std::atomic<int>> calls(kRequests);
  std::mutex mu;
  std::condition_variable cv;
  int done = 0;
  Client client({});
  for (int i = 0; i < kRequests; ++i) {
    // Every other request is cancelled while it may be completing or timing out (0-3 ms).
    const std::chrono::nanoseconds timeout = i % 4 == 0 ? 5s : std::chrono::milliseconds(i % 4);
    const RequestId id = client.send(post(server.url("/"), "{}", timeout), [&, i](Response) {
      ++calls[static_cast<size_t>(i)];
      std::lock_guard lock(mu);
      ++done;
      cv.notify_all();
    });
    if (i % 2 == 0) client.cancel(id);
  }
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 20s, [&] { return done >= kRequests; }));
  }
  // A later answer means every earlier cancel and aborted step has been handled.
  EXPECT_TRUE(fetch(client, post(server.url("/"))).ok());
  for (int i = 0; i < kRequests; ++i) EXPECT_EQ(calls[static_cast<size_t>(i)].load(), 1) << i;
}

TEST(HttpHelpersTest, ParsesRetryAfterSecondsAndDates) {
  using sluice::http::parse_retry_after;
  EXPECT_EQ(parse_retry_after("120"), 120000ms);
  EXPECT_EQ(parse_retry_after(" 0 "), 0ms);
  const auto now = std::chrono::system_clock::from_time_t(1445412480);  // 07:28:00 - 10 s
  EXPECT_EQ(parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now), 10000ms);
  EXPECT_EQ(parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now), 0ms);
  EXPECT_EQ(parse_retry_after("soon"), std::nullopt);
  EXPECT_EQ(parse_retry_after("-5"), std::nullopt);
  EXPECT_EQ(parse_retry_after(""), std::nullopt);
}

TEST(HttpHelpersTest, ParsesRetryAfterMs) {
  using sluice::http::parse_retry_after_ms;
  EXPECT_EQ(parse_retry_after_ms("250"), 250ms);
  EXPECT_EQ(parse_retry_after_ms("12.2"), 13ms);
  EXPECT_EQ(parse_retry_after_ms("-1"), std::nullopt);
  EXPECT_EQ(parse_retry_after_ms("abc"), std::nullopt);
}

TEST(HttpHelpersTest, ReadsAnAbsurdRetryAfterAsTheLongestWaitNotAsNone) {
  using sluice::http::kMaxRetryAfter;
  const std::chrono::milliseconds max = kMaxRetryAfter;
  EXPECT_EQ(sluice::http::parse_retry_after("100000001"), max);
  EXPECT_EQ(sluice::http::parse_retry_after("99999999999999999999999999"), max);
  const auto now = std::chrono::system_clock::from_time_t(1445412480);
  EXPECT_EQ(sluice::http::parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now), max);
  EXPECT_EQ(sluice::http::parse_retry_after("Mon, 01 Jan 0001 00:00:00 GMT", now), 0ms);
  EXPECT_EQ(sluice::http::parse_retry_after_ms("1e15"), max);
}

TEST(HttpHelpersTest, RedactsEveryFormOfASecretUrl) {
  const std::string url =
      "https://hooks.example.com/services/T000/B000/XXXXSECRETTOKEN0042?key=QQQQSECRETVALUE77";
  const std::vector<std::string> secrets = {url};
  auto redact = [&](const std::string& s) { return sluice::http::redact(s, secrets); };
  EXPECT_EQ(redact("posting to " + url + " failed"), "posting to <redacted> failed");
  // The path with its query, the path alone, the query alone.
  EXPECT_EQ(redact("no route for /services/T000/B000/XXXXSECRETTOKEN0042?key=QQQQSECRETVALUE77"),
            "no route for <redacted>");
  EXPECT_EQ(redact("no route for /services/T000/B000/XXXXSECRETTOKEN0042."),
            "no route for <redacted>.");
  EXPECT_EQ(redact("bad query key=QQQQSECRETVALUE77"), "bad query <redacted>");
  // A long segment or query value on its own is a token.
  EXPECT_EQ(redact("unknown token XXXXSECRETTOKEN0042"), "unknown token <redacted>");
  EXPECT_EQ(redact("unknown key QQQQSECRETVALUE77"), "unknown key <redacted>");
  // %-encoded (either case) and JSON-escaped.
  EXPECT_EQ(redact("path=%2Fservices%2FT000%2FB000%2FXXXXSECRETTOKEN0042"), "path=<redacted>");
  EXPECT_EQ(redact("path=%2fservices%2fT000%2fB000%2fXXXXSECRETTOKEN0042"), "path=<redacted>");
  EXPECT_EQ(redact(R"({"url":"https:\/\/hooks.example.com\/services\/T000\/B000\/)"
                   R"(XXXXSECRETTOKEN0042?key=QQQQSECRETVALUE77"})"),
            R"({"url":"<redacted>"})");
  // Short values and short segments mask nothing: they would mask ordinary text.
  EXPECT_EQ(sluice::http::redact("abc services", {"abc", "https://h/services"}), "abc services");
}

TEST(HttpHelpersTest, BackoffIsCappedExponentialWithFullJitter) {
  using sluice::http::backoff_delay;
  EXPECT_EQ(backoff_delay(0, 100ms, 10s, 0.5), 50ms);
  EXPECT_EQ(backoff_delay(3, 100ms, 10s, 0.5), 400ms);
  EXPECT_EQ(backoff_delay(10, 100ms, 10s, 0.5), 5s);
  EXPECT_EQ(backoff_delay(200, 100ms, 10s, 1.0), 10s);
  EXPECT_EQ(backoff_delay(3, 100ms, 10s, 0.0), 0ms);
  for (int i = 0; i < 100; ++i) {
    const auto d = backoff_delay(2, 100ms, 10s);
    EXPECT_GE(d, 0ms);
    EXPECT_LE(d, 400ms);
  }
}

TEST(HttpHelpersTest, HmacSha256MatchesRfc4231) {
  // RFC 4231 test case 2.
  EXPECT_EQ(sluice::http::hmac_sha256_hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(HttpHelpersTest, ParsesUrls) {
  std::string error;
  auto u = sluice::http::parse_url("https://hooks.slack.com/services/T/B/X", &error);
  ASSERT_TRUE(u);
  EXPECT_TRUE(u->tls);
  EXPECT_EQ(u->host, "hooks.slack.com");
  EXPECT_EQ(u->port, 443);
  EXPECT_EQ(u->target, "/services/T/B/X");
  u = sluice::http::parse_url("http://[::1]:8080?q=1", &error);
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, 8080);
  EXPECT_EQ(u->target, "/?q=1");
  EXPECT_FALSE(sluice::http::parse_url("http://host:99999/", &error));
  EXPECT_EQ(error, "has an invalid port");
}

TEST(MessageTest, TruncatesOnCharacterBoundariesCountingUtf16Units) {
  using sluice::http::truncate_text;
  using sluice::http::utf16_length;
  EXPECT_EQ(utf16_length("abc"), 3u);
  EXPECT_EQ(utf16_length("币安"), 2u);
  EXPECT_EQ(utf16_length("\xF0\x9F\x9A\xA8"), 2u);  // 🚨 is a surrogate pair
  EXPECT_EQ(truncate_text("abcdef", 6), "abcdef");
  EXPECT_EQ(truncate_text("abcdef", 4), "abc\xE2\x80\xA6");
  EXPECT_EQ(truncate_text("币安人生", 3), "币安\xE2\x80\xA6");
  EXPECT_EQ(truncate_text("a\xF0\x9F\x9A\xA8z", 3), "a\xE2\x80\xA6");
}

TEST(MessageTest, RendersTemplatesWithTheChosenEscaping) {
  sluice::EventBuilder b;
  b.key("BTCUSDT").field("symbol", "A<B&C").field("price", 2.0).field("qty", int64_t{3});
  auto bytes = b.finish();
  sluice::EventView ev(bytes.data(), bytes.size());
  using sluice::http::Escape;
  using sluice::http::EventTemplate;
  EXPECT_EQ(EventTemplate("{{symbol}} {{price}} {{qty}} {{_key}}", Escape::kSlack).render(ev),
            "A&lt;B&amp;C 2 3 BTCUSDT");
  EXPECT_EQ(EventTemplate("{{symbol}}", Escape::kNone).render(ev), "A<B&C");
  EXPECT_EQ(EventTemplate("{{{symbol}}}", Escape::kHtml).render(ev), "A<B&C");
  EXPECT_THROW(EventTemplate("{{#open}}", Escape::kNone), std::invalid_argument);
}

}  // namespace
