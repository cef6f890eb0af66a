// The `generator` source: option handling, value templates, the patched-template event path and
// rate pacing. See generator.hpp for why events are patched rather than built.
#include "generator.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <iterator>
#include <numbers>

namespace sluice::generator {
namespace {

inline constexpr sluice_option_spec kOptions[] = {
    {.key = "count",
     .type = SLUICE_OPT_INT,
     .default_toml = "0",
     .required = 0,
     .description = "Events to emit, then finish; 0 = endless",
     .choices = nullptr},
    {.key = "rate",
     .type = SLUICE_OPT_DOUBLE,
     .default_toml = "0.0",
     .required = 0,
     .description = "Events per second; 0 = as fast as downstream accepts",
     .choices = nullptr},
    {.key = "fields",
     .type = SLUICE_OPT_TABLE,
     .default_toml = nullptr,
     .required = 0,
     .description = "Field name -> value: integer, float, boolean or string template "
                    "({seq}, {choice:A|B}, {int:MIN:MAX}, {float:MIN:MAX}); "
                    "default: liquidation-like events",
     .choices = nullptr},
    {.key = "key",
     .type = SLUICE_OPT_STRING,
     .default_toml = nullptr,
     .required = 0,
     .description = "Event key template; {NAME} inserts field NAME. "
                    "Default: \"{symbol}\" when there is a symbol field, else no key",
     .choices = nullptr},
    {.key = "seed",
     .type = SLUICE_OPT_INT,
     .default_toml = "1",
     .required = 0,
     .description = "Seed of the pseudo-random values; the same seed gives the same values",
     .choices = nullptr},
    {.key = "source_name",
     .type = SLUICE_OPT_STRING,
     .default_toml = nullptr,
     .required = 0,
     .description = "The events' source; default: the node name",
     .choices = nullptr},
};

// Below this, waiting for the schedule costs more than it is worth: emit early, stay on the
// absolute schedule, and sleep once the lead adds up to a millisecond.
constexpr int64_t kMinSleepNs = 1'000'000;
// Distinct string-length combinations kept as templates; beyond this the cache starts over.
constexpr size_t kMaxTemplates = 64;

// Symbols and prices as recorded on 2025-10-22 (pipelines/data/liquidations_sample.csv);
// qty_scale is 1 / the quantity step.
struct SymbolSpec {
  const char* name;
  double price;
  double qty_scale;
};
constexpr SymbolSpec kSymbols[] = {
    {"BTCUSDT", 108000.0, 1000}, {"ETHUSDT", 3840.0, 1000},   {"SOLUSDT", 184.2, 100},
    {"BNBUSDT", 1062.0, 100},    {"XRPUSDT", 2.381, 10},      {"DOGEUSDT", 0.1951, 1},
    {"EVAAUSDT", 8.05, 10},      {"币安人生USDT", 0.3009, 1}, {"KDAUSDT", 0.0787, 1},
    {"AIAUSDT", 1.294, 1},       {"ASTERUSDT", 0.9915, 1},    {"DOGSUSDT", 5.99e-05, 1},
};
// Shape of the recorded data (1,654 rows): 70% SELL orders (longs liquidated) and notional
// roughly log-normal with median ~$165, p90 ~$2k, p99 ~$15k.
constexpr double kSellShare = 0.7;
constexpr double kNotionalLogMean = 5.1;
constexpr double kNotionalLogSigma = 1.95;
constexpr double kMinNotional = 5.0;
constexpr double kMaxNotional = 5e6;

// Slot indices of the liquidation-like default event (add_liquidation_slots order).
enum LiquidationSlot : size_t {
  kExchange,
  kSymbol,
  kSide,
  kPrice,
  kAvgPrice,
  kQuantity,
  kNotional,
  kOrderType,
  kStatus,
  kTradeTime
};

void append_int(std::string& out, int64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, r.ptr);
}

// precision 0 = shortest text that reads back as the same double.
void append_double(std::string& out, double v, int precision = 0) {
  char buf[40];
  auto r = precision > 0
               ? std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::general, precision)
               : std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, r.ptr);
}

template <class T>
bool parse_number(std::string_view text, T& out) {
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  auto r = std::from_chars(text.data(), text.data() + text.size(), out);
  if (r.ec != std::errc() || r.ptr != text.data() + text.size()) return false;
  if constexpr (std::is_floating_point_v<T>) return std::isfinite(out);
  return true;
}

std::string placeholder_help(bool field_refs) {
  return field_refs ? "use {seq}, {choice:A|B}, {int:MIN:MAX}, {float:MIN:MAX} or {FIELD}"
                    : "use {seq}, {choice:A|B}, {int:MIN:MAX} or {float:MIN:MAX}";
}

Part parse_placeholder(std::string_view body, bool field_refs, uint32_t column) {
  Part p;
  if (body == "seq") {
    p.kind = Part::Kind::kSeq;
    return p;
  }
  size_t colon = body.find(':');
  std::string_view name = body.substr(0, colon);
  std::string_view rest = colon == std::string_view::npos ? "" : body.substr(colon + 1);
  if (colon != std::string_view::npos && name == "choice") {
    if (rest.empty()) {
      throw TemplateError("{choice:...} needs at least one value, e.g. {choice:BUY|SELL}", column);
    }
    p.kind = Part::Kind::kChoice;
    for (size_t start = 0;;) {
      size_t bar = rest.find('|', start);
      p.choices.emplace_back(rest.substr(start, bar - start));
      if (bar == std::string_view::npos) break;
      start = bar + 1;
    }
    return p;
  }
  if (colon != std::string_view::npos && (name == "int" || name == "float")) {
    size_t sep = rest.find(':');
    std::string_view lo = rest.substr(0, sep);
    std::string_view hi = sep == std::string_view::npos ? "" : rest.substr(sep + 1);
    bool ok;
    bool ordered;
    if (name == "int") {
      p.kind = Part::Kind::kInt;
      ok = parse_number(lo, p.min_i) && parse_number(hi, p.max_i);
      ordered = p.min_i <= p.max_i;
    } else {
      p.kind = Part::Kind::kFloat;
      ok = parse_number(lo, p.min_d) && parse_number(hi, p.max_d);
      ordered = p.min_d <= p.max_d;
    }
    if (!ok) {
      throw TemplateError(
          "{" + std::string(name) + ":MIN:MAX} needs two " +
              (name == "int" ? "integers, e.g. {int:1:100}" : "numbers, e.g. {float:0.5:2}") +
              ", got {" + std::string(body) + "}",
          column);
    }
    if (!ordered) {
      throw TemplateError("{" + std::string(body) + "}: MIN is greater than MAX", column);
    }
    return p;
  }
  if (field_refs && !body.empty() && colon == std::string_view::npos) {
    p.kind = Part::Kind::kField;
    p.text.assign(body);
    return p;
  }
  throw TemplateError(
      "unknown placeholder {" + std::string(body) + "}; " + placeholder_help(field_refs), column);
}

}  // namespace

double Rng::normal() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  // log1p(-u) = log(1 - u) with 1 - u in (0, 1], so the log never sees 0.
  double r = std::sqrt(-2.0 * std::log1p(-unit()));
  double angle = 2.0 * std::numbers::pi * unit();
  spare_ = r * std::sin(angle);
  has_spare_ = true;
  return r * std::cos(angle);
}

std::vector<Part> parse_template(std::string_view text, bool field_refs) {
  std::vector<Part> parts;
  auto literal = [&](std::string_view s) {
    if (parts.empty() || parts.back().kind != Part::Kind::kText) parts.emplace_back();
    parts.back().text.append(s);
  };
  size_t i = 0;
  while (i < text.size()) {
    const bool doubled = i + 1 < text.size() && text[i + 1] == text[i];
    if (text[i] == '}') {
      if (!doubled) {
        throw TemplateError("unmatched '}' (write '}}' for a literal brace)",
                            static_cast<uint32_t>(i + 1));
      }
      literal("}");
      i += 2;
    } else if (text[i] == '{') {
      if (doubled) {
        literal("{");
        i += 2;
        continue;
      }
      size_t close = text.find('}', i + 1);
      if (close == std::string_view::npos) {
        throw TemplateError("unterminated '{' (write '{{' for a literal brace)",
                            static_cast<uint32_t>(i + 1));
      }
      parts.push_back(parse_placeholder(text.substr(i + 1, close - i - 1), field_refs,
                                        static_cast<uint32_t>(i + 1)));
      i = close + 1;
    } else {
      size_t next = std::min(text.find_first_of("{}", i), text.size());
      literal(text.substr(i, next - i));
      i = next;
    }
  }
  return parts;
}

// One prebuilt event for one combination of string lengths, with pointers to what gets patched.
struct Generator::Template {
  std::vector<uint32_t> lengths;  // of each text slot, then of the key
  std::vector<uint8_t> bytes;     // heap storage: the pointers below survive moving the vector
  fb::Event* event = nullptr;
  std::vector<fb::Field*> fields;  // per slot; nullptr for constants
  std::vector<char*> text;         // string bytes of each text slot
  char* key = nullptr;             // nullptr when the key is empty
};

Generator::Generator(const Host& host, const Config& config)
    : host_(host), rng_(static_cast<uint64_t>(config.i64("seed", 1))) {
  const int64_t count = config.i64("count", 0);
  if (count < 0) {
    throw OptionError("count", "count must be 0 (endless) or more, got " + std::to_string(count));
  }
  count_ = static_cast<uint64_t>(count);
  const double rate = config.f64("rate", 0);
  if (!(rate >= 0) || !std::isfinite(rate)) {
    std::string shown;
    append_double(shown, rate);
    throw OptionError("rate",
                      "rate must be 0 (unlimited) or a positive number of events per "
                      "second, got " +
                          shown);
  }
  interval_ns_ = rate > 0 ? 1e9 / rate : 0;
  source_ = config.str("source_name", std::string(host.node_name()));

  if (config.has("fields")) {
    const Json& fields = config.at("fields");
    if (!fields.is_object() || fields.empty()) {
      throw OptionError("fields",
                        "fields must be a table of field name = value; leave it out "
                        "for liquidation-like events");
    }
    for (const auto& [name, value] : fields.items()) add_field_slot(name, value);
  } else {
    liquidations_ = true;
    add_liquidation_slots();
  }
  for (size_t k = 0; k < slots_.size(); ++k) {
    if (!slots_[k].constant && slots_[k].type == FieldType::String) text_slots_.push_back(k);
  }

  const bool has_symbol =
      std::any_of(slots_.begin(), slots_.end(), [](const Slot& s) { return s.name == "symbol"; });
  parse_key(config.has("key") ? config.str("key") : has_symbol ? "{symbol}" : "");
}

Generator::~Generator() = default;

void Generator::add_liquidation_slots() {
  auto add = [&](const char* name, FieldType type, bool constant, const char* text = "") {
    Slot& s = slots_.emplace_back();
    s.name = name;
    s.type = type;
    s.constant = constant;
    s.s = text;
  };
  add("exchange", FieldType::String, true, "binance");
  add("symbol", FieldType::String, false);
  add("side", FieldType::String, false);
  add("price", FieldType::Double, false);
  add("avg_price", FieldType::Double, false);
  add("quantity", FieldType::Double, false);
  add("notional_usd", FieldType::Double, false);
  add("order_type", FieldType::String, true, "LIMIT");
  add("status", FieldType::String, true, "FILLED");
  add("trade_time_ms", FieldType::Int, false);
}

void Generator::add_field_slot(const std::string& name, const Json& value) {
  if (name.empty()) throw OptionError("fields", "field names must not be empty");
  Slot s;
  s.name = name;
  if (value.is_boolean()) {
    s.type = FieldType::Bool;
    s.b = value.get<bool>();
  } else if (value.is_number_integer()) {
    s.type = FieldType::Int;
    s.i = value.get<int64_t>();
  } else if (value.is_number_float()) {
    s.type = FieldType::Double;
    s.d = value.get<double>();
  } else if (value.is_string()) {
    const std::string text = value.get<std::string>();
    try {
      s.parts = parse_template(text, false);
    } catch (const TemplateError& e) {
      throw OptionError("fields", "field '" + name + "' = \"" + text + "\": " + e.what() +
                                      " (at character " + std::to_string(e.column()) + ")");
    }
    const Part::Kind only = s.parts.size() == 1 ? s.parts[0].kind : Part::Kind::kText;
    s.type = only == Part::Kind::kSeq || only == Part::Kind::kInt ? FieldType::Int
             : only == Part::Kind::kFloat                         ? FieldType::Double
                                                                  : FieldType::String;
    s.constant = s.parts.empty() || (s.parts.size() == 1 && only == Part::Kind::kText);
    if (s.constant) {
      s.s = s.parts.empty() ? "" : s.parts[0].text;
      s.parts.clear();
    }
  } else {
    throw OptionError("fields", "field '" + name +
                                    "' must be an integer, float, boolean or "
                                    "string, got " +
                                    std::string(value.type_name()));
  }
  slots_.push_back(std::move(s));
}

void Generator::parse_key(const std::string& key) {
  try {
    key_parts_ = parse_template(key, true);
  } catch (const TemplateError& e) {
    throw OptionError("key", e.what(), e.column());
  }
  for (Part& p : key_parts_) {
    if (p.kind == Part::Kind::kField) {
      auto it = std::find_if(slots_.begin(), slots_.end(),
                             [&](const Slot& s) { return s.name == p.text; });
      if (it == slots_.end()) {
        std::string names;
        for (const Slot& s : slots_) names += (names.empty() ? "" : ", ") + s.name;
        throw OptionError("key", "no field named '" + p.text + "' (fields: " + names + ")",
                          static_cast<uint32_t>(key.find("{" + p.text + "}") + 1));
      }
      p.field = static_cast<size_t>(it - slots_.begin());
    }
  }
  if (key_parts_.size() <= 1 && (key_parts_.empty() || key_parts_[0].kind == Part::Kind::kText)) {
    key_ = key_parts_.empty() ? "" : key_parts_[0].text;
    key_parts_.clear();
  }
}

void Generator::render_value(const Slot& slot, std::string& out) const {
  switch (slot.type) {
    case FieldType::Int:
      append_int(out, slot.i);
      break;
    case FieldType::Double:
      append_double(out, slot.d);
      break;
    case FieldType::Bool:
      out += slot.b ? "true" : "false";
      break;
    default:
      out += slot.s;
      break;
  }
}

void Generator::render(const std::vector<Part>& parts, std::string& out) {
  out.clear();
  for (const Part& p : parts) {
    switch (p.kind) {
      case Part::Kind::kText:
        out += p.text;
        break;
      case Part::Kind::kSeq:
        append_int(out, static_cast<int64_t>(seq_));
        break;
      case Part::Kind::kChoice:
        out += p.choices[rng_.below(p.choices.size())];
        break;
      case Part::Kind::kInt:
        append_int(out, p.min_i + static_cast<int64_t>(
                                      rng_.below(static_cast<uint64_t>(p.max_i - p.min_i) + 1)));
        break;
      case Part::Kind::kFloat:
        append_double(out, p.min_d + (p.max_d - p.min_d) * rng_.unit(), 6);
        break;
      case Part::Kind::kField:
        render_value(slots_[p.field], out);
        break;
    }
  }
}

void Generator::fill_fields() {
  for (Slot& s : slots_) {
    if (s.constant) continue;
    const Part& p = s.parts[0];
    switch (s.type) {
      case FieldType::Int:
        s.i = p.kind == Part::Kind::kSeq
                  ? static_cast<int64_t>(seq_)
                  : p.min_i + static_cast<int64_t>(
                                  rng_.below(static_cast<uint64_t>(p.max_i - p.min_i) + 1));
        break;
      case FieldType::Double:
        s.d = p.min_d + (p.max_d - p.min_d) * rng_.unit();
        break;
      default:
        render(s.parts, s.s);
        break;
    }
  }
}

void Generator::fill_liquidation(int64_t now) {
  const SymbolSpec& sym = kSymbols[rng_.below(std::size(kSymbols))];
  slots_[kSymbol].s = sym.name;
  slots_[kSide].s = rng_.unit() < kSellShare ? "SELL" : "BUY";
  const double price = sym.price * (1 + 0.02 * (rng_.unit() - 0.5));
  const double avg_price = price * (1 + 0.002 * (rng_.unit() - 0.5));
  const double target = std::clamp(std::exp(kNotionalLogMean + kNotionalLogSigma * rng_.normal()),
                                   kMinNotional, kMaxNotional);
  const double quantity =
      std::max(1.0, std::round(target / avg_price * sym.qty_scale)) / sym.qty_scale;
  slots_[kPrice].d = price;
  slots_[kAvgPrice].d = avg_price;
  slots_[kQuantity].d = quantity;
  slots_[kNotional].d = avg_price * quantity;
  slots_[kTradeTime].i = now / 1'000'000;
}

std::unique_ptr<Generator::Template> Generator::build_template() {
  // Patched scalars are built as 1, not their current value: FlatBuffers leaves out a scalar
  // equal to its default (0), and a field that is not in the buffer cannot be mutated.
  builder_.reset().id(1).event_time_ns(1).ingest_time_ns(1).source(source_).key(key_);
  for (const Slot& s : slots_) {
    switch (s.type) {
      case FieldType::Int:
        builder_.field(s.name, s.constant ? s.i : int64_t{1});
        break;
      case FieldType::Double:
        builder_.field(s.name, s.constant ? s.d : 1.0);
        break;
      case FieldType::Bool:
        builder_.field(s.name, s.b);
        break;
      default:
        builder_.field(s.name, std::string_view(s.s));
        break;
    }
  }
  std::span<const uint8_t> built = builder_.finish();
  auto t = std::make_unique<Template>();
  t->lengths = lengths_;
  t->bytes.assign(built.begin(), built.end());
  t->event = fb::GetMutableEvent(t->bytes.data());
  t->fields.assign(slots_.size(), nullptr);
  auto* fields = t->event->mutable_fields();
  for (size_t k = 0; k < slots_.size(); ++k) {
    if (!slots_[k].constant) t->fields[k] = fields->MutableLookupByKey(slots_[k].name.c_str());
  }
  for (size_t k : text_slots_) {
    t->text.push_back(reinterpret_cast<char*>(t->fields[k]->mutable_s()->Data()));
  }
  if (!key_.empty()) t->key = reinterpret_cast<char*>(t->event->mutable_key()->Data());
  return t;
}

Generator::Template* Generator::select_template() {
  lengths_.clear();
  for (size_t k : text_slots_) lengths_.push_back(static_cast<uint32_t>(slots_[k].s.size()));
  lengths_.push_back(static_cast<uint32_t>(key_.size()));
  if (current_ != nullptr && current_->lengths == lengths_) return current_;
  for (const auto& t : templates_) {
    if (t->lengths == lengths_) return current_ = t.get();
  }
  if (templates_.size() >= kMaxTemplates) templates_.clear();
  templates_.push_back(build_template());
  return current_ = templates_.back().get();
}

std::span<const uint8_t> Generator::next_event() {
  ++seq_;
  const int64_t now = now_ns();
  if (liquidations_) {
    fill_liquidation(now);
  } else {
    fill_fields();
  }
  if (!key_parts_.empty()) render(key_parts_, key_);

  Template* t = select_template();
  t->event->mutate_id(seq_);
  t->event->mutate_event_time_ns(now);
  t->event->mutate_ingest_time_ns(now);
  for (size_t k = 0; k < slots_.size(); ++k) {
    const Slot& s = slots_[k];
    if (s.constant) continue;
    if (s.type == FieldType::Int) t->fields[k]->mutate_i(s.i);
    if (s.type == FieldType::Double) t->fields[k]->mutate_d(s.d);
  }
  for (size_t j = 0; j < text_slots_.size(); ++j) {
    std::memcpy(t->text[j], slots_[text_slots_[j]].s.data(), lengths_[j]);
  }
  if (t->key != nullptr) std::memcpy(t->key, key_.data(), key_.size());
  return t->bytes;
}

void Generator::run(SourceContext& ctx) {
  // Absolute schedule: event n is due n intervals after the start, so sleeping late or emitting
  // early never accumulates into drift.
  const int64_t start = mono_ns();
  for (uint64_t n = 0; count_ == 0 || n < count_; ++n) {
    if (interval_ns_ > 0) {
      const int64_t due = start + static_cast<int64_t>(static_cast<double>(n) * interval_ns_);
      const int64_t lead = due - mono_ns();
      if (lead >= kMinSleepNs && !ctx.sleep_for(std::chrono::nanoseconds(lead))) return;
    }
    if (!ctx.emit(next_event())) return;
  }
}

}  // namespace sluice::generator

SLUICE_PLUGIN(sluice::generator::Generator, "generator", "1.0.0",
              "Synthetic events at a chosen rate: liquidation-like by default, or from field "
              "templates",
              sluice::generator::kOptions);
