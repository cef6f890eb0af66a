// Text helpers shared by the chat and webhook sinks: mustache templates over an event's fields
// and length limits that never split a character.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "sluice/event.hpp"

namespace sluice::http {

// How {{name}} values are escaped ({{{name}}} is never escaped).
enum class Escape {
  kNone,   // Discord markdown, plain text
  kHtml,   // & < > " ' (Telegram HTML parse mode)
  kSlack,  // & < > only, as Slack's mrkdwn requires
};

// A mustache template compiled once and rendered per event. Every field is a variable by name
// (doubles in shortest form, 2.0 as "2"), plus _id, _key, _source and _event_time (RFC 3339).
class EventTemplate {
 public:
  // Throws std::invalid_argument with the parser's message when the template is malformed.
  EventTemplate(const std::string& text, Escape escape);
  ~EventTemplate();
  EventTemplate(EventTemplate&&) noexcept;
  EventTemplate& operator=(EventTemplate&&) noexcept;

  std::string render(const EventView& event) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The template `text` of option `key`, compiled; a malformed one throws OptionError naming key.
EventTemplate compile_template(const std::string& key, const std::string& text, Escape escape);

// s escaped as {{name}} escapes a value.
std::string escape(std::string_view s, Escape escape);

// The text as a field value would render in a template ("" for null and bytes).
std::string field_text(const fb::Field& field);

// Length as chat services count it: UTF-16 code units (a character outside the BMP counts 2;
// a byte that is not valid UTF-8 counts 1).
size_t utf16_length(std::string_view s);

// s cut to at most max_units UTF-16 units on a character boundary, ending in "…" when cut.
std::string truncate_text(std::string_view s, size_t max_units);

// The message of an alert the pipeline raised about itself (a `watch` crossing a threshold, a
// rollout rolled back): an event with string fields `alert` and `text`. Chat sinks send `text`
// as it is instead of their liquidation template. nullopt for any other event.
std::optional<std::string_view> pipeline_alert_text(const EventView& event);

}  // namespace sluice::http
