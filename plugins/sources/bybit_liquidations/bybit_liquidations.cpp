// The `bybit_liquidations` source: options, subscriptions, heartbeats and message handling. The
// connection, recording, replay and de-duplication are the shared exchange-source skeleton's.
#include "bybit_liquidations.hpp"

#include <algorithm>

namespace sluice::bybit {
namespace {

inline constexpr sluice_option_spec kOptions[] = {
    {.key = "url",
     .type = SLUICE_OPT_STRING,
     .default_toml = "\"wss://stream.bybit.com/v5/public/linear\"",
     .required = 0,
     .description = "WebSocket stream (wss://); the default is the v5 public stream of USDT and "
                    "USDC perpetuals and futures",
     .choices = nullptr},
    {.key = "symbols",
     .type = SLUICE_OPT_STRING_LIST,
     .default_toml = nullptr,
     .required = 0,
     .description = "Symbols to subscribe (allLiquidation.<symbol>), e.g. [\"BTCUSDT\"]; "
                    "required live, since Bybit has no all-symbols liquidation topic",
     .choices = nullptr},
    ws::kReplayMessagesOption,
    replay::timing_option("Replay pace: fast = as fast as downstream accepts; original = the "
                          "recorded gaps (receive times, else the push's ts), divided by speed"),
    replay::kSpeedOption,
    ws::kRecordMessagesOption,
    {.key = "ca_file",
     .type = SLUICE_OPT_STRING,
     .default_toml = nullptr,
     .required = 0,
     .description = "PEM file of CA certificates to trust instead of the system's",
     .choices = nullptr},
    {.key = "heartbeat",
     .type = SLUICE_OPT_DURATION,
     .default_toml = "\"20s\"",
     .required = 0,
     .description = "Send {\"op\":\"ping\"} this often (Bybit cuts idle connections after 10 min)",
     .choices = nullptr},
    ws::kPingTimeoutOption,
    ws::kReconnectMinOption,
    ws::kReconnectMaxOption,
};

ws::ClientOptions client_defaults() {
  ws::ClientOptions o;
  o.user_agent = "sluice-bybit-liquidations";
  o.heartbeat_name = "ping";
  return o;
}

}  // namespace

BybitSource::BybitSource(const Host& host, const Config& config)
    : ExchangeSource(host, config, client_defaults()), symbols_(config.strings("symbols")) {
  for (size_t i = 0; i < symbols_.size(); ++i) {
    const std::string& s = symbols_[i];
    // Symbols go into JSON strings and topic names as they are.
    const bool ok = !s.empty() && s.find_first_of("\"\\./ \t") == std::string::npos &&
                    std::all_of(s.begin(), s.end(),
                                [](char c) { return static_cast<unsigned char>(c) >= 0x20; });
    if (!ok) {
      throw OptionError("symbols",
                        "entry " + std::to_string(i + 1) + " is not a symbol: '" + s + "'");
    }
  }
  if (symbols_.empty() && !config.has("replay_file")) {
    throw OptionError("symbols",
                      "is required for a live connection: Bybit has no all-symbols liquidation "
                      "topic, so list the symbols, e.g. symbols = [\"BTCUSDT\", \"ETHUSDT\"]");
  }
}

std::vector<std::string> BybitSource::open_messages() { return subscribe_messages(symbols_); }

std::string BybitSource::heartbeat_message(int64_t request_id) { return R"({"op":"ping"})"; }

ws::Received BybitSource::on_message(SourceContext& ctx, std::string_view text, int64_t recv_ns) {
  ws::Received r;
  parser_.parse(text, message_);
  switch (message_.kind) {
    case MessageKind::kPong:
      r.heartbeat_reply = true;
      return r;
    case MessageKind::kAck:
      host().debug("subscribed");
      return r;
    case MessageKind::kRefused:
      host().warn("the server refused a request: " + message_.reason);
      return r;
    case MessageKind::kBad:
      bad_message(message_.out_of_range                         ? "out_of_range"
                  : message_.reason.starts_with("invalid JSON") ? "invalid_json"
                                                                : "bad_message",
                  message_.reason, text);
      return r;
    case MessageKind::kData:
      break;
  }
  for (const std::string& why : message_.row_errors) bad_message("bad_row", why, text);
  for (const std::string& why : message_.range_errors) bad_message("out_of_range", why, text);
  for (const Row& row : message_.rows) {
    if (!first_sighting(row.symbol, row.trade_time_ms, row.quantity, recv_ns)) continue;
    build_event(row, message_.push_time_ms, text, builder());
    if (!emit(ctx, message_.push_time_ms * 1'000'000)) {
      r.keep_going = false;
      return r;
    }
  }
  return r;
}

}  // namespace sluice::bybit

SLUICE_PLUGIN(sluice::bybit::BybitSource, "bybit_liquidations", "1.0.0",
              "Bybit v5 liquidations (allLiquidation topics): live WebSocket + TLS, record and "
              "replay",
              sluice::bybit::kOptions);
