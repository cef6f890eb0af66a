// One pipeline file run as several real `sluice run --process NAME` processes, over ipc and
// tcp (loopback), checking every event arrives exactly once; plus signal-driven drains.
#include <gtest/gtest.h>

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <set>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "pipeline_runner.hpp"
#include "process.hpp"

namespace sluice::testing {
namespace {

uint16_t free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

std::string pipeline_text(const TempDir& dir, const std::string& work, const std::string& store) {
  return fmt::format(R"(
[pipeline]
name = "mp"
state_dir = "{0}/state"

[sources.gen]
type = "generator"
count = 3000

[processors.big]
type = "filter"
inputs = ["gen"]
where = "notional_usd >= 0"

[sinks.out]
type = "file"
inputs = ["big"]
path = "{0}/out.jsonl"

[placement]
ingest = {{ nodes = ["gen"] }}
work = {{ nodes = ["big"]{1} }}
store = {{ nodes = ["out"]{2} }}
)", dir.path(), work, store);
}

void run_groups_and_check(const TempDir& dir, const std::string& file) {
  // The source starts first: its events queue until the downstream processes bind.
  std::vector<std::unique_ptr<ChildProcess>> procs;
  for (const char* group : {"ingest", "work", "store"}) {
    procs.push_back(std::make_unique<ChildProcess>(std::vector<std::string>{
        sluice_binary(), "run", file, "--process", group, "--admin-port", "-1"}));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  bool all_ok = true;
  for (auto& p : procs) all_ok &= p->wait(std::chrono::seconds(90)) == 0;
  if (!all_ok) {
    // Every process's log: a lost confirmation shows on the sender, its cause on the receiver.
    for (size_t i = 0; i < procs.size(); ++i) {
      ADD_FAILURE() << "process " << i << " exited " << procs[i]->wait(std::chrono::seconds(0))
                    << ":\n"
                    << procs[i]->stderr_text();
    }
  }
  std::set<uint64_t> ids;
  size_t lines = 0;
  for (const std::string& line : read_lines(dir.file("out.jsonl"))) {
    ids.insert(nlohmann::json::parse(line)["_sluice"]["id"].get<uint64_t>());
    ++lines;
  }
  EXPECT_EQ(lines, 3000u);
  ASSERT_EQ(ids.size(), 3000u);
  EXPECT_EQ(*ids.begin(), 1u);
  EXPECT_EQ(*ids.rbegin(), 3000u);
}

TEST(MultiProcess, EveryEventArrivesOnceAcrossProcessesOverIpc) {
  TempDir dir;
  std::string file = dir.write("mp.toml", pipeline_text(dir, "", ""));
  run_groups_and_check(dir, file);
}

TEST(MultiProcess, EveryEventArrivesOnceAcrossProcessesOverTcp) {
  TempDir dir;
  std::string file = dir.write(
      "mp.toml", pipeline_text(dir, fmt::format(", host = \"127.0.0.1\", port = {}", free_port()),
                               fmt::format(", host = \"127.0.0.1\", port = {}", free_port())));
  run_groups_and_check(dir, file);
}

TEST(MultiProcess, SameFileRunsAsOneProcessWithoutProcessFlag) {
  TempDir dir;
  std::string file = dir.write("mp.toml", pipeline_text(dir, "", ""));
  auto r = run_command({sluice_binary(), "run", file, "--admin-port", "-1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_lines(dir.file("out.jsonl")).size(), 3000u);
}

TEST(MultiProcess, UnknownProcessGroupIsAClearError) {
  TempDir dir;
  std::string file = dir.write("mp.toml", pipeline_text(dir, "", ""));
  auto r = run_command({sluice_binary(), "run", file, "--process", "ingets"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--process ingets: no such placement group (groups: ingest, work, store)"),
            std::string::npos)
      << r.err;
}

TEST(Signals, SigtermDrainsAndExitsZeroWithSummary) {
  TempDir dir;
  std::string file = dir.write("p.toml", fmt::format(R"(
[pipeline]
name = "sig"
state_dir = "{0}/state"

[sources.gen]
type = "generator"
rate = 500.0

[sinks.out]
type = "file"
inputs = ["gen"]
path = "{0}/out.jsonl"
)", dir.path()));
  ChildProcess p({sluice_binary(), "run", file, "--admin-port", "-1"});
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  p.signal(SIGTERM);
  EXPECT_EQ(p.wait(std::chrono::seconds(30)), 0) << p.stderr_text();
  std::string err = p.stderr_text();
  EXPECT_NE(err.find("received Terminated, draining"), std::string::npos) << err;
  EXPECT_NE(err.find("events/s"), std::string::npos);
  // Everything the source emitted was written before exit.
  auto lines = read_lines(dir.file("out.jsonl"));
  EXPECT_GT(lines.size(), 0u);
  EXPECT_NE(err.find(fmt::format(" {:>10} ", lines.size())), std::string::npos) << err;
}

}  // namespace
}  // namespace sluice::testing
