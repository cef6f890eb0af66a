// Tests of the SDK test double (sdk/include/sluice/testing.hpp): the host services it fakes and
// how it drives processors, sinks and sources compiled into the test binary.
#include <chrono>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "sluice/testing.hpp"

namespace {

using sluice::Json;
using sluice::Status;
using sluice::testkit::CreateError;
using sluice::testkit::event_to_json;
using sluice::testkit::make_event;
using sluice::testkit::RunLimits;
using sluice::testkit::TestOptions;
using sluice::testkit::TestPlugin;

// clang-format off
constexpr sluice_option_spec kTagOptions[] = {
    {.key = "tag", .type = SLUICE_OPT_STRING, .default_toml = nullptr, .required = 1,
     .description = "Attribute value to stamp", .choices = nullptr},
};
// clang-format on
constexpr sluice_option_spec kNoOptions[] = {{}};

// Stamps an attr, routes events with `fail` to a failure, and exercises every host service.
class Tagger final : public sluice::Processor {
 public:
  static constexpr const char* kOutputs[] = {"tagged", nullptr};

  Tagger(const sluice::Host& host, const sluice::Config& config)
      : host_(host), tag_(config.str("tag")) {
    if (tag_.find(' ') != std::string::npos) {
      throw sluice::OptionError("tag", "must not contain spaces",
                                static_cast<uint32_t>(tag_.find(' ') + 1));
    }
    if (tag_ == "boom") throw std::runtime_error("tagger cannot start");
    host_.info("tagger ready with tag " + tag_);
  }

  void process(sluice::Call call) override {
    if (host_.settings_version() != seen_version_) {
      seen_version_ = host_.settings_version();
      auto limit = host_.setting("limit");
      limit_ = limit ? limit->get<int64_t>() : 0;
      host_.set_setting("last_tag", tag_);
    }
    sluice::EventView ev = call.event();
    if (ev.boolean("fail").value_or(false)) {
      call.done({Status::kRateLimited, "slow down", 0.25, 1'000'000'000});
      return;
    }
    host_.counter_add("tagged_total", 1, "tier=\"gold\"");
    host_.counter_add("tagged_total", 2);
    host_.gauge_set("limit", static_cast<double>(limit_));
    host_.observe("size_bytes", static_cast<double>(call.bytes().size()));
    call.emit(builder_.reset().copy_from(ev).attr("tag", tag_).finish(), "tagged");
    call.forward();
    call.ok(0.5);
  }

 private:
  sluice::Host host_;
  std::string tag_;
  uint64_t seen_version_ = ~uint64_t{0};
  int64_t limit_ = 0;
  sluice::EventBuilder builder_;
};

}  // namespace

SLUICE_PLUGIN(Tagger, "tagger", "1.2.3", "Stamps a tag attribute", kTagOptions);

namespace {

// Completes every call later, from its own thread.
class Deferred final : public sluice::Processor {
 public:
  Deferred(const sluice::Host&, const sluice::Config&) {}
  ~Deferred() override {
    for (std::thread& t : threads_) t.join();
  }
  void process(sluice::Call call) override {
    threads_.emplace_back([call = std::move(call)]() mutable {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      call.forward();
      call.ok();
    });
  }

 private:
  std::vector<std::thread> threads_;
};

// Holds calls without completing them; the SDK's Call reports them when the plugin is destroyed.
class Stuck final : public sluice::Processor {
 public:
  Stuck(const sluice::Host&, const sluice::Config&) {}
  void process(sluice::Call call) override { held_.push_back(std::move(call)); }

 private:
  std::vector<sluice::Call> held_;
};

class Collector final : public sluice::Sink {
 public:
  Collector(const sluice::Host& host, const sluice::Config&) : host_(host) {}
  void consume(sluice::Call call) override {
    ++count_;
    call.ok();
  }
  void flush() override { host_.info("flushed " + std::to_string(count_)); }

 private:
  sluice::Host host_;
  int count_ = 0;
};

// Emits `count` events one second apart, then fails if asked to.
class Ticker final : public sluice::Source {
 public:
  Ticker(const sluice::Host&, const sluice::Config& config)
      : count_(config.i64("count")), fail_(config.flag("fail", false)) {}
  void run(sluice::SourceContext& ctx) override {
    sluice::EventBuilder b;
    for (int64_t i = 0; i < count_; ++i) {
      if (!ctx.emit(b.reset().id(static_cast<uint64_t>(i)).field("n", i).finish())) return;
      if (!ctx.sleep_for(std::chrono::seconds(1))) return;
    }
    if (fail_) throw std::runtime_error("feed closed by peer");
  }

 private:
  int64_t count_;
  bool fail_;
};

// Polls forever; only a stop request ends it.
class Poller final : public sluice::Source {
 public:
  Poller(const sluice::Host&, const sluice::Config&) {}
  void run(sluice::SourceContext& ctx) override {
    while (ctx.sleep_for(std::chrono::milliseconds(250))) {
    }
  }
};

// A composite with one child: forwards whatever the child reports.
class Wrapper final : public sluice::Processor {
 public:
  Wrapper(const sluice::Host& host, const sluice::Config&) : host_(host) {}
  void process(sluice::Call call) override {
    auto shared = std::make_shared<sluice::Call>(std::move(call));
    host_.child_process(0, shared->bytes(),
                        [shared](const sluice::Host::ChildResult& r) { shared->done(r.outcome); });
  }

 private:
  sluice::Host host_;
};

template <class T>
const sluice_plugin_descriptor* descriptor_of(const char* name) {
  return sluice::detail::describe<T>(name, "0.0.1", "test plugin", kNoOptions);
}

// A raw C-ABI processor that breaks the call contract: emits after done and completes twice.
const sluice_plugin_descriptor* contract_breaker() {
  static const sluice_plugin_descriptor d = [] {
    sluice_plugin_descriptor x{};
    x.abi_major = SLUICE_ABI_MAJOR;
    x.abi_minor = SLUICE_ABI_MINOR;
    x.kind = SLUICE_KIND_PROCESSOR;
    x.name = "breaker";
    x.create = [](const sluice_host*, const char*, sluice_error*) -> void* { return new int(0); };
    x.destroy = [](void* self) { delete static_cast<int*>(self); };
    x.process = [](void*, sluice_call* call) {
      sluice_outcome ok{};
      ok.status = SLUICE_OK;
      call->done(call, &ok);
      call->emit(call, nullptr, call->event, call->event_size);
      call->done(call, &ok);
    };
    return x;
  }();
  return &d;
}

TestOptions with_limit(int limit) {
  TestOptions options;
  options.settings = {{"limit", limit}};
  return options;
}

TEST(TestkitPlugin, CreatesThePluginThroughItsEntryPoint) {
  TestPlugin tagger({{"tag", "x"}});

  EXPECT_STREQ(tagger.descriptor().name, "tagger");
  EXPECT_STREQ(tagger.descriptor().version, "1.2.3");
  EXPECT_EQ(tagger.descriptor().kind, SLUICE_KIND_PROCESSOR);
  EXPECT_STREQ(tagger.descriptor().outputs[0], "tagged");
}

TEST(TestkitPlugin, CollectsEmittedEventsOutputsAndTheOutcome) {
  TestPlugin tagger({{"tag", "gold"}});
  auto event = make_event({{"symbol", "BTCUSDT"}}, "BTCUSDT", 9);
  auto r = tagger.process(event);

  EXPECT_TRUE(r.completed);
  EXPECT_EQ(r.outcome.status, Status::kOk);
  EXPECT_EQ(r.outcome.cost_usd, 0.5);
  EXPECT_TRUE(r.contract_violations.empty());
  ASSERT_EQ(r.emitted.size(), 2u);
  EXPECT_EQ(r.emitted[0].output, "tagged");
  EXPECT_FALSE(r.emitted[0].forwarded);
  EXPECT_EQ(r.emitted[0].view().attr("tag"), "gold");
  EXPECT_EQ(r.emitted[1].output, "");
  EXPECT_TRUE(r.emitted[1].forwarded);
  EXPECT_EQ(r.emitted[1].bytes, event);
}

TEST(TestkitPlugin, ReportsAFailedCallWithItsClassAndHints) {
  TestPlugin tagger({{"tag", "gold"}});
  auto r = tagger.process(make_event({{"fail", true}}));

  EXPECT_TRUE(r.completed);
  EXPECT_EQ(r.outcome.status, Status::kRateLimited);
  EXPECT_EQ(r.outcome.message, "slow down");
  EXPECT_EQ(r.outcome.cost_usd, 0.25);
  EXPECT_EQ(r.outcome.retry_after_ns, 1'000'000'000);
  EXPECT_TRUE(r.emitted.empty());
}

TEST(TestkitPlugin, ThrowsCreateErrorWithTheOptionAndColumn) {
  try {
    TestPlugin tagger({{"tag", "two words"}});
    FAIL() << "create() accepted a tag with a space";
  } catch (const CreateError& e) {
    EXPECT_EQ(e.key(), "tag");
    EXPECT_EQ(e.column(), 4u);
    EXPECT_STREQ(e.what(), "must not contain spaces");
  }
}

TEST(TestkitPlugin, CreateErrorReportsFailuresNotAboutOneOption) {
  auto err = TestPlugin::create_error({{"tag", "boom"}});

  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->key(), "");
  EXPECT_STREQ(err->what(), "tagger cannot start");
}

TEST(TestkitPlugin, PassesTheConfigAsGivenWithoutDefaults) {
  auto err = TestPlugin::create_error(Json::object());

  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->key(), "tag");
  EXPECT_STREQ(err->what(), "is required");
  EXPECT_FALSE(TestPlugin::create_error({{"tag", "ok"}}).has_value());
}

TEST(TestkitHost, CapturesLogLines) {
  TestPlugin tagger({{"tag", "gold"}});

  ASSERT_EQ(tagger.host().logs().size(), 1u);
  EXPECT_EQ(tagger.host().logs()[0].level, SLUICE_LOG_INFO);
  EXPECT_EQ(tagger.host().logs()[0].message, "tagger ready with tag gold");
  EXPECT_TRUE(tagger.host().logged(SLUICE_LOG_INFO, "ready"));
  EXPECT_FALSE(tagger.host().logged(SLUICE_LOG_WARN, "ready"));
  tagger.host().clear_logs();
  EXPECT_TRUE(tagger.host().logs().empty());
}

TEST(TestkitHost, SumsCountersPerLabelsAndKeepsGaugesAndObservations) {
  TestPlugin tagger({{"tag", "gold"}}, with_limit(7));
  auto event = make_event({{"symbol", "BTCUSDT"}});
  tagger.process(event);
  tagger.process(event);

  EXPECT_EQ(tagger.host().counter("tagged_total"), 6);
  EXPECT_EQ(tagger.host().counter("tagged_total", "tier=\"gold\""), 2);
  EXPECT_EQ(tagger.host().counter("tagged_total", ""), 4);
  EXPECT_EQ(tagger.host().counter("never_counted"), 0);
  EXPECT_EQ(tagger.host().gauge("limit"), 7);
  EXPECT_EQ(tagger.host().gauge("never_set"), std::nullopt);
  EXPECT_EQ(
      tagger.host().observations("size_bytes"),
      (std::vector<double>{static_cast<double>(event.size()), static_cast<double>(event.size())}));
}

TEST(TestkitHost, SettingChangesBumpTheVersionThePluginWatches) {
  TestPlugin tagger({{"tag", "gold"}}, with_limit(7));
  EXPECT_EQ(tagger.host().settings_version(), 0u);
  tagger.process(make_event({{"symbol", "A"}}));
  EXPECT_EQ(tagger.host().gauge("limit"), 7);

  tagger.host().set_setting("limit", 9);
  tagger.process(make_event({{"symbol", "A"}}));

  EXPECT_EQ(tagger.host().gauge("limit"), 9);
  EXPECT_EQ(tagger.host().setting("last_tag"), Json("gold"));
  EXPECT_EQ(tagger.host().setting("missing"), std::nullopt);
  EXPECT_EQ(tagger.host().settings_version(), 3u);  // two plugin writes and one from the test
}

TEST(TestkitHost, GivesTheNodeNamesAndNoChildrenUnlessScripted) {
  TestOptions options{.pipeline_name = "alerts", .node_name = "wrap", .state_dir = "/tmp/state"};
  TestPlugin wrapper(descriptor_of<Wrapper>("wrapper"), Json::object(), options);
  sluice::Host host(wrapper.host().raw());
  EXPECT_EQ(host.pipeline_name(), "alerts");
  EXPECT_EQ(host.node_name(), "wrap");
  EXPECT_EQ(host.state_dir(), "/tmp/state");
  EXPECT_EQ(host.child_count(), 0u);

  auto r = wrapper.process(make_event({{"symbol", "A"}}));

  EXPECT_EQ(r.outcome.status, Status::kInternal);
  EXPECT_EQ(r.outcome.message, "the test host has no child 0 (TestOptions::children)");

  // With a scripted child, the same call reaches it.
  TestOptions scripted = options;
  scripted.children = {{"rules", [](sluice::EventView, size_t) { return sluice::testkit::answer(); }}};
  TestPlugin with_child(descriptor_of<Wrapper>("wrapper"), Json::object(), scripted);
  EXPECT_EQ(sluice::Host(with_child.host().raw()).child_name(0), "rules");
  auto ok = with_child.process(make_event({{"symbol", "A"}}));
  EXPECT_TRUE(ok.outcome.ok()) << ok.outcome.message;
  ASSERT_EQ(with_child.host().child_calls().size(), 1u);
  EXPECT_EQ(with_child.host().child_calls()[0].name, "rules");
}

TEST(TestkitPlugin, WaitsForCallsCompletedOnAnotherThread) {
  TestPlugin deferred(descriptor_of<Deferred>("deferred"), Json::object());
  auto results = deferred.process_all({make_event({{"n", 1}}), make_event({{"n", 2}})});

  ASSERT_EQ(results.size(), 2u);
  for (size_t i = 0; i < results.size(); ++i) {
    EXPECT_TRUE(results[i].completed);
    ASSERT_EQ(results[i].emitted.size(), 1u);
    EXPECT_EQ(results[i].emitted[0].view().integer("n"), static_cast<int64_t>(i + 1));
  }
}

TEST(TestkitPlugin, ReportsACallThePluginNeverCompletes) {
  TestPlugin stuck(descriptor_of<Stuck>("stuck"), Json::object());
  auto r = stuck.process(make_event({{"n", 1}}), std::chrono::milliseconds(20));

  EXPECT_FALSE(r.completed);
  EXPECT_EQ(r.outcome.status, Status::kInternal);
  EXPECT_EQ(r.outcome.message, "plugin did not call done() within 20 ms");
}

TEST(TestkitPlugin, RecordsBreachesOfTheCallContract) {
  TestPlugin breaker(contract_breaker(), Json::object());
  auto r = breaker.process(make_event({{"n", 1}}));

  EXPECT_TRUE(r.completed);
  EXPECT_TRUE(r.emitted.empty());
  EXPECT_EQ(r.contract_violations,
            (std::vector<std::string>{"emit() after done()", "done() called more than once"}));
}

TEST(TestkitPlugin, DrivesASinkAndItsFlush) {
  TestPlugin sink(descriptor_of<Collector>("collector"), Json::object());
  EXPECT_TRUE(sink.process(make_event({{"n", 1}})).outcome.ok());
  EXPECT_TRUE(sink.process(make_event({{"n", 2}})).outcome.ok());
  sink.flush();

  EXPECT_TRUE(sink.host().logged(SLUICE_LOG_INFO, "flushed 2"));
}

TEST(TestkitPlugin, RunsASourceToCompletionWithSimulatedSleeps) {
  TestPlugin ticker(descriptor_of<Ticker>("ticker"), {{"count", 3}});
  auto r = ticker.run();

  EXPECT_EQ(r.status, 0);
  EXPECT_FALSE(r.stopped);
  ASSERT_EQ(r.events.size(), 3u);
  EXPECT_EQ(r.view(2).integer("n"), 2);
  EXPECT_EQ(r.sleeps, 3u);
  EXPECT_EQ(r.slept_ns, 3'000'000'000);
}

TEST(TestkitPlugin, StopsASourceAfterMaxEvents) {
  TestPlugin ticker(descriptor_of<Ticker>("ticker"), {{"count", 100}});
  auto r = ticker.run(RunLimits{.max_events = 2});

  EXPECT_EQ(r.status, 0);
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.events.size(), 2u);
}

TEST(TestkitPlugin, StopsAPollingSourceAfterMaxSleeps) {
  TestPlugin poller(descriptor_of<Poller>("poller"), Json::object());
  auto r = poller.run(RunLimits{.max_sleeps = 4});

  EXPECT_EQ(r.status, 0);
  EXPECT_TRUE(r.stopped);
  EXPECT_TRUE(r.events.empty());
  EXPECT_EQ(r.sleeps, 5u);
  EXPECT_EQ(r.slept_ns, 1'250'000'000);
}

TEST(TestkitPlugin, ReportsASourceFailure) {
  TestPlugin ticker(descriptor_of<Ticker>("ticker"), {{"count", 1}, {"fail", true}});
  auto r = ticker.run();

  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.error, "feed closed by peer");
  EXPECT_EQ(r.events.size(), 1u);
}

TEST(TestkitPlugin, RefusesADriverThatDoesNotFitThePluginKind) {
  TestPlugin ticker(descriptor_of<Ticker>("ticker"), {{"count", 1}});
  TestPlugin tagger({{"tag", "x"}});

  try {
    ticker.process(make_event({{"n", 1}}));
    FAIL() << "process() ran a source";
  } catch (const std::logic_error& e) {
    EXPECT_STREQ(e.what(), "process() does not apply to plugin 'ticker', a source");
  }
  EXPECT_THROW(tagger.run(), std::logic_error);
  EXPECT_THROW(tagger.flush(), std::logic_error);
}

TEST(TestkitMakeEvent, BuildsTypedFieldsThatRenderBackAsJson) {
  auto bytes = make_event({{"i", 3}, {"d", 2.5}, {"b", true}, {"s", "x"}, {"z", nullptr}}, "K", 4);

  EXPECT_EQ(event_to_json(bytes),
            (Json{{"id", 4},
                  {"event_time_ns", sluice::testkit::kTestEventTimeNs},
                  {"ingest_time_ns", sluice::testkit::kTestEventTimeNs},
                  {"source", ""},
                  {"key", "K"},
                  {"attrs", Json::object()},
                  {"fields", {{"b", true}, {"d", 2.5}, {"i", 3}, {"s", "x"}, {"z", nullptr}}},
                  {"hops", Json::array()}}));
}

TEST(TestkitMakeEvent, RejectsFieldsOfOtherTypesByName) {
  try {
    make_event({{"ok", 1}, {"list", {1, 2}}});
    FAIL() << "make_event accepted an array";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(),
                 "make_event: field 'list' must be a number, string, bool or null, "
                 "got array");
  }
}

}  // namespace
