// A scripted HTTP/1.1 server on 127.0.0.1 for tests of HTTP-speaking plugins (webhooks, chat
// APIs, LLM endpoints). It records every request and answers each from a queue of scripted
// replies, else from a handler, else with 200 and an empty body. A reply can wait before
// answering, trickle its bytes, close the connection without answering, or send raw bytes
// (malformed or truncated responses). With tls = true it serves HTTPS with a certificate for
// 127.0.0.1 and localhost, signed by a CA generated when the server starts; ca_file() is that
// CA's PEM for the client's ca_file option.
//
//   sluice::testing::HttpTestServer server;
//   server.enqueue(Reply::json(429, R"({"retry_after":0.05})"));
//   server.enqueue(Reply::json(200, "{}"));
//   ... point the plugin at server.url("/hook") ...
//   EXPECT_EQ(server.requests().at(1).body, "...");
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

namespace sluice::testing {

struct RecordedRequest {
  std::string method;
  std::string target;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  size_t connection = 0;  // 1-based number of the connection it came on

  // Case-insensitive; nullopt when absent.
  std::optional<std::string> header(std::string_view name) const;
};

struct Reply {
  enum class Kind { kRespond, kDrop, kRaw };
  Kind kind = Kind::kRespond;
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;  // Content-Length is added
  std::string body;
  std::chrono::milliseconds delay{0};    // before answering (or dropping)
  std::chrono::milliseconds trickle{0};  // > 0: one byte of the response per interval
  bool close = false;                    // close the connection after answering
  std::string raw;                       // kRaw: sent verbatim, then the connection closes

  static Reply json(int status, std::string body,
                    std::vector<std::pair<std::string, std::string>> headers = {});
  static Reply text(int status, std::string body,
                    std::vector<std::pair<std::string, std::string>> headers = {});
  static Reply drop();
  static Reply raw_bytes(std::string bytes);
  Reply&& after(std::chrono::milliseconds d) && {
    delay = d;
    return std::move(*this);
  }
};

struct HttpTestServerOptions {
  bool tls = false;
};

class HttpTestServer {
 public:
  explicit HttpTestServer(HttpTestServerOptions options = {});
  // Closes every connection (waking replies that wait or trickle) and joins the threads.
  ~HttpTestServer();
  HttpTestServer(const HttpTestServer&) = delete;
  HttpTestServer& operator=(const HttpTestServer&) = delete;

  uint16_t port() const;
  std::string base_url() const;  // http://127.0.0.1:PORT or https://…
  std::string url(std::string_view path) const { return base_url() + std::string(path); }
  const std::string& ca_file() const;  // "" without TLS

  // Scripted replies answer requests in order, before the handler is consulted.
  void enqueue(Reply reply);
  // Answers requests once the queue is empty. Runs on a connection thread.
  void set_handler(std::function<Reply(const RecordedRequest&)> handler);

  std::vector<RecordedRequest> requests() const;
  size_t request_count() const;
  // True once at least n requests arrived; false after timeout.
  bool wait_for_requests(size_t n,
                         std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;
  size_t connection_count() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::testing
