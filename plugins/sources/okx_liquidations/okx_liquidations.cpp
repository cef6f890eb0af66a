// The `okx_liquidations` source: options, contract values (option and instruments endpoint),
// subscription, heartbeats and message handling. The connection, recording, replay and
// de-duplication are the shared exchange-source skeleton's.
#include "okx_liquidations.hpp"

#include <algorithm>
#include <cmath>
#include <future>

namespace sluice::okx {
namespace {

inline constexpr sluice_option_spec kOptions[] = {
    {.key = "url",
     .type = SLUICE_OPT_STRING,
     .default_toml = "\"wss://ws.okx.com:8443/ws/v5/public\"",
     .required = 0,
     .description = "WebSocket stream (wss://); the default is OKX's v5 public stream",
     .choices = nullptr},
    {.key = "inst_type",
     .type = SLUICE_OPT_STRING,
     .default_toml = "\"SWAP\"",
     .required = 0,
     .description = "Instrument type to subscribe: SWAP (perpetuals) or FUTURES",
     .choices = "SWAP,FUTURES"},
    {.key = "contract_values",
     .type = SLUICE_OPT_TABLE,
     .default_toml = nullptr,
     .required = 0,
     .description = "Contract value (ctVal) per instrument, e.g. { \"BTC-USDT-SWAP\" = 0.01 }; "
                    "wins over fetched values",
     .choices = nullptr},
    {.key = "fetch_instruments",
     .type = SLUICE_OPT_BOOL,
     .default_toml = nullptr,
     .required = 0,
     .description = "Fetch contract values from {rest_base}/api/v5/public/instruments at start "
                    "and every instruments_refresh; default: true live, false when replaying",
     .choices = nullptr},
    {.key = "rest_base",
     .type = SLUICE_OPT_STRING,
     .default_toml = "\"https://www.okx.com\"",
     .required = 0,
     .description = "Base URL of OKX's REST API, for the instruments",
     .choices = nullptr},
    {.key = "instruments_refresh",
     .type = SLUICE_OPT_DURATION,
     .default_toml = "\"1h\"",
     .required = 0,
     .description = "Fetch the instruments again this often (new listings)",
     .choices = nullptr},
    ws::kReplayMessagesOption,
    replay::timing_option("Replay pace: fast = as fast as downstream accepts; original = the "
                          "recorded gaps (receive times, else each liquidation's ts), divided by "
                          "speed"),
    replay::kSpeedOption,
    ws::kRecordMessagesOption,
    {.key = "ca_file",
     .type = SLUICE_OPT_STRING,
     .default_toml = nullptr,
     .required = 0,
     .description = "PEM file of CA certificates to trust instead of the system's (WebSocket "
                    "and instruments requests)",
     .choices = nullptr},
    {.key = "heartbeat",
     .type = SLUICE_OPT_DURATION,
     .default_toml = "\"20s\"",
     .required = 0,
     .description = "Send the text ping this often (OKX cuts connections silent for 30 s)",
     .choices = nullptr},
    ws::kPingTimeoutOption,
    ws::kReconnectMinOption,
    ws::kReconnectMaxOption,
};

// A failed fetch is retried after at most this long, whatever instruments_refresh says; an
// unknown instrument triggers a fetch at most this often.
constexpr auto kRetryFetch = std::chrono::seconds(60);
// Unknown instruments: each is logged the first time, then only every kUnknownLogEvery-th.
constexpr uint64_t kUnknownLogEvery = 1000;
constexpr size_t kMaxWarnedInstruments = 1000;
constexpr size_t kShownBodyBytes = 200;

ws::ClientOptions client_defaults() {
  ws::ClientOptions o;
  o.user_agent = "sluice-okx-liquidations";
  o.heartbeat_name = "ping";
  return o;
}

}  // namespace

OkxSource::OkxSource(const Host& host, const Config& config)
    : ExchangeSource(host, config, client_defaults()),
      inst_type_(config.str("inst_type", "SWAP")),
      rest_base_(config.str("rest_base", "https://www.okx.com")),
      fetch_(config.flag("fetch_instruments", !config.has("replay_file"))),
      refresh_(config.duration("instruments_refresh")) {
  if (refresh_.count() <= 0) throw OptionError("instruments_refresh", "must be greater than 0");
  while (rest_base_.ends_with('/')) rest_base_.pop_back();
  std::string error;
  if (!http::parse_url(rest_base_, &error)) throw OptionError("rest_base", error);
  if (config.has("contract_values")) {
    for (const auto& [id, value] : config.at("contract_values").items()) {
      if (!value.is_number() || !(value.get<double>() > 0) || !std::isfinite(value.get<double>())) {
        throw OptionError(
            "contract_values",
            "the value of '" + id + "' must be a number greater than 0, got " + value.dump());
      }
      if (id.find('-') == std::string::npos) {
        throw OptionError("contract_values", "'" + id +
                                                 "' is not an OKX instrument id such as "
                                                 "BTC-USDT-SWAP");
      }
      configured_.emplace(id, Contract{value.get<double>(), is_inverse(id)});
    }
  }
  if (!fetch_ && configured_.empty() && !config.has("replay_file")) {
    throw OptionError("contract_values",
                      "is needed when fetch_instruments = false: without contract values no "
                      "notional can be computed");
  }
  contracts_ = std::make_shared<const Contracts>(configured_);
}

OkxSource::~OkxSource() {
  if (http_) http_->shutdown();
}

void OkxSource::run(SourceContext& ctx) {
  if (fetch_) {
    http::ClientOptions o;
    o.ca_file = live_options().ca_file;
    o.user_agent = "sluice-okx-liquidations";
    http_ = std::make_unique<http::Client>(std::move(o));
    const bool loaded = fetch_now(ctx);
    if (ctx.stopping()) {
      http_->shutdown();
      return;
    }
    if (!loaded) {
      host().warn("continuing with " + std::to_string(contracts()->size()) +
                  " configured contract values; liquidations of other instruments are skipped "
                  "until the instruments load");
      schedule_refresh(std::min<std::chrono::nanoseconds>(refresh_, kRetryFetch));
    } else {
      schedule_refresh(refresh_);
    }
  }
  ExchangeSource::run(ctx);
  if (http_) http_->shutdown();
}

bool OkxSource::fetch_now(SourceContext& ctx) {
  auto done = std::make_shared<std::promise<bool>>();
  std::future<bool> result = done->get_future();
  fetch_async([done](bool ok) { done->set_value(ok); });
  while (result.wait_for(std::chrono::milliseconds(20)) != std::future_status::ready) {
    if (ctx.stopping()) {
      http_->shutdown();  // answers the request with kCancelled
      return false;
    }
  }
  return result.get();
}

void OkxSource::fetch_async(std::function<void(bool ok)> done) {
  http::Request request;
  request.method = "GET";
  request.url = rest_base_ + "/api/v5/public/instruments?instType=" + inst_type_;
  const std::string url = request.url;
  http_->send(std::move(request), [this, url, done](http::Response r) {
    std::string error;
    std::optional<Contracts> fetched;
    if (!r.ok()) {
      error = std::string(http::error_kind_name(r.error)) + ": " + r.error_message;
    } else if (r.status != 200) {
      error = "HTTP " + std::to_string(r.status) + ": " + r.body.substr(0, kShownBodyBytes);
    } else {
      fetched = parse_instruments(r.body, &error);
    }
    if (!fetched) {
      if (r.error != http::ErrorKind::kCancelled) {
        host().warn("cannot load OKX instruments from " + url + ": " + error);
      }
      return done(false);
    }
    const size_t count = fetched->size();
    for (const auto& [id, c] : configured_) (*fetched)[id] = c;
    {
      std::lock_guard lock(mu_);
      contracts_ = std::make_shared<const Contracts>(std::move(*fetched));
    }
    host().info("loaded the contract values of " + std::to_string(count) + " OKX " + inst_type_ +
                " instruments");
    done(true);
  });
}

void OkxSource::schedule_refresh(std::chrono::nanoseconds delay) {
  http_->schedule(delay, [this](bool cancelled) {
    if (cancelled) return;
    fetch_async([this](bool ok) {
      schedule_refresh(ok ? refresh_ : std::min<std::chrono::nanoseconds>(refresh_, kRetryFetch));
    });
  });
}

std::shared_ptr<const Contracts> OkxSource::contracts() const {
  std::lock_guard lock(mu_);
  return contracts_;
}

std::vector<std::string> OkxSource::open_messages() {
  return {R"({"op":"subscribe","args":[{"channel":"liquidation-orders","instType":")" + inst_type_ +
          R"("}]})"};
}

std::string OkxSource::heartbeat_message(int64_t request_id) { return "ping"; }

void OkxSource::unknown_instrument(std::string_view instrument) {
  ++unknown_;
  host().counter_add("source_unknown_instruments_total", 1);
  const bool first = warned_.size() < kMaxWarnedInstruments && warned_.emplace(instrument).second;
  if (first || unknown_ % kUnknownLogEvery == 0) {
    host().warn("no contract value for " + std::string(instrument) +
                ": its liquidations are skipped (" + std::to_string(unknown_) +
                " so far); add it to contract_values or let fetch_instruments load it");
  }
  // A new listing: fetch the instruments again soon rather than at the next refresh.
  if (fetch_ && http_ && !replaying()) {
    const int64_t now = mono_ns();
    if (last_unknown_refresh_ns_ == 0 ||
        now - last_unknown_refresh_ns_ >= std::chrono::nanoseconds(kRetryFetch).count()) {
      last_unknown_refresh_ns_ = now;
      http_->post([this](bool cancelled) {
        if (!cancelled) fetch_async([](bool) {});
      });
    }
  }
}

ws::Received OkxSource::on_message(SourceContext& ctx, std::string_view text, int64_t recv_ns) {
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
    case MessageKind::kNotice:
      host().warn("the server says: " + message_.reason);
      return r;
    case MessageKind::kBad:
      bad_message(message_.reason.starts_with("invalid JSON") ? "invalid_json" : "bad_message",
                  message_.reason, text);
      return r;
    case MessageKind::kData:
      break;
  }
  for (const std::string& why : message_.row_errors) bad_message("bad_row", why, text);
  for (const std::string& why : message_.range_errors) bad_message("out_of_range", why, text);
  if (message_.rows.empty()) return r;
  const std::shared_ptr<const Contracts> contracts = this->contracts();
  std::string symbol;
  for (const Row& row : message_.rows) {
    const auto it = contracts->find(row.instrument);
    if (it == contracts->end()) {
      unknown_instrument(row.instrument);
      continue;
    }
    if (!std::isfinite(notional_usd(row, it->second)) ||
        !std::isfinite(base_quantity(row, it->second))) {
      // Known only here, with the contract value: a size whose value overflows a double.
      bad_message("out_of_range",
                  "a detail of " + std::string(row.instrument) + ": the notional overflows a double", text);
      continue;
    }
    if (!first_sighting(row.instrument, row.time_ms, row.contracts, recv_ns)) continue;
    symbol = symbol_of(row.instrument);
    build_event(row, symbol, it->second, text, builder());
    if (!emit(ctx, row.time_ms * 1'000'000)) {
      r.keep_going = false;
      return r;
    }
  }
  return r;
}

}  // namespace sluice::okx

SLUICE_PLUGIN(sluice::okx::OkxSource, "okx_liquidations", "1.0.0",
              "OKX v5 liquidations (liquidation-orders channel): live WebSocket + TLS, contract "
              "values from the instruments endpoint, record and replay",
              sluice::okx::kOptions);
