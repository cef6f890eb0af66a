// ZAP request loop: one REP socket at inproc://zeromq.zap.01; CURVE clients whose public key is
// listed for the domain get 200, everyone else 400 (logged, rate-limited, with the public key
// and address only: a public key is not a secret).
#include "edge_auth.hpp"

#include <zmq.h>

#include <stdexcept>
#include <vector>

#include <fmt/format.h>

#include "sluice/core/node_host.hpp"
#include "zmq_handoff.hpp"

namespace sluice::core {
namespace {

std::vector<std::string> recv_frames(void* s) {
  std::vector<std::string> frames;
  int more = 1;
  while (more) {
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_handoff::msg_recv(&m, s, 0) < 0) {
      zmq_msg_close(&m);
      return {};
    }
    frames.emplace_back(static_cast<const char*>(zmq_msg_data(&m)), zmq_msg_size(&m));
    more = zmq_msg_more(&m);
    zmq_msg_close(&m);
  }
  return frames;
}

void send_reply(void* s, const std::string& request_id, bool ok, const std::string& text) {
  const std::string frames[] = {"1.0", request_id, ok ? "200" : "400", text, "", ""};
  for (size_t i = 0; i < 6; ++i) {
    zmq_handoff::send(s, frames[i].data(), frames[i].size(), i + 1 < 6 ? ZMQ_SNDMORE : 0);
  }
}

}  // namespace

EdgeAuthenticator::EdgeAuthenticator(void* zmq_ctx,
                                     std::map<std::string, std::set<std::string>> allowed,
                                     std::shared_ptr<spdlog::logger> logger)
    : allowed_(std::move(allowed)), logger_(std::move(logger)) {
  socket_ = zmq_socket(zmq_ctx, ZMQ_REP);
  int linger = 0;
  zmq_setsockopt(socket_, ZMQ_LINGER, &linger, sizeof(linger));
  if (zmq_bind(socket_, "inproc://zeromq.zap.01") != 0) {
    std::string why = zmq_strerror(zmq_errno());
    zmq_close(socket_);
    throw std::runtime_error("cannot start the CURVE authenticator: " + why);
  }
  thread_ = std::thread([this] { loop(); });
}

EdgeAuthenticator::~EdgeAuthenticator() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  zmq_close(socket_);
}

void EdgeAuthenticator::loop() {
  RateLimitedLog log;
  zmq_pollitem_t item{socket_, 0, ZMQ_POLLIN, 0};
  while (!stop_) {
    if (zmq_poll(&item, 1, 100) <= 0 || !(item.revents & ZMQ_POLLIN)) continue;
    // Request: version, request id, domain, address, identity, mechanism, credentials...
    std::vector<std::string> f = recv_frames(socket_);
    if (f.size() < 6) {
      send_reply(socket_, f.size() > 1 ? f[1] : "", false, "malformed ZAP request");
      continue;
    }
    const std::string& domain = f[2];
    const std::string& address = f[3];
    bool ok = false;
    std::string client = "(no key)";
    if (f[5] == "CURVE" && f.size() >= 7 && f[6].size() == 32) {
      char z85[41] = {};
      zmq_z85_encode(z85, reinterpret_cast<const uint8_t*>(f[6].data()), 32);
      client = z85;
      auto it = allowed_.find(domain);
      ok = it != allowed_.end() && it->second.count(client) != 0;
    }
    send_reply(socket_, f[1], ok, ok ? "OK" : "client key not allowed");
    if (!ok) {
      refused_.fetch_add(1);
      uint64_t suppressed = 0;
      if (log.allow(&suppressed)) {
        logger_->warn("refused a connection to node '{}' from {}: client public key {} is not "
                      "one of the placement groups sending to it{}",
                      domain, address, client,
                      suppressed ? fmt::format(" ({} more suppressed)", suppressed) : "");
      }
    }
  }
}

}  // namespace sluice::core
