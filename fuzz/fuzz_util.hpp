// Helpers the fuzz targets share: a check that aborts (so libFuzzer keeps the input), reading
// typed values off the front of an input, and an in-memory file for parsers that take a path.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "sluice/event.hpp"

// An invariant of the code under test: abort with the condition, so the input is saved.
#define FUZZ_CHECK(cond)                                                           \
  do {                                                                             \
    if (!(cond)) {                                                                 \
      std::fprintf(stderr, "FUZZ_CHECK failed at %s:%d: %s\n", __FILE__, __LINE__, \
                   #cond);                                                         \
      std::abort();                                                                \
    }                                                                              \
  } while (0)

namespace sluice::fuzz {

inline std::string_view as_text(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Consumes bytes from the front of an input; past the end it yields zeros.
class Input {
 public:
  Input(const uint8_t* data, size_t size) : rest_(as_text(data, size)) {}
  uint8_t byte() {
    if (rest_.empty()) return 0;
    const auto b = static_cast<uint8_t>(rest_.front());
    rest_.remove_prefix(1);
    return b;
  }
  // Text up to the first `sep` (consumed); the whole rest when there is none.
  std::string_view until(char sep) {
    const size_t at = rest_.find(sep);
    std::string_view out = rest_.substr(0, at);
    rest_.remove_prefix(at == std::string_view::npos ? rest_.size() : at + 1);
    return out;
  }
  std::string_view rest() const { return rest_; }

 private:
  std::string_view rest_;
};

// A file in memory (memfd) whose path, /proc/self/fd/N, opens afresh at offset 0: for parsers
// that read a path, without touching the disk per input.
class MemFile {
 public:
  MemFile() : fd_(memfd_create("sluice-fuzz", 0)) {
    FUZZ_CHECK(fd_ >= 0);
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  ~MemFile() { close(fd_); }
  MemFile(const MemFile&) = delete;
  MemFile& operator=(const MemFile&) = delete;

  void write(std::string_view text) {
    FUZZ_CHECK(ftruncate(fd_, 0) == 0);
    size_t done = 0;
    while (done < text.size()) {
      const ssize_t n = pwrite(fd_, text.data() + done, text.size() - done,
                               static_cast<off_t>(done));
      FUZZ_CHECK(n > 0);
      done += static_cast<size_t>(n);
    }
  }
  const std::string& path() const { return path_; }

 private:
  int fd_;
  std::string path_;
};

// Every event a parser builds must verify and read back: walks all of it.
inline void check_event(std::span<const uint8_t> bytes) {
  auto view = EventView::verified(bytes.data(), bytes.size());
  FUZZ_CHECK(view.has_value());
  (void)view->id();
  (void)view->source();
  (void)view->key();
  for (size_t i = 0; i < view->field_count(); ++i) {
    const fb::Field* f = view->field_at(i);
    FUZZ_CHECK(view->field(EventView::sv(f->name())) != nullptr);
  }
}

}  // namespace sluice::fuzz
