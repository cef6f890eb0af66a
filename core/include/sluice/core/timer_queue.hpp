// Timers of one stage (ABI 1.2 timer_start, child deadlines): a thread-safe queue ordered by
// due time that the stage thread runs between events. Callbacks run outside the lock, so one
// may start or cancel others.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <utility>
#include <vector>

namespace sluice::core {

class TimerQueue {
 public:
  // fn(false) when due; fn(true) when cancelled or cleared first (just release what it holds).
  using Fn = std::function<void(bool cancelled)>;

  TimerQueue() = default;
  TimerQueue(const TimerQueue&) = delete;
  TimerQueue& operator=(const TimerQueue&) = delete;
  ~TimerQueue() { clear(); }

  // Adds a timer due at due_ns (mono_ns()); returns its id (never 0). *earliest tells whether
  // it is now the first due, i.e. whether a sleeping loop must wake to re-arm.
  uint64_t add(int64_t due_ns, Fn fn, bool* earliest = nullptr) {
    std::lock_guard lock(mu_);
    uint64_t id = ++next_id_;
    timers_.emplace(id, Entry{due_ns, std::move(fn)});
    order_.emplace(due_ns, id);
    count_.store(timers_.size(), std::memory_order_relaxed);
    if (earliest != nullptr) *earliest = order_.begin()->second == id;
    return id;
  }

  // True when the timer was pending: its fn(true) has run and it never fires.
  bool cancel(uint64_t id) {
    Fn fn;
    {
      std::lock_guard lock(mu_);
      auto it = timers_.find(id);
      if (it == timers_.end()) return false;
      order_.erase({it->second.due_ns, id});
      fn = std::move(it->second.fn);
      timers_.erase(it);
      count_.store(timers_.size(), std::memory_order_relaxed);
    }
    if (fn) fn(true);
    return true;
  }

  // Runs every timer due at `now`, earliest first (one at a time, so a callback that cancels a
  // later one takes effect). Returns how many ran.
  size_t run_due(int64_t now) {
    size_t ran = 0;
    for (;;) {
      Fn fn;
      {
        std::lock_guard lock(mu_);
        if (order_.empty() || order_.begin()->first > now) return ran;
        uint64_t id = order_.begin()->second;
        order_.erase(order_.begin());
        auto it = timers_.find(id);
        fn = std::move(it->second.fn);
        timers_.erase(it);
        count_.store(timers_.size(), std::memory_order_relaxed);
      }
      ++ran;
      if (fn) fn(false);
    }
  }

  // Due time of the first timer, 0 when none.
  int64_t next_due() const {
    std::lock_guard lock(mu_);
    return order_.empty() ? 0 : order_.begin()->first;
  }
  size_t size() const {
    std::lock_guard lock(mu_);
    return timers_.size();
  }
  // Without the lock, for a hot loop's "any timers at all?" check; may lag a concurrent add by
  // one turn (whoever adds from another thread wakes the loop).
  bool maybe_empty() const { return count_.load(std::memory_order_relaxed) == 0; }

  // Cancels every timer (fn(true) each).
  void clear() {
    std::map<uint64_t, Entry> all;
    {
      std::lock_guard lock(mu_);
      all.swap(timers_);
      order_.clear();
      count_.store(0, std::memory_order_relaxed);
    }
    for (auto& [id, e] : all) {
      if (e.fn) e.fn(true);
    }
  }

 private:
  struct Entry {
    int64_t due_ns;
    Fn fn;
  };
  mutable std::mutex mu_;
  std::atomic<size_t> count_{0};
  uint64_t next_id_ = 0;
  std::map<uint64_t, Entry> timers_;
  std::set<std::pair<int64_t, uint64_t>> order_;  // (due, id)
};

}  // namespace sluice::core
