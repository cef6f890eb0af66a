// The `file` sink: batching, the write path and its error handling (see file.hpp).
#include "file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <utility>

namespace sluice::file_sink {
namespace {

namespace fs = std::filesystem;

std::string quoted(const fs::path& p) { return "'" + p.string() + "'"; }

// Checks, without creating or changing anything, that `path` could be opened for writing: it is
// not a directory, and it is writable or its nearest existing ancestor is a writable directory.
void check_writable(const std::string& path) {
  if (path.empty()) throw OptionError("path", "must not be empty");
  const fs::path p(path);
  std::error_code ec;
  const fs::file_status st = fs::status(p, ec);
  if (fs::exists(st)) {
    if (fs::is_directory(st)) throw OptionError("path", quoted(p) + " is a directory");
    if (::access(p.c_str(), W_OK) != 0) {
      throw OptionError("path", quoted(p) + " is not writable: " + std::strerror(errno));
    }
    return;
  }
  // Absolute, so a relative path's missing first component still walks up to the CWD.
  fs::path dir = fs::absolute(p).parent_path();
  while (!fs::exists(fs::status(dir, ec)) && dir.has_parent_path() && dir != dir.parent_path()) {
    dir = dir.parent_path();
  }
  if (!fs::is_directory(fs::status(dir, ec))) {
    throw OptionError("path",
                      "cannot create " + quoted(p) + ": " + quoted(dir) + " is not a directory");
  }
  if (::access(dir.c_str(), W_OK | X_OK) != 0) {
    throw OptionError("path", "cannot create " + quoted(p) + ": " + quoted(dir) +
                                  " is not writable: " + std::strerror(errno));
  }
}

FsyncPolicy fsync_policy(const std::string& name) {
  if (name == "always") return FsyncPolicy::kAlways;
  if (name == "never") return FsyncPolicy::kNever;
  return FsyncPolicy::kInterval;
}

}  // namespace

FileSink::FileSink(const Host& host, const Config& config)
    : host_(host),
      path_(config.str("path")),
      append_(config.flag("append")),
      json_{.metadata = config.flag("metadata")},
      flush_interval_ns_(config.duration("flush_interval").count()),
      quiet_(std::min<std::chrono::nanoseconds>(kQuietPeriod, config.duration("flush_interval"))),
      buffer_size_(config.size_bytes("buffer_size")),
      fsync_(fsync_policy(config.str("fsync"))),
      fsync_interval_ns_(config.duration("fsync_interval").count()) {
  check_writable(path_);
  if (fsync_ == FsyncPolicy::kInterval && fsync_interval_ns_ <= 0) {
    throw OptionError("fsync_interval",
                      "must be greater than 0 (fsync = \"always\" syncs every batch)");
  }
}

FileSink::~FileSink() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (flusher_.joinable()) flusher_.join();
  std::unique_lock lock(mu_);
  write_batch(lock);
  close_file();
}

void FileSink::consume(Call call) {
  std::unique_lock lock(mu_);
  if (!flusher_.joinable()) flusher_ = std::thread([this] { flusher_loop(); });
  append_event_json(buffer_, call.event(), json_);
  buffer_.push_back('\n');
  const bool was_idle = held_.empty();
  held_.push_back({std::move(call), buffer_.size()});
  ++consumed_;
  if (held_.size() >= kMaxBatchEvents || buffer_.size() >= buffer_size_ ||
      flush_interval_ns_ <= 0) {
    write_batch(lock);
    // The flusher owes these lines a sync within fsync_interval, even if no event follows.
    if (sync_pending()) cv_.notify_all();
    return;
  }
  if (was_idle) {
    batch_start_ns_ = mono_ns();
    cv_.notify_all();
  }
}

void FileSink::flush() {
  std::unique_lock lock(mu_);
  // An input that carried no events still leaves the (truncated or created) file behind.
  std::string error;
  if (!opened_once_ && !ensure_open(error)) host_.error(error);
  write_batch(lock);
  // The stage drains through flush(): what it reported written is on disk when it returns.
  if (fsync_ != FsyncPolicy::kNever && !sync(error)) host_.error(error);
}

void FileSink::flusher_loop() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    if (held_.empty()) {
      if (sync_pending()) {
        // Lines are written but not yet on disk: sync when their interval is up.
        const int64_t due = unsynced_since_ns_ + fsync_interval_ns_;
        const auto wait = std::chrono::nanoseconds(std::max<int64_t>(0, due - mono_ns()));
        cv_.wait_for(lock, wait, [&] { return stop_ || !held_.empty(); });
        if (held_.empty() && sync_pending() && mono_ns() >= due) {
          if (std::string error; !sync(error)) host_.error(error);
        }
        continue;
      }
      cv_.wait(lock, [&] { return stop_ || !held_.empty() || sync_pending(); });
      continue;
    }
    const uint64_t seen = consumed_;
    cv_.wait_for(lock, quiet_, [&] { return stop_; });
    if (stop_ || held_.empty()) continue;
    if (consumed_ == seen || mono_ns() - batch_start_ns_ >= flush_interval_ns_) write_batch(lock);
  }
}

void FileSink::write_batch(std::unique_lock<std::mutex>& lock) {
  if (held_.empty() && buffer_.empty()) return;
  std::string error;
  size_t written = 0;
  if (ensure_open(error)) written = write_buffer(error);
  const bool due =
      fsync_ == FsyncPolicy::kAlways || (fsync_ == FsyncPolicy::kInterval && written > 0 &&
                                         mono_ns() - unsynced_since_ns_ >= fsync_interval_ns_);
  // With `always`, a line that is written but cannot be synced fails its event like a failed
  // write: the caller must not believe it durable. With `interval` the events are complete
  // already as far as the policy promises; the failure is logged and counted.
  if (std::string sync_error; due && written > 0 && !sync(sync_error)) {
    if (fsync_ == FsyncPolicy::kAlways) {
      written = 0;
      error = sync_error;
    } else {
      host_.error(sync_error);
    }
  }
  std::vector<Held> batch;
  batch.swap(held_);
  buffer_.clear();

  size_t failed = 0;
  for (const Held& h : batch) failed += h.end > written ? 1 : 0;
  if (written > 0) host_.counter_add("file_bytes_written_total", static_cast<double>(written));
  if (failed > 0) {
    host_.counter_add("file_write_errors_total", static_cast<double>(failed));
    if (!failing_) host_.error(error + "; failing events until writes succeed again");
    failing_ = true;
  } else if (failing_) {
    host_.info("writes to '" + path_ + "' succeed again");
    failing_ = false;
  }

  // Completing a call may re-enter the host, which may call consume(): not under our lock.
  lock.unlock();
  for (Held& h : batch) {
    if (h.end <= written) {
      h.call.ok();
    } else {
      h.call.fail(Status::kInternal, error);
    }
  }
  lock.lock();
}

bool FileSink::ensure_open(std::string& error) {
  if (fd_ >= 0) return true;
  const fs::path p(path_);
  std::error_code ec;
  if (p.has_parent_path()) {
    fs::create_directories(p.parent_path(), ec);
    if (ec) {
      error = "cannot create directory " + quoted(p.parent_path()) + ": " + ec.message();
      return false;
    }
  }
  int flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC;
  if (!append_ && !opened_once_) flags |= O_TRUNC;
  fd_ = ::open(path_.c_str(), flags, 0644);
  if (fd_ < 0) {
    error = "open " + quoted(p) + ": " + std::strerror(errno);
    return false;
  }
  opened_once_ = true;
  return true;
}

size_t FileSink::write_buffer(std::string& error) {
  size_t done = 0;
  while (done < buffer_.size()) {
    const ssize_t n = ::write(fd_, buffer_.data() + done, buffer_.size() - done);
    if (n > 0) {
      done += static_cast<size_t>(n);
      if (unsynced_since_ns_ == 0) unsynced_since_ns_ = mono_ns();
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    error = "write '" + path_ + "': " + std::strerror(n < 0 ? errno : EIO);
    // Whole lines end at the last '\n' written.
    const size_t last_newline = done == 0 ? std::string::npos : buffer_.rfind('\n', done - 1);
    size_t complete = last_newline == std::string::npos ? 0 : last_newline + 1;
    if (done > complete) drop_partial_line(done - complete);
    // The whole lines before the error complete their events: with `always`, once synced.
    std::string sync_error;
    if (fsync_ == FsyncPolicy::kAlways && complete > 0 && !sync(sync_error)) complete = 0;
    abandon_file();  // reopened (appending) by the next batch: the error may be transient
    return complete;
  }
  return done;
}

void FileSink::drop_partial_line(size_t partial) {
  struct stat st {};
  if (::fstat(fd_, &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= static_cast<off_t>(partial)) {
    if (::ftruncate(fd_, st.st_size - static_cast<off_t>(partial)) == 0) return;
  }
  host_.warn("could not remove a partly written line from '" + path_ + "'");
}

bool FileSink::sync(std::string& error) {
  if (fd_ < 0 || unsynced_since_ns_ == 0) return true;
  if (::fdatasync(fd_) != 0) {
    if (errno == EINVAL) {
      // A pipe or device (path = "/dev/stdout"): there is no disk to sync to.
      unsynced_since_ns_ = 0;
      return true;
    }
    error = "fdatasync '" + path_ + "': " + std::strerror(errno);
    host_.counter_add("file_fsync_errors_total", 1);
    // After a failed sync the kernel may have dropped the dirty pages: start over on a fresh
    // descriptor rather than trust this one.
    abandon_file();
    return false;
  }
  host_.counter_add("file_fsyncs_total", 1);
  unsynced_since_ns_ = 0;
  return true;
}

void FileSink::close_file() {
  if (std::string error; fsync_ != FsyncPolicy::kNever && !sync(error)) host_.error(error);
  abandon_file();
}

void FileSink::abandon_file() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  unsynced_since_ns_ = 0;
}

}  // namespace sluice::file_sink

SLUICE_PLUGIN(sluice::file_sink::FileSink, "file", "0.1.0", "Writes events as JSON lines to a file",
              sluice::file_sink::kOptions);
