// Test plugin `test_lifecycle` (a processor that forwards, or with SLUICE_TEST_LIFECYCLE_SINK a
// sink): appends "<node> create|start|event <id>|destroy" lines to the `journal` file, so a
// test can see which lifecycle calls a run or a validate made, how often and in which order.
// fail_start makes start() throw, with the `token` secret in the message (it must be redacted).
#include <fstream>
#include <mutex>
#include <stdexcept>
#include <string>

#include "sluice/sdk.hpp"

namespace {

inline constexpr sluice_option_spec kOptions[] = {
    {.key = "journal",
     .type = SLUICE_OPT_STRING,
     .default_toml = nullptr,
     .required = 1,
     .description = "File the lifecycle calls are appended to",
     .choices = nullptr},
    {.key = "fail_start",
     .type = SLUICE_OPT_BOOL,
     .default_toml = "false",
     .required = 0,
     .description = "start() throws",
     .choices = nullptr},
    {.key = "token",
     .type = SLUICE_OPT_SECRET,
     .default_toml = "\"\"",
     .required = 0,
     .description = "A secret that start()'s error quotes",
     .choices = nullptr},
};

std::mutex g_journal_mu;

template <class Base>
class TestLifecycle : public Base {
 public:
  TestLifecycle(const sluice::Host& host, const sluice::Config& cfg)
      : node_(host.node_name()),
        journal_(cfg.str("journal")),
        fail_start_(cfg.flag("fail_start")),
        token_(cfg.str("token")) {
    write("create");
  }
  ~TestLifecycle() override { write("destroy"); }

  void start() override {
    write("start");
    if (fail_start_) throw std::runtime_error("cannot log in with " + token_);
  }

 protected:
  void handle(sluice::Call& call) {
    write("event " + std::to_string(call.event().id()));
    if constexpr (std::is_base_of_v<sluice::Processor, Base>) call.forward();
    call.ok();
  }

 private:
  void write(const std::string& what) const {
    std::lock_guard lock(g_journal_mu);
    std::ofstream(journal_, std::ios::app) << node_ << ' ' << what << '\n';
  }

  std::string node_;
  std::string journal_;
  bool fail_start_;
  std::string token_;
};

#ifdef SLUICE_TEST_LIFECYCLE_SINK
class TestLifecycleSink final : public TestLifecycle<sluice::Sink> {
 public:
  using TestLifecycle::TestLifecycle;
  void consume(sluice::Call call) override { handle(call); }
};
#else
class TestLifecycleProcessor final : public TestLifecycle<sluice::Processor> {
 public:
  using TestLifecycle::TestLifecycle;
  void process(sluice::Call call) override { handle(call); }
};
#endif

}  // namespace

#ifdef SLUICE_TEST_LIFECYCLE_SINK
SLUICE_PLUGIN(TestLifecycleSink, "test_lifecycle", "1.0.0",
              "Test double: journals create, start, events and destroy", kOptions)
#else
SLUICE_PLUGIN(TestLifecycleProcessor, "test_lifecycle", "1.0.0",
              "Test double: journals create, start, events and destroy", kOptions)
#endif
