// The `generator` source: synthetic events at a chosen rate, for benchmarks, demos and tests.
//
// It is the benchmark source, so an event must cost a few stores rather than a FlatBuffers
// build: the generator builds one template buffer per combination of string lengths (with
// EventBuilder, once) and per event patches ids, times and numbers with the FlatBuffers mutators
// and overwrites same-length strings in place. A new template is built only when a string's
// length changes to one not seen before.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/sdk.hpp"

namespace sluice::generator {

// splitmix64: tiny and fast, plenty for synthetic data; one seed always replays the same values.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, 1).
  double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  // Uniform in [0, n); n = 0 means the whole 64-bit range.
  uint64_t below(uint64_t n) {
    if (n == 0) return next();
    return static_cast<uint64_t>((static_cast<unsigned __int128>(next()) * n) >> 64);
  }
  // Standard normal (Box-Muller; the second value of each pair is kept for the next call).
  double normal();

 private:
  uint64_t state_;
  double spare_ = 0;
  bool has_spare_ = false;
};

// One piece of a value template: literal text or a placeholder.
struct Part {
  enum class Kind { kText, kSeq, kChoice, kInt, kFloat, kField };
  Kind kind = Kind::kText;
  std::string text;                  // kText: the literal; kField: the referenced field's name
  std::vector<std::string> choices;  // kChoice
  int64_t min_i = 0;                 // kInt: inclusive bounds
  int64_t max_i = 0;
  double min_d = 0;  // kFloat: [min, max)
  double max_d = 0;
  size_t field = 0;  // kField: index of the referenced field
};

// A template the user wrote wrongly; column is the 1-based character where the problem starts.
class TemplateError : public std::runtime_error {
 public:
  TemplateError(const std::string& message, uint32_t column)
      : std::runtime_error(message), column_(column) {}
  uint32_t column() const { return column_; }

 private:
  uint32_t column_;
};

// Parses text with placeholders `{seq}`, `{choice:A|B|C}`, `{int:MIN:MAX}`, `{float:MIN:MAX}`
// and the escapes `{{` / `}}`. With field_refs, any other `{name}` refers to a field's value.
// Adjacent literal text is merged into one part. Throws TemplateError.
std::vector<Part> parse_template(std::string_view text, bool field_refs);

class Generator final : public Source {
 public:
  Generator(const Host& host, const Config& config);
  ~Generator() override;

  void run(SourceContext& ctx) override;

  // The next event (ids count from 1). The bytes stay valid until the next call.
  std::span<const uint8_t> next_event();

 private:
  // One field of the generated events. Constants live in the templates and are never touched
  // again; the others get a fresh value per event.
  struct Slot {
    std::string name;
    FieldType type = FieldType::Null;  // Int, Double, Bool or String
    bool constant = true;
    std::vector<Part> parts;  // how a non-constant value is made (empty in liquidation mode)
    int64_t i = 0;            // the current value
    double d = 0;
    bool b = false;
    std::string s;
  };
  struct Template;

  void add_liquidation_slots();
  void add_field_slot(const std::string& name, const Json& value);
  void parse_key(const std::string& key);
  void fill_liquidation(int64_t now);
  void fill_fields();
  void render(const std::vector<Part>& parts, std::string& out);
  void render_value(const Slot& slot, std::string& out) const;
  Template* select_template();
  std::unique_ptr<Template> build_template();

  Host host_;
  uint64_t count_ = 0;
  double interval_ns_ = 0;  // 0 = as fast as downstream accepts
  std::string source_;
  Rng rng_;
  bool liquidations_ = false;  // no `fields`: the built-in liquidation-like events
  std::vector<Slot> slots_;
  std::vector<size_t> text_slots_;  // non-constant String slots, in template order
  std::vector<Part> key_parts_;
  std::string key_;
  uint64_t seq_ = 0;

  EventBuilder builder_;
  std::vector<std::unique_ptr<Template>> templates_;
  Template* current_ = nullptr;
  std::vector<uint32_t> lengths_;  // scratch: this event's string lengths, key last
};

}  // namespace sluice::generator
