// A shared object that is not a sluice plugin: it lacks the entry point.
extern "C" __attribute__((visibility("default"))) int not_a_plugin(void) { return 42; }
