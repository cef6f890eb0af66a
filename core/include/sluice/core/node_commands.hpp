// Commands that plugins register for their node (ABI 1.2 command_register), served by the admin
// endpoint as POST /nodes/NODE/COMMAND: rollout controls, breaker resets, status queries. A call
// runs on the node's stage thread, like everything else the plugin does, so a command needs no
// lock of its own; the admin thread waits for its reply with a timeout.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "sluice/abi.h"

namespace sluice::core {

class Executor;

class NodeCommands {
 public:
  struct Reply {
    int http_status = 200;
    std::string content_type = "application/json";
    std::string body;
  };

  // "" when registered, else why not (a taken or malformed name).
  std::string add(const std::string& node, const std::string& name, const std::string& description,
                  sluice_command_fn fn, void* user, Executor* const* executor);
  void remove(const std::string& node, const std::string& name);
  // Every command of one node (its host is going away).
  void remove_node(const std::string& node);
  // {"NODE": {"COMMAND": "description", ...}, ...}
  nlohmann::json list() const;
  // Runs NODE's COMMAND with a JSON text and waits up to `timeout` for its reply.
  Reply call(const std::string& node, const std::string& command, const std::string& json_in,
             std::chrono::milliseconds timeout) const;

 private:
  struct Entry {
    std::string description;
    sluice_command_fn fn = nullptr;
    void* user = nullptr;
    Executor* const* executor = nullptr;  // the node host's executor slot (set when it runs)
  };
  mutable std::mutex mu_;
  std::map<std::string, std::map<std::string, Entry>> nodes_;
};

}  // namespace sluice::core
