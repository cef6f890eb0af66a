// uppercase: an example processor that upper-cases one string field of every event and copies
// every other field, attribute and hop unchanged. Copy this folder to start a plugin of your own.
#include <optional>
#include <string>
#include <string_view>

#include "sluice/sdk.hpp"

namespace {

// Declared once: the host validates types and choices, applies the defaults, and renders
// `sluice plugins describe uppercase` and the generated docs from this table.
// clang-format off
constexpr sluice_option_spec kUppercaseOptions[] = {
    {.key = "field", .type = SLUICE_OPT_STRING, .default_toml = "\"symbol\"", .required = 0,
     .description = "String field to upper-case (ASCII letters; other bytes are kept)",
     .choices = nullptr},
    {.key = "missing", .type = SLUICE_OPT_STRING, .default_toml = "\"forward\"", .required = 0,
     .description = "When the field is absent or not a string: forward the event unchanged, "
                    "or reject it (counted, and sent to the node's errors output if wired)",
     .choices = "forward,reject"},
};
// clang-format on

class Uppercase final : public sluice::Processor {
 public:
  // Options arrive validated with defaults applied; the constructor checks only what the schema
  // cannot express, and starts no I/O because `sluice validate` creates instances too.
  Uppercase(const sluice::Host& host, const sluice::Config& config)
      : host_(host),
        field_(config.str("field")),
        reject_missing_(config.str("missing") == "reject") {
    if (field_.empty()) throw sluice::OptionError("field", "must not be empty");
  }

  void process(sluice::Call call) override {
    sluice::EventView event = call.event();
    std::optional<std::string_view> value = event.string(field_);
    if (!value) {
      if (reject_missing_) {
        call.fail(sluice::Status::kRejected, "field '" + field_ + "' is missing or not a string");
        return;
      }
      call.forward();
      call.ok();
      return;
    }
    upper_.assign(*value);
    for (char& c : upper_) {
      if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    }
    if (upper_ == *value) {
      // Nothing to change: re-emit the received bytes instead of building a new buffer.
      call.forward();
      call.ok();
      return;
    }
    // process() runs on the node's stage thread, so one reused builder allocates nothing in the
    // steady state; copy_from() then field() replaces just the one field.
    call.emit(builder_.reset().copy_from(event).field(field_, upper_).finish());
    host_.counter_add("uppercase_rewritten_total", 1);
    call.ok();
  }

 private:
  sluice::Host host_;
  std::string field_;
  bool reject_missing_;
  std::string upper_;
  sluice::EventBuilder builder_;
};

}  // namespace

SLUICE_PLUGIN(Uppercase, "uppercase", "0.1.0", "Upper-cases one string field of every event",
              kUppercaseOptions);
