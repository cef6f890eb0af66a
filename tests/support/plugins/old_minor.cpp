// Test plugin `test_old_minor`: a processor built against plugin ABI 1.0, whose descriptor ends
// after `flush` (no `start` field). The loader must accept it and never read past its end; the
// struct below is the 1.0 layout, so under AddressSanitizer such a read is reported. It also
// sees the host through the 1.0 layout of sluice_host (which newer minors extend at its end):
// create() logs and reads the settings version through it, so a member that moved would crash.
// Its outcomes have the 1.0 layout too (no usage members), also as a composite's child.
#include "sluice/abi.h"

namespace {

struct DescriptorV1_0 {
  uint32_t abi_major;
  uint32_t abi_minor;
  sluice_kind kind;
  const char* name;
  const char* version;
  const char* description;
  const sluice_option_spec* options;
  size_t option_count;
  const char* const* outputs;
  void* (*create)(const sluice_host* host, const char* config_json, sluice_error* err);
  void (*destroy)(void* self);
  int (*run)(void* self, sluice_source_ctx* ctx, sluice_error* err);
  void (*process)(void* self, sluice_call* call);
  void (*flush)(void* self);
};

struct HostV1_0 {
  uint32_t abi_major;
  uint32_t abi_minor;
  void* ctx;
  const char* pipeline_name;
  const char* node_name;
  const char* state_dir;
  void (*log)(void* ctx, sluice_log_level level, const char* msg, size_t len);
  uint64_t (*settings_version)(void* ctx);
  int64_t (*setting_get)(void* ctx, const char* name, char* buf, size_t cap);
  int (*setting_set)(void* ctx, const char* name, const char* value_json);
  void (*counter_add)(void* ctx, const char* name, const char* labels, double value);
  void (*gauge_set)(void* ctx, const char* name, const char* labels, double value);
  void (*histogram_observe)(void* ctx, const char* name, const char* labels, double value);
  size_t (*child_count)(void* ctx);
  const char* (*child_name)(void* ctx, size_t index);
  void (*child_process)(void* ctx, size_t index, const uint8_t* event, size_t size,
                        sluice_child_callback cb, void* user);
};

// The 1.0 layout of sluice_outcome (1.2 added usage at its end): the host must not read past it.
struct OutcomeV1_0 {
  sluice_status status;
  const char* message;
  double cost_usd;
  int64_t retry_after_ns;
};

int g_instance = 0;

void* create(const sluice_host* host, const char*, sluice_error*) {
  const auto* h = reinterpret_cast<const HostV1_0*>(host);
  static const char kMessage[] = "test_old_minor: created by a host of a newer ABI minor";
  h->log(h->ctx, SLUICE_LOG_INFO, kMessage, sizeof(kMessage) - 1);
  h->settings_version(h->ctx);
  h->counter_add(h->ctx, "old_minor_created_total", nullptr, 1);
  return &g_instance;
}
void destroy(void*) {}
// Forwards every event unchanged.
void process(void*, sluice_call* call) {
  call->emit(call, nullptr, call->event, call->event_size);
  const OutcomeV1_0 ok{SLUICE_OK, nullptr, 0, 0};
  call->done(call, reinterpret_cast<const sluice_outcome*>(&ok));
}

const DescriptorV1_0 kDescriptor = {
    .abi_major = 1,
    .abi_minor = 0,
    .kind = SLUICE_KIND_PROCESSOR,
    .name = "test_old_minor",
    .version = "1.0.0",
    .description = "Test double: a plugin of ABI 1.0 (forwards events)",
    .options = nullptr,
    .option_count = 0,
    .outputs = nullptr,
    .create = &create,
    .destroy = &destroy,
    .run = nullptr,
    .process = &process,
    .flush = nullptr};

}  // namespace

extern "C" SLUICE_EXPORT const sluice_plugin_descriptor* SLUICE_ENTRY_POINT(void) {
  // The host reads it as its own, longer struct, and only the members of ABI 1.0.
  return reinterpret_cast<const sluice_plugin_descriptor*>(&kDescriptor);
}
