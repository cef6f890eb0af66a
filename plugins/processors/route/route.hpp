// The `route` processor: sends each event, unchanged and without a copy, to the outputs whose
// expression it matches (the first match, or every match), and to `unmatched` when none does.
//
// TOML tables do not keep their key order, so routes are tried in the order `order` lists them,
// then any others by name.
#pragma once

#include <string>
#include <vector>

#include "sluice/expr.hpp"
#include "sluice/sdk.hpp"

namespace sluice::route {

inline constexpr sluice_option_spec kOptions[] = {
    {.key = "routes", .type = SLUICE_OPT_TABLE, .default_toml = nullptr, .required = 1,
     .description = "Output name → expression; an event goes to the outputs it matches "
                    "(names: lowercase letters, digits, _)",
     .choices = nullptr},
    {.key = "order", .type = SLUICE_OPT_STRING_LIST, .default_toml = nullptr, .required = 0,
     .description = "Route names in the order they are tried; routes not listed follow, "
                    "by name",
     .choices = nullptr},
    {.key = "mode", .type = SLUICE_OPT_STRING, .default_toml = "\"first\"", .required = 0,
     .description = "first: only the first matching route gets the event; all: every "
                    "matching route does",
     .choices = "first,all"},
};

class RouteProcessor final : public Processor {
 public:
  // "*routes": every key of the `routes` table is an output too.
  static constexpr const char* kOutputs[] = {"unmatched", "*routes", nullptr};

  RouteProcessor(const Host& host, const Config& config);
  void process(Call call) override;

 private:
  struct Route {
    std::string output;
    expr::Expression where;
  };

  std::vector<Route> routes_;  // in the order they are tried
  bool all_;
};

}  // namespace sluice::route
