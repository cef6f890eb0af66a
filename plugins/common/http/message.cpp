// Event templates and length limits for chat messages (see message.hpp).
#include "message.hpp"

#include <kainjow/mustache.hpp>
#include <stdexcept>
#include <utility>

#include "sluice/event_json.hpp"
#include "sluice/sdk.hpp"

namespace sluice::http {
namespace {

namespace mstch = kainjow::mustache;

// Bytes of the character starting at p and its UTF-16 length; an invalid byte is 1 and 1.
std::pair<size_t, size_t> next_char(const unsigned char* p, const unsigned char* end) {
  if (*p < 0x80) return {1, 1};
  const size_t n = detail::utf8_sequence_length(p, end);
  if (n == 0) return {1, 1};
  return {n, n == 4 ? 2 : 1};
}

}  // namespace

struct EventTemplate::Impl {
  explicit Impl(const std::string& text) : tmpl(text) {}
  mstch::mustache tmpl;
};

EventTemplate::EventTemplate(const std::string& text, Escape escape)
    : impl_(std::make_unique<Impl>(text)) {
  if (!impl_->tmpl.is_valid()) throw std::invalid_argument(impl_->tmpl.error_message());
  impl_->tmpl.set_custom_escape([escape](const std::string& s) { return http::escape(s, escape); });
}

EventTemplate compile_template(const std::string& key, const std::string& text, Escape escape) {
  try {
    return EventTemplate(text, escape);
  } catch (const std::invalid_argument& e) {
    throw OptionError(key, e.what());
  }
}

EventTemplate::~EventTemplate() = default;
EventTemplate::EventTemplate(EventTemplate&&) noexcept = default;
EventTemplate& EventTemplate::operator=(EventTemplate&&) noexcept = default;

std::string EventTemplate::render(const EventView& event) const {
  mstch::data data{mstch::data::type::object};
  for (size_t i = 0; i < event.field_count(); ++i) {
    const fb::Field* f = event.field_at(i);
    data.set(std::string(EventView::sv(f->name())), field_text(*f));
  }
  data.set("_id", std::to_string(event.id()));
  data.set("_key", std::string(event.key()));
  data.set("_source", std::string(event.source()));
  std::string time;
  if (event.event_time_ns() != 0) append_rfc3339(time, event.event_time_ns());
  data.set("_event_time", time);
  return impl_->tmpl.render(data);
}

std::string escape(std::string_view s, Escape escape) {
  if (escape == Escape::kNone) return std::string(s);
  const bool quotes = escape == Escape::kHtml;
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '&') {
      out += "&amp;";
    } else if (c == '<') {
      out += "&lt;";
    } else if (c == '>') {
      out += "&gt;";
    } else if (quotes && c == '"') {
      out += "&quot;";
    } else if (quotes && c == '\'') {
      out += "&#39;";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string field_text(const fb::Field& f) {
  std::string out;
  switch (f.type()) {
    case FieldType::Int:
      append_json_int(out, f.i());
      break;
    case FieldType::Double:
      append_double(out, f.d(), false);
      break;
    case FieldType::Bool:
      out = f.b() ? "true" : "false";
      break;
    case FieldType::String:
      out = EventView::sv(f.s());
      break;
    default:
      break;
  }
  return out;
}

size_t utf16_length(std::string_view s) {
  auto* p = reinterpret_cast<const unsigned char*>(s.data());
  auto* end = p + s.size();
  size_t units = 0;
  while (p < end) {
    auto [bytes, n] = next_char(p, end);
    p += bytes;
    units += n;
  }
  return units;
}

std::string truncate_text(std::string_view s, size_t max_units) {
  if (utf16_length(s) <= max_units) return std::string(s);
  if (max_units == 0) return {};
  auto* begin = reinterpret_cast<const unsigned char*>(s.data());
  auto* p = begin;
  auto* end = p + s.size();
  size_t units = 0;
  while (p < end) {
    auto [bytes, n] = next_char(p, end);
    if (units + n > max_units - 1) break;  // room for the ellipsis
    p += bytes;
    units += n;
  }
  return std::string(s.substr(0, static_cast<size_t>(p - begin))) + "\xE2\x80\xA6";
}

std::optional<std::string_view> pipeline_alert_text(const EventView& event) {
  auto alert = event.string("alert");
  auto text = event.string("text");
  if (!alert || !text || text->empty()) return std::nullopt;
  return text;
}

}  // namespace sluice::http
