// The ZAP handler of one process (RFC 27): decides which CURVE clients may connect to the tcp
// endpoints its stages bind, by ZAP domain (= the receiving node's name) and client public key.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include <spdlog/logger.h>

namespace sluice::core {

class EdgeAuthenticator {
 public:
  // `allowed`: domain → Z85 public keys allowed to connect to it. Binds
  // inproc://zeromq.zap.01 in `zmq_ctx` before returning (throws std::runtime_error if it
  // cannot), so sockets bound afterwards are covered from their first connection.
  EdgeAuthenticator(void* zmq_ctx, std::map<std::string, std::set<std::string>> allowed,
                    std::shared_ptr<spdlog::logger> logger);
  ~EdgeAuthenticator();  // stops the thread and closes its socket
  EdgeAuthenticator(const EdgeAuthenticator&) = delete;
  EdgeAuthenticator& operator=(const EdgeAuthenticator&) = delete;

  uint64_t refused() const { return refused_.load(); }

 private:
  void loop();

  void* socket_ = nullptr;
  std::map<std::string, std::set<std::string>> allowed_;
  std::shared_ptr<spdlog::logger> logger_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> refused_{0};
  std::thread thread_;
};

}  // namespace sluice::core
