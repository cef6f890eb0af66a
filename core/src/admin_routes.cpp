// The admin endpoint's routes: metrics, health, readiness, runtime settings and node commands. A
// change is a PUT (settings) or POST (node commands) with a JSON body (Content-Type:
// application/json): HTML forms and no-preflight cross-site fetches can only send form/text
// bodies, so they never reach a change.
#include "admin_routes.hpp"

#include <algorithm>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "sluice/core/node_host.hpp"

namespace sluice::core {
namespace {

constexpr const char* kText = "text/plain; charset=utf-8";

HttpResponse text(int status, std::string body) { return {status, kText, body + "\n", {}}; }

// "application/json" or "application/json; charset=utf-8", any case.
bool is_json(const std::string& content_type) {
  std::string media = content_type.substr(0, content_type.find(';'));
  media.erase(media.find_last_not_of(" \t") + 1);
  media.erase(0, media.find_first_not_of(" \t"));
  std::transform(media.begin(), media.end(), media.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return media == "application/json";
}

HttpResponse change_setting(Pipeline& p, const std::string& name, const HttpRequest& req) {
  if (req.method != "PUT") {
    HttpResponse r = text(405, fmt::format("method {} not allowed: change a setting with PUT and "
                                           "a JSON body (Content-Type: application/json), e.g. "
                                           "`sluice ctl set {} VALUE`",
                                           req.method, name));
    r.headers.emplace_back("Allow", "GET, PUT");
    return r;
  }
  if (!is_json(req.content_type)) {
    return text(415,
                fmt::format("Content-Type must be application/json, got '{}'", req.content_type));
  }
  auto value = nlohmann::json::parse(req.body, nullptr, false);
  if (value.is_discarded()) return text(400, "body must be a JSON value, e.g. 25000 or \"SELL\"");
  std::string err = p.settings().check(name, value);
  if (!err.empty()) return text(400, err);
  err = p.settings().set(name, value);
  auto logger = make_logger(p.spec().name);
  if (!err.empty()) {
    // check() passed, so set() failed to save: the value did not change.
    logger->error("admin endpoint: {}", err);
    return text(500, err);
  }
  logger->info("admin endpoint: setting '{}' changed to {}", name, value.dump());
  return {200, "application/json", value.dump() + "\n", {}};
}

// POST /nodes/NODE/COMMAND with a JSON body (none = {}): a command the node registered.
HttpResponse node_command(Pipeline& p, const std::string& node, const std::string& command,
                          const HttpRequest& req) {
  if (req.method != "POST") {
    HttpResponse r = text(405, fmt::format("method {} not allowed: call a node command with POST "
                                           "and a JSON body, e.g. `sluice ctl node {} {}`",
                                           req.method, node, command));
    r.headers.emplace_back("Allow", "POST");
    return r;
  }
  if (!is_json(req.content_type)) {
    return text(415,
                fmt::format("Content-Type must be application/json, got '{}'", req.content_type));
  }
  std::string body = req.body;
  if (body.find_first_not_of(" \t\r\n") == std::string::npos) body = "{}";
  if (nlohmann::json::parse(body, nullptr, false).is_discarded()) {
    return text(400, "body must be a JSON value, e.g. {\"child\": \"primary\"}");
  }
  auto logger = make_logger(p.spec().name);
  NodeCommands::Reply reply = p.commands().call(node, command, body, std::chrono::seconds(5));
  if (reply.http_status == 200) {
    logger->info("admin endpoint: node command {}.{} {}", node, command, body);
  } else {
    logger->warn("admin endpoint: node command {}.{} answered {}", node, command,
                 reply.http_status);
  }
  return {reply.http_status, reply.content_type, reply.body, {}};
}

}  // namespace

HttpResponse handle_admin(Pipeline& p, const HttpRequest& req) {
  std::string path = req.target.substr(0, req.target.find('?'));
  const std::string nodes = "/nodes/";
  if (path.rfind(nodes, 0) == 0) {
    std::string rest = path.substr(nodes.size());
    size_t slash = rest.find('/');
    if (slash != std::string::npos && slash > 0 && slash + 1 < rest.size()) {
      return node_command(p, rest.substr(0, slash), rest.substr(slash + 1), req);
    }
  }
  const std::string prefix = "/settings/";
  if (path.rfind(prefix, 0) == 0 && path.size() > prefix.size()) {
    std::string name = path.substr(prefix.size());
    if (req.method == "GET") {
      auto value = p.settings().get(name);
      if (!value) return text(404, p.settings().check(name, nullptr));
      return {200, "application/json", value->dump() + "\n", {}};
    }
    return change_setting(p, name, req);
  }
  if (req.method != "GET") {
    HttpResponse r = text(405, fmt::format("method {} not allowed on {}", req.method, path));
    r.headers.emplace_back("Allow", "GET");
    return r;
  }
  if (path == "/metrics") {
    return {200, "text/plain; version=0.0.4; charset=utf-8", p.metrics().render_prometheus(), {}};
  }
  if (path == "/health") return text(200, "ok");
  if (path == "/ready") return p.stopping() ? text(503, "draining") : text(200, "ready");
  if (path == "/settings") {
    nlohmann::json j = p.settings().all();
    return {200, "application/json", j.dump() + "\n", {}};
  }
  if (path == "/nodes") return {200, "application/json", p.commands().list().dump() + "\n", {}};
  return text(404,
              "not found: try /metrics, /health, /ready, /settings, /settings/NAME, /nodes, "
              "/nodes/NODE/COMMAND");
}

}  // namespace sluice::core
