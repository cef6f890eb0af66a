// The `console` sink: rendering into the batch buffer and the timed flush (see console.hpp).
#include "console.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

namespace sluice::console {

ConsoleSink::ConsoleSink(const Host& host, const Config& config)
    : host_(host),
      fd_(config.str("stream") == "stderr" ? STDERR_FILENO : STDOUT_FILENO),
      json_format_(config.str("format") == "json"),
      fields_(config.strings("fields")),
      metadata_(config.flag("metadata")) {
  // A repeated name would print the field twice, and as a duplicate key in JSON.
  for (size_t i = 0; i < fields_.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (fields_[i] == fields_[j]) throw OptionError("fields", "lists '" + fields_[i] + "' twice");
    }
  }
}

ConsoleSink::~ConsoleSink() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (flusher_.joinable()) flusher_.join();
  std::lock_guard lock(mu_);
  write_locked();
}

void ConsoleSink::consume(Call call) {
  {
    std::lock_guard lock(mu_);
    if (closed_) {
      host_.counter_add("console_lines_dropped_total", 1);
      call.ok();
      return;
    }
    const bool was_empty = buffer_.empty();
    if (json_format_) {
      append_event_json(buffer_, call.event(), {.metadata = metadata_, .fields = fields_});
    } else {
      append_event_text(buffer_, call.event(), {.fields = fields_});
    }
    buffer_.push_back('\n');
    ++buffered_lines_;
    if (buffer_.size() >= kBatchBytes) {
      write_locked();
    } else if (was_empty) {
      if (!flusher_.joinable()) flusher_ = std::thread([this] { flusher_loop(); });
      cv_.notify_all();
    }
  }
  call.ok();
}

void ConsoleSink::flush() {
  std::lock_guard lock(mu_);
  write_locked();
}

void ConsoleSink::flusher_loop() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    cv_.wait(lock, [&] { return stop_ || !buffer_.empty(); });
    cv_.wait_for(lock, kMaxDelay, [&] { return stop_; });
    write_locked();
  }
}

void ConsoleSink::write_locked() {
  const char* stream = fd_ == STDERR_FILENO ? "stderr" : "stdout";
  size_t done = 0;
  while (done < buffer_.size() && !closed_) {
    const ssize_t n = ::write(fd_, buffer_.data() + done, buffer_.size() - done);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    const int err = n < 0 ? errno : EIO;
    host_.counter_add("console_write_errors_total", 1);
    if (err == EPIPE) {
      // Nobody reads any more (`| head` exited): writing on would only fail again.
      closed_ = true;
      host_.warn(std::string("the reader of ") + stream +
                 " went away (broken pipe): console output stops here; events keep flowing to "
                 "the rest of the pipeline (console_lines_dropped_total counts the lines not "
                 "printed)");
      break;
    }
    // Rate-limited: a failing terminal would otherwise log once per batch, forever.
    if (write_errors_++ % 1000 == 0) {
      host_.warn(std::string("cannot write to ") + stream + ": " + std::strerror(err) + " (" +
                 std::to_string(write_errors_) + " failed writes so far; their lines are dropped)");
    }
    break;
  }
  if (done < buffer_.size()) {
    drop_locked();
  } else {
    buffer_.clear();
    buffered_lines_ = 0;
  }
}

void ConsoleSink::drop_locked() {
  // A partly written batch counts whole: the line cut in half was not printed either.
  if (buffered_lines_ > 0) {
    host_.counter_add("console_lines_dropped_total", static_cast<double>(buffered_lines_));
  }
  buffer_.clear();
  buffered_lines_ = 0;
}

}  // namespace sluice::console

SLUICE_PLUGIN(sluice::console::ConsoleSink, "console", "0.1.0",
              "Prints events to stdout or stderr as text or JSON lines", sluice::console::kOptions);
