// fork/exec helpers with output captured through temporary files (no pipe deadlocks).
#include "process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

namespace sluice::testing {
namespace {

std::string temp_file() {
  char tmpl[] = "/tmp/sluice-proc-XXXXXX";
  int fd = mkstemp(tmpl);
  close(fd);
  return tmpl;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

pid_t spawn(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
            const std::string& cwd, const std::string& out, const std::string& err) {
  pid_t pid = fork();
  if (pid != 0) return pid;
  int in_fd = open("/dev/null", O_RDONLY);
  int out_fd = open(out.c_str(), O_WRONLY | O_TRUNC);
  int err_fd = open(err.c_str(), O_WRONLY | O_TRUNC);
  dup2(in_fd, 0);
  dup2(out_fd, 1);
  dup2(err_fd, 2);
  if (!cwd.empty() && chdir(cwd.c_str()) != 0) _exit(126);
  for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  execv(args[0], args.data());
  _exit(127);
}

int decode(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

int wait_for(pid_t pid, std::chrono::milliseconds timeout, int* status) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    pid_t r = waitpid(pid, status, WNOHANG);
    if (r == pid) return decode(*status);
    if (std::chrono::steady_clock::now() >= deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace

CommandResult run_command(const std::vector<std::string>& argv,
                          const std::map<std::string, std::string>& env,
                          std::chrono::milliseconds timeout, const std::string& cwd) {
  std::string out = temp_file();
  std::string err = temp_file();
  pid_t pid = spawn(argv, env, cwd, out, err);
  int status = 0;
  CommandResult r;
  r.exit_code = wait_for(pid, timeout, &status);
  if (r.exit_code == -1) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
  }
  r.out = slurp(out);
  r.err = slurp(err);
  unlink(out.c_str());
  unlink(err.c_str());
  return r;
}

ChildProcess::ChildProcess(const std::vector<std::string>& argv,
                           const std::map<std::string, std::string>& env, const std::string& cwd) {
  err_path_ = temp_file();
  pid_ = spawn(argv, env, cwd, "/dev/null", err_path_);
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0 && status_ == -1) {
    kill(pid_, SIGKILL);
    int st = 0;
    waitpid(pid_, &st, 0);
  }
  unlink(err_path_.c_str());
}

void ChildProcess::signal(int sig) {
  if (pid_ > 0 && status_ == -1) kill(pid_, sig);
}

int ChildProcess::wait(std::chrono::milliseconds timeout) {
  if (status_ != -1) return status_;
  int st = 0;
  int code = wait_for(pid_, timeout, &st);
  if (code != -1) status_ = code;
  return code;
}

std::string ChildProcess::stderr_text() const { return slurp(err_path_); }

}  // namespace sluice::testing
