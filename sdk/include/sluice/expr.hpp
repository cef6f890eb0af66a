// Sluice expressions: predicates over events, compiled once and evaluated per event without
// allocating. Used by the filter and route processors; public so third-party plugins can offer
// the same language. The language reference is docs/expressions.md.
//
//   auto where = sluice::expr::Expression::compile("notional_usd >= $min_usd && side == 'SELL'",
//                                                  host);  // throws sluice::expr::Error
//   if (where.matches(call.event())) call.forward();
//
// An Expression caches the settings it reads and refreshes them when the host's settings version
// changes, so matches() is not const: use one Expression per thread (one per node instance).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "sluice/event.hpp"
#include "sluice/expr/compiler.hpp"
#include "sluice/expr/lexer.hpp"
#include "sluice/expr/value.hpp"
#include "sluice/sdk.hpp"

namespace sluice::expr {

class Expression {
 public:
  // Compiles an expression that reads no settings ($name is then an unknown setting).
  static Expression compile(std::string_view text) { return compile(text, nullptr); }
  // Compiles an expression whose $settings are read through `host`, which must outlive it.
  static Expression compile(std::string_view text, const Host& host) {
    return compile(text, host.raw());
  }
  static Expression compile(std::string_view text, const sluice_host* host) {
    Expression e;
    e.text_.assign(text);
    // Read the version before the values: a change in between is picked up on first use.
    if (host != nullptr) e.version_ = host->settings_version(host->ctx);
    e.prog_ = detail::Compiler(e.text_, host).compile();
    if (!e.prog_.settings.empty()) e.host_ = host;
    return e;
  }

  const std::string& text() const { return text_; }
  bool uses_settings() const { return !prog_.settings.empty(); }

  // Evaluates the predicate. Never throws or allocates, except to re-read settings after the
  // host's settings version changed.
  bool matches(const EventView& event) {
    if (host_ != nullptr) refresh_settings();
    return eval(prog_.root, event);
  }

 private:
  Expression() = default;

  void refresh_settings() {
    uint64_t v = host_->settings_version(host_->ctx);
    if (v == version_) return;
    version_ = v;
    Host host(host_);
    for (detail::Setting& s : prog_.settings) {
      std::optional<Json> value = host.setting(s.name);
      // A setting removed or changed into a list while running reads as null: comparisons on
      // it are false (and != true) until it is fixed.
      if (!value || !constant_from_json(*value, &s.value)) s.value = Constant{};
    }
  }

  Value load(uint32_t operand, const EventView& ev) const {
    const detail::Operand& o = prog_.operands[operand];
    switch (o.src) {
      case detail::Src::kLiteral:
        return o.constant.view();
      case detail::Src::kField:
        return field_value(ev.field(o.name));
      case detail::Src::kSetting:
        return prog_.settings[o.slot].value.view();
      case detail::Src::kKey:
        return Value::string(ev.key());
      case detail::Src::kSource:
        return Value::string(ev.source());
      case detail::Src::kId:
        return Value::unsigned_integer(ev.id());
      case detail::Src::kEventTime:
        return Value::integer(ev.event_time_ns());
      case detail::Src::kIngestTime:
        return Value::integer(ev.ingest_time_ns());
      case detail::Src::kAttr: {
        std::optional<std::string_view> a = ev.attr(o.name);
        return a ? Value::string(*a) : Value::null();
      }
    }
    return Value::null();
  }

  bool eval(uint32_t index, const EventView& ev) const {
    const detail::Node& n = prog_.nodes[index];
    switch (n.op) {
      case detail::Op::kConst:
        return n.value;
      case detail::Op::kAnd:
        for (uint32_t k = n.a; k < n.a + n.count; ++k) {
          if (!eval(prog_.children[k], ev)) return false;
        }
        return true;
      case detail::Op::kOr:
        for (uint32_t k = n.a; k < n.a + n.count; ++k) {
          if (eval(prog_.children[k], ev)) return true;
        }
        return false;
      case detail::Op::kNot:
        return !eval(n.a, ev);
      case detail::Op::kCompare:
        return compare(n.cmp, load(n.a, ev), load(n.b, ev));
      case detail::Op::kIn: {
        Value v = load(n.a, ev);
        for (uint32_t k = n.b; k < n.b + n.count; ++k) {
          if (equal(v, prog_.operands[k].constant.view())) return true;
        }
        return false;
      }
      case detail::Op::kContains:
      case detail::Op::kStartsWith:
      case detail::Op::kEndsWith:
        return detail::string_test(n.op, load(n.a, ev), load(n.b, ev));
      case detail::Op::kTruthy: {
        Value v = load(n.a, ev);
        return v.type == Type::kBool && v.b;
      }
    }
    return false;
  }

  std::string text_;
  detail::Program prog_;
  const sluice_host* host_ = nullptr;
  uint64_t version_ = 0;
};

}  // namespace sluice::expr
