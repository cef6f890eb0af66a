// Secret redaction shared by the host and the plugins: the forms in which a secret value can
// come back in text the program writes (a server echoing a webhook URL in its error page, a
// JSON error body quoting it), and masking them.
//
// A secret's forms are the value itself, its %-encoded forms (upper and lower case hex) and its
// JSON-escaped forms (with "/" kept and escaped as "\/"). For a URL (http:// or https://) the
// same forms of its path with query, its path, its query, and of each path segment and query
// value long enough to be a token on its own are added, so an echo of just the path still
// masks. Values shorter than kMinSecretLength are never masked: they would mask ordinary text.
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

inline constexpr size_t kMinSecretLength = 4;
// A URL's path segment or query value at least this long is a token on its own (Slack's and
// Discord's webhook tokens are 24 and 68 characters; "services" or "webhooks" are not).
inline constexpr size_t kMinUrlTokenLength = 16;

namespace redact_detail {

inline std::string percent_encode(std::string_view s, bool lower) {
  const char* hex = lower ? "0123456789abcdef" : "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    const bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                       c == '-' || c == '_' || c == '.' || c == '~';
    if (plain) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 0xF]);
    }
  }
  return out;
}

inline std::string json_escape(std::string_view s, bool escape_slash) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '/':
        out += escape_slash ? "\\/" : "/";
        break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 0xF]);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  return out;
}

// The parts of a URL masked on their own: path with query, path, query, long segments and
// query values. Empty when value is not an http(s) URL.
inline std::vector<std::string_view> url_parts(std::string_view value) {
  std::vector<std::string_view> parts;
  size_t scheme = std::string_view::npos;
  if (value.starts_with("https://")) scheme = 8;
  if (value.starts_with("http://")) scheme = 7;
  if (scheme == std::string_view::npos) return parts;
  const size_t at = value.find_first_of("/?#", scheme);
  if (at == std::string_view::npos) return parts;
  std::string_view target = value.substr(at);
  target = target.substr(0, target.find('#'));
  const size_t q = target.find('?');
  const std::string_view path = target.substr(0, q);
  const std::string_view query = q == std::string_view::npos ? "" : target.substr(q + 1);
  parts = {target, path, query};
  for (std::string_view rest = path; !rest.empty();) {
    const size_t slash = rest.find('/');
    const std::string_view segment = rest.substr(0, slash);
    if (segment.size() >= kMinUrlTokenLength) parts.push_back(segment);
    rest = slash == std::string_view::npos ? "" : rest.substr(slash + 1);
  }
  for (std::string_view rest = query; !rest.empty();) {
    const size_t amp = rest.find('&');
    const std::string_view pair = rest.substr(0, amp);
    const size_t eq = pair.find('=');
    const std::string_view v = eq == std::string_view::npos ? pair : pair.substr(eq + 1);
    if (v.size() >= kMinUrlTokenLength) parts.push_back(v);
    rest = amp == std::string_view::npos ? "" : rest.substr(amp + 1);
  }
  return parts;
}

}  // namespace redact_detail

// Adds every form of `value` (see the file comment) to `secrets`, keeping the list free of
// duplicates and sorted longest first, so a whole URL masks before its path does.
inline void add_secret(std::vector<std::string>& secrets, std::string_view value) {
  if (value.size() < kMinSecretLength) return;
  std::vector<std::string_view> bases = {value};
  for (std::string_view part : redact_detail::url_parts(value)) bases.push_back(part);
  for (std::string_view base : bases) {
    if (base.size() < kMinSecretLength) continue;
    for (std::string form :
         {std::string(base), redact_detail::percent_encode(base, false),
          redact_detail::percent_encode(base, true), redact_detail::json_escape(base, false),
          redact_detail::json_escape(base, true)}) {
      if (std::find(secrets.begin(), secrets.end(), form) == secrets.end()) {
        secrets.push_back(std::move(form));
      }
    }
  }
  std::stable_sort(secrets.begin(), secrets.end(),
                   [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
}

// s with every occurrence of each secret (in list order) replaced by mask.
inline std::string redact_secrets(std::string_view s, const std::vector<std::string>& secrets,
                                  std::string_view mask) {
  std::string out(s);
  for (const std::string& secret : secrets) {
    if (secret.empty()) continue;
    for (size_t at = out.find(secret); at != std::string::npos;
         at = out.find(secret, at + mask.size())) {
      out.replace(at, secret.size(), mask);
    }
  }
  return out;
}

}  // namespace sluice
