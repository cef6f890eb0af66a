// CURVE keys for tcp edges between processes: generation (`sluice keys`), key files, Z85 checks,
// and which hosts count as loopback (an edge listening beyond loopback needs keys).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace sluice::core {

inline constexpr size_t kCurveKeyChars = 40;  // Z85 text of a 32-byte key

struct CurveKeyPair {
  std::string public_key;  // Z85, 40 characters
  std::string secret_key;  // Z85, 40 characters; never logged
};

// A fresh key pair (zmq_curve_keypair). Throws std::runtime_error when libzmq has no CURVE.
CurveKeyPair generate_curve_keypair();

// True when `key` is 40 characters of valid Z85.
bool is_z85_key(std::string_view key);

// The public key belonging to a Z85 secret key; nullopt when `secret` is not a valid key.
std::optional<std::string> curve_public_of(std::string_view secret);

// Writes `<dir>/<name>.key` (the secret, mode 0600, created exclusively: an existing file is
// never overwritten) and `<dir>/<name>.pub`. Returns the key pair; throws std::runtime_error
// naming the file on failure.
CurveKeyPair write_curve_key_files(const std::string& dir, const std::string& name);

// Reads a secret key file as write_curve_key_files writes it: '#' comment lines, then one line
// with the Z85 secret. Refuses a file that group or others may read. On failure returns nullopt
// and sets `error` to a message that names the file and never contains key material.
std::optional<std::string> read_curve_secret_key_file(const std::string& path, std::string* error);

// 127.0.0.0/8, ::1 and "localhost": only this host can reach a socket bound there.
bool is_loopback_host(std::string_view host);

}  // namespace sluice::core
