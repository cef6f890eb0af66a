// Renders events as text without a JSON library on the hot path: one JSON object per event (for
// files, taps and HTTP bodies) and a one-line human form (for consoles).
//
// JSON form: the event's fields are top-level keys in name order (or in the order of
// JsonOptions::fields), followed by the metadata under the one reserved key "_sluice":
//
//   {"avg_price":184.22,"side":"SELL","symbol":"SOLUSDT",
//    "_sluice":{"id":7,"event_time":"2025-10-22T09:36:42.306Z",
//               "ingest_time":"2025-10-22T09:36:42.311204Z","source":"file","key":"SOLUSDT",
//               "attrs":{"tier":"vip"},"hops":[{"stage":"big","time":"..."}]}}
//
// Value mapping: Int → integer (exact), Double → shortest text that parses back to the same
// double, always with a '.' or an exponent so readers keep it a double (NaN and infinities have
// no JSON form and become null), Bool → true/false, String → string, Bytes → base64 string
// (RFC 4648, padded), Null → null. Strings are escaped as JSON requires; valid UTF-8 passes
// through unchanged and each byte of an invalid UTF-8 sequence becomes U+FFFD, so the output is
// always valid UTF-8 JSON.
//
// Times are RFC 3339 UTC: milliseconds when the time has no finer part, else microseconds.
// "attrs" and "hops" are left out when empty. A field that is itself named "_sluice" would
// collide with the metadata key: with metadata on, its value moves inside the metadata object as
// "_sluice":{..., "field": <value>}; with metadata off it is an ordinary top-level key.
#pragma once

#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "sluice/event.hpp"

namespace sluice {

inline constexpr std::string_view kMetadataKey = "_sluice";

struct JsonOptions {
  bool metadata = true;  // append the "_sluice" metadata object
  // Only these fields, in this order; missing ones are skipped. Empty = every field.
  // The strings must outlive the call.
  std::span<const std::string> fields = {};
};

struct TextOptions {
  std::span<const std::string> fields = {};  // as JsonOptions::fields
};

namespace detail {

// 0: copied as is; 1: must be escaped in a JSON string; 2: starts a multi-byte UTF-8 sequence.
inline constexpr std::array<uint8_t, 256> kJsonByteClass = [] {
  std::array<uint8_t, 256> t{};
  for (int c = 0; c < 0x20; ++c) t[c] = 1;
  t['"'] = 1;
  t['\\'] = 1;
  t[0x7F] = 1;
  for (int c = 0x80; c < 0x100; ++c) t[c] = 2;
  return t;
}();

inline constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";  // U+FFFD

// Length of the well-formed UTF-8 sequence at p (whose first byte is >= 0x80), or 0 when it is
// not one (Unicode 15, table 3-7: no overlongs, no surrogates, nothing above U+10FFFF).
inline size_t utf8_sequence_length(const unsigned char* p, const unsigned char* end) {
  const unsigned char c = p[0];
  const size_t avail = static_cast<size_t>(end - p);
  auto cont = [](unsigned char b) { return (b & 0xC0) == 0x80; };
  if (c >= 0xC2 && c <= 0xDF) return avail >= 2 && cont(p[1]) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (avail < 3) return 0;
    const unsigned char lo = c == 0xE0 ? 0xA0 : 0x80;
    const unsigned char hi = c == 0xED ? 0x9F : 0xBF;
    return p[1] >= lo && p[1] <= hi && cont(p[2]) ? 3 : 0;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (avail < 4) return 0;
    const unsigned char lo = c == 0xF0 ? 0x90 : 0x80;
    const unsigned char hi = c == 0xF4 ? 0x8F : 0xBF;
    return p[1] >= lo && p[1] <= hi && cont(p[2]) && cont(p[3]) ? 4 : 0;
  }
  return 0;
}

inline void append_escape(std::string& out, unsigned char c) {
  switch (c) {
    case '"':
      out.append("\\\"");
      return;
    case '\\':
      out.append("\\\\");
      return;
    case '\b':
      out.append("\\b");
      return;
    case '\f':
      out.append("\\f");
      return;
    case '\n':
      out.append("\\n");
      return;
    case '\r':
      out.append("\\r");
      return;
    case '\t':
      out.append("\\t");
      return;
    default: {
      static constexpr char kHex[] = "0123456789abcdef";
      const char u[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
      out.append(u, sizeof(u));
    }
  }
}

// True when a text-form token must be quoted: empty, or holding a space, a character JSON
// escapes, or invalid UTF-8. Plain non-ASCII text (币安人生USDT) stays unquoted.
inline bool text_needs_quotes(std::string_view s) {
  if (s.empty()) return true;
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    const unsigned char c = *p;
    if (c == ' ' || kJsonByteClass[c] == 1) return true;
    if (c < 0x80) {
      ++p;
      continue;
    }
    const size_t n = utf8_sequence_length(p, end);
    if (n == 0) return true;
    p += n;
  }
  return false;
}

// Days since 1970-01-01 → civil date (H. Hinnant, "chrono-Compatible Low-Level Date
// Algorithms"). int64 nanoseconds span the years 1677-2262, so four year digits always suffice.
inline void civil_from_days(int64_t z, int64_t& y, unsigned& m, unsigned& d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y = static_cast<int64_t>(yoe) + era * 400 + (m <= 2 ? 1 : 0);
}

inline void put_digits(char* p, unsigned v, int n) {
  for (int i = n - 1; i >= 0; --i) {
    p[i] = static_cast<char>('0' + v % 10);
    v /= 10;
  }
}

}  // namespace detail

// Appends the inside of a JSON string for s: escaped, without the quotes.
inline void append_json_chars(std::string& out, std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  const auto* run = p;  // start of bytes not yet copied
  while (p < end) {
    const uint8_t cls = detail::kJsonByteClass[*p];
    if (cls == 0) {
      ++p;
      continue;
    }
    if (cls == 2) {
      const size_t n = detail::utf8_sequence_length(p, end);
      if (n != 0) {
        p += n;
        continue;
      }
    }
    out.append(reinterpret_cast<const char*>(run), static_cast<size_t>(p - run));
    if (cls == 1) {
      detail::append_escape(out, *p);
    } else {
      out.append(detail::kReplacementChar);
    }
    run = ++p;
  }
  out.append(reinterpret_cast<const char*>(run), static_cast<size_t>(p - run));
}

// Appends s as a quoted JSON string.
inline void append_json_string(std::string& out, std::string_view s) {
  out.append(1, '"');
  append_json_chars(out, s);
  out.append(1, '"');
}

inline void append_json_int(std::string& out, int64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, static_cast<size_t>(r.ptr - buf));
}

inline void append_json_uint(std::string& out, uint64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, static_cast<size_t>(r.ptr - buf));
}

// Shortest round-trip text. keep_double_marker: append ".0" to integral values ("3.0"), so a
// JSON reader keeps the value a double; the text form leaves it off ("3").
inline void append_double(std::string& out, double v, bool keep_double_marker = true) {
  if (!std::isfinite(v)) {
    out.append("null");
    return;
  }
  char buf[40];
  char* end = std::to_chars(buf, buf + 32, v).ptr;
  if (keep_double_marker) {
    bool marked = false;
    for (const char* c = buf; c < end && !marked; ++c) marked = *c == '.' || *c == 'e';
    if (!marked) {
      *end++ = '.';
      *end++ = '0';
    }
  }
  out.append(buf, static_cast<size_t>(end - buf));
}

// RFC 4648 base64 with padding.
inline void append_base64(std::string& out, std::span<const uint8_t> data) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    const uint32_t v = (uint32_t{data[i]} << 16) | (uint32_t{data[i + 1]} << 8) | data[i + 2];
    const char q[4] = {kAlphabet[v >> 18], kAlphabet[(v >> 12) & 63], kAlphabet[(v >> 6) & 63],
                       kAlphabet[v & 63]};
    out.append(q, 4);
  }
  const size_t rest = data.size() - i;
  if (rest == 0) return;
  uint32_t v = uint32_t{data[i]} << 16;
  if (rest == 2) v |= uint32_t{data[i + 1]} << 8;
  const char q[4] = {kAlphabet[v >> 18], kAlphabet[(v >> 12) & 63],
                     rest == 2 ? kAlphabet[(v >> 6) & 63] : '=', '='};
  out.append(q, 4);
}

// RFC 3339 UTC ("2025-10-22T09:36:42.306Z"), without quotes. digits: 3 (ms), 6 (us) or 9 (ns)
// fractional digits; 0 picks 3 when the time is a whole millisecond, else 6. Truncates toward
// the past, so a time never prints later than it is.
inline void append_rfc3339(std::string& out, int64_t ns, int digits = 0) {
  constexpr int64_t kNsPerSec = 1'000'000'000;
  int64_t secs = ns / kNsPerSec;
  int64_t frac = ns % kNsPerSec;
  if (frac < 0) {
    frac += kNsPerSec;
    --secs;
  }
  int64_t days = secs / 86400;
  int64_t sod = secs % 86400;
  if (sod < 0) {
    sod += 86400;
    --days;
  }
  int64_t year = 0;
  unsigned month = 0;
  unsigned day = 0;
  detail::civil_from_days(days, year, month, day);
  if (digits == 0) digits = frac % 1'000'000 == 0 ? 3 : 6;
  char buf[32] = "0000-00-00T00:00:00";
  detail::put_digits(buf, static_cast<unsigned>(year), 4);
  detail::put_digits(buf + 5, month, 2);
  detail::put_digits(buf + 8, day, 2);
  detail::put_digits(buf + 11, static_cast<unsigned>(sod / 3600), 2);
  detail::put_digits(buf + 14, static_cast<unsigned>(sod / 60 % 60), 2);
  detail::put_digits(buf + 17, static_cast<unsigned>(sod % 60), 2);
  size_t n = 19;
  buf[n++] = '.';
  unsigned scaled = static_cast<unsigned>(frac);
  for (int i = digits; i < 9; ++i) scaled /= 10;
  detail::put_digits(buf + n, scaled, digits);
  n += static_cast<size_t>(digits);
  buf[n++] = 'Z';
  out.append(buf, n);
}

// Appends the JSON value of one field.
inline void append_field_json(std::string& out, const fb::Field& f) {
  switch (f.type()) {
    case FieldType::Int:
      append_json_int(out, f.i());
      return;
    case FieldType::Double:
      append_double(out, f.d());
      return;
    case FieldType::Bool:
      out.append(f.b() ? "true" : "false");
      return;
    case FieldType::String:
      append_json_string(out, EventView::sv(f.s()));
      return;
    case FieldType::Bytes:
      out.push_back('"');
      if (f.bin() != nullptr) append_base64(out, {f.bin()->data(), f.bin()->size()});
      out.push_back('"');
      return;
    default:
      out.append("null");
      return;
  }
}

// Appends the event as one JSON object (no trailing newline); see the top of this file.
inline void append_event_json(std::string& out, const EventView& ev, const JsonOptions& opts = {}) {
  const fb::Field* reserved = nullptr;  // a field named "_sluice", when metadata is on
  bool first = true;
  auto put = [&](const fb::Field* f) {
    const std::string_view name = EventView::sv(f->name());
    if (opts.metadata && name == kMetadataKey) {
      reserved = f;
      return;
    }
    // Separator, quotes and colon go in as few appends as possible: this is the hot loop.
    out.append(first ? "{\"" : ",\"", 2);
    first = false;
    append_json_chars(out, name);
    if (f->type() == FieldType::String) {
      out.append("\":\"", 3);
      append_json_chars(out, EventView::sv(f->s()));
      out.append(1, '"');
    } else {
      out.append("\":", 2);
      append_field_json(out, *f);
    }
  };
  if (opts.fields.empty()) {
    for (size_t i = 0; i < ev.field_count(); ++i) put(ev.field_at(i));
  } else {
    for (const std::string& name : opts.fields) {
      if (const fb::Field* f = ev.field(name)) put(f);
    }
  }
  if (opts.metadata) {
    out.append(first ? "{" : ",");
    first = false;
    out.append("\"_sluice\":{\"id\":");
    append_json_uint(out, ev.id());
    out.append(",\"event_time\":\"");
    append_rfc3339(out, ev.event_time_ns());
    out.append("\",\"ingest_time\":\"");
    append_rfc3339(out, ev.ingest_time_ns());
    out.append("\",\"source\":");
    append_json_string(out, ev.source());
    out.append(",\"key\":");
    append_json_string(out, ev.key());
    if (ev.attr_count() > 0) {
      out.append(",\"attrs\":{");
      for (size_t i = 0; i < ev.attr_count(); ++i) {
        const fb::Attr* a = ev.attr_at(i);
        if (i > 0) out.push_back(',');
        append_json_string(out, EventView::sv(a->key()));
        out.push_back(':');
        append_json_string(out, EventView::sv(a->value()));
      }
      out.push_back('}');
    }
    if (ev.hop_count() > 0) {
      out.append(",\"hops\":[");
      for (size_t i = 0; i < ev.hop_count(); ++i) {
        const fb::Hop* h = ev.hop_at(i);
        out.append(i > 0 ? ",{\"stage\":" : "{\"stage\":");
        append_json_string(out, EventView::sv(h->stage()));
        out.append(",\"time\":\"");
        append_rfc3339(out, h->time_ns());
        out.append("\"}");
      }
      out.push_back(']');
    }
    if (reserved != nullptr) {
      out.append(",\"field\":");
      append_field_json(out, *reserved);
    }
    out.push_back('}');
  }
  out.append(first ? "{}" : "}");
}

// Appends a token of the text form: as is, or as a JSON string when it needs quotes.
inline void append_text_token(std::string& out, std::string_view s) {
  if (detail::text_needs_quotes(s)) {
    append_json_string(out, s);
  } else {
    out.append(s);
  }
}

// Appends the event as one human-readable line (no trailing newline):
//   2025-10-22T09:36:42.306Z [file] SOLUSDT avg_price=184.22 filled_qty=0.04 side=SELL
// Event time in milliseconds, [source] and key (each left out when empty), then name=value per
// field. Strings and names are quoted (JSON-escaped) only when empty or holding spaces, quotes,
// backslashes, control characters or invalid UTF-8; bytes print as base64.
inline void append_event_text(std::string& out, const EventView& ev, const TextOptions& opts = {}) {
  append_rfc3339(out, ev.event_time_ns(), 3);
  if (!ev.source().empty()) {
    out.append(" [");
    append_text_token(out, ev.source());
    out.push_back(']');
  }
  if (!ev.key().empty()) {
    out.push_back(' ');
    append_text_token(out, ev.key());
  }
  auto put = [&](const fb::Field* f) {
    out.push_back(' ');
    append_text_token(out, EventView::sv(f->name()));
    out.push_back('=');
    switch (f->type()) {
      case FieldType::Double:
        append_double(out, f->d(), false);
        break;
      case FieldType::String:
        append_text_token(out, EventView::sv(f->s()));
        break;
      case FieldType::Bytes:
        if (f->bin() == nullptr || f->bin()->size() == 0) {
          out.append("\"\"");
        } else {
          append_base64(out, {f->bin()->data(), f->bin()->size()});
        }
        break;
      default:
        append_field_json(out, *f);
        break;
    }
  };
  if (opts.fields.empty()) {
    for (size_t i = 0; i < ev.field_count(); ++i) put(ev.field_at(i));
  } else {
    for (const std::string& name : opts.fields) {
      if (const fb::Field* f = ev.field(name)) put(f);
    }
  }
}

}  // namespace sluice
