#include "loopback_http.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

namespace sluice::testing {

std::string loopback_http(uint16_t port, const std::string& method, const std::string& target,
                          const std::string& body) {
  // The admin endpoint takes only a Host naming itself, and changes only as JSON.
  return loopback_http_raw(
      port, fmt::format("{} {} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n{}"
                        "Content-Length: {}\r\n\r\n{}",
                        method, target, port,
                        body.empty() ? "" : "Content-Type: application/json\r\n", body.size(),
                        body));
}

std::string loopback_http_raw(uint16_t port, const std::string& req) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "connect failed";
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return "connect failed";
  }
  for (size_t sent = 0; sent < req.size();) {
    const ssize_t w = write(fd, req.data() + sent, req.size() - sent);
    if (w <= 0) break;
    sent += static_cast<size_t>(w);
  }
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;) out.append(buf, static_cast<size_t>(n));
  close(fd);
  return out;
}

}  // namespace sluice::testing
