// Real child processes for tests: run a command to completion with captured output, or start
// one in the background and signal/wait for it later.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace sluice::testing {

struct CommandResult {
  int exit_code = -1;  // -1: killed after the timeout; 128+N: killed by signal N
  std::string out;
  std::string err;
};

// Runs argv[0] (a path) with extra environment variables; kills it after `timeout`.
CommandResult run_command(const std::vector<std::string>& argv,
                          const std::map<std::string, std::string>& env = {},
                          std::chrono::milliseconds timeout = std::chrono::seconds(120),
                          const std::string& cwd = "");

class ChildProcess {
 public:
  ChildProcess(const std::vector<std::string>& argv,
               const std::map<std::string, std::string>& env = {}, const std::string& cwd = "");
  ~ChildProcess();  // SIGKILLs a child still running
  void signal(int sig);
  // Waits up to timeout; returns the exit code (as CommandResult) or -1 if still running.
  int wait(std::chrono::milliseconds timeout);
  std::string stderr_text() const;  // what the child wrote to stderr so far (file-backed)

 private:
  pid_t pid_ = -1;
  int status_ = -1;
  std::string err_path_;
};

}  // namespace sluice::testing
