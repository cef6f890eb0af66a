// Remembers recently seen liquidations by (symbol, trade time, quantity), so one delivered twice
// (on both connections during a rollover, or replayed by a server after a reconnect) is emitted
// once. Fixed-size keys: no allocation per message.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <string_view>
#include <unordered_set>
#include <utility>

namespace sluice::ws {

class Deduplicator {
 public:
  Deduplicator(int64_t window_ns, size_t capacity);
  // True the first time (symbol, trade_time_ms, quantity) is seen within the window.
  bool first_sighting(std::string_view symbol, int64_t trade_time_ms, double quantity,
                      int64_t now_ns);
  size_t size() const { return order_.size(); }

 private:
  // The symbol by its 64-bit hash: two liquidations are confused only if their trade time,
  // quantity and symbol hash all agree.
  struct Key {
    uint64_t symbol_hash;
    int64_t trade_time_ms;
    double quantity;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const {
      return k.symbol_hash ^ (static_cast<uint64_t>(k.trade_time_ms) * 0x9e3779b97f4a7c15ULL) ^
             std::hash<double>{}(k.quantity);
    }
  };

  int64_t window_ns_;
  size_t capacity_;
  std::deque<std::pair<int64_t, Key>> order_;
  std::unordered_set<Key, KeyHash> seen_;
};

}  // namespace sluice::ws
