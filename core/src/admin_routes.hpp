// The admin endpoint's routes for one Pipeline (the HTTP server and its access rules are in
// admin_server.cpp).
#pragma once

#include "sluice/core/admin_server.hpp"
#include "sluice/core/runtime.hpp"

namespace sluice::core {

// GET /metrics, /health, /ready, /settings, /settings/NAME; PUT /settings/NAME with a JSON
// body. Requests reach it only after admin_refusal() let them through.
HttpResponse handle_admin(Pipeline& p, const HttpRequest& req);

}  // namespace sluice::core
