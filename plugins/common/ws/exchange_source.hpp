// The shared skeleton of an exchange liquidation source: live over the WebSocket client or
// replayed from a file, every message optionally recorded (record_to), liquidations
// de-duplicated across connections, bad messages counted by reason and logged with a rate
// limit. A concrete source says what to send (subscriptions, heartbeats) and how to read a
// message; it builds events in builder() and hands them to emit().
//
// Options read here: url, ca_file, replay_file, timing, speed, record_to, heartbeat,
// heartbeat_timeout, reconnect_min, reconnect_max. Each plugin declares them in its own schema,
// with its own defaults; the specs that are the same everywhere are the k...Option constants below.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dedup.hpp"
#include "replay.hpp"
#include "sluice/sdk.hpp"
#include "ws_client.hpp"

namespace sluice::ws {

// Option specs identical in every exchange source's schema (replay::kSpeedOption likewise):
// single specs that a schema lists in place, or joins with sluice::option_list.
inline constexpr sluice_option_spec kReconnectMinOption = {
    .key = "reconnect_min",
    .type = SLUICE_OPT_DURATION,
    .default_toml = "\"1s\"",
    .required = 0,
    .description = "First reconnect delay; doubles per failed attempt, with jitter",
    .choices = nullptr};
inline constexpr sluice_option_spec kReconnectMaxOption = {
    .key = "reconnect_max",
    .type = SLUICE_OPT_DURATION,
    .default_toml = "\"60s\"",
    .required = 0,
    .description = "Cap of the reconnect delay",
    .choices = nullptr};
// For sources whose wire unit is a "message" (Bybit, OKX; Binance says "frame").
inline constexpr sluice_option_spec kReplayMessagesOption = {
    .key = "replay_file",
    .type = SLUICE_OPT_STRING,
    .default_toml = nullptr,
    .required = 0,
    .description =
        "Replay this file instead of connecting: a record_to recording or plain "
        "messages, one per line",
    .choices = nullptr};
inline constexpr sluice_option_spec kRecordMessagesOption = {
    .key = "record_to",
    .type = SLUICE_OPT_STRING,
    .default_toml = nullptr,
    .required = 0,
    .description = "Append every raw message with its receive time to this file (JSON lines)",
    .choices = nullptr};
inline constexpr sluice_option_spec kPingTimeoutOption = {
    .key = "heartbeat_timeout",
    .type = SLUICE_OPT_DURATION,
    .default_toml = "\"10s\"",
    .required = 0,
    .description = "A ping without a pong within this long means a dead connection",
    .choices = nullptr};

class ExchangeSource : public Source {
 public:
  void run(SourceContext& ctx) override;

 protected:
  // `live` carries what the options do not say (user agent, heartbeat name); the options fill
  // in the rest. `noun` names one message in logs ("frame: …; frame skipped"). Throws
  // OptionError naming the option.
  ExchangeSource(const Host& host, const Config& config, ClientOptions live,
                 std::string noun = "message");

  // Sent after each connection opens.
  virtual std::vector<std::string> open_messages() = 0;
  virtual std::string heartbeat_message(int64_t request_id) = 0;
  // One message, live or replayed (already recorded). Returns what the client needs to know;
  // keep_going = false once an emit reported that the pipeline is stopping.
  virtual Received on_message(SourceContext& ctx, std::string_view text, int64_t recv_ns) = 0;

  // Counts source_parse_errors_total{reason} and logs why (the first 10, then every 1000th),
  // naming the replay file and line when replaying, and quoting the start of the message.
  void bad_message(std::string_view reason, std::string_view why, std::string_view text);
  // False (and counts source_duplicates_total) when this liquidation was already emitted.
  bool first_sighting(std::string_view symbol, int64_t trade_time_ms, double quantity,
                      int64_t recv_ns);
  // The builder to fill (reset) before emit().
  EventBuilder& builder() {
    builder_.reset();
    return builder_;
  }
  // Waits for the event's turn when replaying with original timing (the recorded receive time,
  // else event_ns), sets id, ingest time and source, and emits; false when stopping.
  bool emit(SourceContext& ctx, int64_t event_ns);
  // The same for a source that writes its own event bytes (e.g. by patching a template):
  // write(id, ingest_time_ns) returns the event, valid until emitted.
  template <class Write>
  bool emit_written(SourceContext& ctx, int64_t event_ns, Write&& write) {
    if (!pace(ctx, event_ns)) return false;
    const std::span<const uint8_t> event = write(next_id_++, now_ns());
    frames_.add();
    return ctx.emit(event);
  }

  const Host& host() const { return host_; }
  bool replaying() const { return replaying_; }
  // A source may adjust them in its constructor (a URL built from options, a rollover).
  ClientOptions& live_options() { return live_; }

 private:
  class LiveHandler;
  void run_replay(SourceContext& ctx);
  // When replaying with original timing, waits for the event's turn; false when stopping.
  bool pace(SourceContext& ctx, int64_t event_ns);

  Host host_;
  Metric frames_ = host_.counter("source_frames_total");  // per event: resolved once
  std::string source_;
  std::string noun_;
  std::string replay_file_;
  replay::Timing timing_;
  ClientOptions live_;
  Deduplicator dedup_;
  std::unique_ptr<replay::Recorder> recorder_;
  replay::Pacer pacer_;
  EventBuilder builder_;
  uint64_t next_id_ = 1;
  uint64_t bad_messages_ = 0;
  bool replaying_ = false;
  uint64_t replay_line_ = 0;
  int64_t replay_recv_ns_ = 0;
};

}  // namespace sluice::ws
