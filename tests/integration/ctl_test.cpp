// The admin endpoint with the real `sluice` binary: `sluice ctl` against a running pipeline
// (token, errors, exit codes), a busy admin port and a bad address refused cleanly, `validate`
// and `run` refusing an endpoint beyond loopback without a token, and a setting whose save to
// the state database fails reported as a failure with nothing changed.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "loopback_http.hpp"
#include "pipeline_runner.hpp"
#include "process.hpp"

namespace sluice::testing {
namespace {

constexpr const char* kToken = "ctl-test-token-0123456789abcdef";

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

// An endless, slow pipeline whose filter reads $min_alert_usd; `admin` is the [admin] body.
std::string write_pipeline(const TempDir& dir, const std::string& admin) {
  return dir.write("p.toml", fmt::format(R"([pipeline]
name = "ctl_test"
state_dir = "{}/state"

[settings]
min_alert_usd = {{ value = 50000, min = 0, max = 1e9 }}

[admin]
{}

[sources.gen]
type = "generator"
count = 0
rate = 20

[processors.big]
type = "filter"
inputs = ["gen"]
where = "notional_usd >= $min_alert_usd"

[sinks.out]
type = "blackhole"
inputs = ["big"]
)",
                                         dir.path(), admin));
}

bool wait_for(const std::function<bool()>& cond,
              std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
  auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return cond();
}

// A pipeline process with its admin endpoint up on `port`.
class Running {
 public:
  Running(const std::string& file, uint16_t port, std::map<std::string, std::string> env = {})
      : child_({sluice_binary(), "run", file, "--quiet"}, std::move(env)) {
    const std::string line = fmt::format("admin endpoint on http://127.0.0.1:{}", port);
    ready_ = wait_for([&] { return child_.stderr_text().find(line) != std::string::npos; });
  }
  ~Running() { stop(); }
  bool ready() const { return ready_; }
  int stop() {
    if (rc_ != -2) return rc_;
    child_.signal(SIGTERM);
    rc_ = child_.wait(std::chrono::seconds(60));
    return rc_;
  }
  std::string log() const { return child_.stderr_text(); }

 private:
  ChildProcess child_;
  bool ready_ = false;
  int rc_ = -2;
};

CommandResult ctl(const std::vector<std::string>& args,
                  const std::map<std::string, std::string>& env = {}) {
  std::vector<std::string> argv = {sluice_binary(), "ctl"};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv, env, std::chrono::seconds(60));
}

TEST(Ctl, ListsGetsAndSetsSettingsWithTheTokenTheFileNames) {
  TempDir dir;
  uint16_t port = free_port();
  std::string file =
      write_pipeline(dir, fmt::format("port = {}\ntoken = \"${{SLUICE_ADMIN_TOKEN}}\"", port));
  std::map<std::string, std::string> env = {{"SLUICE_ADMIN_TOKEN", kToken}};
  Running p(file, port, env);
  ASSERT_TRUE(p.ready()) << p.log();

  CommandResult r = ctl({"-f", file, "settings"}, env);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "min_alert_usd = 50000\n");

  r = ctl({"-f", file, "set", "min_alert_usd", "25000"}, env);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "min_alert_usd = 25000\n");

  r = ctl({"-f", file, "get", "min_alert_usd"}, env);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "25000\n");

  // --admin with the token from a file.
  std::string token_file = dir.write("token", std::string(kToken) + "\n");
  r = ctl({"--admin", fmt::format("http://127.0.0.1:{}", port), "--token-file", token_file, "get",
           "min_alert_usd"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "25000\n");

  // Out of bounds: the server's reason, exit 1.
  r = ctl({"-f", file, "set", "min_alert_usd", "1e15"}, env);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("answered 400 Bad Request: setting 'min_alert_usd' must be between 0 and "
                       "1000000000.0, got 1e+15"),
            std::string::npos)
      << r.err;

  // No token: 401, exit 1.
  r = ctl({"--admin", fmt::format("http://127.0.0.1:{}", port), "settings"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("answered 401 Unauthorized: unauthorized"), std::string::npos) << r.err;

  EXPECT_EQ(p.stop(), 0) << p.log();
  EXPECT_EQ(p.log().find(kToken), std::string::npos);
  EXPECT_NE(p.log().find("setting 'min_alert_usd' changed to 25000"), std::string::npos);
}

TEST(Ctl, SaysWhichEndpointItCannotReach) {
  uint16_t port = free_port();
  CommandResult r = ctl({"--admin", fmt::format("http://127.0.0.1:{}", port), "settings"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find(fmt::format("cannot reach http://127.0.0.1:{}: Connection refused", port)),
            std::string::npos)
      << r.err;

  r = ctl({"--admin", "https://127.0.0.1:9464", "settings"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("invalid admin URL 'https://127.0.0.1:9464': it must start with http://"),
            std::string::npos)
      << r.err;

  r = ctl({"settings"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--admin http://127.0.0.1:9464 or -f FILE"), std::string::npos) << r.err;
}

// The scenario seen on main, against the real process: a web page's POST with a text/plain
// body and its own Origin changed min_alert_usd to 1e15, and the value survived a restart.
TEST(AdminEndpoint, ACrossSitePostDoesNotChangeASettingNorSurviveARestart) {
  TempDir dir;
  uint16_t port = free_port();
  std::string file = write_pipeline(dir, fmt::format("port = {}", port));
  {
    Running p(file, port);
    ASSERT_TRUE(p.ready()) << p.log();
    std::string res = loopback_http_raw(
        port, fmt::format("POST /settings/min_alert_usd HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n"
                          "Origin: http://evil.example\r\nContent-Type: text/plain\r\n"
                          "Connection: close\r\nContent-Length: 4\r\n\r\n1e15",
                          port));
    EXPECT_EQ(res.rfind("HTTP/1.1 403", 0), 0u) << res;
    // The same from a rebound name (no Origin: a same-origin page of evil.example).
    res = loopback_http_raw(
        port, fmt::format("PUT /settings/min_alert_usd HTTP/1.1\r\nHost: evil.example:{}\r\n"
                          "Content-Type: application/json\r\nConnection: close\r\n"
                          "Content-Length: 4\r\n\r\n1e15",
                          port));
    EXPECT_EQ(res.rfind("HTTP/1.1 421", 0), 0u) << res;
    EXPECT_EQ(p.stop(), 0) << p.log();
  }
  Running again(file, port);
  ASSERT_TRUE(again.ready()) << again.log();
  std::string res = loopback_http(port, "GET", "/settings");
  EXPECT_NE(res.find("{\"min_alert_usd\":50000}"), std::string::npos) << res;
}

TEST(AdminEndpoint, ABusyPortEndsTheRunWithAClearErrorAndNoAbort) {
  TempDir dir;
  uint16_t port = free_port();
  std::string file = write_pipeline(dir, fmt::format("port = {}", port));
  Running first(file, port);
  ASSERT_TRUE(first.ready()) << first.log();
  TempDir other;
  std::string second_file = write_pipeline(other, fmt::format("port = {}", port));
  CommandResult r =
      run_command({sluice_binary(), "run", second_file, "--quiet"}, {}, std::chrono::seconds(60));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find(fmt::format("admin endpoint: cannot listen on 127.0.0.1:{}: Address "
                                   "already in use",
                                   port)),
            std::string::npos)
      << r.err;
  EXPECT_EQ(r.err.find("terminate called"), std::string::npos) << r.err;
  EXPECT_EQ(first.stop(), 0) << first.log();
}

TEST(AdminEndpoint, AnAddressThatIsNotAnIpIsRefusedByValidateAndRun) {
  TempDir dir;
  std::string file = write_pipeline(dir, "address = \"not-an-ip\"");
  const std::string expected = file +
                               ":9:11: error: admin: 'address' must be an IP address such as "
                               "127.0.0.1 or ::1, got 'not-an-ip' (names are not resolved)";
  CommandResult v = run_command({sluice_binary(), "validate", file});
  EXPECT_EQ(v.exit_code, 2) << v.err;
  EXPECT_NE(v.err.find(expected), std::string::npos) << v.err;
  CommandResult r =
      run_command({sluice_binary(), "run", file, "--quiet"}, {}, std::chrono::seconds(60));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find(expected), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("terminate called"), std::string::npos) << r.err;
}

TEST(AdminEndpoint, BeyondLoopbackWithoutATokenValidateAndRunRefuseTheFile) {
  TempDir dir;
  std::string file = write_pipeline(dir, "address = \"0.0.0.0\"");
  for (const std::vector<std::string>& argv :
       {std::vector<std::string>{sluice_binary(), "validate", file},
        std::vector<std::string>{sluice_binary(), "run", file, "--quiet"}}) {
    CommandResult r = run_command(argv, {}, std::chrono::seconds(60));
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find(file + ":9:11: error: admin: address 0.0.0.0 is reachable beyond this "
                                "host, so a 'token' is required"),
              std::string::npos)
        << r.err;
  }
  std::string with_token =
      write_pipeline(dir, "address = \"0.0.0.0\"\ntoken = \"${SLUICE_ADMIN_TOKEN}\"");
  CommandResult ok =
      run_command({sluice_binary(), "validate", with_token}, {{"SLUICE_ADMIN_TOKEN", kToken}});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
}

// A trigger that refuses every write stands for a disk that cannot take it (tests run as root,
// so file modes would not stop the write).
void refuse_writes(const std::string& db_path) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(db_path.c_str(), &db), SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  char* err = nullptr;
  int rc = sqlite3_exec(db,
                        "CREATE TRIGGER refuse_insert BEFORE INSERT ON settings BEGIN "
                        "SELECT RAISE(ABORT, 'disk full (test)'); END; "
                        "CREATE TRIGGER refuse_update BEFORE UPDATE ON settings BEGIN "
                        "SELECT RAISE(ABORT, 'disk full (test)'); END;",
                        nullptr, nullptr, &err);
  std::string msg = err ? err : "";
  sqlite3_free(err);
  sqlite3_close(db);
  ASSERT_EQ(rc, SQLITE_OK) << msg;
}

TEST(AdminEndpoint, ASettingTheDatabaseDidNotTakeIsReportedAndNotApplied) {
  TempDir dir;
  uint16_t port = free_port();
  std::string file = write_pipeline(dir, fmt::format("port = {}", port));
  {
    Running p(file, port);
    ASSERT_TRUE(p.ready()) << p.log();
    refuse_writes(dir.file("state/state.db"));
    CommandResult r = ctl({"-f", file, "set", "min_alert_usd", "25000"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("answered 500 Internal Server Error: setting 'min_alert_usd' not "
                         "changed: cannot save it in "),
              std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("disk full (test)"), std::string::npos) << r.err;
    r = ctl({"-f", file, "get", "min_alert_usd"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "50000\n");
    EXPECT_EQ(p.stop(), 0) << p.log();
    EXPECT_NE(p.log().find("setting 'min_alert_usd' not changed"), std::string::npos) << p.log();
  }
  // What was acknowledged is what a restart sees.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(dir.file("state/state.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "DROP TRIGGER refuse_insert; DROP TRIGGER refuse_update;", nullptr,
                         nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  Running again(file, port);
  ASSERT_TRUE(again.ready()) << again.log();
  CommandResult r = ctl({"-f", file, "set", "min_alert_usd", "26000"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(again.stop(), 0) << again.log();
  Running third(file, port);
  ASSERT_TRUE(third.ready()) << third.log();
  r = ctl({"-f", file, "get", "min_alert_usd"});
  EXPECT_EQ(r.out, "26000\n") << r.err;
}

}  // namespace
}  // namespace sluice::testing
