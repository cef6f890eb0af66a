// Test plugin `test_old_minor`: a processor built against plugin ABI 1.0, whose descriptor ends
// after `flush` (no `start` field). The loader must accept it and never read past its end; the
// struct below is the 1.0 layout, so under AddressSanitizer such a read is reported.
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

int g_instance = 0;

void* create(const sluice_host*, const char*, sluice_error*) { return &g_instance; }
void destroy(void*) {}
// Forwards every event unchanged.
void process(void*, sluice_call* call) {
  call->emit(call, nullptr, call->event, call->event_size);
  const sluice_outcome ok{SLUICE_OK, nullptr, 0, 0};
  call->done(call, &ok);
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
