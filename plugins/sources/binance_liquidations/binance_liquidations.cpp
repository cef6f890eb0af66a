// The `binance_liquidations` source: options, the LIST_SUBSCRIPTIONS heartbeat and frame
// handling, shared by the live connection and replay.
#include "binance_liquidations.hpp"

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
    ws::kReconnectMinOption,
    ws::kReconnectMaxOption,
    {.key = "rollover",
     .type = SLUICE_OPT_DURATION,
     .default_toml = "\"23h\"",
     .required = 0,
     .description = "Open a fresh connection after this long, before Binance's 24 h cut, and "
                    "switch to it without losing or repeating frames",
     .choices = nullptr},
};

ws::ClientOptions client_defaults() {
  ws::ClientOptions o;
  o.user_agent = "sluice-binance-liquidations";
  o.heartbeat_name = "LIST_SUBSCRIPTIONS";
  return o;
}

void check_positive(const Config& config, const char* key) {
  if (config.duration(key).count() <= 0) throw OptionError(key, "must be greater than 0");
}

}  // namespace

BinanceSource::BinanceSource(const Host& host, const Config& config)
    : ExchangeSource(host, config, client_defaults(), "frame"), writer_(host.node_name()) {
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
    if (!ok) {
      throw OptionError("symbols",
                        "entry " + std::to_string(i + 1) + " is not a symbol: '" + s + "'");
    }
  }
  check_positive(config, "rollover");
  live_options().url = stream_url(url, symbols);
  live_options().rollover = config.duration("rollover");
}

std::string BinanceSource::heartbeat_message(int64_t request_id) {
  return "{\"method\":\"LIST_SUBSCRIPTIONS\",\"id\":" + std::to_string(request_id) + "}";
}

ws::Received BinanceSource::on_message(SourceContext& ctx, std::string_view frame,
                                       int64_t recv_ns) {
  ws::Received r;
  FrameResult fr = parser_.parse(frame, liq_);
  switch (fr.kind) {
    case FrameKind::kControl:
      r.heartbeat_reply = fr.control_id >= 0;
      r.reply_id = fr.control_id;
      return r;
    case FrameKind::kControlError:
      host().warn("the server refused a request: " + fr.reason);
      return r;
    case FrameKind::kBad:
      bad_message(fr.out_of_range                         ? "out_of_range"
                  : fr.reason.starts_with("invalid JSON") ? "invalid_json"
                                                          : "bad_frame",
                  fr.reason, frame);
      return r;
    case FrameKind::kLiquidation:
      break;
  }
  if (!first_sighting(liq_.symbol, liq_.trade_time_ms, liq_.quantity, recv_ns)) return r;
  r.keep_going =
      emit_written(ctx, liq_.event_time_ms * 1'000'000, [&](uint64_t id, int64_t ingest_time_ns) {
        return writer_.write(liq_, frame, id, ingest_time_ns);
      });
  return r;
}

}  // namespace sluice::binance

SLUICE_PLUGIN(sluice::binance::BinanceSource, "binance_liquidations", "1.0.0",
              "Binance USD-M futures liquidations: live WebSocket + TLS, record and replay",
              sluice::binance::kOptions);
