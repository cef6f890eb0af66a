// Sluice events: read-only views over received bytes and a reusable builder.
//
// Reading never decodes: field lookups are binary searches over the FlatBuffers vector, which the
// builder always emits sorted by name. A node that only reads forwards the bytes it received.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sluice/event_generated.h"

namespace sluice {

using FieldType = fb::FieldType;

// Non-owning view of one event buffer. The bytes must outlive the view.
class EventView {
 public:
  EventView(const uint8_t* data, size_t size) : data_(data), size_(size), ev_(fb::GetEvent(data)) {}
  explicit EventView(std::span<const uint8_t> bytes) : EventView(bytes.data(), bytes.size()) {}

  // Verifies untrusted bytes (from another process or a tap) before viewing them.
  static std::optional<EventView> verified(const uint8_t* data, size_t size) {
    flatbuffers::Verifier verifier(data, size);
    if (!fb::VerifyEventBuffer(verifier)) return std::nullopt;
    return EventView(data, size);
  }

  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  const fb::Event& raw() const { return *ev_; }

  uint64_t id() const { return ev_->id(); }
  int64_t event_time_ns() const { return ev_->event_time_ns(); }
  int64_t ingest_time_ns() const { return ev_->ingest_time_ns(); }
  std::string_view source() const { return sv(ev_->source()); }
  std::string_view key() const { return sv(ev_->key()); }

  const fb::Field* field(std::string_view name) const { return find(ev_->fields(), name); }
  std::optional<std::string_view> attr(std::string_view name) const {
    const fb::Attr* a = find(ev_->attrs(), name);
    if (a == nullptr) return std::nullopt;
    return sv(a->value());
  }

  // Typed accessors: nullopt when the field is missing or of another type. number() accepts
  // both Int and Double fields.
  std::optional<double> number(std::string_view name) const {
    const fb::Field* f = field(name);
    if (f == nullptr) return std::nullopt;
    if (f->type() == FieldType::Double) return f->d();
    if (f->type() == FieldType::Int) return static_cast<double>(f->i());
    return std::nullopt;
  }
  std::optional<int64_t> integer(std::string_view name) const {
    const fb::Field* f = field(name);
    if (f == nullptr || f->type() != FieldType::Int) return std::nullopt;
    return f->i();
  }
  std::optional<bool> boolean(std::string_view name) const {
    const fb::Field* f = field(name);
    if (f == nullptr || f->type() != FieldType::Bool) return std::nullopt;
    return f->b();
  }
  std::optional<std::string_view> string(std::string_view name) const {
    const fb::Field* f = field(name);
    if (f == nullptr || f->type() != FieldType::String) return std::nullopt;
    return sv(f->s());
  }

  size_t field_count() const { return ev_->fields() ? ev_->fields()->size() : 0; }
  const fb::Field* field_at(size_t i) const { return ev_->fields()->Get(static_cast<uint32_t>(i)); }
  size_t attr_count() const { return ev_->attrs() ? ev_->attrs()->size() : 0; }
  const fb::Attr* attr_at(size_t i) const { return ev_->attrs()->Get(static_cast<uint32_t>(i)); }
  size_t hop_count() const { return ev_->hops() ? ev_->hops()->size() : 0; }
  const fb::Hop* hop_at(size_t i) const { return ev_->hops()->Get(static_cast<uint32_t>(i)); }

  static std::string_view sv(const flatbuffers::String* s) {
    return s == nullptr ? std::string_view{} : std::string_view(s->c_str(), s->size());
  }

 private:
  static std::string_view key_of(const fb::Field* f) { return sv(f->name()); }
  static std::string_view key_of(const fb::Attr* a) { return sv(a->key()); }

  template <class T>
  static const T* find(const flatbuffers::Vector<flatbuffers::Offset<T>>* vec,
                       std::string_view name) {
    if (vec == nullptr) return nullptr;
    uint32_t lo = 0;
    uint32_t hi = vec->size();
    while (lo < hi) {
      uint32_t mid = lo + (hi - lo) / 2;
      const T* item = vec->Get(mid);
      int c = key_of(item).compare(name);
      if (c == 0) return item;
      if (c < 0) lo = mid + 1;
      else hi = mid;
    }
    return nullptr;
  }

  const uint8_t* data_;
  size_t size_;
  const fb::Event* ev_;
};

// Builds events. Reuse one builder per thread: reset() keeps every allocation, so the steady
// state allocates nothing. Fields may be added in any order; a later field with the same name
// replaces an earlier one (so copy_from() followed by field() overrides).
class EventBuilder {
 public:
  EventBuilder() : fbb_(1024) {}

  EventBuilder& reset() {
    fbb_.Clear();
    n_fields_ = 0;
    n_attrs_ = 0;
    n_hops_ = 0;
    id_ = 0;
    event_time_ns_ = 0;
    ingest_time_ns_ = 0;
    source_.clear();
    key_.clear();
    base_ = {};
    return *this;
  }

  // Starts an event that is `base` plus the fields added next (field(), bytes_field(),
  // null_field(); a new field replaces one of the same name). finish() then embeds base's bytes
  // unchanged and writes only the new fields, a new field list and a new root table, where
  // copy_from() re-encodes every field: a composite annotating its child's answer (fallback's
  // fallback_used, ...) pays for its own fields only. The base's old root and field list stay
  // in the buffer unreferenced (a few dozen bytes). `base` must stay valid until finish(). Any
  // other setter (metadata, attrs, hops) first turns this into a full copy_from().
  EventBuilder& extend(const EventView& base) {
    reset();
    base_ = base.bytes();
    return *this;
  }

  EventBuilder& id(uint64_t v) { materialize(); id_ = v; return *this; }
  EventBuilder& event_time_ns(int64_t v) { materialize(); event_time_ns_ = v; return *this; }
  EventBuilder& ingest_time_ns(int64_t v) { materialize(); ingest_time_ns_ = v; return *this; }
  EventBuilder& source(std::string_view v) { materialize(); source_.assign(v); return *this; }
  EventBuilder& key(std::string_view v) { materialize(); key_.assign(v); return *this; }

  EventBuilder& attr(std::string_view k, std::string_view v) {
    materialize();
    Pending& p = next(attrs_, n_attrs_);
    p.name.assign(k);
    p.s.assign(v);
    return *this;
  }
  EventBuilder& hop(std::string_view stage, int64_t time_ns) {
    materialize();
    Pending& p = next(hops_, n_hops_);
    p.name.assign(stage);
    p.i = time_ns;
    return *this;
  }

  EventBuilder& field(std::string_view name, int64_t v) {
    Pending& p = next_field(name, FieldType::Int);
    p.i = v;
    return *this;
  }
  EventBuilder& field(std::string_view name, int v) { return field(name, int64_t{v}); }
  EventBuilder& field(std::string_view name, double v) {
    Pending& p = next_field(name, FieldType::Double);
    p.d = v;
    return *this;
  }
  EventBuilder& field(std::string_view name, bool v) {
    Pending& p = next_field(name, FieldType::Bool);
    p.b = v;
    return *this;
  }
  EventBuilder& field(std::string_view name, std::string_view v) {
    Pending& p = next_field(name, FieldType::String);
    p.s.assign(v);
    return *this;
  }
  EventBuilder& field(std::string_view name, const char* v) {
    return field(name, std::string_view(v));
  }
  EventBuilder& field(std::string_view name, const std::string& v) {
    return field(name, std::string_view(v));
  }
  EventBuilder& bytes_field(std::string_view name, std::span<const uint8_t> v) {
    Pending& p = next_field(name, FieldType::Bytes);
    p.s.assign(reinterpret_cast<const char*>(v.data()), v.size());
    return *this;
  }
  EventBuilder& null_field(std::string_view name) {
    next_field(name, FieldType::Null);
    return *this;
  }

  // Copies metadata, attrs, fields and hops of an existing event; later calls override.
  EventBuilder& copy_from(const EventView& ev) {
    materialize();
    id(ev.id()).event_time_ns(ev.event_time_ns()).ingest_time_ns(ev.ingest_time_ns());
    source(ev.source()).key(ev.key());
    for (size_t i = 0; i < ev.attr_count(); ++i) {
      const fb::Attr* a = ev.attr_at(i);
      attr(EventView::sv(a->key()), EventView::sv(a->value()));
    }
    for (size_t i = 0; i < ev.hop_count(); ++i) {
      const fb::Hop* h = ev.hop_at(i);
      hop(EventView::sv(h->stage()), h->time_ns());
    }
    for (size_t i = 0; i < ev.field_count(); ++i) copy_field(*ev.field_at(i));
    return *this;
  }
  EventBuilder& copy_field(const fb::Field& f) {
    std::string_view name = EventView::sv(f.name());
    switch (f.type()) {
      case FieldType::Int: return field(name, f.i());
      case FieldType::Double: return field(name, f.d());
      case FieldType::Bool: return field(name, f.b());
      case FieldType::String: return field(name, EventView::sv(f.s()));
      case FieldType::Bytes:
        return bytes_field(name, f.bin() ? std::span<const uint8_t>(f.bin()->data(), f.bin()->size())
                                         : std::span<const uint8_t>{});
      default: return null_field(name);
    }
  }

  // Serialises the event. The span stays valid until the next reset()/finish().
  std::span<const uint8_t> finish() {
    if (!base_.empty()) return finish_extended();
    fbb_.Clear();
    auto fields = build_fields();
    auto attrs = build_keyed_attrs();
    flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<fb::Hop>>> hops;
    if (n_hops_ > 0) {
      hop_offsets_.clear();
      for (size_t i = 0; i < n_hops_; ++i) {
        hop_offsets_.push_back(fb::CreateHop(fbb_, fbb_.CreateString(hops_[i].name), hops_[i].i));
      }
      hops = fbb_.CreateVector(hop_offsets_);
    }
    auto src = source_.empty() ? 0 : fbb_.CreateString(source_);
    auto key = key_.empty() ? 0 : fbb_.CreateString(key_);
    fb::EventBuilder eb(fbb_);
    eb.add_id(id_);
    eb.add_event_time_ns(event_time_ns_);
    eb.add_ingest_time_ns(ingest_time_ns_);
    if (!source_.empty()) eb.add_source(src);
    if (!key_.empty()) eb.add_key(key);
    if (n_attrs_ > 0) eb.add_attrs(attrs);
    if (n_fields_ > 0) eb.add_fields(fields);
    if (n_hops_ > 0) eb.add_hops(hops);
    fb::FinishEventBuffer(fbb_, eb.Finish());
    return {fbb_.GetBufferPointer(), fbb_.GetSize()};
  }

 private:
  struct Pending {
    std::string name;
    FieldType type = FieldType::Null;
    int64_t i = 0;
    double d = 0;
    bool b = false;
    std::string s;
  };

  // extend() mode → the equivalent copy_from(), keeping the fields added since (they win).
  void materialize() {
    if (base_.empty()) return;
    std::span<const uint8_t> base = std::exchange(base_, {});
    size_t added = n_fields_;
    copy_from(EventView(base.data(), base.size()));
    std::rotate(fields_.begin(), fields_.begin() + static_cast<std::ptrdiff_t>(added),
                fields_.begin() + static_cast<std::ptrdiff_t>(n_fields_));
  }

  // extend(): base's bytes first, so each base object keeps its distance from the buffer's end
  // (FlatBuffers aligns relative to the end) and is referred to by that distance; then the new
  // fields, the merged, name-sorted field list and a root table pointing at base's strings,
  // attrs and hops.
  std::span<const uint8_t> finish_extended() {
    const std::span<const uint8_t> base = base_;
    const uint8_t* data = base.data();
    const auto n = static_cast<flatbuffers::uoffset_t>(base.size());
    if (n % 8 != 0) {  // not padded as this builder pads: take the general path
      materialize();
      return finish();
    }
    const fb::Event& ev = *fb::GetEvent(data);
    auto at = [&](const void* p) {
      return n - static_cast<flatbuffers::uoffset_t>(static_cast<const uint8_t*>(p) - data);
    };
    fbb_.Clear();
    fbb_.PushBytes(data, n);
    fbb_.TrackMinAlign(8);
    sorted_unique(fields_, n_fields_);
    added_offsets_.clear();
    for (uint32_t idx : order_) added_offsets_.push_back(build_field(fields_[idx]));
    // Merge base fields (sorted) with the new ones (sorted); a new one replaces its namesake.
    field_offsets_.clear();
    const auto* old = ev.fields();
    uint32_t i = 0;
    const uint32_t old_n = old ? old->size() : 0;
    for (size_t k = 0; k <= order_.size(); ++k) {
      const bool last = k == order_.size();
      std::string_view name = last ? std::string_view{} : std::string_view(fields_[order_[k]].name);
      while (i < old_n) {
        const fb::Field* f = old->Get(i);
        std::string_view old_name = EventView::sv(f->name());
        if (!last && old_name >= name) {
          if (old_name == name) ++i;  // replaced
          break;
        }
        field_offsets_.push_back(flatbuffers::Offset<fb::Field>(at(f)));
        ++i;
      }
      if (!last) field_offsets_.push_back(added_offsets_[k]);
    }
    auto fields = fbb_.CreateVector(field_offsets_);
    fb::EventBuilder eb(fbb_);
    eb.add_id(ev.id());
    eb.add_event_time_ns(ev.event_time_ns());
    eb.add_ingest_time_ns(ev.ingest_time_ns());
    if (ev.source()) eb.add_source(flatbuffers::Offset<flatbuffers::String>(at(ev.source())));
    if (ev.key()) eb.add_key(flatbuffers::Offset<flatbuffers::String>(at(ev.key())));
    if (ev.attrs()) {
      eb.add_attrs(flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<fb::Attr>>>(
          at(ev.attrs())));
    }
    if (!field_offsets_.empty()) eb.add_fields(fields);
    if (ev.hops()) {
      eb.add_hops(
          flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<fb::Hop>>>(at(ev.hops())));
    }
    fb::FinishEventBuffer(fbb_, eb.Finish());
    base_ = {};
    return {fbb_.GetBufferPointer(), fbb_.GetSize()};
  }

  static Pending& next(std::vector<Pending>& v, size_t& n) {
    if (n == v.size()) v.emplace_back();
    return v[n++];
  }
  Pending& next_field(std::string_view name, FieldType type) {
    Pending& p = next(fields_, n_fields_);
    p.name.assign(name);
    p.type = type;
    return p;
  }

  // Sorted, last-wins order of pending items by name, as indices.
  void sorted_unique(const std::vector<Pending>& v, size_t n) {
    order_.resize(n);
    for (size_t i = 0; i < n; ++i) order_[i] = static_cast<uint32_t>(i);
    std::stable_sort(order_.begin(), order_.end(),
                     [&](uint32_t a, uint32_t b) { return v[a].name < v[b].name; });
    size_t out = 0;
    for (size_t i = 0; i < n; ++i) {
      if (out > 0 && v[order_[out - 1]].name == v[order_[i]].name) {
        order_[out - 1] = order_[i];  // a later duplicate wins
      } else {
        order_[out++] = order_[i];
      }
    }
    order_.resize(out);
  }

  flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<fb::Field>>> build_fields() {
    if (n_fields_ == 0) return 0;
    sorted_unique(fields_, n_fields_);
    field_offsets_.clear();
    for (uint32_t idx : order_) field_offsets_.push_back(build_field(fields_[idx]));
    return fbb_.CreateVector(field_offsets_);
  }

  flatbuffers::Offset<fb::Field> build_field(const Pending& p) {
    auto name = fbb_.CreateString(p.name);
    flatbuffers::Offset<flatbuffers::String> s;
    flatbuffers::Offset<flatbuffers::Vector<uint8_t>> bin;
    if (p.type == FieldType::String) s = fbb_.CreateString(p.s);
    if (p.type == FieldType::Bytes) {
      bin = fbb_.CreateVector(reinterpret_cast<const uint8_t*>(p.s.data()), p.s.size());
    }
    fb::FieldBuilder fbld(fbb_);
    fbld.add_name(name);
    fbld.add_type(p.type);
    switch (p.type) {
      case FieldType::Int: fbld.add_i(p.i); break;
      case FieldType::Double: fbld.add_d(p.d); break;
      case FieldType::Bool: fbld.add_b(p.b); break;
      case FieldType::String: fbld.add_s(s); break;
      case FieldType::Bytes: fbld.add_bin(bin); break;
      default: break;
    }
    return fbld.Finish();
  }

  flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<fb::Attr>>> build_keyed_attrs() {
    if (n_attrs_ == 0) return 0;
    sorted_unique(attrs_, n_attrs_);
    attr_offsets_.clear();
    for (uint32_t idx : order_) {
      attr_offsets_.push_back(fb::CreateAttr(fbb_, fbb_.CreateString(attrs_[idx].name),
                                             fbb_.CreateString(attrs_[idx].s)));
    }
    return fbb_.CreateVector(attr_offsets_);
  }

  flatbuffers::FlatBufferBuilder fbb_;
  uint64_t id_ = 0;
  int64_t event_time_ns_ = 0;
  int64_t ingest_time_ns_ = 0;
  std::string source_;
  std::string key_;
  std::vector<Pending> fields_;
  std::vector<Pending> attrs_;
  std::vector<Pending> hops_;
  size_t n_fields_ = 0;
  size_t n_attrs_ = 0;
  size_t n_hops_ = 0;
  std::vector<uint32_t> order_;
  std::vector<flatbuffers::Offset<fb::Field>> field_offsets_;
  std::vector<flatbuffers::Offset<fb::Field>> added_offsets_;  // extend(): the new fields
  std::span<const uint8_t> base_;                               // extend(): the base event
  std::vector<flatbuffers::Offset<fb::Attr>> attr_offsets_;
  std::vector<flatbuffers::Offset<fb::Hop>> hop_offsets_;
};

}  // namespace sluice
