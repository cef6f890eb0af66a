// The `route` processor (see route.hpp).
#include "route.hpp"

#include <algorithm>

namespace sluice::route {
namespace {

bool valid_output_name(const std::string& name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

// Route names in the order they are tried: `order` first, then the rest by name (the JSON
// object is already sorted by name).
std::vector<std::string> route_order(const Config& config, const Json& routes) {
  std::vector<std::string> ordered;
  for (const std::string& name : config.strings("order")) {
    if (!routes.contains(name)) {
      throw OptionError("order", "'" + name + "' in order is not a route in routes");
    }
    if (std::find(ordered.begin(), ordered.end(), name) != ordered.end()) {
      throw OptionError("order", "'" + name + "' is listed twice in order");
    }
    ordered.push_back(name);
  }
  for (const auto& [name, value] : routes.items()) {
    if (std::find(ordered.begin(), ordered.end(), name) == ordered.end()) ordered.push_back(name);
  }
  return ordered;
}

}  // namespace

RouteProcessor::RouteProcessor(const Host& host, const Config& config)
    : all_(config.str("mode") == "all") {
  const Json& routes = config.at("routes");
  if (!routes.is_object() || routes.empty()) {
    throw OptionError("routes", "routes must map at least one output name to an expression");
  }
  for (const auto& [name, value] : routes.items()) {
    if (!valid_output_name(name)) {
      throw OptionError("routes",
                        "route name '" + name + "' must use only lowercase letters, digits and _");
    }
    if (name == "unmatched" || name == "errors") {
      throw OptionError("routes", "route name '" + name + "' is reserved for the " + name +
                                      " output; pick another name");
    }
    if (!value.is_string()) {
      throw OptionError("routes." + name, "route '" + name + "' must be an expression string");
    }
  }
  for (const std::string& name : route_order(config, routes)) {
    try {
      routes_.push_back({name, expr::Expression::compile(routes[name].get<std::string>(), host)});
    } catch (const expr::Error& e) {
      throw OptionError("routes." + name, e.message, e.column);
    }
  }
}

void RouteProcessor::process(Call call) {
  EventView event = call.event();
  bool matched = false;
  for (Route& r : routes_) {
    if (!r.where.matches(event)) continue;
    call.forward(r.output.c_str());
    matched = true;
    if (!all_) break;
  }
  if (!matched) call.forward("unmatched");
  call.ok();
}

}  // namespace sluice::route

SLUICE_PLUGIN(sluice::route::RouteProcessor, "route", "0.1.0",
              "Sends each event to the outputs whose expression it matches",
              sluice::route::kOptions);
