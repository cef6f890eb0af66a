// The `sluice` command line: run, validate, graph, ctl, keys, plugins list|describe|docs|schema,
// version.
#include <signal.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include <fmt/format.h>
#include <toml++/toml.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "sluice/core/admin_client.hpp"
#include "sluice/core/config.hpp"
#include "sluice/core/edge_keys.hpp"
#include "sluice/core/node_host.hpp"
#include "sluice/core/pipeline_file.hpp"
#include "sluice/core/plugin_docs.hpp"
#include "sluice/core/plugin_registry.hpp"
#include "sluice/core/runtime.hpp"

namespace fs = std::filesystem;
using namespace sluice::core;

namespace {

// [pipeline] plugin_path must be known before the file can be validated (validation needs the
// plugins' schemas), so it is read first on its own, within the same limits as the full load,
// which reports any error in it.
std::vector<std::string> peek_plugin_path(const std::string& file) {
  std::vector<std::string> dirs;
  try {
    toml::table t = parse_pipeline_toml(read_pipeline_file(file), file);
    if (auto* arr = t["pipeline"]["plugin_path"].as_array()) {
      for (auto& v : *arr) {
        if (auto s = v.value<std::string>()) {
          fs::path p(*s);
          if (p.is_relative()) p = fs::path(file).parent_path() / p;
          dirs.push_back(p.string());
        }
      }
    }
  } catch (const std::exception&) {
  }
  return dirs;
}

PluginRegistry load_registry(const std::vector<std::string>& extra, bool report) {
  PluginRegistry reg;
  std::vector<std::string> dirs = PluginRegistry::default_dirs();
  dirs.insert(dirs.end(), extra.begin(), extra.end());
  std::vector<std::string> errors;
  reg.load_dirs(dirs, &errors);
  if (report) {
    for (const std::string& e : errors) fmt::print(stderr, "warning: {}\n", e);
  }
  return reg;
}

int print_config_error(const ConfigError& e) {
  for (const Diagnostic& d : e.diagnostics()) fmt::print(stderr, "{}\n", d.format());
  return 2;
}

const Plugin* find_plugin(const PluginRegistry& reg, const std::string& name,
                          const std::string& kind) {
  for (const Plugin& p : reg.plugins()) {
    if (p.name() == name && (kind.empty() || kind == kind_name(p.kind()))) return &p;
  }
  return nullptr;
}

// `sluice ctl`: what to ask the admin endpoint, and where it and its token come from.
struct CtlOptions {
  std::string admin_url;
  std::string file;
  std::string process;
  std::string token_file;
  std::string timeout = "5s";
  std::string name;
  std::string value;
  std::string command;  // ctl node NODE COMMAND [JSON]
};

// Exit codes of `sluice ctl` (docs/operations.md).
constexpr int kCtlRefused = 1;      // the endpoint answered with an error
constexpr int kCtlBadInput = 2;     // bad command line, pipeline file or token file
constexpr int kCtlUnreachable = 3;  // no answer from the endpoint

std::string read_token_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw std::runtime_error(
        fmt::format("--token-file {}: cannot read it: {}", path, std::strerror(errno)));
  }
  std::string token((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) {
    token.pop_back();
  }
  if (token.empty()) throw std::runtime_error(fmt::format("--token-file {}: it is empty", path));
  return token;
}

int run_ctl(const CtlOptions& o, const std::string& command) {
  AdminUrl url;
  std::string token;
  std::chrono::milliseconds timeout{};
  try {
    std::string error;
    auto ns = parse_duration(o.timeout, &error);
    if (!ns || *ns <= 0) {
      throw std::runtime_error(
          fmt::format("--timeout '{}': {}", o.timeout, error.empty() ? "must be positive" : error));
    }
    timeout = std::chrono::milliseconds(std::max<int64_t>(*ns / 1'000'000, 1));
    std::optional<AdminTarget> target;
    if (!o.file.empty()) target = load_admin_target(o.file);
    if (!o.admin_url.empty()) {
      auto parsed = parse_admin_url(o.admin_url, &error);
      if (!parsed) throw std::runtime_error(error);
      url = *parsed;
    } else if (target) {
      url = admin_url_of(*target, o.process);
    } else {
      throw std::runtime_error("say which endpoint: --admin http://127.0.0.1:9464 or -f FILE");
    }
    if (!o.token_file.empty()) {
      token = read_token_file(o.token_file);
    } else if (target && !target->admin.token.empty()) {
      token = target->admin.token;
    } else if (const char* env = std::getenv("SLUICE_ADMIN_TOKEN"); env != nullptr) {
      token = env;
    }
  } catch (const ConfigError& e) {
    print_config_error(e);
    return kCtlBadInput;
  } catch (const std::exception& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return kCtlBadInput;
  }

  std::string method = "GET";
  std::string path = "/settings";
  std::string body;
  if (command == "nodes") {
    path = "/nodes";
  } else if (command == "node") {
    method = "POST";
    path = "/nodes/" + o.name + "/" + o.command;
    body = o.value.empty() ? "{}" : o.value;
    if (nlohmann::json::parse(body, nullptr, false).is_discarded()) {
      fmt::print(stderr,
                 "error: the command's argument must be JSON, e.g. '{{\"child\": \"x\"}}'\n");
      return kCtlBadInput;
    }
  } else if (command == "get") {
    path += "/" + o.name;
  } else if (command == "set") {
    method = "PUT";
    path += "/" + o.name;
    // VALUE is JSON (25000, 0.5, true, "SELL"); anything that is not JSON is sent as a string.
    auto value = nlohmann::json::parse(o.value, nullptr, false);
    body = value.is_discarded() ? nlohmann::json(o.value).dump() : value.dump();
  }
  AdminReply reply;
  try {
    reply = admin_request(url, method, path, token, body, timeout);
  } catch (const std::exception& e) {
    fmt::print(stderr, "error: {} (is the pipeline running, with its admin endpoint there?)\n",
               e.what());
    return kCtlUnreachable;
  }
  if (reply.status < 200 || reply.status > 299) {
    std::string text = reply.body;
    while (!text.empty() && text.back() == '\n') text.pop_back();
    fmt::print(stderr, "error: {}{} answered {} {}: {}\n", url.text(), path, reply.status,
               reply.reason, text);
    return kCtlRefused;
  }
  if (command == "settings") {
    auto all = nlohmann::json::parse(reply.body, nullptr, false);
    if (!all.is_object()) {
      fmt::print(stderr, "error: {}{} answered something that is not a JSON object\n", url.text(),
                 path);
      return kCtlRefused;
    }
    for (const auto& [name, value] : all.items()) fmt::print("{} = {}\n", name, value.dump());
  } else if (command == "nodes") {
    auto all = nlohmann::json::parse(reply.body, nullptr, false);
    if (!all.is_object()) {
      fmt::print(stderr, "error: {}{} answered something that is not a JSON object\n", url.text(),
                 path);
      return kCtlRefused;
    }
    for (const auto& [node, commands] : all.items()) {
      for (const auto& [name, description] : commands.items()) {
        fmt::print("{} {}: {}\n", node, name, description.get<std::string>());
      }
    }
  } else if (command == "node") {
    auto answer = nlohmann::json::parse(reply.body, nullptr, false);
    fmt::print("{}\n", answer.is_discarded() ? reply.body : answer.dump(2));
  } else if (command == "set") {
    fmt::print("{} = {}", o.name, reply.body);
  } else {
    fmt::print("{}", reply.body);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // A reader that goes away (`sluice run … | head`) must not kill the process mid-drain: writes
  // to the closed pipe fail with EPIPE instead, and the console sink counts that and goes on.
  ::signal(SIGPIPE, SIG_IGN);
  CLI::App app{"sluice: plugin-based stream processing over ZeroMQ stages"};
  app.require_subcommand(1);
  std::string log_level = "info";
  std::string log_format = "text";
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));
  app.add_option("--log-format", log_format, "text|json")->check(CLI::IsMember({"text", "json"}));

  std::string file;
  std::string process;
  int admin_port = -2;
  bool quiet = false;
  auto* run = app.add_subcommand("run", "Run a pipeline (or one placement group of it)");
  run->add_option("file", file, "Pipeline TOML file")->required()->check(CLI::ExistingFile);
  run->add_option("--process", process, "Run only this [placement] group");
  run->add_option("--admin-port", admin_port, "Admin HTTP port (0 = any free port, -1 = off)");
  run->add_flag("--quiet", quiet, "Do not print the per-node summary at the end");

  std::vector<std::string> files;
  auto* validate = app.add_subcommand("validate", "Check pipeline files without running them");
  validate->add_option("files", files, "Pipeline TOML files")->required()->check(CLI::ExistingFile);

  auto* graph = app.add_subcommand("graph", "Print a pipeline as a Graphviz DOT graph");
  graph->add_option("file", file, "Pipeline TOML file")->required()->check(CLI::ExistingFile);

  auto* plugins = app.add_subcommand("plugins", "Inspect available plugins");
  plugins->require_subcommand(1);
  auto* list = plugins->add_subcommand("list", "List plugins");
  std::string name;
  std::string kind;
  auto* describe = plugins->add_subcommand("describe", "Show a plugin's options");
  describe->add_option("name", name, "Plugin name")->required();
  describe->add_option("--kind", kind, "source|processor|sink (when names collide)")
      ->check(CLI::IsMember({"source", "processor", "sink"}));
  std::string out_dir;
  auto* docs = plugins->add_subcommand("docs", "Write the Markdown plugin reference");
  docs->add_option("--out", out_dir, "Output directory")->required();
  auto* schema = plugins->add_subcommand("schema", "Print a JSON Schema for pipeline files");

  CtlOptions ctl_opts;
  auto* ctl = app.add_subcommand(
      "ctl",
      "Talk to a running pipeline's admin endpoint (exit 1: refused, 2: bad input, 3: "
      "unreachable)");
  ctl->require_subcommand(1);
  ctl->add_option("--admin", ctl_opts.admin_url, "Endpoint URL, e.g. http://127.0.0.1:9464");
  ctl->add_option("-f,--file", ctl_opts.file, "Pipeline file whose [admin] names the endpoint")
      ->check(CLI::ExistingFile);
  ctl->add_option("--process", ctl_opts.process, "With -f: the [placement] group's endpoint");
  ctl->add_option("--token-file", ctl_opts.token_file,
                  "File holding the bearer token (default: the file's [admin] token, then "
                  "$SLUICE_ADMIN_TOKEN)");
  ctl->add_option("--timeout", ctl_opts.timeout, "Give up after this long (default 5s)");
  // `ctl settings list|get NAME|set NAME VALUE`; `ctl settings` alone lists, and `ctl get` /
  // `ctl set` stay as short forms.
  auto* ctl_settings = ctl->add_subcommand(
      "settings", "Runtime settings: list (the default), get NAME, set NAME VALUE");
  ctl_settings->require_subcommand(0, 1);
  auto* ctl_settings_list = ctl_settings->add_subcommand("list", "List settings and their values");
  auto add_get = [&](CLI::App* parent) {
    auto* get = parent->add_subcommand("get", "Print one setting's value (JSON)");
    get->add_option("name", ctl_opts.name, "Setting name")->required();
    return get;
  };
  auto add_set = [&](CLI::App* parent) {
    auto* set = parent->add_subcommand(
        "set", "Change a setting (saved before it is acknowledged; every process of the "
               "pipeline picks it up)");
    set->add_option("name", ctl_opts.name, "Setting name")->required();
    set->add_option("value", ctl_opts.value,
                    "JSON value (25000, 0.5, true, \"SELL\"); other "
                    "text is sent as a string")
        ->required();
    return set;
  };
  auto* ctl_settings_get = add_get(ctl_settings);
  auto* ctl_settings_set = add_set(ctl_settings);
  auto* ctl_get = add_get(ctl);
  auto* ctl_set = add_set(ctl);
  auto* ctl_nodes =
      ctl->add_subcommand("nodes", "List the node commands of the endpoint's process");
  auto* ctl_node =
      ctl->add_subcommand("node", "Call a node's command, e.g. `node classify status`");
  ctl_node->add_option("node", ctl_opts.name, "Node name")->required();
  ctl_node->add_option("command", ctl_opts.command, "Command name")->required();
  ctl_node->add_option("args", ctl_opts.value, "JSON argument (default {})");

  std::string key_name;
  std::string key_dir = ".";
  auto* keys = app.add_subcommand(
      "keys",
      "Generate a CURVE key pair for a placement group's tcp edges: NAME.key (secret, "
      "mode 0600) and NAME.pub");
  keys->add_option("name", key_name, "Key name, usually the placement group")->required();
  keys->add_option("--dir", key_dir, "Directory to write the key files to");

  auto* version = app.add_subcommand("version", "Print the version");

  // Global flags are accepted after the subcommand too (`sluice run FILE --log-level warn`).
  for (CLI::App* sub : {run, validate, graph, plugins, list, describe, docs, schema, keys, version,
                        ctl, ctl_settings, ctl_settings_list, ctl_settings_get, ctl_settings_set,
                        ctl_get, ctl_set, ctl_nodes, ctl_node}) {
    sub->fallthrough();
  }
  CLI11_PARSE(app, argc, argv);
  configure_logging(log_level, log_format);

  if (*version) {
    fmt::print("sluice {} (plugin ABI {}.{})\n", SLUICE_VERSION, SLUICE_ABI_MAJOR,
               SLUICE_ABI_MINOR);
    return 0;
  }
  if (*keys) {
    bool plain = !key_name.empty() &&
                 key_name.find_first_not_of(
                     "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") ==
                     std::string::npos;
    if (!plain || key_name[0] == '.') {
      fmt::print(stderr, "error: key name '{}': use letters, digits, '_', '-' and '.'\n", key_name);
      return 2;
    }
    try {
      CurveKeyPair k = write_curve_key_files(key_dir, key_name);
      std::string base = (fs::path(key_dir) / key_name).string();
      // The secret stays in its file: only the public half is printed.
      fmt::print("{}\n", k.public_key);
      fmt::print(stderr,
                 "wrote {0}.key (secret, mode 0600) and {0}.pub\n"
                 "in the pipeline file, [placement] {1} = {{ ..., curve_public_key = \"{2}\", "
                 "curve_secret_key_file = \"{0}.key\" }}\n",
                 base, key_name, k.public_key);
      return 0;
    } catch (const std::exception& e) {
      fmt::print(stderr, "error: {}\n", e.what());
      return 1;
    }
  }
  if (*plugins) {
    PluginRegistry reg = load_registry({}, true);
    if (*list) {
      for (const Plugin& p : reg.plugins()) {
        fmt::print("{:<10} {:<22} {:<8} {}\n           {}\n", kind_name(p.kind()), p.name(),
                   p.descriptor->version, p.descriptor->description, p.path);
      }
      return 0;
    }
    if (*describe) {
      const Plugin* p = find_plugin(reg, name, kind);
      if (p == nullptr) {
        std::vector<std::string> all;
        for (const Plugin& q : reg.plugins()) all.emplace_back(q.name());
        std::string near = nearest_name(name, all);
        fmt::print(stderr, "error: unknown plugin '{}'{}\n", name,
                   near.empty() ? "" : fmt::format(" (did you mean '{}'?)", near));
        return 2;
      }
      fmt::print("{}", describe_text(*p));
      return 0;
    }
    if (*docs) {
      fs::create_directories(out_dir);
      std::string index =
          "# Plugin reference\n\n<!-- Generated by `sluice plugins docs`. -->\n\n"
          "| plugin | kind | description |\n|---|---|---|\n";
      for (const Plugin& p : reg.plugins()) {
        std::string fname = fmt::format("{}_{}.md", kind_name(p.kind()), p.name());
        std::ofstream(fs::path(out_dir) / fname) << describe_markdown(p);
        index += fmt::format("| [`{}`]({}) | {} | {} |\n", p.name(), fname, kind_name(p.kind()),
                             p.descriptor->description);
      }
      std::ofstream(fs::path(out_dir) / "README.md") << index;
      std::ofstream(fs::path(out_dir) / "pipeline.schema.json")
          << pipeline_json_schema(reg).dump(2) << "\n";
      return 0;
    }
    if (*schema) {
      fmt::print("{}\n", pipeline_json_schema(reg).dump(2));
      return 0;
    }
  }

  if (*validate) {
    int rc = 0;
    for (const std::string& f : files) {
      PluginRegistry reg = load_registry(peek_plugin_path(f), true);
      try {
        PipelineSpec spec = load_pipeline(f, reg.catalog());
        // Creating every instance runs the plugins' own checks (expressions, files, ...).
        Pipeline dry(spec, reg,
                     RunOptions{.process = {},
                                .admin_port = -1,
                                .print_summary = false,
                                .queue_capacity = 1000,
                                .dry_run = true});
        fmt::print("{}: ok ({} nodes)\n", f, spec.nodes.size());
      } catch (const ConfigError& e) {
        rc = print_config_error(e);
      } catch (const std::exception& e) {
        fmt::print(stderr, "{}: error: {}\n", f, e.what());
        rc = 2;
      }
    }
    return rc;
  }

  if (*ctl) {
    return run_ctl(ctl_opts, *ctl_set || *ctl_settings_set ? "set"
                             : *ctl_get || *ctl_settings_get ? "get"
                             : *ctl_nodes                    ? "nodes"
                             : *ctl_node                     ? "node"
                                                             : "settings");
  }

  if (*graph) {
    PluginRegistry reg = load_registry(peek_plugin_path(file), true);
    try {
      fmt::print("{}", pipeline_dot(load_pipeline(file, reg.catalog())));
      return 0;
    } catch (const ConfigError& e) {
      return print_config_error(e);
    }
  }

  if (*run) {
    // Signals go to a dedicated thread (blocked everywhere else): the first asks for a drain,
    // the second forces the stop.
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
    PluginRegistry reg = load_registry(peek_plugin_path(file), true);
    try {
      PipelineSpec spec = load_pipeline(file, reg.catalog());
      RunOptions opts;
      opts.process = process;
      opts.print_summary = !quiet;
      if (admin_port != -2) opts.admin_port = admin_port;
      Pipeline pipeline(spec, reg, opts);
      std::thread signals([&] {
        int sig = 0;
        while (sigwait(&sigs, &sig) == 0) {
          if (sig == SIGUSR1) return;  // pipeline finished on its own
          make_logger("sluice")->info("received {}, draining", strsignal(sig));
          pipeline.stop();
        }
      });
      // However run() ends (an exception included), the signal thread is ended and joined
      // before `pipeline` goes: a joinable std::thread destroyed by unwinding aborts.
      struct StopSignals {
        std::thread& t;
        ~StopSignals() {
          pthread_kill(t.native_handle(), SIGUSR1);
          t.join();
        }
      } stop_signals{signals};
      return pipeline.run();
    } catch (const ConfigError& e) {
      return print_config_error(e);
    } catch (const std::exception& e) {
      fmt::print(stderr, "error: {}\n", e.what());
      return 1;
    }
  }
  return 0;
}
