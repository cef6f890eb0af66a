// Fuzzes what a stage does with bytes arriving on an edge from another process: the FlatBuffers
// verifier (EventView::verified), then, for what it accepts, every accessor, the JSON and text
// renderings sinks write (the JSON must parse), and the copy a processor makes. A verified event
// must be safe to read whatever its bytes.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "fuzz_util.hpp"
#include "sluice/event_json.hpp"

using namespace sluice;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The stage copies unaligned messages into their own (aligned) buffer before verifying.
  static std::vector<uint64_t> aligned;
  aligned.assign(size / sizeof(uint64_t) + 1, 0);
  std::memcpy(aligned.data(), data, size);
  const auto* bytes = reinterpret_cast<const uint8_t*>(aligned.data());

  const std::optional<EventView> view = EventView::verified(bytes, size);
  if (!view) return 0;
  const EventView& ev = *view;
  (void)ev.id();
  (void)ev.event_time_ns();
  (void)ev.ingest_time_ns();
  (void)ev.source();
  (void)ev.key();
  for (size_t i = 0; i < ev.field_count(); ++i) {
    const std::string_view name = EventView::sv(ev.field_at(i)->name());
    (void)ev.field(name);
    (void)ev.number(name);
    (void)ev.integer(name);
    (void)ev.boolean(name);
    (void)ev.string(name);
  }
  for (size_t i = 0; i < ev.attr_count(); ++i) (void)ev.attr(EventView::sv(ev.attr_at(i)->key()));
  for (size_t i = 0; i < ev.hop_count(); ++i) (void)EventView::sv(ev.hop_at(i)->stage());
  (void)ev.number("price");
  (void)ev.attr("exchange");

  std::string json;
  append_event_json(json, ev);
  FUZZ_CHECK(nlohmann::json::accept(json));
  json.clear();
  const std::string picked[] = {"symbol", "price", "_sluice", ""};
  append_event_json(json, ev, JsonOptions{.metadata = false, .fields = picked});
  FUZZ_CHECK(nlohmann::json::accept(json));
  std::string text;
  append_event_text(text, ev);

  EventBuilder builder;
  builder.reset().copy_from(ev).field("extra", int64_t{1});
  fuzz::check_event(builder.finish());
  return 0;
}
