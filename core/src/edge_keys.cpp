// CURVE key generation, key files and host classification for authenticated tcp edges.
#include "sluice/core/edge_keys.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include <fmt/format.h>
#include <zmq.h>

namespace sluice::core {
namespace {

std::string trim(std::string s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return {};
  size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

// Writes `text` to a new file with `mode`; O_EXCL so a key is never silently replaced.
void write_new_file(const std::string& path, const std::string& text, mode_t mode) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) {
    throw std::runtime_error(fmt::format("cannot create {}: {}{}", path, std::strerror(errno),
                                         errno == EEXIST ? " (remove it first to replace the key)"
                                                         : ""));
  }
  // The mode passed to open() is reduced by the umask; a secret must end up exactly 0600.
  fchmod(fd, mode);
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = errno;
      close(fd);
      throw std::runtime_error(fmt::format("cannot write {}: {}", path, std::strerror(err)));
    }
    done += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0 || close(fd) != 0) {
    throw std::runtime_error(fmt::format("cannot write {}: {}", path, std::strerror(errno)));
  }
}

}  // namespace

CurveKeyPair generate_curve_keypair() {
  char pub[kCurveKeyChars + 1] = {};
  char sec[kCurveKeyChars + 1] = {};
  if (zmq_curve_keypair(pub, sec) != 0) {
    throw std::runtime_error(
        fmt::format("cannot generate CURVE keys: {}", zmq_strerror(zmq_errno())));
  }
  CurveKeyPair k{pub, sec};
  std::memset(sec, 0, sizeof(sec));
  return k;
}

bool is_z85_key(std::string_view key) {
  if (key.size() != kCurveKeyChars) return false;
  std::string text(key);
  uint8_t raw[32];
  return zmq_z85_decode(raw, text.c_str()) != nullptr;
}

std::optional<std::string> curve_public_of(std::string_view secret) {
  if (!is_z85_key(secret)) return std::nullopt;
  std::string text(secret);
  char pub[kCurveKeyChars + 1] = {};
  if (zmq_curve_public(pub, text.c_str()) != 0) return std::nullopt;
  return std::string(pub);
}

CurveKeyPair write_curve_key_files(const std::string& dir, const std::string& name) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw std::runtime_error(fmt::format("cannot create {}: {}", dir, ec.message()));
  CurveKeyPair k = generate_curve_keypair();
  std::string base = (std::filesystem::path(dir) / name).string();
  write_new_file(base + ".key",
                 fmt::format("# sluice CURVE secret key '{}': keep it private (mode 0600)\n"
                             "# public key: {}\n{}\n",
                             name, k.public_key, k.secret_key),
                 0600);
  write_new_file(base + ".pub", k.public_key + "\n", 0644);
  return k;
}

std::optional<std::string> read_curve_secret_key_file(const std::string& path,
                                                      std::string* error) {
  auto fail = [&](std::string why) -> std::optional<std::string> {
    if (error) *error = fmt::format("secret key file {}: {}", path, why);
    return std::nullopt;
  };
  struct stat st{};
  if (stat(path.c_str(), &st) != 0) return fail(std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return fail("not a regular file");
  if ((st.st_mode & 077) != 0) {
    return fail(fmt::format("group or others may read it (mode {:04o}); run chmod 600 {}",
                            st.st_mode & 07777, path));
  }
  std::ifstream in(path);
  if (!in) return fail(std::strerror(errno));
  std::string line;
  std::optional<std::string> key;
  while (std::getline(in, line)) {
    line = trim(line);
    if (line.empty() || line[0] == '#') continue;
    if (key || !is_z85_key(line)) {
      return fail("expected one line holding a 40-character Z85 secret key (as written by "
                  "`sluice keys`)");
    }
    key = line;
  }
  if (!key) return fail("holds no key (expected a 40-character Z85 secret key)");
  return key;
}

bool is_loopback_host(std::string_view host) {
  std::string h(host);
  if (h == "localhost") return true;
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  in_addr v4{};
  if (inet_pton(AF_INET, h.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (inet_pton(AF_INET6, h.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;
}

}  // namespace sluice::core
