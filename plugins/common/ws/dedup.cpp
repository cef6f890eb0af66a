// De-duplication of liquidations across connections (see dedup.hpp).
#include "dedup.hpp"

namespace sluice::ws {

Deduplicator::Deduplicator(int64_t window_ns, size_t capacity)
    : window_ns_(window_ns), capacity_(capacity) {
  seen_.reserve(capacity);
}

bool Deduplicator::first_sighting(std::string_view symbol, int64_t trade_time_ms, double quantity,
                                  int64_t now_ns) {
  while (!order_.empty() &&
         (order_.front().first < now_ns - window_ns_ || order_.size() >= capacity_)) {
    seen_.erase(order_.front().second);
    order_.pop_front();
  }
  const Key key{std::hash<std::string_view>{}(symbol), trade_time_ms, quantity};
  if (!seen_.insert(key).second) return false;
  order_.emplace_back(now_ns, key);
  return true;
}

}  // namespace sluice::ws
