// The shared skeleton of exchange liquidation sources (see exchange_source.hpp).
#include "exchange_source.hpp"

namespace sluice::ws {
namespace {

// The same liquidation arrives twice within seconds at most (rollover overlap, a reconnect
// that replays); minutes of memory cover slow reconnects at a bounded cost.
constexpr int64_t kDedupWindowNs = 10LL * 60 * 1'000'000'000;
constexpr size_t kDedupCapacity = 1 << 16;
// Bad messages logged one by one before only every kBadLogEvery-th is.
constexpr uint64_t kBadLogged = 10;
constexpr uint64_t kBadLogEvery = 1000;
constexpr size_t kShownMessageBytes = 200;

void check_positive(const Config& config, const char* key) {
  if (config.duration(key).count() <= 0) throw OptionError(key, "must be greater than 0");
}

}  // namespace

class ExchangeSource::LiveHandler final : public Handler {
 public:
  LiveHandler(ExchangeSource& source, SourceContext& ctx) : source_(source), ctx_(ctx) {}
  std::vector<std::string> open_messages() override { return source_.open_messages(); }
  std::string heartbeat_message(int64_t id) override { return source_.heartbeat_message(id); }
  Received on_message(std::string_view text, int64_t recv_ns) override {
    if (source_.recorder_) source_.recorder_->write(text, recv_ns);
    return source_.on_message(ctx_, text, recv_ns);
  }

 private:
  ExchangeSource& source_;
  SourceContext& ctx_;
};

ExchangeSource::ExchangeSource(const Host& host, const Config& config, ClientOptions live,
                               std::string noun)
    : host_(host),
      source_(host.node_name()),
      noun_(std::move(noun)),
      replay_file_(config.str("replay_file", "")),
      timing_(replay::read_timing(config)),
      live_(std::move(live)),
      dedup_(kDedupWindowNs, kDedupCapacity),
      pacer_(timing_.speed) {
  if (config.has("replay_file")) {
    if (std::string error = replay::check_readable(replay_file_); !error.empty()) {
      throw OptionError("replay_file", error);
    }
  }
  if (config.has("record_to")) {
    const std::string path = config.str("record_to");
    if (std::string error = replay::check_writable(path); !error.empty()) {
      throw OptionError("record_to", error);
    }
    recorder_ = std::make_unique<replay::Recorder>(path);
  }
  live_.url = config.str("url");
  std::string error;
  if (!parse_url(live_.url, &error)) throw OptionError("url", "'" + live_.url + "' " + error);
  if (config.has("ca_file")) {
    live_.ca_file = config.str("ca_file");
    if (std::string e = replay::check_readable(live_.ca_file); !e.empty()) {
      throw OptionError("ca_file", e);
    }
  }
  for (const char* key : {"heartbeat", "heartbeat_timeout", "reconnect_min", "reconnect_max"}) {
    check_positive(config, key);
  }
  if (config.duration("reconnect_max") < config.duration("reconnect_min")) {
    throw OptionError("reconnect_max", "must not be less than reconnect_min");
  }
  live_.heartbeat = config.duration("heartbeat");
  live_.heartbeat_timeout = config.duration("heartbeat_timeout");
  live_.reconnect_min = config.duration("reconnect_min");
  live_.reconnect_max = config.duration("reconnect_max");
}

void ExchangeSource::run(SourceContext& ctx) {
  if (recorder_) recorder_->open();
  if (!replay_file_.empty()) return run_replay(ctx);
  LiveHandler handler(*this, ctx);
  Client client(live_, handler, host_);
  client.run(ctx);
}

void ExchangeSource::run_replay(SourceContext& ctx) {
  replay::RecordingReader reader(replay_file_);
  replaying_ = true;
  replay::RecordingReader::Entry entry;
  while (reader.next(entry)) {
    replay_line_ = entry.line;
    if (!entry.error.empty()) {
      bad_message(entry.out_of_range ? "out_of_range" : "bad_recording", entry.error, {});
      continue;
    }
    replay_recv_ns_ = entry.recv_ns;
    const int64_t recv_ns = entry.recv_ns != 0 ? entry.recv_ns : now_ns();
    if (recorder_) recorder_->write(entry.frame, recv_ns);
    if (!on_message(ctx, entry.frame, recv_ns).keep_going) return;
  }
}

void ExchangeSource::bad_message(std::string_view reason, std::string_view why,
                                 std::string_view text) {
  ++bad_messages_;
  host_.counter_add("source_parse_errors_total", 1, metric_label("reason", reason).c_str());
  if (bad_messages_ > kBadLogged && bad_messages_ % kBadLogEvery != 0) return;
  std::string message =
      replaying_ ? replay_file_ + ":" + std::to_string(replay_line_) + ": " : noun_ + ": ";
  message += why;
  if (!text.empty()) {
    message += " in ";
    message += text.substr(0, kShownMessageBytes);
    if (text.size() > kShownMessageBytes) message += "…";
  }
  message += "; " + noun_ + " skipped";
  if (bad_messages_ == kBadLogged) {
    message += " (from now on only every " + std::to_string(kBadLogEvery) + "th bad " + noun_ +
               " is logged)";
  } else if (bad_messages_ > kBadLogged) {
    message += " (" + std::to_string(bad_messages_) + " bad " + noun_ + "s so far)";
  }
  host_.warn(message);
}

bool ExchangeSource::first_sighting(std::string_view symbol, int64_t trade_time_ms, double quantity,
                                    int64_t recv_ns) {
  if (dedup_.first_sighting(symbol, trade_time_ms, quantity, recv_ns)) return true;
  host_.counter_add("source_duplicates_total", 1);
  return false;
}

bool ExchangeSource::pace(SourceContext& ctx, int64_t event_ns) {
  if (!replaying_ || !timing_.original) return true;
  return pacer_.wait(ctx, replay_recv_ns_ != 0 ? replay_recv_ns_ : event_ns);
}

bool ExchangeSource::emit(SourceContext& ctx, int64_t event_ns) {
  if (!pace(ctx, event_ns)) return false;
  builder_.id(next_id_++).ingest_time_ns(now_ns()).source(source_);
  frames_.add();
  return ctx.emit(builder_.finish());
}

}  // namespace sluice::ws
