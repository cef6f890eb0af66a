// The [admin] section of pipeline files: where the admin endpoint listens and who may use it.
// Shared by the pipeline loader and `sluice ctl` (which reads only this section).
#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>

#include "config_internal.hpp"

namespace sluice::core {

bool is_loopback_address(std::string_view address) {
  std::string text(address);
  in_addr v4{};
  if (inet_pton(AF_INET, text.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, text.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
    return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
  }
  return false;
}

namespace detail {
namespace {

const std::vector<std::string> kAdminKeys = {"enabled", "address", "port", "token", "hosts"};
constexpr size_t kMinTokenLength = 16;

bool is_ip_address(const std::string& text) {
  in_addr v4{};
  in6_addr v6{};
  return inet_pton(AF_INET, text.c_str(), &v4) == 1 || inet_pton(AF_INET6, text.c_str(), &v6) == 1;
}

// A Host header value: a name or address, optionally ":port"; no spaces, slashes or '@'.
bool valid_host_entry(const std::string& h) {
  return !h.empty() && std::none_of(h.begin(), h.end(), [](char c) {
    return c <= ' ' || c > '~' || c == '/' || c == '@' || c == '?' || c == '#';
  });
}

}  // namespace

void read_admin(const toml::table* table, const Reader& reader, AdminSpec& out) {
  Diagnostics& diags = reader.diags();
  out.pos = table ? diags.pos(*table) : diags.file_pos();
  out.port_pos = out.pos;
  if (table == nullptr) return;
  for (auto [key, value] : in_file_order(*table)) {
    std::string k(key->str());
    if (std::find(kAdminKeys.begin(), kAdminKeys.end(), k) == kAdminKeys.end()) {
      diags.error(diags.pos(*key),
                  "admin: unknown key '" + k + "'" + suggestion(k, kAdminKeys, "valid keys"));
    }
  }
  if (const toml::node* v = table->get("enabled")) {
    if (auto b = reader.boolean(*v, "admin: 'enabled'")) out.enabled = *b;
  }
  const toml::node* address = table->get("address");
  bool address_ok = true;
  if (address != nullptr) {
    if (auto s = reader.string(*address, "admin: 'address'")) {
      if (is_ip_address(*s)) {
        out.address = *s;
      } else {
        address_ok = false;
        diags.error(diags.pos(*address),
                    "admin: 'address' must be an IP address such as 127.0.0.1 or ::1, got '" + *s +
                        "' (names are not resolved)");
      }
    } else {
      address_ok = false;
    }
  }
  if (const toml::node* v = table->get("port")) {
    out.port_pos = diags.pos(*v);
    if (auto p = reader.integer_in(*v, "admin: 'port'", 0, 65535)) {
      out.port = static_cast<uint16_t>(*p);
    }
  }
  const toml::node* token = table->get("token");
  if (token != nullptr) {
    // The value is a secret: messages describe it, never quote it.
    if (auto s = reader.string(*token, "admin: 'token'")) {
      bool printable =
          std::all_of(s->begin(), s->end(), [](char c) { return c > ' ' && c <= '~'; });
      if (!printable) {
        diags.error(diags.pos(*token), "admin: 'token' must be printable ASCII without spaces");
      } else if (!s->empty() && s->size() < kMinTokenLength) {
        diags.error(diags.pos(*token), "admin: 'token' is too short (" + std::to_string(s->size()) +
                                           " characters); use at least " +
                                           std::to_string(kMinTokenLength) +
                                           " random characters, e.g. from `openssl rand -hex 32`");
      } else {
        out.token = *s;  // "" (e.g. "${SLUICE_ADMIN_TOKEN:-}" unset) means no token
      }
    }
  }
  if (const toml::node* v = table->get("hosts")) {
    if (auto hosts = reader.strings(*v, "admin: 'hosts'")) {
      for (const std::string& h : *hosts) {
        if (valid_host_entry(h)) {
          out.hosts.push_back(h);
        } else {
          diags.error(diags.pos(*v), "admin: 'hosts' entry '" + h +
                                         "' is not a host name or address with an optional "
                                         "':port' (e.g. \"metrics.example.org:9464\")");
        }
      }
    }
  }
  if (out.enabled && address_ok && out.token.empty() && !is_loopback_address(out.address)) {
    const toml::node* where = address ? address : static_cast<const toml::node*>(table);
    diags.error(diags.pos(*where),
                "admin: address " + out.address +
                    " is reachable beyond this host, so a 'token' is required (anyone who "
                    "reaches the port could read metrics and change settings): set token = "
                    "\"${SLUICE_ADMIN_TOKEN}\" or listen on 127.0.0.1");
  }
}

}  // namespace detail
}  // namespace sluice::core
