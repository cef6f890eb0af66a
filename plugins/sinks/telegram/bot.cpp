// The `telegram` sink's bot: getUpdates long polling, commands, the mute button, /stats, and
// the offset, mutes and outbox in the node state, committed with each update (see bot.hpp).
#include "bot.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include "telegram.hpp"

namespace sluice::telegram_sink {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// Latency percentiles cover the last this many sent alerts.
constexpr size_t kLatencySamples = 10000;
// Symbols tracked by name; beyond, events count under kOther (garbage keys cannot grow memory).
constexpr size_t kMaxSymbols = 10000;
constexpr std::string_view kOther = "(other)";
// Rows shown by /stats and /symbols, which keeps replies well under Telegram's 4096 characters.
constexpr size_t kMaxRows = 40;
// A user who is not allowed gets at most one refusal per this interval.
constexpr std::chrono::seconds kRefusalInterval{30};
// Attempts of one reply (429, 5xx and network errors retry) and the longest retry_after taken.
constexpr int kReplyAttempts = 3;
constexpr std::chrono::seconds kMaxReplyWait{60};
// How long a stop waits for the outcome of replies in flight before cancelling them.
constexpr std::chrono::seconds kStopReplyWait{2};
// Telegram's limit for callback_data.
constexpr size_t kMaxCallbackData = 64;
// Node state keys: the next update id to fetch (decimal), the mutes (JSON object symbol → until
// in ms since the epoch) and the replies committed but not yet delivered (JSON object update id
// → {method, body}).
constexpr const char* kOffsetKey = "offset";
constexpr const char* kMutesKey = "mutes";
constexpr const char* kOutboxKey = "outbox";

constexpr std::string_view kHelp =
    "/stats \xE2\x80\x94 alerts and volume per symbol, latency\n"
    "/symbols \xE2\x80\x94 symbols seen and current mutes\n"
    "/setthreshold USD \xE2\x80\x94 least notional that is alerted\n"
    "/mute SYMBOL DURATION \xE2\x80\x94 e.g. <code>/mute BTCUSDT 1h</code> (s, m, h, d, w)\n"
    "/unmute SYMBOL";

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string upper_ascii(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return out;
}

std::vector<std::string> split_words(std::string_view s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    size_t j = i;
    while (j < s.size() && !std::isspace(static_cast<unsigned char>(s[j]))) ++j;
    if (j > i) out.emplace_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

// "HH:MM UTC", with the date when the time is not today's.
std::string until_text(int64_t until_ms) {
  const std::time_t secs = static_cast<std::time_t>(until_ms / 1000);
  const std::time_t today = static_cast<std::time_t>(now_ms() / 1000);
  std::tm tm{};
  std::tm now_tm{};
  gmtime_r(&secs, &tm);
  gmtime_r(&today, &now_tm);
  const bool same_day = tm.tm_yday == now_tm.tm_yday && tm.tm_year == now_tm.tm_year;
  char buf[48];
  std::strftime(buf, sizeof buf, same_day ? "%H:%M UTC" : "%Y-%m-%d %H:%M UTC", &tm);
  return buf;
}

std::optional<int64_t> int_at(const json& j, std::string_view key) {
  if (!j.is_object()) return std::nullopt;
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer()) return std::nullopt;
  return it->get<int64_t>();
}

std::optional<std::string> string_at(const json& j, std::string_view key) {
  if (!j.is_object()) return std::nullopt;
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

const json* object_at(const json& j, std::string_view key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it != j.end() && it->is_object() ? &*it : nullptr;
}

// Telegram's description of a failure, else the start of the body.
std::string describe(const http::Response& r, const json& body) {
  std::string out = "HTTP " + std::to_string(r.status);
  if (auto d = string_at(body, "description")) return out + ": " + *d;
  return r.body.empty() ? out : out + ": " + http::body_snippet(r.body);
}

// Nearest-rank percentile of sorted values.
int64_t percentile(const std::vector<int64_t>& sorted, double p) {
  const size_t rank = static_cast<size_t>(std::ceil(p * static_cast<double>(sorted.size())));
  return sorted[std::clamp<size_t>(rank, 1, sorted.size()) - 1];
}

}  // namespace

std::optional<std::chrono::seconds> parse_mute_duration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  int64_t total = 0;
  size_t i = 0;
  while (i < text.size()) {
    int64_t n = 0;
    const auto [end, ec] = std::from_chars(text.data() + i, text.data() + text.size(), n);
    if (ec != std::errc() || n < 0 || end == text.data() + text.size()) return std::nullopt;
    i = static_cast<size_t>(end - text.data());
    int64_t unit;
    switch (text[i]) {
      case 's':
      case 'S':
        unit = 1;
        break;
      case 'm':
      case 'M':
        unit = 60;
        break;
      case 'h':
      case 'H':
        unit = 3600;
        break;
      case 'd':
      case 'D':
        unit = 86400;
        break;
      case 'w':
      case 'W':
        unit = 7 * 86400;
        break;
      default:
        return std::nullopt;
    }
    ++i;
    if (n > kMaxMute.count() / unit) return std::nullopt;
    total += n * unit;
    if (total > kMaxMute.count()) return std::nullopt;
  }
  if (total <= 0) return std::nullopt;
  return std::chrono::seconds(total);
}

std::string duration_text(std::chrono::seconds d) {
  constexpr std::pair<int64_t, const char*> kUnits[] = {
      {86400, "d"}, {3600, "h"}, {60, "m"}, {1, "s"}};
  int64_t left = std::max<int64_t>(0, d.count());
  std::string out;
  int parts = 0;
  for (const auto& [secs, name] : kUnits) {
    if (parts == 2) break;
    const int64_t n = left / secs;
    if (n == 0 && parts == 0) continue;
    left -= n * secs;
    ++parts;
    if (n == 0) continue;
    if (!out.empty()) out += ' ';
    out += std::to_string(n) + name;
  }
  return out.empty() ? "0s" : out;
}

std::optional<double> parse_usd(std::string_view text) {
  std::string digits;
  for (char c : text) {
    if (c != ',' && c != '_') digits.push_back(c);
  }
  std::string_view s = digits;
  if (!s.empty() && s.front() == '$') s.remove_prefix(1);
  double scale = 1;
  if (!s.empty()) {
    const char last = s.back();
    if (last == 'k' || last == 'K') scale = 1e3;
    if (last == 'm' || last == 'M') scale = 1e6;
    if (scale != 1) s.remove_suffix(1);
  }
  if (s.empty() || s.front() == '+' || s.front() == '-') return std::nullopt;
  double v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  v *= scale;
  constexpr double kMax = 1e15;
  if (!std::isfinite(v) || v <= 0 || v > kMax) return std::nullopt;
  return v;
}

std::string with_thousands(double value) {
  // Beyond a quadrillion the digits would be noise (and llround's range ends).
  constexpr double kMax = 1e15;
  if (!std::isfinite(value) || std::fabs(value) >= kMax) return "?";
  const long long rounded = std::llround(std::fabs(value));
  std::string digits = std::to_string(rounded);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return value < 0 && rounded != 0 ? "-" + out : out;
}

std::string usd_text(double value) {
  if (std::isfinite(value) && std::fabs(value) < 1000 && value != std::round(value)) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f", value);
    std::string s = buf;
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
    return s;
  }
  return with_thousands(value);
}

std::string latency_text(std::chrono::nanoseconds d) {
  const int64_t ms =
      std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
  if (ms < 1000) return std::to_string(ms) + " ms";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", static_cast<double>(ms) / 1000.0);
  return buf;
}

std::optional<std::string> mute_callback_data(std::string_view symbol) {
  std::string data = "mute:" + upper_ascii(symbol) + ":1h";
  if (symbol.empty() || data.size() > kMaxCallbackData) return std::nullopt;
  return data;
}

Bot::Bot(const Host& host, BotOptions options)
    : host_(host), opts_(std::move(options)), started_ns_(mono_ns()) {
  try {
    load_state();
  } catch (const std::runtime_error& e) {
    throw OptionError("commands", std::string("cannot read the bot's node state: ") + e.what());
  }
  const auto threshold = host_.setting(opts_.threshold_setting);
  if (!threshold || !threshold->is_number()) {
    host_.warn("telegram: the pipeline has no number setting '" + opts_.threshold_setting +
               "': /setthreshold will be refused (declare it under [settings])");
  }
  client_ = std::make_unique<http::Client>(opts_.client);
}

void Bot::start() {
  client_->post([this](bool cancelled) {
    if (cancelled) return;
    migrate_state_file();
    // Replies committed before a stop or a crash that never reached Telegram.
    std::vector<std::pair<int64_t, Outgoing>> pending;
    {
      std::lock_guard lock(mu_);
      pending.assign(outbox_.begin(), outbox_.end());
    }
    if (!pending.empty()) {
      host_.info("telegram: sending " + std::to_string(pending.size()) +
                 " reply(s) committed before the last stop");
    }
    for (auto& [id, o] : pending) send(id, std::move(o));
    get_me();
  });
}

void Bot::get_me() {
  http::Request req;
  req.method = "GET";
  req.url = opts_.api_url + "/getMe";
  req.timeout = opts_.request_timeout;
  client_->send(std::move(req), [this](http::Response r) {
    if (r.error == http::ErrorKind::kCancelled) return;
    const json body = json::parse(r.body, nullptr, false);
    std::optional<std::string> name;
    std::string what;
    if (!r.ok()) {
      what = r.error_message;
    } else if (r.status != 200) {
      what = describe(r, body);
    } else if (!body.is_object() || body.value("ok", json()) != true ||
               !object_at(body, "result")) {
      what = "reply has no result object: " + http::body_snippet(r.body);
    } else {
      name = string_at(*object_at(body, "result"), "username");
      if (!name || name->empty()) what = "the bot has no username";
    }
    if (name && !name->empty()) {
      username_ = *name;
    } else {
      host_.warn(client_->redact("telegram: getMe: " + what +
                                 "; commands addressed to any bot (/cmd@name) are answered"));
    }
    poll();
  });
}

bool Bot::addressed_here(std::string_view command_word) const {
  const size_t at = command_word.find('@');
  if (at == std::string_view::npos || username_.empty()) return true;
  const std::string_view to = command_word.substr(at + 1);
  return to.size() == username_.size() &&
         std::equal(to.begin(), to.end(), username_.begin(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) ==
                  std::tolower(static_cast<unsigned char>(b));
         });
}

Bot::~Bot() {
  // A reply Telegram may already have taken, whose answer is on its way: without its outcome it
  // would stay in the outbox and be sent again at the next start.
  {
    std::unique_lock lock(mu_);
    replies_cv_.wait_for(lock, kStopReplyWait, [this] { return replies_in_flight_ == 0; });
  }
  client_->shutdown();
}

void Bot::reply_done() {
  std::lock_guard lock(mu_);
  --replies_in_flight_;
  replies_cv_.notify_all();
}

bool Bot::allowed(int64_t user_id) const {
  return std::find(opts_.allowed_user_ids.begin(), opts_.allowed_user_ids.end(), user_id) !=
         opts_.allowed_user_ids.end();
}

bool Bot::muted(std::string_view symbol) {
  const std::string key = upper_ascii(symbol);
  std::lock_guard lock(mu_);
  auto stats = symbols_.find(key);
  if (stats == symbols_.end()) {
    const std::string_view name = symbols_.size() < kMaxSymbols ? std::string_view(key) : kOther;
    stats = symbols_.try_emplace(std::string(name)).first;
  }
  ++stats->second.seen;
  auto it = mutes_.find(key);
  if (it == mutes_.end()) return false;
  if (it->second <= now_ms()) {
    mutes_.erase(it);
    return false;
  }
  ++stats->second.muted;
  return true;
}

void Bot::record_sent(std::string_view symbol, std::optional<double> notional_usd,
                      std::optional<int64_t> latency_ns) {
  const std::string key = symbol.empty() ? "(no symbol)" : upper_ascii(symbol);
  std::lock_guard lock(mu_);
  auto stats = symbols_.find(key);
  if (stats == symbols_.end()) {
    const std::string_view name = symbols_.size() < kMaxSymbols ? std::string_view(key) : kOther;
    stats = symbols_.try_emplace(std::string(name)).first;
  }
  ++stats->second.sent;
  if (notional_usd && std::isfinite(*notional_usd)) stats->second.volume_usd += *notional_usd;
  if (latency_ns) {
    const int64_t v = std::max<int64_t>(0, *latency_ns);
    if (latencies_ns_.size() < kLatencySamples) {
      latencies_ns_.push_back(v);
    } else {
      latencies_ns_[latency_next_] = v;
      latency_next_ = (latency_next_ + 1) % kLatencySamples;
    }
    latency_max_ns_ = std::max(latency_max_ns_, v);
  }
}

void Bot::poll() {
  json body = json::object();
  {
    std::lock_guard lock(mu_);
    if (offset_) body["offset"] = *offset_;
  }
  body["timeout"] = opts_.poll_timeout.count();
  body["allowed_updates"] = {"message", "callback_query"};
  http::Request req;
  req.method = "POST";
  req.url = opts_.api_url + "/getUpdates";
  // Telegram holds the request up to poll_timeout: the deadline is that plus a normal one.
  req.timeout = opts_.poll_timeout + opts_.request_timeout;
  req.headers = {{"Content-Type", "application/json; charset=utf-8"}};
  req.body = body.dump();
  client_->send(std::move(req), [this](http::Response r) { on_poll_response(r); });
}

void Bot::on_poll_response(const http::Response& r) {
  if (r.error == http::ErrorKind::kCancelled) return;
  if (!r.ok()) return poll_failed(r.error_message, std::chrono::nanoseconds(-1));
  const json body = json::parse(r.body, nullptr, false);
  if (r.status == 429) return poll_failed(describe(r, body), retry_after_of(r, body));
  if (r.status == 401 || r.status == 404) {
    return poll_failed(describe(r, body) + " (check bot_token)", std::chrono::nanoseconds(-1));
  }
  if (r.status == 409) {
    return poll_failed(describe(r, body) + " (another process polls this bot, or a webhook is set)",
                       std::chrono::nanoseconds(-1));
  }
  if (r.status != 200) return poll_failed(describe(r, body), std::chrono::nanoseconds(-1));
  if (!body.is_object()) {
    return poll_failed("reply is not a JSON object: " + http::body_snippet(r.body),
                       std::chrono::nanoseconds(-1));
  }
  if (body.value("ok", json()) != true) {
    return poll_failed("ok is not true: " + describe(r, body), std::chrono::nanoseconds(-1));
  }
  auto result = body.find("result");
  if (result == body.end() || !result->is_array()) {
    return poll_failed("reply has no result list: " + http::body_snippet(r.body),
                       std::chrono::nanoseconds(-1));
  }
  failures_ = 0;
  // Past updates that changed and answered nothing: committed with the next update that does,
  // or at the end of the batch. (A flag and a value rather than std::optional: gcc at -O1 warns
  // the optional "may be used uninitialized".)
  bool has_uncommitted = false;
  int64_t uncommitted = 0;
  for (const json& update : *result) {
    const auto id = int_at(update, "update_id");
    if (!id) {
      host_.warn("telegram: getUpdates: skipped an update without an integer update_id");
      continue;
    }
    {
      std::lock_guard lock(mu_);
      if (offset_ && *id < *offset_) continue;  // handled and committed already
    }
    Effect effect;
    try {
      handle_update(update, effect);
    } catch (const json::exception& e) {
      host_.warn("telegram: update " + std::to_string(*id) + " skipped: " + e.what());
      effect = Effect{};
    }
    if (!effect.reply && !effect.mutes && effect.settings.empty()) {
      uncommitted = *id;
      has_uncommitted = true;
      continue;
    }
    has_uncommitted = false;
    commit_update(*id, std::move(effect));
  }
  if (has_uncommitted) commit_update(uncommitted, Effect{});
  poll();
}

void Bot::poll_failed(const std::string& what, std::chrono::nanoseconds retry_after) {
  const int attempt = std::min(failures_, 30);
  ++failures_;
  const auto delay = retry_after.count() >= 0
                         ? retry_after
                         : http::backoff_delay(attempt, opts_.backoff_base, opts_.backoff_max);
  host_.warn(client_->redact("telegram: getUpdates: " + what + "; polling again in " +
                             latency_text(delay)));
  client_->schedule(delay, [this](bool cancelled) {
    if (!cancelled) poll();
  });
}

bool Bot::command_chat(const json* chat) const {
  if (chat == nullptr) return false;
  if (string_at(*chat, "type") == "private") return true;
  const auto id = int_at(*chat, "id");
  return id && std::find(opts_.command_chat_ids.begin(), opts_.command_chat_ids.end(), *id) !=
                   opts_.command_chat_ids.end();
}

void Bot::ignore_chat(const json* chat, std::string_view what) {
  const auto id = chat ? int_at(*chat, "id") : std::nullopt;
  const std::string type = chat ? string_at(*chat, "type").value_or("?") : "none";
  host_.debug("telegram: ignored " + std::string(what) + " in " + type + " chat " +
              (id ? std::to_string(*id) : std::string("?")) +
              ": commands count in private chats and in the chats of command_chat_ids only");
  host_.counter_add("telegram_commands_ignored_total", 1, "reason=\"chat\"");
}

void Bot::handle_update(const json& update, Effect& effect) {
  if (const json* message = object_at(update, "message")) {
    handle_command(*message, effect);
  } else if (const json* query = object_at(update, "callback_query")) {
    handle_callback(*query, effect);
  }
}

void Bot::handle_command(const json& message, Effect& effect) {
  const auto text = string_at(message, "text");
  if (!text || text->empty() || text->front() != '/') return;
  const json* chat = object_at(message, "chat");
  const auto chat_id = chat ? int_at(*chat, "id") : std::nullopt;
  if (!chat_id) return;
  const json* from = object_at(message, "from");
  const int64_t user_id = from ? int_at(*from, "id").value_or(0) : 0;

  std::vector<std::string> words = split_words(*text);
  if (words.empty()) return;
  // In a group "/mute@OtherBot" is for another bot: neither answered nor refused.
  if (!addressed_here(words.front())) return;
  // "/mute@AlertsBot" in groups: the command is the part before '@'.
  std::string command = words.front().substr(1);
  command = command.substr(0, command.find('@'));
  for (char& c : command) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  words.erase(words.begin());
  // Anyone in a group can read the replies and press the buttons: only chats the operator
  // listed count, whoever the sender.
  if (!command_chat(chat)) return ignore_chat(chat, "/" + command);

  std::string reply;
  if (!allowed(user_id)) {
    {
      std::lock_guard lock(mu_);
      const int64_t now = mono_ns();
      const int64_t interval = std::chrono::nanoseconds(kRefusalInterval).count();
      // Forget refusals old enough not to matter, so that strangers cannot grow the map.
      constexpr size_t kMaxRefused = 1000;
      if (refused_at_ns_.size() >= kMaxRefused) {
        std::erase_if(refused_at_ns_, [&](const auto& r) { return now - r.second >= interval; });
      }
      int64_t& last = refused_at_ns_[user_id];
      if (last != 0 && now - last < interval) return;
      last = now;
    }
    host_.info("telegram: refused /" + command + " from user " + std::to_string(user_id) +
               " (not in allowed_user_ids)");
    reply = "\xE2\x9B\x94 Not authorised. Your user id is <code>" + std::to_string(user_id) +
            "</code>; the operator can add it to <code>allowed_user_ids</code>.";
  } else {
    reply = run_command(command, words, effect);
  }
  json body = {{"chat_id", *chat_id}, {"text", fit_html(reply)}, {"parse_mode", "HTML"}};
  if (message.value("is_topic_message", false)) {
    if (auto thread = int_at(message, "message_thread_id")) body["message_thread_id"] = *thread;
  }
  effect.reply = Outgoing{"sendMessage", std::move(body)};
}

void Bot::handle_callback(const json& query, Effect& effect) {
  const auto id = string_at(query, "id");
  if (!id) return;
  // The chat of the message the button is under (none for inline messages, which this bot
  // never sends).
  const json* message = object_at(query, "message");
  const json* chat = message ? object_at(*message, "chat") : nullptr;
  if (!command_chat(chat)) return ignore_chat(chat, "a button");
  const json* from = object_at(query, "from");
  const int64_t user_id = from ? int_at(*from, "id").value_or(0) : 0;
  const std::string data = string_at(query, "data").value_or("");
  std::string text;
  if (!allowed(user_id)) {
    host_.info("telegram: refused a button from user " + std::to_string(user_id) +
               " (not in allowed_user_ids)");
    text = "\xE2\x9B\x94 Not authorised";
  } else if (data.starts_with("mute:") && data.rfind(':') > 4) {
    const size_t colon = data.rfind(':');
    const std::string symbol = upper_ascii(data.substr(5, colon - 5));
    const auto duration = parse_mute_duration(std::string_view(data).substr(colon + 1));
    if (symbol.empty() || !duration) {
      text = "Unknown button";
    } else {
      mute(effect, symbol, *duration);
      effect.failed = "mute " + symbol;
      effect.logs.push_back("telegram: user " + std::to_string(user_id) + " muted " + symbol +
                            " for " + duration_text(*duration) + " (button)");
      text = "\xF0\x9F\x94\x95 " + symbol + " muted for " + duration_text(*duration);
    }
  } else {
    text = "Unknown button";
  }
  // Telegram shows at most 200 characters of a callback answer.
  effect.reply = Outgoing{"answerCallbackQuery",
                          {{"callback_query_id", *id}, {"text", http::truncate_text(text, 200)}}};
}

std::string Bot::run_command(const std::string& command, const std::vector<std::string>& args,
                             Effect& effect) {
  if (command == "start" || command == "help") {
    return "<b>Sluice alerts</b>\nCommands:\n" + std::string(kHelp);
  }
  if (command == "stats") return cmd_stats();
  if (command == "symbols") return cmd_symbols();
  if (command == "setthreshold") return cmd_setthreshold(args, effect);
  if (command == "mute") return cmd_mute(args, effect);
  if (command == "unmute") return cmd_unmute(args, effect);
  return "Unknown command <code>/" + http::escape(command, http::Escape::kHtml) +
         "</code>. Commands:\n" + std::string(kHelp);
}

std::string Bot::cmd_stats() {
  std::lock_guard lock(mu_);
  const auto up = std::chrono::duration_cast<std::chrono::seconds>(
      std::chrono::nanoseconds(mono_ns() - started_ns_));
  std::string out = "<b>Alerts since start</b> (up " + duration_text(up) + ")\n";
  std::vector<std::pair<std::string_view, const SymbolStats*>> rows;
  uint64_t sent = 0;
  uint64_t muted = 0;
  double volume = 0;
  for (const auto& [name, s] : symbols_) {
    sent += s.sent;
    muted += s.muted;
    volume += s.volume_usd;
    if (s.sent > 0) rows.emplace_back(name, &s);
  }
  if (rows.empty()) {
    out += "No alerts sent yet.";
  } else {
    std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) {
      if (a.second->volume_usd != b.second->volume_usd) {
        return a.second->volume_usd > b.second->volume_usd;
      }
      return a.second->sent > b.second->sent;
    });
    for (size_t i = 0; i < rows.size() && i < kMaxRows; ++i) {
      const SymbolStats& s = *rows[i].second;
      out += "<b>" + http::escape(rows[i].first, http::Escape::kHtml) +
             "</b>: " + std::to_string(s.sent) + (s.sent == 1 ? " alert" : " alerts") +
             " \xC2\xB7 $" + with_thousands(s.volume_usd) + "\n";
    }
    if (rows.size() > kMaxRows) {
      out += "\xE2\x80\xA6 and " + std::to_string(rows.size() - kMaxRows) + " more symbols\n";
    }
    out += "Total: " + std::to_string(sent) + (sent == 1 ? " alert" : " alerts") + " \xC2\xB7 $" +
           with_thousands(volume);
  }
  if (muted > 0) out += "\nMuted: " + std::to_string(muted) + " not sent";
  if (!latencies_ns_.empty()) {
    std::vector<int64_t> sorted = latencies_ns_;
    std::sort(sorted.begin(), sorted.end());
    using std::chrono::nanoseconds;
    out += "\nLatency exchange \xE2\x86\x92 alert";
    if (sorted.size() == kLatencySamples) out += " (last " + std::to_string(kLatencySamples) + ")";
    out += ": p50 " + latency_text(nanoseconds(percentile(sorted, 0.50))) + " \xC2\xB7 p95 " +
           latency_text(nanoseconds(percentile(sorted, 0.95))) + " \xC2\xB7 max " +
           latency_text(nanoseconds(latency_max_ns_));
  }
  return out;
}

std::string Bot::cmd_symbols() {
  std::lock_guard lock(mu_);
  std::string out = "<b>Symbols seen</b>\n";
  std::vector<std::pair<std::string_view, uint64_t>> rows;
  for (const auto& [name, s] : symbols_) rows.emplace_back(name, s.seen);
  if (rows.empty()) out += "None yet.\n";
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  for (size_t i = 0; i < rows.size() && i < kMaxRows; ++i) {
    out += http::escape(rows[i].first, http::Escape::kHtml) + ": " +
           std::to_string(rows[i].second) + "\n";
  }
  if (rows.size() > kMaxRows) {
    out += "\xE2\x80\xA6 and " + std::to_string(rows.size() - kMaxRows) + " more\n";
  }
  const int64_t now = now_ms();
  std::erase_if(mutes_, [now](const auto& m) { return m.second <= now; });
  if (mutes_.empty()) return out + "Nothing muted.";
  out += "<b>Muted</b>\n";
  size_t shown = 0;
  for (const auto& [symbol, until] : mutes_) {
    if (++shown > kMaxRows) {
      out += "\xE2\x80\xA6 and " + std::to_string(mutes_.size() - kMaxRows) + " more\n";
      break;
    }
    const auto left = std::chrono::seconds((until - now + 999) / 1000);
    out += "\xF0\x9F\x94\x95 " + http::escape(symbol, http::Escape::kHtml) + " for " +
           duration_text(left) + " (until " + until_text(until) + ")\n";
  }
  out.pop_back();
  return out;
}

std::string Bot::cmd_setthreshold(const std::vector<std::string>& args, Effect& effect) {
  const std::string name =
      "<code>" + http::escape(opts_.threshold_setting, http::Escape::kHtml) + "</code>";
  const std::string usage =
      "Usage: /setthreshold USD, e.g. <code>/setthreshold 250000</code> (250k and 1.5M work "
      "too)";
  if (args.size() != 1) return usage;
  const auto value = parse_usd(args[0]);
  if (!value)
    return "<code>" + http::escape(args[0], http::Escape::kHtml) +
           "</code> is not a positive amount. " + usage;
  const auto old = host_.setting(opts_.threshold_setting);
  if (!old || old->is_discarded()) {
    return "This pipeline has no setting " + name +
           ": declare it under [settings] to use "
           "/setthreshold.";
  }
  if (!old->is_number()) return "The setting " + name + " is not a number.";
  // Whole amounts stay integers, as a [settings] value is usually written.
  constexpr double kMaxExactInt = 9e15;
  const Json next = *value == std::floor(*value) && *value < kMaxExactInt
                        ? Json(static_cast<int64_t>(*value))
                        : Json(*value);
  // Applied by the commit of this update, with the offset past it.
  effect.settings.push_back({opts_.threshold_setting, next});
  effect.failed = "change " + opts_.threshold_setting;
  effect.logs.push_back("telegram: /setthreshold: " + opts_.threshold_setting + " " +
                        old->dump() + " -> " + next.dump());
  return "Threshold " + name + ": $" + usd_text(old->get<double>()) + " \xE2\x86\x92 $" +
         usd_text(*value);
}

std::string Bot::mute(Effect& effect, const std::string& symbol, std::chrono::seconds duration) {
  const int64_t now = now_ms();
  const int64_t until = now + std::chrono::milliseconds(duration).count();
  if (!effect.mutes) {
    std::lock_guard lock(mu_);
    effect.mutes = mutes_;
  }
  std::erase_if(*effect.mutes, [now](const auto& m) { return m.second <= now; });
  (*effect.mutes)[symbol] = until;
  return until_text(until);
}

std::string Bot::cmd_mute(const std::vector<std::string>& args, Effect& effect) {
  const std::string usage =
      "Usage: /mute SYMBOL DURATION, e.g. <code>/mute BTCUSDT 1h</code> (s, m, h, d, w; at most "
      "365d)";
  if (args.size() != 2) return usage;
  const std::string symbol = upper_ascii(args[0]);
  const auto duration = parse_mute_duration(args[1]);
  if (!duration) {
    return "<code>" + http::escape(args[1], http::Escape::kHtml) + "</code> is not a duration. " +
           usage;
  }
  const std::string until = mute(effect, symbol, *duration);
  const std::string bold = "<b>" + http::escape(symbol, http::Escape::kHtml) + "</b>";
  effect.failed = "mute " + symbol;
  effect.logs.push_back("telegram: muted " + symbol + " for " + duration_text(*duration));
  return "\xF0\x9F\x94\x95 " + bold + " muted for " + duration_text(*duration) + ", until " +
         until + ".";
}

std::string Bot::cmd_unmute(const std::vector<std::string>& args, Effect& effect) {
  if (args.size() != 1) return "Usage: /unmute SYMBOL, e.g. <code>/unmute BTCUSDT</code>";
  const std::string symbol = upper_ascii(args[0]);
  const std::string bold = "<b>" + http::escape(symbol, http::Escape::kHtml) + "</b>";
  {
    std::lock_guard lock(mu_);
    auto it = mutes_.find(symbol);
    if (it == mutes_.end() || it->second <= now_ms()) return bold + " was not muted.";
    effect.mutes = mutes_;
  }
  effect.mutes->erase(symbol);
  effect.failed = "unmute " + symbol;
  effect.logs.push_back("telegram: unmuted " + symbol);
  return "\xF0\x9F\x94\x94 " + bold + " unmuted.";
}

std::string Bot::commit(const std::vector<Host::StateWrite>& writes,
                        const std::vector<Host::SettingChange>& settings) {
  if (host_.has_state()) return host_.state_commit(writes, settings).error;
  // A host without node state (older than ABI 1.2): memory only, settings one by one.
  for (const Host::SettingChange& s : settings) {
    if (!host_.set_setting(s.name, s.value)) return "the host refused the change";
  }
  return {};
}

json Bot::outbox_value() const {
  json out = json::object();
  for (const auto& [id, o] : outbox_) {
    out[std::to_string(id)] = {{"method", o.method}, {"body", o.body}};
  }
  return out;
}

std::string Bot::mutes_json(const Mutes& mutes) {
  const int64_t now = now_ms();
  json out = json::object();
  for (const auto& [symbol, until] : mutes) {
    if (until > now) out[symbol] = until;
  }
  return out.dump(-1, ' ', false, json::error_handler_t::replace);
}

void Bot::commit_update(int64_t update_id, Effect effect) {
  const int64_t next = update_id < INT64_MAX ? update_id + 1 : update_id;
  auto writes_of = [&](const Effect& e) {
    json outbox;
    {
      std::lock_guard lock(mu_);
      outbox = outbox_value();
    }
    if (e.reply) {
      outbox[std::to_string(update_id)] = {{"method", e.reply->method}, {"body", e.reply->body}};
    }
    std::vector<Host::StateWrite> writes = {
        {kOffsetKey, std::to_string(next)},
        {kOutboxKey, outbox.dump(-1, ' ', false, json::error_handler_t::replace)}};
    if (e.mutes) writes.push_back({kMutesKey, mutes_json(*e.mutes)});
    return writes;
  };
  bool saved = true;
  std::string error = commit(writes_of(effect), effect.settings);
  if (!error.empty()) {
    const std::string failed = effect.failed.empty() ? "save the bot's state" : effect.failed;
    host_.warn(client_->redact("telegram: update " + std::to_string(update_id) +
                               ": could not " + failed + ": " + error));
    // Nothing of it was applied: the reply says so, and only the offset and it are committed.
    if (effect.reply) {
      const std::string what = "\xE2\x9D\x8C Could not " + failed + ": " + error;
      effect.reply->body["text"] = effect.reply->method == "sendMessage"
                                       ? fit_html(http::escape(what, http::Escape::kHtml))
                                       : http::truncate_text(what, 200);
    }
    effect.mutes.reset();
    effect.settings.clear();
    effect.logs.clear();
    const std::string again = commit(writes_of(effect));
    if (!again.empty()) {
      // The database takes nothing: answer anyway (once, from this process), and go past the
      // update so that Telegram drops it; nothing of it was applied.
      host_.error(client_->redact("telegram: cannot save the bot's state: " + again +
                                  "; update " + std::to_string(update_id) +
                                  " is answered but its reply is not saved"));
      saved = false;
    }
  }
  {
    std::lock_guard lock(mu_);
    offset_ = std::max(offset_.value_or(next), next);
    if (effect.mutes) mutes_ = std::move(*effect.mutes);
    if (effect.reply && saved) outbox_[update_id] = *effect.reply;
  }
  for (const std::string& line : effect.logs) host_.info(line);
  if (effect.reply) send(update_id, std::move(*effect.reply));
}

void Bot::send(int64_t id, Outgoing o, int attempt) {
  http::Request req;
  req.method = "POST";
  req.url = opts_.api_url + "/" + o.method;
  req.timeout = opts_.request_timeout;
  req.headers = {{"Content-Type", "application/json; charset=utf-8"}};
  req.body = o.body.dump(-1, ' ', false, json::error_handler_t::replace);
  {
    std::lock_guard lock(mu_);
    ++replies_in_flight_;
  }
  client_->send(std::move(req), [this, id, o = std::move(o), attempt](http::Response r) {
    // In flight until its outcome is handled (and the outbox committed): a stop waits for that.
    struct InFlight {
      Bot* bot;
      ~InFlight() { bot->reply_done(); }
    } in_flight{this};
    // A stop: the reply stays in the outbox and goes out at the next start.
    if (r.error == http::ErrorKind::kCancelled) return;
    const json body = json::parse(r.body, nullptr, false);
    if (r.ok() && r.status >= 200 && r.status < 300) return sent(id);
    const bool transient = !r.ok() || r.status == 429 || r.status >= 500;
    if (transient && attempt + 1 < kReplyAttempts) {
      auto delay =
          r.ok() && r.status == 429 ? retry_after_of(r, body) : std::chrono::nanoseconds(-1);
      if (delay.count() < 0)
        delay = http::backoff_delay(attempt, opts_.backoff_base, opts_.backoff_max);
      delay = std::min<std::chrono::nanoseconds>(delay, kMaxReplyWait);
      client_->schedule(delay, [this, id, o, attempt](bool cancelled) {
        if (!cancelled) send(id, o, attempt + 1);
      });
      return;
    }
    const std::string what = r.ok() ? describe(r, body) : r.error_message;
    host_.warn(client_->redact("telegram: " + o.method + " failed: " + what));
    sent(id);
  });
}

void Bot::sent(int64_t id) {
  std::string outbox;
  {
    std::lock_guard lock(mu_);
    if (outbox_.erase(id) == 0) return;
    outbox = outbox_value().dump(-1, ' ', false, json::error_handler_t::replace);
  }
  const std::string error = commit({{kOutboxKey, outbox}});
  if (!error.empty()) {
    host_.warn("telegram: cannot save the outbox: " + error +
               " (a reply may be sent again after a restart)");
  }
}

void Bot::load_state() {
  if (!host_.has_state()) {
    host_.info("telegram: the host keeps no node state: the update offset and mutes live in "
               "memory only");
    return;
  }
  const auto offset = host_.state_get(kOffsetKey);
  const auto mutes = host_.state_get(kMutesKey);
  const auto outbox = host_.state_get(kOutboxKey);
  // State of older versions: a file of its own in the node's state directory.
  const std::string dir(host_.state_dir());
  std::error_code ec;
  if (!dir.empty() && fs::exists(dir + "/telegram.json", ec)) legacy_file_ = dir + "/telegram.json";
  json legacy;
  if (!legacy_file_.empty() && !offset && !mutes) {
    std::ifstream in(legacy_file_);
    std::stringstream text;
    text << in.rdbuf();
    legacy = json::parse(text.str(), nullptr, false);
    if (!legacy.is_object()) {
      host_.warn("telegram: ignoring " + legacy_file_ + ": not a JSON object");
      legacy = json();
    }
  }
  std::lock_guard lock(mu_);
  if (offset) {
    int64_t v = 0;
    const auto [end, ec] = std::from_chars(offset->data(), offset->data() + offset->size(), v);
    if (ec == std::errc() && end == offset->data() + offset->size()) {
      offset_ = v;
    } else {
      host_.warn("telegram: ignoring the saved offset: not an integer");
    }
  } else if (legacy.is_object()) {
    offset_ = int_at(legacy, "offset");
  }
  const json saved = mutes ? json::parse(*mutes, nullptr, false) : json();
  const json* mute_list = saved.is_object() ? &saved : object_at(legacy, "mutes");
  const int64_t now = now_ms();
  if (mute_list != nullptr) {
    for (const auto& [symbol, until] : mute_list->items()) {
      if (until.is_number_integer() && until.get<int64_t>() > now) {
        mutes_[symbol] = until.get<int64_t>();
      }
    }
  }
  const json pending = outbox ? json::parse(*outbox, nullptr, false) : json();
  if (pending.is_object()) {
    for (const auto& [id, o] : pending.items()) {
      int64_t n = 0;
      const auto [end, ec] = std::from_chars(id.data(), id.data() + id.size(), n);
      const auto method = string_at(o, "method");
      if (ec == std::errc() && end == id.data() + id.size() && method && o.contains("body")) {
        outbox_[n] = Outgoing{*method, o.at("body")};
      }
    }
  }
}

void Bot::migrate_state_file() {
  if (legacy_file_.empty()) return;
  std::vector<Host::StateWrite> writes;
  {
    std::lock_guard lock(mu_);
    if (offset_) writes.push_back({kOffsetKey, std::to_string(*offset_)});
    writes.push_back({kMutesKey, mutes_json(mutes_)});
  }
  const std::string error = commit(writes);
  if (!error.empty()) {
    host_.warn("telegram: cannot move " + legacy_file_ + " into the node state: " + error +
               " (tried again at the next start)");
    return;
  }
  std::error_code ec;
  fs::remove(legacy_file_, ec);
  host_.info("telegram: moved the offset and mutes of " + legacy_file_ +
             " into the pipeline's state database" +
             (ec ? " (could not remove the file: " + ec.message() + ")" : std::string()));
  legacy_file_.clear();
}

}  // namespace sluice::telegram_sink
