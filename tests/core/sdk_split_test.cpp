// sluice::Split (sdk.hpp): one call split into parts and joined back into one outcome.
#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "sluice/sdk.hpp"

namespace sluice {
namespace {

// A call as a host makes it, recording its outcome.
struct Parent {
  sluice_call raw{};
  int done = 0;
  sluice_status status = SLUICE_OK;
  std::string message;
  double cost = 0;
  uint8_t event[4] = {1, 2, 3, 4};
  Parent() {
    raw.event = event;
    raw.event_size = sizeof(event);
    raw.host_data = this;
    raw.deadline_ns = 12345;
    raw.emit = [](sluice_call*, const char*, const uint8_t*, size_t) {};
    raw.done = [](sluice_call* c, const sluice_outcome* o) {
      auto* self = static_cast<Parent*>(c->host_data);
      ++self->done;
      self->status = o->status;
      self->message = o->message ? o->message : "";
      self->cost = o->cost_usd;
    };
  }
};

TEST(Split, CompletesOnceWhenEveryPartIsOkAndRunsOnOkFirst) {
  Parent parent;
  bool on_ok_ran = false;
  std::vector<Call> parts;
  {
    Split split(Call(&parent.raw), 3, [&] {
      on_ok_ran = true;
      EXPECT_EQ(parent.done, 0);
    });
    for (int i = 0; i < 3; ++i) parts.push_back(split.part());
  }
  for (Call& p : parts) {
    EXPECT_EQ(p.bytes().size(), 4u);  // the same event
    EXPECT_EQ(p.deadline_ns(), 12345);
  }
  parts[2].ok(0.5);
  parts[0].ok(0.25);
  EXPECT_EQ(parent.done, 0);
  parts[1].ok();
  EXPECT_EQ(parent.done, 1);
  EXPECT_TRUE(on_ok_ran);
  EXPECT_EQ(parent.status, SLUICE_OK);
  EXPECT_DOUBLE_EQ(parent.cost, 0.75);
}

TEST(Split, FailsWithTheFirstFailureAndEveryMessage) {
  Parent parent;
  std::vector<Call> parts;
  bool on_ok_ran = false;
  {
    Split split(Call(&parent.raw), 3, [&] { on_ok_ran = true; });
    for (int i = 0; i < 3; ++i) parts.push_back(split.part());
  }
  parts[0].fail(Status::kRateLimited, "chat 1: 429");
  parts[1].ok();
  parts[2].fail(Status::kServerError, "chat 3: 502");
  EXPECT_EQ(parent.done, 1);
  EXPECT_FALSE(on_ok_ran);
  EXPECT_EQ(parent.status, SLUICE_ERR_RATE_LIMITED);
  EXPECT_EQ(parent.message, "chat 1: 429; chat 3: 502");
}

TEST(Split, PartsCompletingOnManyThreadsCompleteTheCallOnce) {
  for (int round = 0; round < 50; ++round) {
    Parent parent;
    std::vector<Call> parts;
    {
      Split split(Call(&parent.raw), 8);
      for (int i = 0; i < 8; ++i) parts.push_back(split.part());
    }
    std::vector<std::thread> threads;
    for (Call& p : parts) threads.emplace_back([&p] { p.ok(); });
    for (auto& t : threads) t.join();
    ASSERT_EQ(parent.done, 1);
  }
}

TEST(Split, ADroppedPartCountsAsFailed) {
  Parent parent;
  {
    Split split(Call(&parent.raw), 2);
    Call kept = split.part();
    { Call dropped = split.part(); }
    kept.ok();
  }
  EXPECT_EQ(parent.done, 1);
  EXPECT_EQ(parent.status, SLUICE_ERR_INTERNAL);
}

}  // namespace
}  // namespace sluice
