// The `filter` processor (see filter.hpp).
#include "filter.hpp"

namespace sluice::filter {
namespace {

expr::Expression compile_where(const Host& host, const Config& config) {
  try {
    return expr::Expression::compile(config.str("where"), host);
  } catch (const expr::Error& e) {
    throw OptionError("where", e.message, e.column);
  }
}

}  // namespace

FilterProcessor::FilterProcessor(const Host& host, const Config& config)
    : where_(compile_where(host, config)) {}

void FilterProcessor::process(Call call) {
  if (where_.matches(call.event())) {
    call.forward();
  } else {
    call.forward("rejected");
  }
  call.ok();
}

}  // namespace sluice::filter

SLUICE_PLUGIN(sluice::filter::FilterProcessor, "filter", "0.1.0",
              "Passes events that match an expression; the rest go to `rejected`",
              sluice::filter::kOptions);
