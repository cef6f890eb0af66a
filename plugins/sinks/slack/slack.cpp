// The `slack` sink: the message it builds from an event (see slack.hpp).
#include "slack.hpp"

#include <utility>

namespace sluice::slack_sink {

SlackSink::SlackSink(const Host& host, const Config& config)
    : template_(http::compile_template("template", config.str("template"), http::Escape::kSlack)),
      blocks_(config.flag("blocks")),
      poster_(host, config, http::chat_webhook("slack", "application/json; charset=utf-8")) {}

void SlackSink::consume(Call call) {
  // The pipeline's own alert (a watch, a rollout) is sent as its text, not through the template.
  const auto alert = http::pipeline_alert_text(call.event());
  const std::string text =
      alert ? http::escape(*alert, http::Escape::kSlack) : template_.render(call.event());
  Json body;
  body["text"] = http::truncate_text(text, kMaxText);
  if (blocks_) {
    body["blocks"] = Json::array(
        {{{"type", "section"},
          {"text", {{"type", "mrkdwn"}, {"text", http::truncate_text(text, kMaxSectionText)}}}}});
  }
  poster_.post(std::move(call), body);
}

}  // namespace sluice::slack_sink

SLUICE_PLUGIN(sluice::slack_sink::SlackSink, "slack", "1.0.0",
              "Posts each event to a Slack incoming webhook, paced and retried",
              sluice::slack_sink::kOptions.specs);
