// Test plugin `test_chain`: a minimal composite. Tries its children in order until one
// succeeds and passes on that child's output, recording each child's observed outcome as
// metrics — proving the composite mechanism (children, outcomes, latency, cost).
#include <memory>

#include "sluice/sdk.hpp"

namespace {

inline constexpr sluice_option_spec kOptions[] = {
    {.key = "chain", .type = SLUICE_OPT_PROCESSOR_LIST, .default_toml = nullptr, .required = 1,
     .description = "Child processors, tried in order", .choices = nullptr},
};

class TestChain : public sluice::Processor {
 public:
  TestChain(const sluice::Host& host, const sluice::Config& cfg)
      : host_(host), chain_(cfg.children("chain")) {}

  void process(sluice::Call call) override {
    auto shared = std::make_shared<sluice::Call>(std::move(call));
    attempt(std::move(shared), 0);
  }

 private:
  void attempt(std::shared_ptr<sluice::Call> call, size_t pos) {
    size_t child = chain_[pos];
    host_.child_process(child, call->bytes(),
                        [this, call, pos, child](const sluice::Host::ChildResult& r) {
      std::string labels = "child=\"" + std::string(host_.child_name(child)) + "\",outcome=\"" +
                           sluice::status_name(static_cast<int>(r.outcome.status)) + "\"";
      host_.counter_add("test_chain_attempts_total", 1, labels.c_str());
      host_.observe("test_chain_child_seconds", static_cast<double>(r.latency_ns) / 1e9,
                    labels.c_str());
      if (r.outcome.ok()) {
        for (const auto& e : r.emitted) call->emit(e.bytes, e.output.c_str());
        call->ok(r.outcome.cost_usd);
      } else if (pos + 1 < chain_.size()) {
        attempt(call, pos + 1);
      } else {
        call->done(r.outcome);
      }
    });
  }

  sluice::Host host_;
  std::vector<size_t> chain_;
};

}  // namespace

SLUICE_PLUGIN(TestChain, "test_chain", "1.0.0", "Test double: tries children in order", kOptions)
