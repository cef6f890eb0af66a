// The per-process admin HTTP endpoint (loopback by default): /metrics, /health, /ready,
// /settings, and who may use it (Host, Origin, bearer token). Beast/Asio live only in
// admin_server.cpp.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace sluice::core {

struct HttpRequest {
  std::string method;
  std::string target;
  std::string body;
  // Headers the access rules and routes read ("" when absent; `host_present` tells an empty
  // Host from none).
  std::string host;
  bool host_present = false;
  std::string origin;
  bool origin_present = false;
  std::string content_type;
  std::string authorization;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra (Allow, WWW-Authenticate)
};

// Who may use the endpoint besides the loopback names (docs/operations.md, "Admin endpoint").
struct AdminAccess {
  std::string address = "127.0.0.1";  // the listen address (also a valid Host)
  std::string token;                  // bearer token; "" = none
  std::vector<std::string> hosts;     // extra Host values ("name" or "name:port")
};

// The refusal for a request that fails the access rules, or nullopt when it may proceed:
// a Host that does not name this endpoint (421; DNS rebinding), an Origin other than the
// endpoint's own (403; cross-site pages), a missing or wrong bearer token when one is set
// (401; /health and /ready need none). `port` is the port the endpoint listens on.
std::optional<HttpResponse> admin_refusal(const AdminAccess& access, uint16_t port,
                                          const HttpRequest& req);

class AdminServer {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;
  // Binds immediately (throws std::runtime_error naming address:port on failure); port 0 picks
  // a free port. Serves on its own thread until destroyed; requests that pass admin_refusal()
  // reach `handler`. A failing accept (e.g. out of file descriptors) is logged once and retried
  // with a backoff of 10 ms growing to 1 s.
  AdminServer(AdminAccess access, uint16_t port, Handler handler);
  ~AdminServer();
  uint16_t port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::core
