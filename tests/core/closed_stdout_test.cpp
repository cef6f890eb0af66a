// `sluice run … | head`: the reader of stdout goes away while the pipeline runs. SIGPIPE used to
// kill the process mid-stream (exit 141), so the sinks after the console lost events. Now the
// process ignores SIGPIPE, the console sink logs the closed pipe once and stops printing, and
// the run drains normally: exit 0, every event in the file sink.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "pipeline_runner.hpp"

namespace sluice::core {
namespace {

using testing::TempDir;

constexpr int kEvents = 20'000;  // ~3 MB of console text: far more than a pipe holds

struct ChildRun {
  int exit_code = -1;
  std::string first_line;  // what the reader got before it went away
  std::string err;
};

// Runs argv with stdout on a pipe whose reader takes one line and closes it, as `head -n 1`.
ChildRun run_with_stdout_closed_early(const std::vector<std::string>& argv,
                                      const std::string& err_path) {
  int fds[2];
  if (::pipe(fds) != 0) return {};
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int in = ::open("/dev/null", O_RDONLY);
    const int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(in, 0);
    ::dup2(fds[1], 1);
    ::dup2(err, 2);
    ::close(fds[0]);
    ::close(fds[1]);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  ChildRun run;
  char c = 0;
  while (::read(fds[0], &c, 1) == 1 && c != '\n') run.first_line += c;
  ::close(fds[0]);  // the reader goes away with the stream in full flow

  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (WIFEXITED(status)) run.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) run.exit_code = 128 + WTERMSIG(status);
  std::ifstream in(err_path);
  std::stringstream ss;
  ss << in.rdbuf();
  run.err = ss.str();
  return run;
}

TEST(ClosedStdout, TheRunDrainsAndTheOtherSinksGetEveryEvent) {
  TempDir dir;
  const std::string out = dir.file("events.jsonl");
  const std::string path = dir.write("p.toml", fmt::format(R"([pipeline]
name = "closed_stdout"

[sources.gen]
type = "generator"
count = {0}

[sinks.console]
type = "console"
inputs = ["gen"]

[sinks.file]
type = "file"
inputs = ["gen"]
path = "{1}"
metadata = false
)",
                                                           kEvents, out));
  const ChildRun run = run_with_stdout_closed_early(
      {testing::sluice_binary(), "run", path, "--admin-port", "-1"}, dir.file("stderr.txt"));
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.first_line.find("[gen]"), std::string::npos) << run.first_line;
  EXPECT_EQ(testing::read_lines(out).size(), static_cast<size_t>(kEvents));
  size_t closed_lines = 0;
  std::istringstream lines(run.err);
  for (std::string line; std::getline(lines, line);) {
    if (line.find("broken pipe") != std::string::npos) ++closed_lines;
  }
  EXPECT_EQ(closed_lines, 1u) << run.err;
  EXPECT_NE(run.err.find("the reader of stdout went away (broken pipe)"), std::string::npos)
      << run.err;
}

}  // namespace
}  // namespace sluice::core
