// A minimal HTTP/1.1 server on 127.0.0.1 for the fuzz targets whose parser sits behind the
// project's HTTP client (the response reader, the LLM classifier, the Telegram bot): each
// connection's request is read whole (head and Content-Length body, so closing never resets
// unread bytes), then answered with the bytes the target's responder returns for it, and
// closed. Unlike tests/support's HttpTestServer it keeps no record of requests, so millions of
// executions run in constant memory.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <functional>
#include <string>
#include <strings.h>
#include <thread>

#include "fuzz_util.hpp"

namespace sluice::fuzz {

struct LoopbackRequest {
  std::string method;
  std::string target;
  std::string body;
};

class LoopbackServer {
 public:
  // responder: the raw bytes to send back (a whole HTTP response, or anything). Runs on the
  // connection's thread, one connection at a time per thread.
  using Responder = std::function<std::string(const LoopbackRequest&)>;

  explicit LoopbackServer(Responder responder) : responder_(std::move(responder)) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
    FUZZ_CHECK(listen_fd_ >= 0);
    int one = 1;
    setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    FUZZ_CHECK(bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    socklen_t len = sizeof addr;
    FUZZ_CHECK(getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
    FUZZ_CHECK(listen(listen_fd_, 64) == 0);
    // Detached: the server lives as long as the fuzzing process.
    std::thread([this] { accept_loop(); }).detach();
  }
  LoopbackServer(const LoopbackServer&) = delete;
  LoopbackServer& operator=(const LoopbackServer&) = delete;

  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // A well-formed response around a status, extra header lines ("Name: value\r\n" each) and a
  // body.
  static std::string response(int status, std::string_view headers, std::string_view body) {
    std::string out = "HTTP/1.1 " + std::to_string(status) + " Fuzz\r\n";
    out += headers;
    out += "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n";
    out += body;
    return out;
  }

 private:
  void accept_loop() {
    for (;;) {
      const int fd = accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) continue;
      // A thread per connection: the bot holds one long poll open while it sends replies.
      std::thread([this, fd] { serve(fd); }).detach();
    }
  }

  void serve(int fd) {
    LoopbackRequest req;
    if (read_request(fd, req)) {
      const std::string out = responder_(req);
      size_t done = 0;
      while (done < out.size()) {
        const ssize_t n = send(fd, out.data() + done, out.size() - done, MSG_NOSIGNAL);
        if (n <= 0) break;
        done += static_cast<size_t>(n);
      }
    }
    shutdown(fd, SHUT_WR);
    char sink[512];
    while (recv(fd, sink, sizeof sink, 0) > 0) {
    }
    close(fd);
  }

  static bool read_request(int fd, LoopbackRequest& req) {
    std::string data;
    char buf[4096];
    size_t head_end = std::string::npos;
    while ((head_end = data.find("\r\n\r\n")) == std::string::npos) {
      const ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n <= 0) return false;
      data.append(buf, static_cast<size_t>(n));
    }
    const std::string head = data.substr(0, head_end);
    const size_t sp1 = head.find(' ');
    const size_t sp2 = head.find(' ', sp1 + 1);
    if (sp1 == std::string::npos || sp2 == std::string::npos) return false;
    req.method = head.substr(0, sp1);
    req.target = head.substr(sp1 + 1, sp2 - sp1 - 1);
    size_t length = 0;
    for (size_t at = head.find("\r\n"); at != std::string::npos; at = head.find("\r\n", at + 2)) {
      constexpr std::string_view kName = "content-length:";
      if (head.size() > at + 2 + kName.size() &&
          strncasecmp(head.c_str() + at + 2, kName.data(), kName.size()) == 0) {
        length = std::stoul(head.substr(at + 2 + kName.size()));
      }
    }
    req.body = data.substr(head_end + 4);
    while (req.body.size() < length) {
      const ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n <= 0) return false;
      req.body.append(buf, static_cast<size_t>(n));
    }
    return true;
  }

  Responder responder_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
};

}  // namespace sluice::fuzz
