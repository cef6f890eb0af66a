// Node commands (see node_commands.hpp).
#include "sluice/core/node_commands.hpp"

#include <condition_variable>
#include <memory>

#include <fmt/format.h>

#include "sluice/core/node_host.hpp"

namespace sluice::core {
namespace {

bool valid_name(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

// What the admin thread waits on; the plugin's reply fills it from any thread.
struct ReplyState {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  int status = 0;
  std::string text;
};

void reply_cb(void* reply_ctx, int status, const char* text, size_t len) {
  std::unique_ptr<std::shared_ptr<ReplyState>> holder(
      static_cast<std::shared_ptr<ReplyState>*>(reply_ctx));
  ReplyState& s = **holder;
  {
    std::lock_guard lock(s.mu);
    if (s.done) return;
    s.done = true;
    s.status = status;
    s.text.assign(text != nullptr ? text : "", text != nullptr ? len : 0);
  }
  s.cv.notify_all();
}

NodeCommands::Reply text_reply(int status, std::string message) {
  return {status, "text/plain; charset=utf-8", std::move(message) + "\n"};
}

}  // namespace

std::string NodeCommands::add(const std::string& node, const std::string& name,
                              const std::string& description, sluice_command_fn fn, void* user,
                              Executor* const* executor) {
  if (!valid_name(name)) {
    return fmt::format("command name '{}' must be 1 to 64 of a-z, 0-9 and _", name);
  }
  if (fn == nullptr) return fmt::format("command '{}' has no function", name);
  std::lock_guard lock(mu_);
  auto& commands = nodes_[node];
  if (commands.count(name) != 0) {
    return fmt::format("node '{}' already has a command '{}'", node, name);
  }
  commands[name] = Entry{description, fn, user, executor};
  return "";
}

void NodeCommands::remove(const std::string& node, const std::string& name) {
  std::lock_guard lock(mu_);
  auto it = nodes_.find(node);
  if (it == nodes_.end()) return;
  it->second.erase(name);
  if (it->second.empty()) nodes_.erase(it);
}

void NodeCommands::remove_node(const std::string& node) {
  std::lock_guard lock(mu_);
  nodes_.erase(node);
}

nlohmann::json NodeCommands::list() const {
  std::lock_guard lock(mu_);
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [node, commands] : nodes_) {
    for (const auto& [name, entry] : commands) out[node][name] = entry.description;
  }
  return out;
}

NodeCommands::Reply NodeCommands::call(const std::string& node, const std::string& command,
                                       const std::string& json_in,
                                       std::chrono::milliseconds timeout) const {
  auto state = std::make_shared<ReplyState>();
  {
    // Held while posting: a node host removes its commands (under this lock) before it and its
    // stage go away, so the executor is alive here.
    std::lock_guard lock(mu_);
    auto n = nodes_.find(node);
    if (n == nodes_.end()) {
      std::string known;
      for (const auto& [name, commands] : nodes_) known += (known.empty() ? "" : ", ") + name;
      return text_reply(404, fmt::format("node '{}' has no commands here (nodes with commands: {})",
                                         node, known.empty() ? "none" : known));
    }
    auto c = n->second.find(command);
    if (c == n->second.end()) {
      std::string known;
      for (const auto& [name, entry] : n->second) known += (known.empty() ? "" : ", ") + name;
      return text_reply(
          404, fmt::format("node '{}' has no command '{}' (commands: {})", node, command, known));
    }
    Executor* executor = c->second.executor != nullptr ? *c->second.executor : nullptr;
    if (executor == nullptr) {
      return text_reply(503, fmt::format("node '{}' is not running", node));
    }
    sluice_command_fn fn = c->second.fn;
    void* user = c->second.user;
    executor->post([fn, user, state, json_in] {
      auto* ctx = new std::shared_ptr<ReplyState>(state);
      fn(user, json_in.data(), json_in.size(), &reply_cb, ctx);
    });
  }
  std::unique_lock lock(state->mu);
  if (!state->cv.wait_for(lock, timeout, [&] { return state->done; })) {
    return text_reply(504, fmt::format("node '{}' did not answer '{}' within {} ms", node, command,
                                       timeout.count()));
  }
  if (state->status != 0) return text_reply(400, state->text);
  return {200, "application/json", state->text + "\n"};
}

}  // namespace sluice::core
