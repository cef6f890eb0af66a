// Edges between processes, with real `sluice` processes: any start order without loss, stops
// that report what was not delivered, consumer-only and failing stages that end cleanly, CURVE
// authentication, the frame size limit and the private ipc directory.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include <array>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "pipeline_runner.hpp"
#include "process.hpp"
#include "sluice/sdk.hpp"

namespace sluice::testing {
namespace {
namespace fs = std::filesystem;
using namespace std::chrono_literals;

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

// Waits until the child's stderr contains `text`; false after `timeout`.
bool wait_for_log(const ChildProcess& p, const std::string& text,
                  std::chrono::milliseconds timeout = 30s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (p.stderr_text().find(text) != std::string::npos) return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

std::vector<std::string> run_args(const std::string& file, const std::string& group) {
  return {sluice_binary(), "run", file, "--process", group, "--admin-port", "-1"};
}

// ingest = [gen] → work = [big] → store = [out]; `work_extra` / `store_extra` add keys to the
// placement groups (host/port for tcp, CURVE keys).
std::string three_groups(const TempDir& dir, const std::string& source,
                         const std::string& ingest_extra, const std::string& work_extra,
                         const std::string& store_extra) {
  return fmt::format(R"([pipeline]
name = "edges"
state_dir = "{0}/state"
grace_period = "1s"

[sources.gen]
type = "generator"
{1}

[processors.big]
type = "filter"
inputs = ["gen"]
where = "notional_usd >= 0"

[sinks.out]
type = "file"
inputs = ["big"]
path = "{0}/out.jsonl"

[placement]
ingest = {{ nodes = ["gen"]{2} }}
work = {{ nodes = ["big"]{3} }}
store = {{ nodes = ["out"]{4} }}
)",
                     dir.path(), source, ingest_extra, work_extra, store_extra);
}

std::set<uint64_t> output_ids(const TempDir& dir, size_t* lines) {
  std::set<uint64_t> ids;
  *lines = 0;
  for (const std::string& line : read_lines(dir.file("out.jsonl"))) {
    ids.insert(nlohmann::json::parse(line)["_sluice"]["id"].get<uint64_t>());
    ++*lines;
  }
  return ids;
}

void expect_all_3000(const TempDir& dir) {
  size_t lines = 0;
  std::set<uint64_t> ids = output_ids(dir, &lines);
  EXPECT_EQ(lines, 3000u);
  ASSERT_EQ(ids.size(), 3000u);
  EXPECT_EQ(*ids.begin(), 1u);
  EXPECT_EQ(*ids.rbegin(), 3000u);
}

// ---- start order and undelivered events ---------------------------------------------------

TEST(EdgeDelivery, UpstreamWhoseSourceEndsFirstWaitsForItsLateDownstream) {
  TempDir dir;
  std::string file = dir.write("p.toml", three_groups(dir, "count = 3000", "", "", ""));
  ChildProcess ingest(run_args(file, "ingest"));
  // Far longer than the old linger (max(grace_period, 1s)) after which events were dropped.
  ASSERT_TRUE(wait_for_log(ingest, "waiting for downstream process 'work' at ipc://"))
      << ingest.stderr_text();
  EXPECT_EQ(ingest.wait(3s), -1) << "exited without a downstream: " << ingest.stderr_text();
  ChildProcess store(run_args(file, "store"));
  ChildProcess work(run_args(file, "work"));
  EXPECT_EQ(ingest.wait(60s), 0) << ingest.stderr_text();
  EXPECT_EQ(work.wait(60s), 0) << work.stderr_text();
  EXPECT_EQ(store.wait(60s), 0) << store.stderr_text();
  expect_all_3000(dir);
}

TEST(EdgeDelivery, StoppedUpstreamExitsNonZeroWithTheCountItCouldNotDeliver) {
  TempDir dir;
  std::string file = dir.write("p.toml", three_groups(dir, "count = 3000", "", "", ""));
  ChildProcess ingest(run_args(file, "ingest"));
  ASSERT_TRUE(wait_for_log(ingest, "waiting for downstream process 'work'"))
      << ingest.stderr_text();
  ingest.signal(SIGTERM);
  EXPECT_EQ(ingest.wait(30s), 1) << ingest.stderr_text();
  std::string err = ingest.stderr_text();
  EXPECT_NE(err.find("1 of 1 events on the edge to node 'big' (process 'work' at ipc://"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("1 events could not be delivered to other processes"), std::string::npos)
      << err;
  EXPECT_NE(err.find("undelivered"), std::string::npos) << err;  // the summary's column
}

TEST(EdgeDelivery, ConsumerOnlyProcessDrainsOnSigtermWhileItsUpstreamRuns) {
  TempDir dir;
  // work holds the filter and the sink: all its input comes from the endless ingest process.
  std::string file = dir.write("p.toml", fmt::format(R"([pipeline]
name = "consumer"
state_dir = "{0}/state"
grace_period = "2s"

[sources.gen]
type = "generator"
rate = 300.0

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
work = {{ nodes = ["big", "out"] }}
)",
                                                      dir.path()));
  ChildProcess ingest(run_args(file, "ingest"));
  ChildProcess work(run_args(file, "work"));
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (read_lines(dir.file("out.jsonl")).size() < 50 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(50ms);
  }
  work.signal(SIGTERM);
  // Drains well within the grace period: no forced stop, exit 0, the reason logged.
  EXPECT_EQ(work.wait(20s), 0) << work.stderr_text();
  std::string err = work.stderr_text();
  EXPECT_NE(err.find("no longer taking events from other processes (1 of 1 input edges"),
            std::string::npos)
      << err;
  EXPECT_EQ(err.find("forcing stop"), std::string::npos) << err;
  // Everything the sink took was written: its summary count equals the file's lines.
  size_t lines = read_lines(dir.file("out.jsonl")).size();
  EXPECT_GE(lines, 50u);
  EXPECT_NE(err.find(fmt::format(" {:>10} ", lines)), std::string::npos) << err;
  // The upstream, left without its downstream, reports what it could not deliver.
  ingest.signal(SIGTERM);
  EXPECT_EQ(ingest.wait(30s), 1) << ingest.stderr_text();
  EXPECT_NE(ingest.stderr_text().find("could not be delivered to other processes"),
            std::string::npos)
      << ingest.stderr_text();
}

TEST(EdgeDelivery, StageWhoseBindFailsEndsTheProcessNamingStageAndReason) {
  TempDir dir;
  // Something else holds the port the filter must listen on.
  int holder = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(holder, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ASSERT_EQ(listen(holder, 1), 0);
  socklen_t len = sizeof(a);
  getsockname(holder, reinterpret_cast<sockaddr*>(&a), &len);
  uint16_t port = ntohs(a.sin_port);
  std::string file = dir.write("p.toml", fmt::format(R"([pipeline]
name = "bindfail"
state_dir = "{0}/state"

[sources.gen]
type = "generator"
count = 10

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
work = {{ nodes = ["big", "out"], host = "127.0.0.1", port = {1} }}
)",
                                                      dir.path(), port));
  auto r = run_command(run_args(file, "work"), {}, 60s);
  close(holder);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find(fmt::format("p.toml:9:1: error: processors.big: cannot listen on "
                                   "tcp://127.0.0.1:{}: Address already in use",
                                   port)),
            std::string::npos)
      << r.err;
}

// ---- CURVE ------------------------------------------------------------------------------

struct Keys {
  std::string pub;
  std::string key_file;
};

Keys make_keys(const TempDir& dir, const std::string& name) {
  auto r = run_command({sluice_binary(), "keys", name, "--dir", dir.file("keys")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::string pub = r.out.substr(0, r.out.find('\n'));
  return {pub, dir.file("keys/" + name + ".key")};
}

std::string curve(const Keys& k) {
  return fmt::format(", curve_public_key = \"{}\", curve_secret_key_file = \"{}\"", k.pub,
                     k.key_file);
}

std::string secret_of(const Keys& k) {
  std::string secret;
  for (const std::string& line : read_lines(k.key_file)) {
    if (!line.empty() && line[0] != '#') secret = line;
  }
  return secret;
}

TEST(EdgeCurve, KeysCommandWritesAPrivateSecretAndPrintsOnlyThePublicKey) {
  TempDir dir;
  auto r = run_command({sluice_binary(), "keys", "ingest", "--dir", dir.file("keys")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  struct stat st{};
  ASSERT_EQ(stat(dir.file("keys/ingest.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::string pub = r.out.substr(0, r.out.find('\n'));
  EXPECT_EQ(pub.size(), 40u);
  EXPECT_EQ(read_lines(dir.file("keys/ingest.pub")), std::vector<std::string>{pub});
  std::string secret = secret_of({pub, dir.file("keys/ingest.key")});
  ASSERT_EQ(secret.size(), 40u);
  char derived[41] = {};
  ASSERT_EQ(zmq_curve_public(derived, secret.c_str()), 0);
  EXPECT_EQ(std::string(derived), pub);
  EXPECT_EQ((r.out + r.err).find(secret), std::string::npos);
  // A second run never replaces a key.
  auto again = run_command({sluice_binary(), "keys", "ingest", "--dir", dir.file("keys")});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("File exists (remove it first to replace the key)"),
            std::string::npos)
      << again.err;
}

TEST(EdgeCurve, EventsFlowOverCurveAndSecretsStayOutOfLogs) {
  TempDir dir;
  Keys ingest_k = make_keys(dir, "ingest");
  Keys work_k = make_keys(dir, "work");
  Keys store_k = make_keys(dir, "store");
  std::string file = dir.write(
      "p.toml",
      three_groups(dir, "count = 3000", curve(ingest_k),
                   fmt::format(", host = \"127.0.0.1\", port = {}{}", free_port(), curve(work_k)),
                   fmt::format(", host = \"127.0.0.1\", port = {}{}", free_port(),
                               curve(store_k))));
  std::vector<std::unique_ptr<ChildProcess>> procs;
  for (const char* g : {"ingest", "work", "store"}) {
    procs.push_back(std::make_unique<ChildProcess>(run_args(file, g)));
  }
  for (auto& p : procs) EXPECT_EQ(p->wait(90s), 0) << p->stderr_text();
  expect_all_3000(dir);
  for (auto& p : procs) {
    for (const Keys* k : {&ingest_k, &work_k, &store_k}) {
      EXPECT_EQ(p->stderr_text().find(secret_of(*k)), std::string::npos);
    }
  }
}

// A DEALER that speaks to a stage's tcp endpoint the way an upstream stage does.
struct RawSender {
  void* ctx = zmq_ctx_new();
  void* s = nullptr;
  RawSender(const std::string& endpoint, const std::string& server_key) {
    s = zmq_socket(ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
    if (!server_key.empty()) {
      char pub[41], sec[41];
      zmq_curve_keypair(pub, sec);  // a key no placement group lists
      zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, server_key.c_str(), 41);
      zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, pub, 41);
      zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, sec, 41);
    }
    zmq_connect(s, endpoint.c_str());
  }
  ~RawSender() {
    zmq_close(s);
    zmq_ctx_term(ctx);
  }
  void send_event_and_eos() {
    EventBuilder b;
    b.reset().id(999999).source("intruder").field("notional_usd", 1e9);
    auto bytes = b.finish();
    zmq_send(s, bytes.data(), bytes.size(), ZMQ_DONTWAIT);
    uint8_t eos[16] = {0, 0, 0, 0, 'S', 'E', 'O', 'S'};
    zmq_send(s, eos, sizeof(eos), ZMQ_DONTWAIT);
  }
};

// The receiver's confirmation (SACK) can be lost as its process closes. It therefore waits for
// the upstream's goodbye (SBYE) after the last end of stream, answering a re-sent end of stream
// again; with the goodbye it exits at once. Here the test is the upstream and "loses" the first
// confirmation.
TEST(EdgeDelivery, ALostConfirmationIsAskedForAgainAndAnsweredBeforeTheReceiverExits) {
  TempDir dir;
  uint16_t port = free_port();
  std::string file = dir.write(
      "p.toml", three_groups(dir, "count = 5", "",
                             fmt::format(", host = \"127.0.0.1\", port = {}", port), ""));
  // work ([big]) listens on the port; the test speaks for ingest.
  ChildProcess work(run_args(file, "work"));
  ChildProcess store(run_args(file, "store"));
  RawSender up(fmt::format("tcp://127.0.0.1:{}", port), "");
  for (uint64_t id = 1; id <= 5; ++id) {
    EventBuilder b;
    b.reset().id(id).source("gen").field("notional_usd", 100.0);
    auto bytes = b.finish();
    ASSERT_EQ(zmq_send(up.s, bytes.data(), bytes.size(), 0), static_cast<int>(bytes.size()));
  }
  auto marker = [](const char* tag, uint64_t count) {
    std::array<uint8_t, 16> m{};
    std::memcpy(m.data() + 4, tag, 4);
    for (int i = 0; i < 8; ++i) m[8 + i] = static_cast<uint8_t>(count >> (8 * i));
    return m;
  };
  auto receive_ack = [&]() -> int64_t {
    zmq_pollitem_t item{up.s, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&item, 1, 10000) <= 0) return -1;
    uint8_t ack[16];
    if (zmq_recv(up.s, ack, sizeof(ack), 0) != 16 || std::memcmp(ack + 4, "SACK", 4) != 0) {
      return -2;
    }
    uint64_t count = 0;
    for (int i = 0; i < 8; ++i) count |= uint64_t{ack[8 + i]} << (8 * i);
    return static_cast<int64_t>(count);
  };
  auto eos = marker("SEOS", 5);
  ASSERT_EQ(zmq_send(up.s, eos.data(), eos.size(), 0), 16);
  EXPECT_EQ(receive_ack(), 5) << work.stderr_text();
  // "Lost": no goodbye. A second later the receiver is still there and answers again.
  std::this_thread::sleep_for(1000ms);
  EXPECT_EQ(work.wait(0ms), -1) << work.stderr_text();
  ASSERT_EQ(zmq_send(up.s, eos.data(), eos.size(), 0), 16);
  EXPECT_EQ(receive_ack(), 5) << work.stderr_text();
  auto bye = marker("SBYE", 5);
  ASSERT_EQ(zmq_send(up.s, bye.data(), bye.size(), 0), 16);
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(work.wait(30s), 0) << work.stderr_text();
  EXPECT_EQ(store.wait(30s), 0) << store.stderr_text();
  // The goodbye ended the wait at once, not the 3 s bound (generous for a loaded machine).
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2500ms);
  size_t lines = 0;
  EXPECT_EQ(output_ids(dir, &lines), (std::set<uint64_t>{1, 2, 3, 4, 5}));
}

TEST(EdgeCurve, UnknownClientKeyIsRefusedItsEventsAndEndOfStreamIgnored) {
  TempDir dir;
  Keys ingest_k = make_keys(dir, "ingest");
  Keys work_k = make_keys(dir, "work");
  uint16_t port = free_port();
  // work holds the filter and the sink; only ingest's key may send to it.
  std::string file = dir.write(
      "p.toml", fmt::format(R"([pipeline]
name = "curve"
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
ingest = {{ nodes = ["gen"]{1} }}
work = {{ nodes = ["big", "out"], host = "127.0.0.1", port = {2}{3} }}
)",
                            dir.path(), curve(ingest_k), port, curve(work_k)));
  ChildProcess work(run_args(file, "work"));
  std::string endpoint = fmt::format("tcp://127.0.0.1:{}", port);
  {
    RawSender wrong_key(endpoint, work_k.pub);
    RawSender no_curve(endpoint, "");
    ASSERT_TRUE(wait_for_log(work, "refused a connection to node 'big'")) << work.stderr_text();
    wrong_key.send_event_and_eos();
    no_curve.send_event_and_eos();
    std::this_thread::sleep_for(1500ms);
  }
  // The injected end of stream did not end the stage, and nothing reached the sink.
  EXPECT_EQ(work.wait(500ms), -1) << work.stderr_text();
  EXPECT_TRUE(read_lines(dir.file("out.jsonl")).empty());
  ChildProcess ingest(run_args(file, "ingest"));
  EXPECT_EQ(ingest.wait(60s), 0) << ingest.stderr_text();
  EXPECT_EQ(work.wait(60s), 0) << work.stderr_text();
  expect_all_3000(dir);  // ids 1..3000 exactly: the intruder's 999999 is not among them
}

TEST(EdgeCurve, ValidateAndRunRefuseAnEdgeListeningBeyondLoopbackWithoutKeys) {
  TempDir dir;
  std::string file = dir.write(
      "p.toml", three_groups(dir, "count = 10", "", ", host = \"0.0.0.0\", port = 7300", ""));
  std::string expected =
      "p.toml:22:34: error: placement.work: listens on 0.0.0.0:7300 (beyond loopback) without "
      "CURVE keys, so anyone who reaches that port could inject events or end the stream";
  auto v = run_command({sluice_binary(), "validate", file});
  EXPECT_EQ(v.exit_code, 2);
  EXPECT_NE(v.err.find(expected), std::string::npos) << v.err;
  auto r = run_command(run_args(file, "work"), {}, 60s);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find(expected), std::string::npos) << r.err;
}

TEST(EdgeCurve, KeysOnOnlyOneEndOfATcpEdgeAreRefused) {
  TempDir dir;
  Keys work_k = make_keys(dir, "work");
  std::string file = dir.write(
      "p.toml", three_groups(dir, "count = 10", "",
                             fmt::format(", host = \"127.0.0.1\", port = 7300{}", curve(work_k)),
                             ""));
  auto v = run_command({sluice_binary(), "validate", file});
  EXPECT_EQ(v.exit_code, 2);
  EXPECT_NE(v.err.find("p.toml:21:10: error: placement.ingest: sends over tcp to placement.work, "
                       "which uses CURVE, but has no keys of its own"),
            std::string::npos)
      << v.err;
}

// ---- frame size limit -------------------------------------------------------------------

TEST(EdgeLimits, OversizedFrameIsDroppedAndTheProcessKeepsWorking) {
  TempDir dir;
  uint16_t port = free_port();
  std::string file = dir.write(
      "p.toml",
      three_groups(dir, "count = 3000", "", fmt::format(", host = \"127.0.0.1\", port = {}", port),
                   ""));
  ChildProcess work(run_args(file, "work"));
  ChildProcess store(run_args(file, "store"));
  // A peer speaking ZMTP 3.0 that announces an 8 GiB frame, then streams its "body".
  int fd = -1;
  for (int attempt = 0; attempt < 200; ++attempt) {
    fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) break;
    close(fd);
    fd = -1;
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_GE(fd, 0);
  uint8_t greeting[64] = {0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0x7f, 3, 0, 'N', 'U', 'L', 'L'};
  ASSERT_EQ(send(fd, greeting, sizeof(greeting), MSG_NOSIGNAL), 64);
  uint64_t claimed = uint64_t{8} << 30;
  uint8_t header[9] = {0x06};  // a long command frame
  for (int i = 0; i < 8; ++i) header[1 + i] = static_cast<uint8_t>(claimed >> (56 - 8 * i));
  send(fd, header, sizeof(header), MSG_NOSIGNAL);
  std::vector<char> chunk(1 << 20, 'x');
  size_t pushed = 0;
  while (pushed < (size_t{256} << 20)) {
    ssize_t n = send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL);
    if (n <= 0) break;  // the receiver hung up on the frame: what we want
    pushed += static_cast<size_t>(n);
  }
  close(fd);
  EXPECT_LT(pushed, size_t{256} << 20) << "the receiver took the whole oversized frame";
  EXPECT_EQ(work.wait(200ms), -1) << work.stderr_text();
  ChildProcess ingest(run_args(file, "ingest"));
  EXPECT_EQ(ingest.wait(60s), 0) << ingest.stderr_text();
  EXPECT_EQ(work.wait(60s), 0) << work.stderr_text();
  EXPECT_EQ(store.wait(60s), 0) << store.stderr_text();
  expect_all_3000(dir);
  std::string err = work.stderr_text();
  auto at = err.find("peak RSS: ");
  ASSERT_NE(at, std::string::npos) << err;
  EXPECT_LT(std::stod(err.substr(at + 10)), 1024.0) << err;  // MiB, nowhere near 8 GiB
}

TEST(EdgeLimits, MaxEventSizeOutsideItsBoundsIsRefused) {
  TempDir dir;
  std::string file = dir.write("p.toml", "[pipeline]\nmax_event_size = \"10B\"\n\n"
                                         "[sources.gen]\ntype = \"generator\"\n\n"
                                         "[sinks.out]\ntype = \"blackhole\"\ninputs = [\"gen\"]\n");
  auto v = run_command({sluice_binary(), "validate", file});
  EXPECT_EQ(v.exit_code, 2);
  EXPECT_NE(v.err.find("p.toml:2:18: error: pipeline: 'max_event_size' must be between 1KiB "
                       "and 1GiB, got 10 bytes"),
            std::string::npos)
      << v.err;
}

TEST(EdgeLimits, GroupPortsPast65535AreRefusedAtValidate) {
  TempDir dir;
  std::string file = dir.write("p.toml", fmt::format(R"([pipeline]
name = "ports"
state_dir = "{0}/state"

[sources.gen]
type = "generator"
count = 1

[processors.a]
type = "filter"
inputs = ["gen"]
where = "true"

[processors.b]
type = "filter"
inputs = ["a"]
where = "true"

[sinks.out]
type = "blackhole"
inputs = ["b"]

[placement]
ingest = {{ nodes = ["gen"] }}
work = {{ nodes = ["a", "b", "out"], port = 65534 }}
)",
                                                      dir.path()));
  auto v = run_command({sluice_binary(), "validate", file});
  EXPECT_EQ(v.exit_code, 2);
  EXPECT_NE(v.err.find("p.toml:25:44: error: placement.work: port 65534 leaves no room for the "
                       "group's 3 stages (the n-th stage listens on port + n, up to 65536, past "
                       "65535); use a port of at most 65533"),
            std::string::npos)
      << v.err;
}

// ---- the ipc directory ------------------------------------------------------------------

// Where the processes of `state_dir`'s pipeline "edges" put their ipc sockets.
std::string ipc_dir_for(const std::string& runtime_dir, const std::string& state_dir) {
  size_t h = std::hash<std::string>{}(fs::weakly_canonical(state_dir).string());
  return fmt::format("{}/sluice-edges-{:08x}", runtime_dir, h & 0xffffffffu);
}

TEST(EdgeIpcDir, CreatedPrivateAndRefusedWhenOthersCanReachIt) {
  TempDir dir;
  std::string file = dir.write("p.toml", three_groups(dir, "count = 10", "", "", ""));
  std::string runtime = dir.file("runtime");
  fs::create_directories(runtime);
  std::map<std::string, std::string> env{{"XDG_RUNTIME_DIR", runtime}};
  std::string ipc = ipc_dir_for(runtime, dir.file("state"));

  // Created by the first process, private.
  {
    ChildProcess work(run_args(file, "work"), env);
    ASSERT_TRUE(wait_for_log(work, "running 1 stage(s)")) << work.stderr_text();
    struct stat st{};
    ASSERT_EQ(stat(ipc.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
  }
  // Someone opened it to others: refused, naming the directory and the problem.
  fs::permissions(ipc, fs::perms(0755));
  auto r = run_command(run_args(file, "work"), env, 60s);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(fmt::format("refusing the ipc directory {}: group or others have access "
                                   "to it (mode 0755)",
                                   ipc)),
            std::string::npos)
      << r.err;
  // Someone else owns it (as root we can hand it to another uid).
  fs::permissions(ipc, fs::perms(0700));
  if (geteuid() == 0) {
    ASSERT_EQ(chown(ipc.c_str(), 12345, 12345), 0);
    auto owned = run_command(run_args(file, "ingest"), env, 60s);
    EXPECT_EQ(owned.exit_code, 1);
    EXPECT_NE(owned.err.find(fmt::format("refusing the ipc directory {}: it is owned by uid "
                                         "12345, not by this user (uid 0)",
                                         ipc)),
              std::string::npos)
        << owned.err;
  } else {
    // Without root, a symbolic link planted in its place is the same attack.
    fs::remove_all(ipc);
    fs::create_directory_symlink(dir.path(), ipc);
    auto linked = run_command(run_args(file, "ingest"), env, 60s);
    EXPECT_EQ(linked.exit_code, 1);
    EXPECT_NE(linked.err.find("it is not a directory"), std::string::npos) << linked.err;
  }
}

}  // namespace
}  // namespace sluice::testing
