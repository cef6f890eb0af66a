// The `rules_classifier` processor: deterministic liquidation risk from the normalised fields
// (notional thresholds, the liquidated side, a watch list of symbols). It adds the same fields an
// LLM classifier adds (`risk_level`, `summary`, `recommendation`) plus `classifier = "rules"`,
// needs no network, and answers in microseconds, so it is the offline default and the last link
// of a fallback chain.
#pragma once

#include <functional>
#include <array>
#include <set>
#include <string>
#include <string_view>

#include "sluice/event.hpp"
#include "sluice/sdk.hpp"

namespace sluice::rules_classifier {

inline constexpr sluice_option_spec kOptions[] = {
    {.key = "high_usd", .type = SLUICE_OPT_DOUBLE, .default_toml = "1000000.0", .required = 0,
     .description = "Notional (USD) from which a liquidation is HIGH risk", .choices = nullptr},
    {.key = "medium_usd", .type = SLUICE_OPT_DOUBLE, .default_toml = "100000.0", .required = 0,
     .description = "Notional (USD) from which a liquidation is MEDIUM risk; below high_usd",
     .choices = nullptr},
    {.key = "watch_symbols", .type = SLUICE_OPT_STRING_LIST,
     .default_toml = "[\"BTCUSDT\", \"ETHUSDT\"]", .required = 0,
     .description = "Symbols whose liquidations rank one level higher (LOW to MEDIUM, MEDIUM to "
                    "HIGH); [] for none",
     .choices = nullptr},
};

enum class RiskLevel { kLow, kMedium, kHigh };

// "$7", "$38.4K", "$1.2M", "$3B": one decimal at most, rounding carried into the next unit.
std::string format_usd(double amount);

class RulesClassifier final : public Processor {
 public:
  RulesClassifier(const Host& host, const Config& config);
  void process(Call call) override;

 private:
  RiskLevel level_for(double notional_usd, std::string_view symbol) const;

  Host host_;
  double high_usd_;
  double medium_usd_;
  std::set<std::string, std::less<>> watch_symbols_;
  // Used only inside process(), which the stage calls on one thread.
  EventBuilder builder_;
  // rules_classified_total by risk level, resolved once (indexed by RiskLevel).
  std::array<Metric, 3> classified_;
  std::string summary_;
  std::string recommendation_;
};

}  // namespace sluice::rules_classifier
