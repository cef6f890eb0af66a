/* Sluice plugin C ABI.
 *
 * The only contract between the host (sluice runtime) and a plugin shared object. Only C types
 * and byte spans cross it, so plugins may be built by another compiler or standard library.
 * A plugin exports one function, SLUICE_ENTRY_POINT, returning a static descriptor. The host
 * checks abi_major == SLUICE_ABI_MAJOR and abi_minor <= SLUICE_ABI_MINOR before touching
 * anything else in the descriptor.
 *
 * Compatibility rules: adding a member at the END of a struct, or a new enum value, bumps the
 * minor version; anything else bumps the major version. A host reads a member added in minor N
 * only from a descriptor whose abi_minor >= N: an older plugin's descriptor ends before it.
 *
 * The same rule holds the other way for sluice_host, which the host fills: a plugin reads a
 * member added in minor N only from a host whose abi_minor >= N (the loader refuses a plugin
 * newer than the host, so an SDK plugin always finds them; the check guards other hosts, such
 * as test doubles built against an older header). An older plugin's view of sluice_host simply
 * ends before the newer members.
 *
 * History: 1.0 first release; 1.1 added sluice_plugin_descriptor.start; 1.2 added per-node
 * state (sluice_host.state_get/state_commit), timers (timer_start/timer_cancel), child calls with
 * a deadline and a cancel (child_start/child_cancel, sluice_call.deadline_ns/on_cancel), usage in
 * outcomes (sluice_outcome.input_tokens/output_tokens/model), node commands
 * (command_register/command_unregister), events of a node's own (emit) and option bounds
 * (sluice_plugin_descriptor.option_bounds).
 */
#ifndef SLUICE_ABI_H
#define SLUICE_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SLUICE_ABI_MAJOR 1
#define SLUICE_ABI_MINOR 2
#define SLUICE_ENTRY_POINT sluice_plugin_descriptor_v1
#define SLUICE_ENTRY_POINT_NAME "sluice_plugin_descriptor_v1"

#if defined(_WIN32)
#define SLUICE_EXPORT __declspec(dllexport)
#else
#define SLUICE_EXPORT __attribute__((visibility("default")))
#endif

typedef enum sluice_kind {
  SLUICE_KIND_SOURCE = 1,
  SLUICE_KIND_PROCESSOR = 2,
  SLUICE_KIND_SINK = 3
} sluice_kind;

/* Option types. Values reach the plugin as JSON (see create()): durations as integer
 * nanoseconds, sizes as integer bytes, processor refs as the child's index in the host's
 * child table (see sluice_host.child_*). */
typedef enum sluice_option_type {
  SLUICE_OPT_STRING = 1,
  SLUICE_OPT_INT = 2,
  SLUICE_OPT_DOUBLE = 3,
  SLUICE_OPT_BOOL = 4,
  SLUICE_OPT_DURATION = 5,    /* "250ms", "2.5s", "1h" */
  SLUICE_OPT_SIZE = 6,        /* "10MiB", "512KB", or an integer byte count */
  SLUICE_OPT_STRING_LIST = 7,
  SLUICE_OPT_INT_LIST = 8,
  SLUICE_OPT_DOUBLE_LIST = 9,
  SLUICE_OPT_TABLE = 10,      /* free-form table, passed through as a JSON object */
  SLUICE_OPT_PROCESSOR = 11,  /* name of another [processors.X] that becomes a child */
  SLUICE_OPT_PROCESSOR_LIST = 12,
  SLUICE_OPT_SECRET = 13,     /* a string never logged, printed or exported */
  SLUICE_OPT_EXPRESSION = 14  /* a filter expression (string); errors point at a column */
} sluice_option_type;

typedef struct sluice_option_spec {
  const char* key;
  sluice_option_type type;
  /* Default as a TOML literal ("100", "\"text\"", "\"250ms\"", "[1, 2]"); NULL = no default. */
  const char* default_toml;
  int required;
  const char* description;
  /* Optional comma-separated allowed values for string options ("text,json"); NULL = any. */
  const char* choices;
} sluice_option_spec;

/* ABI 1.2: bounds of a numeric option (INT, DOUBLE, DURATION, SIZE, or a list of them), which
 * the host checks before create() (an error naming file, line and option) and shows in the
 * docs and the JSON Schema. min and max are TOML literals of the option's type ("0", "0.5",
 * "\"1ms\"", "\"1GiB\""), inclusive; NULL = unbounded on that side. A separate table rather
 * than members of sluice_option_spec: growing that struct would change the stride of every
 * older plugin's options array. */
typedef struct sluice_option_bounds {
  const char* key;
  const char* min;
  const char* max;
} sluice_option_bounds;

/* A failure a plugin reports from create(): which option, where inside its string value
 * (1-based column, 0 = whole value), and a message a user can act on. */
typedef struct sluice_error {
  char key[128];
  uint32_t column;
  char message[1024];
} sluice_error;

/* Outcome classes of one process/consume call. Composite processors see these for each child. */
typedef enum sluice_status {
  SLUICE_OK = 0,
  SLUICE_ERR_TIMEOUT = 1,
  SLUICE_ERR_RATE_LIMITED = 2,
  SLUICE_ERR_SERVER = 3,
  SLUICE_ERR_BAD_RESPONSE = 4,
  SLUICE_ERR_REJECTED = 5,  /* the event itself is unacceptable: do not retry elsewhere */
  SLUICE_ERR_AUTH = 6,
  SLUICE_ERR_BAD_REQUEST = 7,
  SLUICE_ERR_QUOTA = 8,
  SLUICE_ERR_INTERNAL = 9,
  SLUICE_ERR_CANCELLED = 10
} sluice_status;

typedef struct sluice_outcome {
  sluice_status status;
  const char* message;    /* may be NULL; copied by the host before done() returns */
  double cost_usd;        /* cost the call incurred, 0 if none */
  int64_t retry_after_ns; /* for RATE_LIMITED: the server's hint, 0 if none */
  /* ABI 1.2: usage, so composites, limits and reports count tokens without parsing events. A
   * host reads these only from a plugin whose descriptor says abi_minor >= 2. */
  int64_t input_tokens;   /* 0 if none */
  int64_t output_tokens;  /* 0 if none */
  const char* model;      /* the model that answered; NULL if none; copied like message */
} sluice_outcome;

/* One in-flight event handed to a processor or sink. The plugin may call emit any number of
 * times and must then call done exactly once (from any thread). Emitting the very pointer it
 * received as `event` forwards the original bytes without a copy. */
typedef struct sluice_call sluice_call;
struct sluice_call {
  const uint8_t* event;
  size_t event_size;
  void* host_data;
  /* output: NULL or "" for the default output, else a named output ("errors", "canary"). */
  void (*emit)(sluice_call* call, const char* output, const uint8_t* data, size_t size);
  void (*done)(sluice_call* call, const sluice_outcome* outcome);
  /* ABI 1.2 (read only when the host's abi_minor >= 2). The absolute CLOCK_MONOTONIC time by
   * which the caller wants the outcome, 0 = none: a plugin doing I/O uses the smaller of its own
   * timeout and the time left. */
  int64_t deadline_ns;
  /* ABI 1.2: registers fn, which the host calls exactly once, from any thread: with
   * cancelled = 1 when the caller abandons the call (a composite cancelled it or its deadline
   * passed: stop the work, e.g. abort the HTTP request, and still call done, whose outcome is
   * then ignored), else with cancelled = 0 once it never will be (perhaps at once), so user
   * data can be freed. fn may run while done() runs on another thread: it must touch only data
   * that outlives the call. Register at most once per call, before done(). */
  void (*on_cancel)(sluice_call* call, void (*fn)(void* user, int cancelled), void* user);
};

/* Completion of a child processor call made through sluice_host.child_process. */
typedef struct sluice_child_result {
  const sluice_outcome* outcome;
  int64_t latency_ns;
  /* Events the child emitted, in order, with their output names. Valid during the callback. */
  size_t emitted_count;
  const uint8_t* const* emitted_data;
  const size_t* emitted_size;
  const char* const* emitted_output;
} sluice_child_result;

typedef void (*sluice_child_callback)(void* user, const sluice_child_result* result);

/* ABI 1.2: node commands. The answer to one command call: status 0 with a JSON text, or
 * non-zero with a message a user can act on (the admin endpoint answers 400 with it). */
typedef void (*sluice_command_reply)(void* reply_ctx, int status, const char* text, size_t len);
/* Runs one command call on the node's stage thread: json_in is the request's JSON text ("{}"
 * when it sent none). Calls reply exactly once, now or later, from any thread. */
typedef void (*sluice_command_fn)(void* user, const char* json_in, size_t len,
                                  sluice_command_reply reply, void* reply_ctx);

typedef enum sluice_log_level {
  SLUICE_LOG_TRACE = 0,
  SLUICE_LOG_DEBUG = 1,
  SLUICE_LOG_INFO = 2,
  SLUICE_LOG_WARN = 3,
  SLUICE_LOG_ERROR = 4
} sluice_log_level;

/* ABI 1.2: one write of a state_commit. value NULL erases the key; otherwise value_size bytes
 * (any bytes, not only text) become the key's value. */
typedef struct sluice_state_write {
  const char* key;
  const uint8_t* value;
  size_t value_size;
} sluice_state_write;

/* ABI 1.2: a setting change carried by a state_commit; value_json is a JSON text. */
typedef struct sluice_setting_write {
  const char* name;
  const char* value_json;
} sluice_setting_write;

/* Services the host gives every plugin instance. All functions are thread-safe unless noted. */
typedef struct sluice_host {
  uint32_t abi_major;
  uint32_t abi_minor;
  void* ctx;
  const char* pipeline_name;
  const char* node_name;
  const char* state_dir;

  void (*log)(void* ctx, sluice_log_level level, const char* msg, size_t len);

  /* Runtime settings ([settings] in the pipeline). Values are JSON texts. get returns the
   * length written (or needed, if larger than cap), or -1 when the setting does not exist. */
  uint64_t (*settings_version)(void* ctx);
  int64_t (*setting_get)(void* ctx, const char* name, char* buf, size_t cap);
  int (*setting_set)(void* ctx, const char* name, const char* value_json);

  /* Metrics: name must be a Prometheus name without the sluice_ prefix; labels is a
   * pre-rendered, comma-separated label list (k="v",...) or NULL. The node's own labels are
   * added by the host. */
  void (*counter_add)(void* ctx, const char* name, const char* labels, double value);
  void (*gauge_set)(void* ctx, const char* name, const char* labels, double value);
  void (*histogram_observe)(void* ctx, const char* name, const char* labels, double value);

  /* Child processors of a composite (options of type PROCESSOR / PROCESSOR_LIST). */
  size_t (*child_count)(void* ctx);
  const char* (*child_name)(void* ctx, size_t index);
  /* Runs child `index` on a copy of the event; cb runs on the caller's stage thread. */
  void (*child_process)(void* ctx, size_t index, const uint8_t* event, size_t size,
                        sluice_child_callback cb, void* user);

  /* ABI 1.2: per-node state, kept by the host for this node (its pipeline and node name) in the
   * pipeline's state database, so it survives restarts (docs/design/node-state.md). Read these
   * only when abi_minor >= 2. Both may block briefly on the database; call them off hot paths.
   *
   * state_get copies the key's value into buf and returns its length (or the length needed, if
   * larger than cap); -1 when the key has no value; -2 when the state cannot be read (the host
   * logs why). */
  int64_t (*state_get)(void* ctx, const char* key, uint8_t* buf, size_t cap);
  /* Writes every entry of `writes` and applies every setting change of `settings` in ONE
   * atomic step: after a crash either all of it is visible or none. Each setting is checked as
   * a setting change through setting_set is (it must exist, and keep its type); one refused
   * change, or a failed write, leaves everything unchanged. Returns 0, or non-zero with a
   * message a user can act on in err (NUL-terminated, truncated to err_cap; err may be NULL). */
  int (*state_commit)(void* ctx, const sluice_state_write* writes, size_t write_count,
                      const sluice_setting_write* settings, size_t setting_count, char* err,
                      size_t err_cap);

  /* ABI 1.2: timers on the node's own stage thread (processors and sinks, while the pipeline
   * runs). timer_start calls fn(user, 0) once, on the stage thread, after delay_ns; or
   * fn(user, 1) (any thread, not the callback: just free user) when the timer is cancelled or
   * the node stops first. Returns the timer's id (never 0), or 0 when the node cannot have
   * timers (a source, or `sluice validate`): fn is then never called. Thread-safe. */
  uint64_t (*timer_start)(void* ctx, int64_t delay_ns, void (*fn)(void* user, int cancelled),
                          void* user);
  /* Returns 1 when the timer was pending (fn(user, 1) has run), 0 when it already fired, was
   * cancelled or never existed. */
  int (*timer_cancel)(void* ctx, uint64_t id);

  /* ABI 1.2: child_process with an absolute CLOCK_MONOTONIC deadline (0 = none), which the
   * child sees as its call's deadline_ns. The host enforces it: a child without an outcome by
   * then is cancelled and cb gets SLUICE_ERR_TIMEOUT (a deadline already past fails at once,
   * without starting the child). Returns the call's id for child_cancel (never 0). Call on the
   * stage thread (process() or a callback); cb runs there, exactly once, never inside
   * child_start. */
  uint64_t (*child_start)(void* ctx, size_t index, const uint8_t* event, size_t size,
                          int64_t deadline_ns, sluice_child_callback cb, void* user);
  /* Abandons a child call: its cancel handler runs (see sluice_call.on_cancel) and cb gets
   * SLUICE_ERR_CANCELLED, unless the child's outcome came first (then cb gets that, and this is
   * a no-op). Stage thread only. */
  void (*child_cancel)(void* ctx, uint64_t call_id);

  /* ABI 1.2: registers a command of this node, served by each process's admin endpoint as
   * POST /nodes/NODE/NAME (and `sluice ctl node NODE NAME [JSON]`). Register in create() or
   * start(); user must stay valid until command_unregister or destroy. Returns 0, or non-zero
   * when the name is taken or not [a-z0-9_]+. */
  int (*command_register)(void* ctx, const char* name, const char* description,
                          sluice_command_fn fn, void* user);
  /* Removes a command (a call already running still gets its reply). */
  void (*command_unregister)(void* ctx, const char* name);

  /* ABI 1.2: sends an event the node produced on its own, not in answer to a call (an alert
   * from a timer, a rollout's checkpoint), to one of its outputs (NULL or "" = the default).
   * Stage thread only (a timer or command callback, or process()); top-level processors and
   * sinks. Returns 0, or -1 when the node cannot (a composite's child, a source, another
   * thread, `sluice validate`). The host copies data before returning. */
  int (*emit)(void* ctx, const char* output, const uint8_t* data, size_t size);

  /* ABI 1.2: a metric series resolved once, for hot paths. name and labels as for counter_add;
   * kind is a sluice_metric_kind. metric_record then adds to a counter, sets a gauge or
   * observes a histogram value with one atomic update: no name formatting, no lock. Returns a
   * handle (never 0) valid while the node lives, or 0 when kind is unknown or metrics are off.
   * Both thread-safe; a handle of 0 is ignored by metric_record. */
  uint64_t (*metric_series)(void* ctx, int kind, const char* name, const char* labels);
  void (*metric_record)(void* ctx, uint64_t series, double value);
} sluice_host;

/* ABI 1.2: kinds of metric_series. */
typedef enum sluice_metric_kind {
  SLUICE_METRIC_COUNTER = 0,
  SLUICE_METRIC_GAUGE = 1,
  SLUICE_METRIC_HISTOGRAM = 2
} sluice_metric_kind;

/* What a source's run() gets: a blocking emit with backpressure and a stop flag. */
typedef struct sluice_source_ctx sluice_source_ctx;
struct sluice_source_ctx {
  void* host_data;
  /* Blocks while downstream is full. Returns 0, or -1 once the pipeline is stopping. */
  int (*emit)(sluice_source_ctx* ctx, const uint8_t* data, size_t size);
  int (*stopping)(sluice_source_ctx* ctx);
  /* Sleeps up to ns nanoseconds; returns early (non-zero) when stopping. */
  int (*sleep_ns)(sluice_source_ctx* ctx, int64_t ns);
};

typedef struct sluice_plugin_descriptor {
  uint32_t abi_major;
  uint32_t abi_minor;
  sluice_kind kind;
  const char* name;
  const char* version;
  const char* description;
  const sluice_option_spec* options;
  size_t option_count;
  /* Named outputs besides the default one ("unmatched"); route-like plugins may also emit to
   * outputs named by their options. NULL-terminated list, or NULL. */
  const char* const* outputs;

  /* config_json: the node's validated options with defaults applied. Returns NULL and fills
   * err on failure. Must not start I/O: `sluice validate` creates instances too (and never
   * calls start); begin work in start(). */
  void* (*create)(const sluice_host* host, const char* config_json, sluice_error* err);
  void (*destroy)(void* self);

  /* Sources: runs until finished (returns 0) or failed (returns non-zero, err filled). */
  int (*run)(void* self, sluice_source_ctx* ctx, sluice_error* err);
  /* Processors and sinks. */
  void (*process)(void* self, sluice_call* call);
  /* Sinks: called once when the input is drained, before destroy; on a stop with calls still
   * in flight, called then instead: end every wait (retries) and complete those calls. */
  void (*flush)(void* self);

  /* ABI 1.1. All kinds: called once per instance when the pipeline starts running, after every
   * node of the process was created and before the first run/process call (a composite's
   * children are started before it). `sluice validate` creates and destroys instances without
   * calling it, so this is where polling, connections and timers begin. Called on a runtime
   * thread, not the stage thread. Returns 0, or non-zero with err filled: the run then fails
   * naming the node, before any event flows, and instances are destroyed as usual. May be NULL.
   * Hosts read it only when abi_minor >= 1. */
  int (*start)(void* self, sluice_error* err);

  /* ABI 1.2: bounds of numeric options (see sluice_option_bounds); NULL / 0 = none. Hosts read
   * them only when abi_minor >= 2. */
  const sluice_option_bounds* option_bounds;
  size_t option_bounds_count;
} sluice_plugin_descriptor;

typedef const sluice_plugin_descriptor* (*sluice_entry_point_fn)(void);

#ifdef __cplusplus
}
#endif

#endif /* SLUICE_ABI_H */
