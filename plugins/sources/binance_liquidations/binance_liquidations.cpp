// The `binance_liquidations` source: options, frame handling shared by live and replay, the
// replay loop, recording and de-duplication. The WebSocket side lives in live.cpp.
#include "binance_liquidations.hpp"

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace sluice::binance {
namespace {

inline constexpr sluice_option_spec kOptions[] = {
    {.key = "url",
     .type = SLUICE_OPT_STRING,
     .default_toml = "\"wss://fstream.binance.com/market/ws/!forceOrder@arr\"",
     .required = 0,
     .description = "WebSocket stream (wss://); the default is every symbol's liquidations on the "
                    "routed /market path",
     .choices = nullptr},
    {.key = "symbols",
     .type = SLUICE_OPT_STRING_LIST,
     .default_toml = nullptr,
     .required = 0,
     .description = "Only these symbols: subscribes <symbol>@forceOrder streams through "
                    "/market/stream?streams=… on the url's host",
     .choices = nullptr},
    {.key = "replay_file",
     .type = SLUICE_OPT_STRING,
     .default_toml = nullptr,
     .required = 0,
     .description = "Replay this file instead of connecting: a record_to recording or plain "
                    "frames, one per line",
     .choices = nullptr},
    replay::timing_option("Replay pace: fast = as fast as downstream accepts; original = the "
                          "recorded gaps (receive times, else E), divided by speed"),
    replay::kSpeedOption,
    {.key = "record_to",
     .type = SLUICE_OPT_STRING,
     .default_toml = nullptr,
     .required = 0,
     .description = "Append every raw frame with its receive time to this file (JSON lines)",
     .choices = nullptr},
    {.key = "ca_file",
     .type = SLUICE_OPT_STRING,
     .default_toml = nullptr,
     .required = 0,
     .description = "PEM file of CA certificates to trust instead of the system's",
     .choices = nullptr},
    {.key = "heartbeat",
     .type = SLUICE_OPT_DURATION,
     .default_toml = "\"60s\"",
     .required = 0,
     .description = "Send LIST_SUBSCRIPTIONS this often to prove the connection alive",
     .choices = nullptr},
    {.key = "heartbeat_timeout",
     .type = SLUICE_OPT_DURATION,
     .default_toml = "\"10s\"",
     .required = 0,
     .description = "A heartbeat without a reply within this long means a dead connection",
     .choices = nullptr},
    {.key = "reconnect_min",
     .type = SLUICE_OPT_DURATION,
     .default_toml = "\"1s\"",
     .required = 0,
     .description = "First reconnect delay; doubles per failed attempt, with jitter",
     .choices = nullptr},
    {.key = "reconnect_max",
     .type = SLUICE_OPT_DURATION,
     .default_toml = "\"60s\"",
     .required = 0,
     .description = "Cap of the reconnect delay",
     .choices = nullptr},
    {.key = "rollover",
     .type = SLUICE_OPT_DURATION,
     .default_toml = "\"23h\"",
     .required = 0,
     .description = "Open a fresh connection after this long, before Binance's 24 h cut, and "
                    "switch to it without losing or repeating frames",
     .choices = nullptr},
};

// The same liquidation arrives twice within seconds at most (rollover overlap, a reconnect
// that replays); minutes of memory cover slow reconnects at a bounded cost.
constexpr int64_t kDedupWindowNs = 10LL * 60 * 1'000'000'000;
constexpr size_t kDedupCapacity = 1 << 16;
// Bad frames logged one by one before only every kBadFrameLogEvery-th is.
constexpr uint64_t kBadFramesLogged = 10;
constexpr uint64_t kBadFrameLogEvery = 1000;
constexpr size_t kShownFrameBytes = 200;

void check_positive(const Config& config, const char* key) {
  if (config.duration(key).count() <= 0) throw OptionError(key, "must be greater than 0");
}

}  // namespace

BinanceSource::BinanceSource(const Host& host, const Config& config)
    : host_(host),
      source_(host.node_name()),
      replay_file_(config.str("replay_file", "")),
      timing_(replay::read_timing(config)),
      record_to_(config.str("record_to", "")),
      dedup_(kDedupWindowNs, kDedupCapacity),
      pacer_(timing_.speed) {
  if (config.has("replay_file")) {
    if (std::string error = replay::check_readable(replay_file_); !error.empty()) {
      throw OptionError("replay_file", error);
    }
  }
  if (config.has("record_to")) {
    if (std::string error = replay::check_writable(record_to_); !error.empty()) {
      throw OptionError("record_to", error);
    }
    recorder_ = std::make_unique<replay::Recorder>(record_to_);
  }
  const std::string url = config.str("url");
  if (!url.starts_with("wss://") || url.size() == 6 || url[6] == '/') {
    throw OptionError("url",
                      "must be a wss:// URL with a host, e.g. "
                      "wss://fstream.binance.com/market/ws/!forceOrder@arr");
  }
  std::vector<std::string> symbols = config.strings("symbols");
  for (size_t i = 0; i < symbols.size(); ++i) {
    const std::string& s = symbols[i];
    const bool ok = !s.empty() && s.find_first_of("/?&#@ \t") == std::string::npos;
    if (!ok)
      throw OptionError("symbols",
                        "entry " + std::to_string(i + 1) + " is not a symbol: '" + s + "'");
  }
  if (config.has("ca_file")) {
    if (std::string error = replay::check_readable(config.str("ca_file")); !error.empty()) {
      throw OptionError("ca_file", error);
    }
  }
  for (const char* key :
       {"heartbeat", "heartbeat_timeout", "reconnect_min", "reconnect_max", "rollover"}) {
    check_positive(config, key);
  }
  if (config.duration("reconnect_max") < config.duration("reconnect_min")) {
    throw OptionError("reconnect_max", "must not be less than reconnect_min");
  }
  live_.url = stream_url(url, symbols);
  live_.ca_file = config.str("ca_file", "");
  live_.user_agent = "sluice-binance-liquidations";
  live_.heartbeat = config.duration("heartbeat");
  live_.heartbeat_timeout = config.duration("heartbeat_timeout");
  live_.heartbeat_name = "LIST_SUBSCRIPTIONS";
  live_.reconnect_min = config.duration("reconnect_min");
  live_.reconnect_max = config.duration("reconnect_max");
  live_.rollover = config.duration("rollover");
}

void BinanceSource::run(SourceContext& ctx) {
  if (recorder_) recorder_->open();
  if (!replay_file_.empty()) {
    run_replay(ctx);
  } else {
    run_live(*this, ctx, live_);
  }
}

void BinanceSource::bad_frame(std::string_view where, std::string_view why) {
  ++bad_frames_;
  host_.counter_add("source_parse_errors_total", 1);
  if (bad_frames_ > kBadFramesLogged && bad_frames_ % kBadFrameLogEvery != 0) return;
  std::string message = std::string(where) + ": " + std::string(why) + "; frame skipped";
  if (bad_frames_ == kBadFramesLogged) {
    message +=
        " (from now on only every " + std::to_string(kBadFrameLogEvery) + "th bad frame is logged)";
  } else if (bad_frames_ > kBadFramesLogged) {
    message += " (" + std::to_string(bad_frames_) + " bad frames so far)";
  }
  host_.warn(message);
}

Handled BinanceSource::handle_frame(SourceContext& ctx, std::string_view frame, int64_t recv_ns) {
  if (recorder_) recorder_->write(frame, recv_ns);
  Handled h;
  FrameResult r = parser_.parse(frame, liq_);
  h.kind = r.kind;
  h.control_id = r.control_id;
  switch (r.kind) {
    case FrameKind::kControl:
      return h;
    case FrameKind::kControlError:
      host_.warn("the server refused a request: " + r.reason);
      return h;
    case FrameKind::kBad: {
      std::string where =
          replaying_ ? replay_file_ + ":" + std::to_string(replay_line_) : std::string("frame");
      std::string why = r.reason + " in " + std::string(frame.substr(0, kShownFrameBytes)) +
                        (frame.size() > kShownFrameBytes ? "…" : "");
      bad_frame(where, why);
      return h;
    }
    case FrameKind::kLiquidation:
      break;
  }
  if (!dedup_.first_sighting(liq_.symbol, liq_.trade_time_ms, liq_.quantity, recv_ns)) {
    host_.counter_add("source_duplicates_total", 1);
    return h;
  }
  if (replaying_ && timing_.original) {
    const int64_t at = replay_recv_ns_ != 0 ? replay_recv_ns_ : liq_.event_time_ms * 1'000'000;
    if (!pacer_.wait(ctx, at)) {
      h.keep_going = false;
      return h;
    }
  }
  builder_.reset();
  build_event(liq_, frame, builder_);
  builder_.id(next_id_++).ingest_time_ns(now_ns()).source(source_);
  host_.counter_add("source_frames_total", 1);
  h.keep_going = ctx.emit(builder_.finish());
  return h;
}

void BinanceSource::run_replay(SourceContext& ctx) {
  replay::RecordingReader reader(replay_file_);
  replaying_ = true;
  replay::RecordingReader::Entry entry;
  while (reader.next(entry)) {
    replay_line_ = entry.line;
    if (!entry.error.empty()) {
      bad_frame(replay_file_ + ":" + std::to_string(entry.line), entry.error);
      continue;
    }
    replay_recv_ns_ = entry.recv_ns;
    const int64_t recv_ns = entry.recv_ns != 0 ? entry.recv_ns : now_ns();
    if (!handle_frame(ctx, entry.frame, recv_ns).keep_going) return;
  }
}

}  // namespace sluice::binance

SLUICE_PLUGIN(sluice::binance::BinanceSource, "binance_liquidations", "1.0.0",
              "Binance USD-M futures liquidations: live WebSocket + TLS, record and replay",
              sluice::binance::kOptions);
