// fallback: the chain's decisions against scripted children (sluice/testing.hpp), which answer
// after set delays with set outcomes while the test host records every child call.
#include <gtest/gtest.h>

#include <thread>

#include "../fallback.hpp"
#include "sluice/testing.hpp"

namespace sluice::fallback {
namespace {

using namespace std::chrono_literals;
using testkit::answer;
using testkit::fail_with;
using testkit::ScriptedAnswer;
using testkit::ScriptedChild;
using testkit::TestOptions;
using testkit::TestPlugin;

constexpr int64_t kMs = 1'000'000;

// Options as the host hands them over: defaults applied, durations in nanoseconds.
Json options(Json overrides = Json::object()) {
  Json o = {
      {"chain", {0, 1, 2}},
      {"deadline", 2000 * kMs},
      {"on", {"timeout", "rate_limited", "server_error", "bad_response", "insufficient_quota"}},
      {"retries", 0},
      {"retry_backoff", 10 * kMs},
      {"retry_backoff_max", 100 * kMs}};
  for (auto& [k, v] : overrides.items()) o[k] = v;
  return o;
}

ScriptedChild always(std::string name, ScriptedAnswer a) {
  return {std::move(name), [a](EventView, size_t) { return a; }};
}

TestOptions with_children(std::vector<ScriptedChild> children, Json settings = Json::object()) {
  TestOptions t;
  t.children = std::move(children);
  t.settings = std::move(settings);
  return t;
}

std::vector<uint8_t> event() { return testkit::make_event({{"symbol", "BTCUSDT"}}, "BTCUSDT"); }

TEST(Fallback, FirstChildAnswersAndTheEventSaysWhichWithNoErrors) {
  TestPlugin p(options(), with_children({always("gpt", answer()), always("gemini", answer()),
                                         always("rules", answer())}));
  auto r = p.process(event());
  ASSERT_TRUE(r.outcome.ok()) << r.outcome.message;
  ASSERT_EQ(r.emitted.size(), 1u);
  EXPECT_EQ(r.emitted[0].view().string("fallback_used"), "gpt");
  EXPECT_EQ(r.emitted[0].view().integer("fallback_attempts"), 1);
  EXPECT_EQ(r.emitted[0].view().string("fallback_errors"), "[]");
  EXPECT_EQ(r.emitted[0].view().string("symbol"), "BTCUSDT");
  EXPECT_EQ(p.host().child_calls().size(), 1u);
  EXPECT_EQ(p.host().counter("fallback_events_total", "result=\"first\""), 1);
}

TEST(Fallback, MovesOnInOrderListingEachFailure) {
  TestPlugin p(options(),
               with_children({always("gpt", fail_with(Status::kServerError, 0ms, "HTTP 503")),
                              always("gemini", fail_with(Status::kRateLimited, 0ms, "HTTP 429")),
                              always("rules", answer())}));
  auto r = p.process(event());
  ASSERT_TRUE(r.outcome.ok()) << r.outcome.message;
  ASSERT_EQ(r.emitted.size(), 1u);
  EXPECT_EQ(r.emitted[0].view().string("fallback_used"), "rules");
  EXPECT_EQ(r.emitted[0].view().integer("fallback_attempts"), 3);
  Json errors = Json::parse(std::string(*r.emitted[0].view().string("fallback_errors")));
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0]["child"], "gpt");
  EXPECT_EQ(errors[0]["class"], "server_error");
  EXPECT_EQ(errors[0]["message"], "HTTP 503");
  EXPECT_EQ(errors[1]["child"], "gemini");
  EXPECT_EQ(errors[1]["class"], "rate_limited");
  auto calls = p.host().child_calls();
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_EQ(calls[0].name, "gpt");
  EXPECT_EQ(calls[1].name, "gemini");
  EXPECT_EQ(calls[2].name, "rules");
  EXPECT_EQ(p.host().counter("fallback_events_total", "result=\"failover\""), 1);
}

TEST(Fallback, EveryChildFailingFailsTheEventWithAllOfThemListed) {
  TestPlugin p(options(),
               with_children({always("gpt", fail_with(Status::kTimeout, 0ms, "slow")),
                              always("gemini", fail_with(Status::kServerError, 0ms, "down")),
                              always("rules", fail_with(Status::kBadResponse, 0ms, "junk"))}));
  auto r = p.process(event());
  EXPECT_EQ(r.outcome.status, Status::kBadResponse);
  EXPECT_TRUE(r.emitted.empty());
  EXPECT_NE(r.outcome.message.find("gpt timeout (slow)"), std::string::npos) << r.outcome.message;
  EXPECT_NE(r.outcome.message.find("gemini server_error (down)"), std::string::npos);
  EXPECT_NE(r.outcome.message.find("rules bad_response (junk)"), std::string::npos);
  EXPECT_EQ(p.host().counter("fallback_events_total", "result=\"failed\""), 1);
}

TEST(Fallback, AClassOutsideOnEndsTheChain) {
  TestPlugin p(options(),
               with_children({always("gpt", fail_with(Status::kRejected, 0ms, "not an event")),
                              always("gemini", answer()), always("rules", answer())}));
  auto r = p.process(event());
  EXPECT_EQ(r.outcome.status, Status::kRejected);
  EXPECT_EQ(p.host().child_calls().size(), 1u);
}

TEST(Fallback, AuthMovesOnButIsLoggedAsAnOperatorError) {
  TestPlugin p(options(), with_children({always("gpt", fail_with(Status::kAuth, 0ms, "HTTP 401")),
                                         always("gemini", answer()), always("rules", answer())}));
  auto r = p.process(event());
  ASSERT_TRUE(r.outcome.ok());
  EXPECT_EQ(r.emitted[0].view().string("fallback_used"), "gemini");
  EXPECT_EQ(p.host().counter("fallback_operator_errors_total"), 1);
  EXPECT_TRUE(p.host().logged(SLUICE_LOG_ERROR, "gpt failed with auth"));
}

TEST(Fallback, ChildrenGetTheChainDeadlineAndTheChainNeverRunsPastIt) {
  // gpt hangs: the host ends it at the chain deadline; nothing is left for the others.
  TestPlugin p(options({{"deadline", 150 * kMs}}),
               with_children({always("gpt", answer(10s)), always("gemini", answer()),
                              always("rules", answer())}));
  int64_t start = mono_ns();
  auto r = p.process(event());
  int64_t took = mono_ns() - start;
  EXPECT_EQ(r.outcome.status, Status::kTimeout);
  EXPECT_NE(r.outcome.message.find("deadline"), std::string::npos) << r.outcome.message;
  auto calls = p.host().child_calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_TRUE(calls[0].timed_out);
  EXPECT_GE(calls[0].deadline_ns, start + 150 * kMs);
  EXPECT_LE(calls[0].deadline_ns, start + 150 * kMs + 50 * kMs);
  EXPECT_GE(took, 150 * kMs);
  EXPECT_LT(took, 2000 * kMs);
}

TEST(Fallback, AChildTimingOutLeavesTheRestOfTheBudgetToTheNext) {
  // gpt times out on its own (its own timeout, shorter than the chain's deadline).
  TestPlugin p(options({{"deadline", 1000 * kMs}}),
               with_children({always("gpt", fail_with(Status::kTimeout, 50ms, "own timeout")),
                              always("gemini", answer(10ms)), always("rules", answer())}));
  auto r = p.process(event());
  ASSERT_TRUE(r.outcome.ok()) << r.outcome.message;
  auto calls = p.host().child_calls();
  ASSERT_EQ(calls.size(), 2u);
  // The next child starts as soon as the first reports, with the same absolute deadline.
  EXPECT_EQ(calls[1].deadline_ns, calls[0].deadline_ns);
  EXPECT_GE(calls[1].start_ns, calls[0].end_ns);
}

TEST(Fallback, OuterDeadlineOfANestedCallBoundsTheChain) {
  TestPlugin p(options({{"deadline", 5000 * kMs}}),
               with_children({always("gpt", answer()), always("gemini", answer()),
                              always("rules", answer())}));
  int64_t outer = mono_ns() + 300 * kMs;
  auto r = p.process_by(event(), outer);
  ASSERT_TRUE(r.outcome.ok());
  EXPECT_EQ(p.host().child_calls().at(0).deadline_ns, outer);
}

TEST(Fallback, RetriesWithBackoffThenSucceeds) {
  ScriptedChild flaky{"gpt", [](EventView, size_t n) {
                        return n < 2 ? fail_with(Status::kServerError, 0ms, "503") : answer();
                      }};
  TestPlugin p(options({{"retries", 2}}),
               with_children({flaky, always("gemini", answer()), always("rules", answer())}));
  auto r = p.process(event());
  ASSERT_TRUE(r.outcome.ok());
  EXPECT_EQ(r.emitted[0].view().string("fallback_used"), "gpt");
  EXPECT_EQ(r.emitted[0].view().integer("fallback_attempts"), 3);
  EXPECT_EQ(p.host().counter("fallback_retries_total"), 2);
}

TEST(Fallback, RetryAfterThatFitsTheBudgetIsHonoured) {
  ScriptedChild limited{"gpt", [](EventView, size_t n) {
                          if (n > 0) return answer();
                          auto a = fail_with(Status::kRateLimited, 0ms, "429");
                          a.outcome.retry_after_ns = 120 * kMs;
                          return a;
                        }};
  TestPlugin p(options({{"retries", 1}, {"deadline", 1000 * kMs}}),
               with_children({limited, always("gemini", answer()), always("rules", answer())}));
  auto r = p.process(event());
  ASSERT_TRUE(r.outcome.ok());
  EXPECT_EQ(r.emitted[0].view().string("fallback_used"), "gpt");
  auto calls = p.host().child_calls();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_GE(calls[1].start_ns - calls[0].end_ns, 120 * kMs);
}

TEST(Fallback, RetryAfterBeyondTheBudgetMovesOnAtOnce) {
  ScriptedChild limited{"gpt", [](EventView, size_t) {
                          auto a = fail_with(Status::kRateLimited, 0ms, "429");
                          a.outcome.retry_after_ns = 60'000 * kMs;
                          return a;
                        }};
  TestPlugin p(options({{"retries", 3}, {"deadline", 1000 * kMs}}),
               with_children({limited, always("gemini", answer()), always("rules", answer())}));
  auto r = p.process(event());
  ASSERT_TRUE(r.outcome.ok());
  EXPECT_EQ(r.emitted[0].view().string("fallback_used"), "gemini");
  auto calls = p.host().child_calls();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_LT(calls[1].start_ns - calls[0].end_ns, 100 * kMs);
}

TEST(Fallback, HedgeStartsTheNextChildKeepsTheFirstSuccessAndCancelsTheOther) {
  TestPlugin p(options({{"hedge_after", 50 * kMs}}),
               with_children({always("gpt", answer(2s)), always("gemini", answer(10ms)),
                              always("rules", answer())}));
  int64_t start = mono_ns();
  auto r = p.process(event());
  int64_t took = mono_ns() - start;
  ASSERT_TRUE(r.outcome.ok()) << r.outcome.message;
  EXPECT_EQ(r.emitted[0].view().string("fallback_used"), "gemini");
  EXPECT_LT(took, 1000 * kMs);
  auto calls = p.host().child_calls();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_GE(calls[1].start_ns - calls[0].start_ns, 50 * kMs);
  p.host().run_posted();
  calls = p.host().child_calls();
  EXPECT_TRUE(calls[0].cancelled);
  EXPECT_EQ(p.host().counter("fallback_hedges_started_total"), 1);
  EXPECT_EQ(p.host().counter("fallback_hedges_won_total"), 1);
}

TEST(Fallback, HedgeLosesWhenThePrimaryAnswersFirst) {
  TestPlugin p(options({{"hedge_after", 20 * kMs}}),
               with_children({always("gpt", answer(60ms)), always("gemini", answer(2s)),
                              always("rules", answer())}));
  auto r = p.process(event());
  ASSERT_TRUE(r.outcome.ok());
  EXPECT_EQ(r.emitted[0].view().string("fallback_used"), "gpt");
  p.host().run_posted();
  auto calls = p.host().child_calls();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_TRUE(calls[1].cancelled);
  EXPECT_EQ(p.host().counter("fallback_hedges_won_total"), 0);
}

// The hedge timer runs from the start of the child being waited on: when the first child fails
// and the chain moves on, the next child gets its own full hedge_after (found by the latency
// bench: it was hedged at the first child's start + hedge_after).
TEST(Fallback, AChildTheChainMovedOnToGetsItsOwnHedgeDelay) {
  TestPlugin p(options({{"hedge_after", 80 * kMs}}),
               with_children({always("gpt", fail_with(Status::kServerError, 30ms)),
                              always("gemini", answer(5s)), always("rules", answer())}));
  auto r = p.process(event());
  ASSERT_TRUE(r.outcome.ok()) << r.outcome.message;
  EXPECT_EQ(r.emitted[0].view().string("fallback_used"), "rules");
  auto calls = p.host().child_calls();
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_GE(calls[2].start_ns - calls[1].start_ns, 80 * kMs);
}

// Options as a pipeline file writes them ("50ms", child names, defaults left out), converted by
// the test host exactly as the runtime converts them.
TEST(Fallback, OptionsAsWrittenInAPipelineFile) {
  TestOptions t = with_children({always("gpt", answer(2s)), always("gemini", answer(10ms))});
  t.as_written = true;
  TestPlugin p({{"chain", {"gpt", "gemini"}}, {"hedge_after", "50ms"}, {"deadline", "1s"}}, t);
  auto r = p.process(event());
  ASSERT_TRUE(r.outcome.ok()) << r.outcome.message;
  EXPECT_EQ(r.emitted[0].view().string("fallback_used"), "gemini");
  EXPECT_THROW(TestPlugin({{"chain", {"gpt"}}, {"retries", 11}}, t), testkit::CreateError);
}

TEST(Fallback, PreferredChildIsTriedFirst) {
  TestPlugin p(options({{"prefer", "attrs.model"}}),
               with_children({always("gpt", answer()), always("gemini", answer()),
                              always("rules", answer())}));
  EventBuilder b;
  b.copy_from(EventView(event())).attr("model", "gemini");
  auto bytes = b.finish();
  auto r = p.process(bytes);
  ASSERT_TRUE(r.outcome.ok());
  EXPECT_EQ(r.emitted[0].view().string("fallback_used"), "gemini");
  // Unknown names change nothing.
  EventBuilder c;
  c.copy_from(EventView(event())).attr("model", "nope");
  auto other = c.finish();
  EXPECT_EQ(p.process(other).emitted[0].view().string("fallback_used"), "gpt");
}

TEST(Fallback, DisabledBySettingIsSkippedAndBackOnWithoutARestart) {
  TestPlugin p(options({{"children", {{"gpt", {{"enabled", "$gpt_enabled"}}}}}}),
               with_children(
                   {always("gpt", answer()), always("gemini", answer()), always("rules", answer())},
                   {{"gpt_enabled", false}}));
  EXPECT_EQ(p.process(event()).emitted[0].view().string("fallback_used"), "gemini");
  EXPECT_EQ(p.host().counter("fallback_skipped_total", "child=\"gpt\",reason=\"disabled\""), 1);
  p.host().set_setting("gpt_enabled", true);
  EXPECT_EQ(p.process(event()).emitted[0].view().string("fallback_used"), "gpt");
}

TEST(Fallback, BreakerOpensSkipsHalfOpensAndCloses) {
  bool healthy = false;
  ScriptedChild gpt{"gpt", [&healthy](EventView, size_t) {
                      return healthy ? answer() : fail_with(Status::kServerError, 0ms, "503");
                    }};
  Json children = {{"gpt", {{"breaker", {{"failures", 2}, {"cooldown", "200ms"}}}}}};
  TestPlugin p(options({{"children", children}}),
               with_children({gpt, always("gemini", answer()), always("rules", answer())}));
  p.process(event());
  p.process(event());  // second consecutive failure: open
  EXPECT_EQ(p.host().gauge("fallback_breaker_state", "child=\"gpt\""), 1);
  ASSERT_TRUE(p.host().state("breaker/gpt"));
  EXPECT_NE(p.host().state("breaker/gpt")->find("\"open\""), std::string::npos);
  size_t before = p.host().child_calls().size();
  EXPECT_EQ(p.process(event()).emitted[0].view().string("fallback_used"), "gemini");
  EXPECT_EQ(p.host().child_calls().size(), before + 1);  // gpt skipped
  EXPECT_EQ(p.host().counter("fallback_skipped_total", "child=\"gpt\",reason=\"breaker_open\""), 1);
  std::this_thread::sleep_for(250ms);
  healthy = true;
  EXPECT_EQ(p.process(event()).emitted[0].view().string("fallback_used"), "gpt");  // the probe
  EXPECT_EQ(p.host().gauge("fallback_breaker_state", "child=\"gpt\""), 0);
  EXPECT_NE(p.host().state("breaker/gpt")->find("\"closed\""), std::string::npos);
}

TEST(Fallback, AnOpenBreakerSurvivesARestart) {
  Json children = {{"gpt", {{"breaker", {{"failures", 1}, {"cooldown", "1h"}}}}}};
  std::string saved;
  {
    TestPlugin p(options({{"children", children}}),
                 with_children({always("gpt", fail_with(Status::kServerError)),
                                always("gemini", answer()), always("rules", answer())}));
    p.process(event());
    saved = *p.host().state("breaker/gpt");
  }
  TestOptions t = with_children(
      {always("gpt", answer()), always("gemini", answer()), always("rules", answer())});
  t.start = false;
  TestPlugin p(options({{"children", children}}), t);
  p.host().set_state("breaker/gpt", saved);
  p.start();
  EXPECT_EQ(p.process(event()).emitted[0].view().string("fallback_used"), "gemini");
}

TEST(Fallback, StatusAndResetBreakerCommands) {
  Json children = {{"gpt", {{"breaker", {{"failures", 1}, {"cooldown", "1h"}}}}}};
  TestPlugin p(options({{"children", children}}),
               with_children({always("gpt", fail_with(Status::kServerError)),
                              always("gemini", answer()), always("rules", answer())}));
  EXPECT_EQ(p.host().commands().count("status"), 1u);
  p.process(event());
  auto status = p.host().command("status");
  ASSERT_TRUE(status.ok) << status.error;
  EXPECT_EQ(status.value["children"][0]["name"], "gpt");
  EXPECT_EQ(status.value["children"][0]["breaker"], "open");
  EXPECT_GT(status.value["children"][0]["breaker_cooldown_left_s"].get<double>(), 3000);
  EXPECT_EQ(status.value["children"][1]["breaker"], "closed");

  auto refused = p.host().command("reset_breaker", {{"child", "nope"}});
  EXPECT_FALSE(refused.ok);
  EXPECT_EQ(refused.error, "no child 'nope' in the chain (gpt, gemini, rules)");
  auto reset = p.host().command("reset_breaker", {{"child", "gpt"}});
  ASSERT_TRUE(reset.ok) << reset.error;
  EXPECT_EQ(reset.value["breaker"], "closed");
  EXPECT_NE(p.host().state("breaker/gpt")->find("\"closed\""), std::string::npos);
  size_t before = p.host().child_calls().size();
  p.process(event());
  EXPECT_EQ(p.host().child_calls().at(before).name, "gpt");  // tried again
}

TEST(Fallback, RpmBudgetSkipsTheChildInsteadOfEarningA429) {
  Json children = {{"gpt", {{"rpm", 2}}}};
  TestPlugin p(options({{"children", children}}),
               with_children({always("gpt", answer()), always("gemini", answer()),
                              always("rules", answer())}));
  EXPECT_EQ(p.process(event()).emitted[0].view().string("fallback_used"), "gpt");
  EXPECT_EQ(p.process(event()).emitted[0].view().string("fallback_used"), "gpt");
  EXPECT_EQ(p.process(event()).emitted[0].view().string("fallback_used"), "gemini");
  EXPECT_EQ(p.host().counter("fallback_skipped_total", "child=\"gpt\",reason=\"rpm\""), 1);
}

TEST(Fallback, TpmBudgetCountsTokensFromOutcomes) {
  ScriptedChild gpt{"gpt", [](EventView, size_t) {
                      auto a = answer();
                      a.outcome.with_usage(600, 500, "gpt-4.1");
                      return a;
                    }};
  TestPlugin p(options({{"children", {{"gpt", {{"tpm", 1000}}}}}}),
               with_children({gpt, always("gemini", answer()), always("rules", answer())}));
  auto first = p.process(event());
  EXPECT_EQ(first.emitted[0].view().string("fallback_used"), "gpt");
  EXPECT_EQ(first.outcome.input_tokens, 600);
  EXPECT_EQ(first.outcome.output_tokens, 500);
  EXPECT_EQ(first.outcome.model, "gpt-4.1");
  EXPECT_EQ(p.process(event()).emitted[0].view().string("fallback_used"), "gemini");
}

TEST(Fallback, BadOptionsNameTheOption) {
  auto opts = with_children(
      {always("gpt", answer()), always("gemini", answer()), always("rules", answer())});
  auto error = [&](Json o) {
    auto e = TestPlugin::create_error(options(std::move(o)), opts);
    return e ? e->key() + ": " + e->what() : std::string("accepted");
  };
  EXPECT_EQ(error({{"deadline", 0}}), "deadline: must be positive");
  EXPECT_EQ(error({{"retries", -1}}), "retries: must not be negative");
  EXPECT_EQ(error({{"on", {"timeout", "oops"}}}).rfind("on: unknown error class 'oops'", 0), 0u);
  EXPECT_EQ(error({{"hedge_after", 5000 * kMs}}).rfind("hedge_after: must be shorter", 0), 0u);
  EXPECT_EQ(error({{"children", {{"nope", Json::object()}}}}),
            "children: 'nope' is not in the chain");
  EXPECT_EQ(error({{"children", {{"gpt", {{"enabled", "$missing"}}}}}}),
            "children: gpt.enabled: no setting 'missing' in [settings]");
  EXPECT_EQ(error({{"children", {{"gpt", {{"breaker", {{"cooldown", "5s"}}}}}}}}),
            "children: gpt.breaker needs failures or error_rate");
  EXPECT_EQ(error({{"children", {{"gpt", {{"breaker", {{"failures", 1}, {"cooldown", "-5s"}}}}}}}})
                .rfind("children: gpt.breaker.cooldown must be a positive duration", 0),
            0u);
  EXPECT_EQ(error({{"children", {{"gpt", {{"color", 1}}}}}}),
            "children: gpt: unknown key 'color' (keys: enabled, breaker, rpm, tpm)");
}

}  // namespace
}  // namespace sluice::fallback
