// The per-process admin HTTP endpoint (loopback by default): /metrics, /health, /ready,
// /settings. Beast/Asio live only in admin_server.cpp.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace sluice::core {

struct HttpRequest {
  std::string method;
  std::string target;
  std::string body;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

class AdminServer {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;
  // Binds immediately (throws std::runtime_error naming address:port on failure); port 0 picks
  // a free port. Serves on its own thread until destroyed.
  AdminServer(const std::string& address, uint16_t port, Handler handler);
  ~AdminServer();
  uint16_t port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::core
