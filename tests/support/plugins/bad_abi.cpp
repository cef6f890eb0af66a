// Test plugin with a future ABI major version: the loader must refuse it, naming both versions.
#include "sluice/abi.h"

namespace {
void* create(const sluice_host*, const char*, sluice_error*) { return nullptr; }
void destroy(void*) {}
void process(void*, sluice_call*) {}
const sluice_plugin_descriptor kDescriptor = {
    .abi_major = SLUICE_ABI_MAJOR + 1, .abi_minor = 0, .kind = SLUICE_KIND_PROCESSOR,
    .name = "from_the_future", .version = "9.0.0", .description = "ABI mismatch test",
    .options = nullptr, .option_count = 0, .outputs = nullptr, .create = &create,
    .destroy = &destroy, .run = nullptr, .process = &process, .flush = nullptr, .start = nullptr,
    .option_bounds = nullptr, .option_bounds_count = 0};
}  // namespace

extern "C" SLUICE_EXPORT const sluice_plugin_descriptor* SLUICE_ENTRY_POINT(void) {
  return &kDescriptor;
}
