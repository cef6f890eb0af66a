// The `filter` processor: forwards the events that satisfy `where` unchanged (the very bytes it
// received, no copy) and sends every other event to the `rejected` output, which costs nothing
// when nothing is wired to it.
#pragma once

#include "sluice/expr.hpp"
#include "sluice/sdk.hpp"

namespace sluice::filter {

inline constexpr sluice_option_spec kOptions[] = {
    {.key = "where", .type = SLUICE_OPT_EXPRESSION, .default_toml = nullptr, .required = 1,
     .description = "Condition an event must meet to pass, e.g. \"notional_usd >= $min_usd\" "
                    "(see docs/expressions.md)",
     .choices = nullptr},
};

class FilterProcessor final : public Processor {
 public:
  static constexpr const char* kOutputs[] = {"rejected", nullptr};

  FilterProcessor(const Host& host, const Config& config);
  void process(Call call) override;

 private:
  expr::Expression where_;
};

}  // namespace sluice::filter
