// Tests of the `route` processor through the real loader and host: first-match and all-match
// routing in `order`, then name order; `unmatched`; zero-copy forwarding; $settings changes;
// and refusal of bad route names, expressions and orders.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "plugin_harness.hpp"
#include "sluice/event.hpp"

namespace {

using sluice::testing::CallResult;
using sluice::testing::HarnessOptions;
using sluice::testing::make_event;
using sluice::testing::PluginHarness;

// Real liquidations from /work/shared/data/binance/slice_0.csv (2025-10-22, Binance USD-M;
// provenance in plugins/processors/filter/test/data/README.md), as a normalising source emits
// them.
struct Row {
  const char* symbol;
  const char* side;
  double avg_price;
  double quantity;
  double notional_usd;
};
constexpr Row kFet = {"FETUSDT", "SELL", 0.2401471, 403111.0, 96805.9376281};
constexpr Row kEth = {"ETHUSDT", "SELL", 3844.54, 9.996, 38430.02184};
constexpr Row kEvaa = {"EVAAUSDT", "BUY", 7.293308, 1555.1, 11341.8232708};
constexpr Row kSol = {"SOLUSDT", "SELL", 184.22, 0.04, 7.3688};
constexpr Row kDogs = {"DOGSUSDT", "SELL", 5.99e-05, 2479908.0, 148.5464892};

std::vector<uint8_t> event(const Row& r) {
  return make_event({{"symbol", r.symbol},
                     {"side", r.side},
                     {"avg_price", r.avg_price},
                     {"quantity", r.quantity},
                     {"notional_usd", r.notional_usd}},
                    r.symbol);
}

const char* kRoutes =
    R"(routes = { whale = "notional_usd >= 50000", big = "notional_usd >= 10000", )"
    R"(tiny_price = "avg_price < 1e-04" })";

// The outputs one event went to, in emit order; every emit must forward the input bytes.
std::vector<std::string> outputs(PluginHarness& route, const std::vector<uint8_t>& ev) {
  CallResult r = route.process(ev);
  EXPECT_TRUE(r.outcome.ok()) << r.outcome.message;
  EXPECT_TRUE(r.forwarded_same_bytes);
  std::vector<std::string> out;
  for (const auto& e : r.emitted) {
    EXPECT_EQ(e.bytes, ev);
    out.push_back(e.output);
  }
  return out;
}

using Outputs = std::vector<std::string>;

TEST(RouteProcessor, FirstModeSendsToFirstMatchInOrder) {
  PluginHarness route("processor", "route",
                      std::string(kRoutes) + "\norder = [\"whale\", \"big\"]");
  EXPECT_EQ(outputs(route, event(kFet)), Outputs{"whale"});
  EXPECT_EQ(outputs(route, event(kEth)), Outputs{"big"});
  EXPECT_EQ(outputs(route, event(kEvaa)), Outputs{"big"});
  EXPECT_EQ(outputs(route, event(kDogs)), Outputs{"tiny_price"});
}

TEST(RouteProcessor, RoutesNotInOrderAreTriedByName) {
  // Without `order`, "big" sorts before "whale", so it wins for a whale-sized event.
  PluginHarness by_name("processor", "route", kRoutes);
  EXPECT_EQ(outputs(by_name, event(kFet)), Outputs{"big"});
  // Listed routes come first, the rest follow by name.
  PluginHarness partial("processor", "route",
                        std::string(kRoutes) + "\norder = [\"tiny_price\", \"whale\"]");
  EXPECT_EQ(outputs(partial, event(kFet)), Outputs{"whale"});
  EXPECT_EQ(outputs(partial, event(kEth)), Outputs{"big"});
}

TEST(RouteProcessor, AllModeSendsToEveryMatchInOrder) {
  PluginHarness route("processor", "route",
                      std::string(kRoutes) + "\norder = [\"whale\", \"big\"]\nmode = \"all\"");
  EXPECT_EQ(outputs(route, event(kFet)), (Outputs{"whale", "big"}));
  EXPECT_EQ(outputs(route, event(kEth)), Outputs{"big"});
  EXPECT_EQ(outputs(route, event(kDogs)), Outputs{"tiny_price"});
  EXPECT_EQ(outputs(route, event(kSol)), Outputs{"unmatched"});
}

TEST(RouteProcessor, EventMatchingNoRouteGoesToUnmatched) {
  PluginHarness route("processor", "route", kRoutes);
  EXPECT_EQ(outputs(route, event(kSol)), Outputs{"unmatched"});
  EXPECT_EQ(outputs(route, make_event({{"other", 1}})), Outputs{"unmatched"});
}

TEST(RouteProcessor, SettingChangeTakesEffectWhileRunning) {
  HarnessOptions opts;
  opts.settings = {{"min_usd", 50000}};
  PluginHarness route("processor", "route",
                      R"(routes = { big = "notional_usd >= $min_usd", sells = "side == 'SELL'" })",
                      opts);
  EXPECT_EQ(outputs(route, event(kEth)), Outputs{"sells"});
  route.set_setting("min_usd", 10000);
  EXPECT_EQ(outputs(route, event(kEth)), Outputs{"big"});
}

// The message a harness constructor throws for the given options, or "" if none.
std::string create_error(const std::string& options) {
  try {
    PluginHarness route("processor", "route", options);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

// The part of a create error after "error: ", so tests do not depend on where the loader places
// a problem inside a table.
std::string message(const std::string& options) {
  std::string err = create_error(options);
  size_t at = err.find("error: ");
  return at == std::string::npos ? err : err.substr(at + 7);
}

TEST(RouteProcessor, BadExpressionIsRefusedNamingTheRouteAndColumn) {
  EXPECT_EQ(message(R"(routes = { big = "notional_usd >= ", sells = "side == 'SELL'" })"),
            "processors.test: option 'routes.big': expected an operand after '>=' at column 17");
  EXPECT_EQ(message(R"(routes = { sells = "side =< 'SELL'" })"),
            "processors.test: option 'routes.sells': unknown operator '=<' at column 6 (did you "
            "mean '<='?)");
}

TEST(RouteProcessor, BadRouteNamesAndValuesAreRefused) {
  EXPECT_EQ(message(R"(routes = { Big = "a == 1" })"),
            "processors.test: option 'routes': route name 'Big' must use only lowercase letters, "
            "digits and _");
  EXPECT_EQ(message(R"(routes = { "big-one" = "a == 1" })"),
            "processors.test: option 'routes': route name 'big-one' must use only lowercase "
            "letters, digits and _");
  EXPECT_EQ(message(R"(routes = { unmatched = "a == 1" })"),
            "processors.test: option 'routes': route name 'unmatched' is reserved for the "
            "unmatched output; pick another name");
  EXPECT_EQ(message(R"(routes = { errors = "a == 1" })"),
            "processors.test: option 'routes': route name 'errors' is reserved for the errors "
            "output; pick another name");
  EXPECT_EQ(message(R"(routes = { big = 5 })"),
            "processors.test: option 'routes.big': route 'big' must be an expression string");
  EXPECT_EQ(message("routes = {}"),
            "processors.test: option 'routes': routes must map at least one output name to an "
            "expression");
}

TEST(RouteProcessor, BadOrderIsRefused) {
  EXPECT_EQ(message(std::string(kRoutes) + "\norder = [\"whales\"]"),
            "processors.test: option 'order': 'whales' in order is not a route in routes");
  EXPECT_EQ(message(std::string(kRoutes) + "\norder = [\"big\", \"big\"]"),
            "processors.test: option 'order': 'big' is listed twice in order");
}

TEST(RouteProcessor, UnknownModeIsRefused) {
  std::string err = create_error(std::string(kRoutes) + "\nmode = \"any\"");
  EXPECT_NE(err.find("mode"), std::string::npos) << err;
  EXPECT_NE(err.find("first"), std::string::npos) << err;
}

}  // namespace
