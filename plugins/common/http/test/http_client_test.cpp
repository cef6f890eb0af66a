// Tests of the shared HTTP client and its helpers against the scripted test server: requests on
// the wire, keep-alive reuse and the connection cap, the deadline against slow and trickling
// servers, dropped and malformed responses, body limits, TLS verification, and redaction.
#include <gtest/gtest.h>

#include <future>
#include <string>
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
