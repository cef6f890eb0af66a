// The admin endpoint's access rules (Host, Origin, bearer token), its routes (PUT + JSON only),
// setting types and bounds ([settings] name = { value, min, max }), the [admin] checks of the
// loader, and an accept loop that survives running out of file descriptors.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "loopback_http.hpp"
#include "pipeline_runner.hpp"
#include "sluice/core/admin_client.hpp"
#include "sluice/core/admin_server.hpp"
#include "sluice/core/config.hpp"
#include "sluice/core/node_host.hpp"
#include "sluice/core/runtime.hpp"
#include "sluice/core/state.hpp"

namespace sluice::core {
namespace {

using testing::loopback_http;
using testing::loopback_http_raw;
using testing::TempDir;

constexpr const char* kToken = "0123456789abcdef0123456789abcdef";

HttpRequest request(const std::string& method, const std::string& target, const std::string& host) {
  HttpRequest r;
  r.method = method;
  r.target = target;
  r.host = host;
  r.host_present = true;
  return r;
}

int refusal_status(const AdminAccess& access, const HttpRequest& r) {
  auto refused = admin_refusal(access, 9464, r);
  return refused ? refused->status : 0;
}

TEST(AdminAccess, TakesTheLoopbackNamesWithTheEndpointsPort) {
  AdminAccess access;
  for (const char* host : {"127.0.0.1:9464", "localhost:9464", "[::1]:9464", "LocalHost:9464"}) {
    EXPECT_EQ(refusal_status(access, request("GET", "/metrics", host)), 0) << host;
  }
}

TEST(AdminAccess, RefusesAForeignHostEvenForReadsBecauseOfDnsRebinding) {
  AdminAccess access;
  for (const char* host :
       {"evil.example:9464", "evil.example", "127.0.0.1:80", "127.0.0.1", "localhost:9465", ""}) {
    auto refused = admin_refusal(access, 9464, request("GET", "/settings", host));
    ASSERT_TRUE(refused) << host;
    EXPECT_EQ(refused->status, 421) << host;
    EXPECT_NE(refused->body.find("does not name this endpoint"), std::string::npos);
  }
  HttpRequest none = request("GET", "/metrics", "");
  none.host_present = false;
  auto refused = admin_refusal(access, 9464, none);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 421);
  EXPECT_NE(refused->body.find("no Host header"), std::string::npos) << refused->body;
}

TEST(AdminAccess, TakesTheConfiguredAddressAndHosts) {
  AdminAccess access{"10.1.2.3", kToken, {"metrics.example.org", "proxy.example:8080"}};
  auto with_token = [](HttpRequest r) {
    r.authorization = std::string("Bearer ") + kToken;
    return r;
  };
  for (const char* host : {"10.1.2.3:9464", "metrics.example.org:9464", "proxy.example:8080"}) {
    EXPECT_EQ(refusal_status(access, with_token(request("GET", "/metrics", host))), 0) << host;
  }
  EXPECT_EQ(refusal_status(access, with_token(request("GET", "/metrics", "metrics.example.org"))),
            421);
  AdminAccess v6{"::1", "", {}};
  EXPECT_EQ(refusal_status(v6, request("GET", "/metrics", "[::1]:9464")), 0);
}

TEST(AdminAccess, RefusesAForeignOriginWithForbidden) {
  AdminAccess access;
  for (const char* origin :
       {"http://evil.example", "null", "http://127.0.0.1:8000", "https://127.0.0.1:9464", ""}) {
    HttpRequest r = request("PUT", "/settings/min_alert_usd", "127.0.0.1:9464");
    r.origin = origin;
    r.origin_present = true;
    auto refused = admin_refusal(access, 9464, r);
    ASSERT_TRUE(refused) << origin;
    EXPECT_EQ(refused->status, 403) << origin;
    EXPECT_NE(refused->body.find("another origin"), std::string::npos);
  }
  for (const char* origin : {"http://127.0.0.1:9464", "http://localhost:9464"}) {
    HttpRequest r = request("PUT", "/settings/min_alert_usd", "127.0.0.1:9464");
    r.origin = origin;
    r.origin_present = true;
    EXPECT_EQ(refusal_status(access, r), 0) << origin;
  }
}

TEST(AdminAccess, WithATokenEveryRequestButTheProbesNeedsIt) {
  AdminAccess access{"127.0.0.1", kToken, {}};
  HttpRequest r = request("GET", "/metrics", "127.0.0.1:9464");
  auto refused = admin_refusal(access, 9464, r);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 401);
  ASSERT_EQ(refused->headers.size(), 1u);
  EXPECT_EQ(refused->headers[0].first, "WWW-Authenticate");

  r.authorization = "Bearer 0123456789abcdef0123456789abcdeX";
  refused = admin_refusal(access, 9464, r);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 401);
  EXPECT_EQ(refused->body.find(kToken), std::string::npos);
  r.authorization = std::string("Bearer ") + kToken + "0";
  EXPECT_EQ(refusal_status(access, r), 401);
  r.authorization = std::string("Basic ") + kToken;
  EXPECT_EQ(refusal_status(access, r), 401);

  r.authorization = std::string("Bearer ") + kToken;
  EXPECT_EQ(refusal_status(access, r), 0);
  r.authorization = std::string("bearer ") + kToken;
  EXPECT_EQ(refusal_status(access, r), 0);

  EXPECT_EQ(refusal_status(access, request("GET", "/health", "127.0.0.1:9464")), 0);
  EXPECT_EQ(refusal_status(access, request("GET", "/ready", "127.0.0.1:9464")), 0);
  EXPECT_EQ(refusal_status(access, request("PUT", "/health", "127.0.0.1:9464")), 401);
}

// --- settings: type and bounds ---

TEST(SettingsBounds, CheckNamesTheSettingAndItsBounds) {
  SettingsStore s({SettingSpec{"min_alert_usd", 50000, {}, 0, 1e9},
                   SettingSpec{"floor", 5, {}, 1, nullptr}, SettingSpec{"side", "SELL", {}}});
  EXPECT_EQ(s.check("min_alert_usd", 25000), "");
  EXPECT_EQ(s.check("min_alert_usd", 0), "");
  EXPECT_EQ(s.check("min_alert_usd", 1e9), "");
  EXPECT_EQ(s.check("min_alert_usd", 1e15),
            "setting 'min_alert_usd' must be between 0 and 1000000000.0, got 1e+15");
  EXPECT_EQ(s.check("min_alert_usd", -1),
            "setting 'min_alert_usd' must be between 0 and 1000000000.0, got -1");
  EXPECT_EQ(s.check("floor", 0), "setting 'floor' must be at least 1, got 0");
  EXPECT_EQ(s.check("min_alert_usd", "1e15"), "setting 'min_alert_usd' is a number, got a string");
  EXPECT_EQ(s.check("side", 1), "setting 'side' is a string, got a number");
  EXPECT_EQ(s.check("nope", 1), "unknown setting 'nope' (settings: floor, min_alert_usd, side)");
  // set() refuses what check() refuses, and the value stays.
  EXPECT_EQ(s.set("min_alert_usd", 1e15),
            "setting 'min_alert_usd' must be between 0 and 1000000000.0, got 1e+15");
  EXPECT_EQ(*s.get("min_alert_usd"), 50000);
  EXPECT_EQ(s.set("min_alert_usd", 60000), "");
  EXPECT_EQ(*s.get("min_alert_usd"), 60000);
}

TEST(SettingsBounds, AValueSavedBeforeTheBoundsWereDeclaredIsIgnoredAtTheNextStart) {
  TempDir dir;
  {
    SettingsStore unbounded(dir.path(), {SettingSpec{"min_alert_usd", 50000, {}}});
    ASSERT_EQ(unbounded.set("min_alert_usd", 1e15), "");
  }
  SettingsStore bounded(dir.path(), {SettingSpec{"min_alert_usd", 50000, {}, 0, 1e9}});
  EXPECT_EQ(*bounded.get("min_alert_usd"), 50000);
}

PluginCatalog catalog() { return testing::test_registry().catalog(); }

constexpr const char* kNodes = R"(
[sources.gen]
type = "generator"
count = 1

[sinks.out]
type = "blackhole"
inputs = ["gen"]
)";

std::vector<std::string> load_errors(const std::string& head,
                                     const std::map<std::string, std::string>& env = {}) {
  try {
    load_pipeline_text(head + kNodes, "p.toml", catalog(),
                       [env](const std::string& n) -> std::optional<std::string> {
                         auto it = env.find(n);
                         if (it == env.end()) return std::nullopt;
                         return it->second;
                       });
  } catch (const ConfigError& e) {
    std::vector<std::string> out;
    for (const Diagnostic& d : e.diagnostics()) out.push_back(d.format());
    return out;
  }
  return {};
}

TEST(SettingsBounds, TheLoaderReadsBothForms) {
  PipelineSpec spec = load_pipeline_text(std::string(R"([settings]
plain = 10
min_alert_usd = { value = 50000, min = 0, max = 1e9 }
ratio = { value = 0.5, max = 1 }
)") + kNodes,
                                         "p.toml", catalog());
  ASSERT_EQ(spec.settings.size(), 3u);
  EXPECT_EQ(spec.settings[0].value, 10);
  EXPECT_TRUE(spec.settings[0].min.is_null());
  EXPECT_EQ(spec.settings[1].value, 50000);
  EXPECT_EQ(spec.settings[1].min, 0);
  EXPECT_EQ(spec.settings[1].max, 1e9);
  EXPECT_EQ(spec.settings[1].pos.line, 3u);
  EXPECT_TRUE(spec.settings[2].min.is_null());
  EXPECT_EQ(spec.settings[2].max, 1);
}

TEST(SettingsBounds, TheLoaderRefusesADefaultOutsideItsBoundsWithFileAndLine) {
  EXPECT_EQ(load_errors("[settings]\nmin_alert_usd = { value = 5e9, min = 0, max = 1e9 }\n"),
            std::vector<std::string>{
                "p.toml:2:27: error: settings.min_alert_usd: the default is outside its bounds: "
                "setting 'min_alert_usd' must be between 0 and 1000000000.0, got 5000000000.0"});
  EXPECT_EQ(load_errors("[settings]\nx = { value = 5, min = 9, max = 1 }\n"),
            std::vector<std::string>{
                "p.toml:2:24: error: settings.x: 'min' (9) is greater than 'max' (1)"});
  EXPECT_EQ(load_errors("[settings]\nside = { value = \"SELL\", min = 1 }\n"),
            std::vector<std::string>{"p.toml:2:32: error: settings.side: 'min' applies only to a "
                                     "number setting (this one is a string)"});
  EXPECT_EQ(load_errors("[settings]\nx = { min = 1 }\n"),
            std::vector<std::string>{"p.toml:2:5: error: settings.x: missing 'value' (the "
                                     "setting's default, e.g. { value = 10000, min = 0 })"});
  EXPECT_EQ(load_errors("[settings]\nx = { value = 1, maximum = 2 }\n"),
            std::vector<std::string>{"p.toml:2:18: error: settings.x: unknown key 'maximum' "
                                     "(valid keys: value, min, max)"});
}

// --- [admin] in the loader ---

TEST(AdminConfig, RefusesAnAddressThatIsNotAnIpWithFileAndLine) {
  EXPECT_EQ(load_errors("[admin]\naddress = \"not-an-ip\"\n"),
            std::vector<std::string>{
                "p.toml:2:11: error: admin: 'address' must be an IP address such as 127.0.0.1 or "
                "::1, got 'not-an-ip' (names are not resolved)"});
}

TEST(AdminConfig, BeyondLoopbackATokenIsRequired) {
  auto errors = load_errors("[admin]\naddress = \"0.0.0.0\"\n");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].rfind("p.toml:2:11: error: admin: address 0.0.0.0 is reachable beyond this "
                            "host, so a 'token' is required",
                            0),
            0u)
      << errors[0];
  EXPECT_EQ(load_errors("[admin]\naddress = \"::\"\n").size(), 1u);
  EXPECT_EQ(load_errors("[admin]\naddress = \"0.0.0.0\"\ntoken = \"${SLUICE_ADMIN_TOKEN}\"\n",
                        {{"SLUICE_ADMIN_TOKEN", kToken}}),
            std::vector<std::string>{});
  // Off, it needs none; on loopback neither.
  EXPECT_EQ(load_errors("[admin]\naddress = \"0.0.0.0\"\nenabled = false\n"),
            std::vector<std::string>{});
  EXPECT_EQ(load_errors("[admin]\naddress = \"127.0.0.2\"\n"), std::vector<std::string>{});
  EXPECT_EQ(load_errors("[admin]\naddress = \"::1\"\n"), std::vector<std::string>{});
}

TEST(AdminConfig, ATooShortTokenIsRefusedWithoutShowingIt) {
  auto errors = load_errors("[admin]\ntoken = \"${T}\"\n", {{"T", "hunter2"}});
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0],
            "p.toml:2:9: error: admin: 'token' is too short (7 characters); use at least 16 "
            "random characters, e.g. from `openssl rand -hex 32`");
  EXPECT_EQ(errors[0].find("hunter2"), std::string::npos);
  // Unset with an empty default: no token.
  PipelineSpec spec =
      load_pipeline_text(std::string("[admin]\ntoken = \"${SLUICE_ADMIN_TOKEN:-}\"\n") + kNodes,
                         "p.toml", catalog(), [](const std::string&) { return std::nullopt; });
  EXPECT_EQ(spec.admin.token, "");
}

TEST(AdminConfig, APortPlusTheLastGroupsIndexPast65535IsRefused) {
  auto errors = load_errors(R"([admin]
port = 65535

[placement]
a = { nodes = ["gen"] }
b = { nodes = ["out"] }
)");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0],
            "p.toml:2:8: error: admin: 'port' 65535 plus the index of placement group 'b' is "
            "65536, past 65535; use a port of at most 65534");
}

TEST(AdminConfig, LoopbackMeansLoopback) {
  EXPECT_TRUE(is_loopback_address("127.0.0.1"));
  EXPECT_TRUE(is_loopback_address("127.255.0.9"));
  EXPECT_TRUE(is_loopback_address("::1"));
  EXPECT_TRUE(is_loopback_address("::ffff:127.0.0.1"));
  EXPECT_FALSE(is_loopback_address("0.0.0.0"));
  EXPECT_FALSE(is_loopback_address("::"));
  EXPECT_FALSE(is_loopback_address("10.0.0.1"));
  EXPECT_FALSE(is_loopback_address("localhost"));
}

// --- the routes, in a running pipeline ---

class AdminPipeline : public ::testing::Test {
 protected:
  void start(const std::string& admin = "") {
    std::string path = dir_.write("p.toml", fmt::format(R"(
[pipeline]
name = "admin_test"
state_dir = "{}/state"

[settings]
min_alert_usd = {{ value = 50000, min = 0, max = 1e9 }}

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
                                                        dir_.path(), admin));
    RunOptions opts;
    opts.admin_port = 0;
    opts.print_summary = false;
    pipeline_ =
        std::make_unique<Pipeline>(testing::load_spec(path), testing::test_registry(), opts);
    runner_ = std::thread([this] { rc_ = pipeline_->run(); });
    for (int i = 0; i < 1000 && pipeline_->admin_port() == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    port_ = pipeline_->admin_port();
    ASSERT_NE(port_, 0);
  }
  void stop() {
    if (!pipeline_) return;
    pipeline_->stop();
    runner_.join();
    pipeline_.reset();
  }
  void TearDown() override { stop(); }

  std::string send(const std::string& method, const std::string& target, const std::string& headers,
                   const std::string& body = "") {
    return loopback_http_raw(
        port_, fmt::format("{} {} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n{}"
                           "Content-Length: {}\r\n\r\n{}",
                           method, target, port_, headers, body.size(), body));
  }

  TempDir dir_;
  std::unique_ptr<Pipeline> pipeline_;
  std::thread runner_;
  int rc_ = -1;
  uint16_t port_ = 0;
};

// The attack seen on main: a web page POSTs a text/plain body (no CORS preflight) from its own
// origin. It changed min_alert_usd to 1e15 and the change survived a restart.
TEST_F(AdminPipeline, ACrossSitePostWithATextBodyChangesNothingAcrossARestart) {
  start();
  std::string res = send("POST", "/settings/min_alert_usd",
                         "Origin: http://evil.example\r\nContent-Type: text/plain\r\n", "1e15");
  EXPECT_EQ(res.rfind("HTTP/1.1 403", 0), 0u) << res;
  stop();
  start();
  res = loopback_http(port_, "GET", "/settings/min_alert_usd");
  EXPECT_EQ(res.rfind("HTTP/1.1 200", 0), 0u) << res;
  EXPECT_NE(res.find("\r\n\r\n50000\n"), std::string::npos) << res;
}

TEST_F(AdminPipeline, ChangesOnlyByPutWithAJsonBody) {
  start();
  std::string res =
      send("POST", "/settings/min_alert_usd", "Content-Type: application/json\r\n", "25000");
  EXPECT_EQ(res.rfind("HTTP/1.1 405", 0), 0u) << res;
  EXPECT_NE(res.find("Allow: GET, PUT"), std::string::npos) << res;
  EXPECT_NE(res.find("change a setting with PUT and a JSON body"), std::string::npos) << res;
  res = send("PUT", "/settings/min_alert_usd", "Content-Type: text/plain\r\n", "25000");
  EXPECT_EQ(res.rfind("HTTP/1.1 415", 0), 0u) << res;
  EXPECT_NE(res.find("Content-Type must be application/json, got 'text/plain'"), std::string::npos);
  res = send("PUT", "/settings/min_alert_usd",
             "Content-Type: application/x-www-form-urlencoded\r\n", "25000");
  EXPECT_EQ(res.rfind("HTTP/1.1 415", 0), 0u) << res;
  res = send("PUT", "/settings/min_alert_usd", "", "25000");
  EXPECT_EQ(res.rfind("HTTP/1.1 415", 0), 0u) << res;
  EXPECT_EQ(*pipeline_->settings().get("min_alert_usd"), 50000);

  res = send("PUT", "/settings/min_alert_usd", "Content-Type: application/json\r\n", "1e15");
  EXPECT_EQ(res.rfind("HTTP/1.1 400", 0), 0u) << res;
  EXPECT_NE(res.find("setting 'min_alert_usd' must be between 0 and 1000000000.0, got 1e+15"),
            std::string::npos)
      << res;
  res = send("PUT", "/settings/min_alert_usd",
             "Content-Type: application/json; charset=utf-8\r\nOrigin: http://127.0.0.1:" +
                 std::to_string(port_) + "\r\n",
             "25000");
  EXPECT_EQ(res.rfind("HTTP/1.1 200", 0), 0u) << res;
  EXPECT_EQ(*pipeline_->settings().get("min_alert_usd"), 25000);
}

TEST_F(AdminPipeline, AForeignHostCannotReadMetricsOrSettings) {
  start();
  for (const char* target : {"/metrics", "/settings"}) {
    std::string res = loopback_http_raw(
        port_, fmt::format("GET {} HTTP/1.1\r\nHost: rebound.example:{}\r\nConnection: "
                           "close\r\n\r\n",
                           target, port_));
    EXPECT_EQ(res.rfind("HTTP/1.1 421", 0), 0u) << res;
    EXPECT_EQ(res.find("min_alert_usd"), std::string::npos) << res;
  }
}

TEST_F(AdminPipeline, ATokenGuardsEverythingButTheProbes) {
  setenv("SLUICE_TEST_ADMIN_TOKEN", kToken, 1);
  start("[admin]\ntoken = \"${SLUICE_TEST_ADMIN_TOKEN}\"");
  std::string res = loopback_http(port_, "GET", "/settings");
  EXPECT_EQ(res.rfind("HTTP/1.1 401", 0), 0u) << res;
  res = loopback_http(port_, "GET", "/health");
  EXPECT_EQ(res.rfind("HTTP/1.1 200", 0), 0u) << res;
  res = send(
      "PUT", "/settings/min_alert_usd",
      std::string("Content-Type: application/json\r\nAuthorization: Bearer ") + kToken + "\r\n",
      "30000");
  EXPECT_EQ(res.rfind("HTTP/1.1 200", 0), 0u) << res;
  EXPECT_EQ(*pipeline_->settings().get("min_alert_usd"), 30000);

  // The client `sluice ctl` uses sends it too.
  AdminUrl url;
  url.host = "127.0.0.1";
  url.port = port_;
  AdminReply reply =
      admin_request(url, "GET", "/settings/min_alert_usd", kToken, "", std::chrono::seconds(10));
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.body, "30000\n");
  reply = admin_request(url, "GET", "/settings", "", "", std::chrono::seconds(10));
  EXPECT_EQ(reply.status, 401);
  unsetenv("SLUICE_TEST_ADMIN_TOKEN");
}

// --- the accept loop ---

// With the descriptor table full, accept() fails with EMFILE; on main the loop stopped for good
// and the endpoint never answered again. Now it retries: once descriptors are free, the pending
// connection is served.
TEST(AdminServerAccept, KeepsServingAfterRunningOutOfFileDescriptors) {
  AdminServer server(AdminAccess{}, 0, [](const HttpRequest&) {
    return HttpResponse{200, "text/plain", "served\n", {}};
  });
  int client = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(client, 0);

  // Formatted before the descriptors run out: UBSan's checks inside fmt need a free one.
  const std::string req = fmt::format(
      "GET /health HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n", server.port());
  // The server's "accept failed" line is not logged in this test: under UBSan every log line
  // runs vptr checks (in fmt's buffer, through spdlog) that need a free descriptor for a pipe,
  // and report a false error without one.
  auto admin_logger = make_logger("sluice.admin");
  const auto level = admin_logger->level();
  admin_logger->set_level(spdlog::level::off);
  rlimit old{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &old), 0);
  // Keep the table small, so filling it is quick: the highest descriptor in use plus a few.
  int probe = dup(0);
  ASSERT_GE(probe, 0);
  close(probe);
  rlimit low = old;
  low.rlim_cur = static_cast<rlim_t>(probe + 16);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  std::vector<int> filler;
  for (int fd; (fd = dup(0)) >= 0;) filler.push_back(fd);
  ASSERT_EQ(errno, EMFILE);

  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(server.port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(write(client, req.data(), req.size()), static_cast<ssize_t>(req.size()));
  // The server tries (and fails) to accept for a while; several backoff rounds pass.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  for (int fd : filler) close(fd);
  setrlimit(RLIMIT_NOFILE, &old);
  admin_logger->set_level(level);

  std::string out;
  pollfd p{client, POLLIN, 0};
  char buf[1024];
  while (poll(&p, 1, 10000) > 0) {
    ssize_t n = read(client, buf, sizeof(buf));
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  close(client);
  EXPECT_EQ(out.rfind("HTTP/1.1 200", 0), 0u) << out;
  EXPECT_NE(out.find("served"), std::string::npos) << out;
}

}  // namespace
}  // namespace sluice::core
