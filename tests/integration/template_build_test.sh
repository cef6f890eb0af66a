#!/usr/bin/env bash
# Proves the plugin SDK works out of tree, as a third party would use it: installs the SDK
# component of a configured Sluice build into a temporary prefix, builds sdk/template against it
# with find_package(Sluice), runs the template's tests, checks the plugin exports the entry point
# and needs nothing from the sluice runtime, and installs the plugin.
#
#   template_build_test.sh <sluice build dir> <sluice source dir>
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 <sluice build dir> <sluice source dir>" >&2
  exit 2
fi
work=""
fail() {
  echo "template_build_test: FAIL: $*" >&2
  [[ -z "$work" ]] || echo "template_build_test: work directory kept at $work" >&2
  exit 1
}
step() { echo "== $*"; }

build_dir=$(cd "$1" && pwd) || fail "no build directory $1"
source_dir=$(cd "$2" && pwd) || fail "no source directory $2"
[[ -f "$build_dir/CMakeCache.txt" ]] || fail "$build_dir is not a configured CMake build directory"
[[ -f "$source_dir/sdk/template/CMakeLists.txt" ]] || fail "$source_dir has no sdk/template"
# The same compiler as the Sluice build, but none of its flags: the out-of-tree build is a plain
# one even when the main build is sanitized, as a plugin author's would be.
cxx=$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$build_dir/CMakeCache.txt")
[[ -n "$cxx" ]] || fail "$build_dir/CMakeCache.txt names no CMAKE_CXX_COMPILER"
unset CFLAGS CXXFLAGS LDFLAGS CMAKE_PREFIX_PATH

work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-template-test.XXXXXX")
prefix="$work/sdk"
template_build="$work/build"
plugin_prefix="$work/plugins"
entry_point=sluice_plugin_descriptor_v1
plugin_file=processor_uppercase.so

step "install the SDK component into $prefix"
# The generated event header is an install input. A built tree has it; otherwise build just that
# target, not the whole project.
if [[ ! -f "$build_dir/generated/sluice/event_generated.h" ]]; then
  cmake --build "$build_dir" --target sluice_event_schema >/dev/null ||
    fail "could not generate event_generated.h in $build_dir"
fi
cmake --install "$build_dir" --prefix "$prefix" --component sdk >/dev/null ||
  fail "cmake --install --component sdk failed"
for f in include/sluice/abi.h include/sluice/sdk.hpp include/sluice/event.hpp \
         include/sluice/testing.hpp include/sluice/event_generated.h \
         share/sluice/schemas/event.fbs; do
  [[ -f "$prefix/$f" ]] || fail "the SDK install lacks $f"
done
config=$(find "$prefix" -name SluiceConfig.cmake -print -quit)
[[ -n "$config" ]] || fail "the SDK install lacks SluiceConfig.cmake"
for f in SluiceConfigVersion.cmake SluicePlugin.cmake SluiceTargets.cmake; do
  [[ -f "$(dirname "$config")/$f" ]] || fail "the SDK install lacks $f next to SluiceConfig.cmake"
done

step "configure sdk/template out of tree against $prefix"
cmake -S "$source_dir/sdk/template" -B "$template_build" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_INSTALL_PREFIX="$plugin_prefix" >"$work/configure.log" 2>&1 ||
  { cat "$work/configure.log" >&2; fail "configuring the template failed"; }

step "build the template"
cmake --build "$template_build" -j2 >"$work/build.log" 2>&1 ||
  { cat "$work/build.log" >&2; fail "building the template failed"; }

step "run the template's tests"
ctest --test-dir "$template_build" --output-on-failure --no-tests=error ||
  fail "the template's tests failed"

step "check the plugin's exports"
so="$template_build/$plugin_file"
[[ -f "$so" ]] || fail "the template built no $plugin_file"
nm -D --defined-only "$so" | grep -Eq "^[0-9a-f]+ T $entry_point\$" ||
  fail "$plugin_file does not export $entry_point"
# A third-party plugin has only the SDK: any undefined sluice symbol would need the runtime.
undefined=$(nm -D --undefined-only "$so" | grep -i sluice || true)
[[ -z "$undefined" ]] || fail "$plugin_file needs symbols it cannot have: $undefined"

step "install the plugin"
cmake --install "$template_build" >/dev/null || fail "installing the template's plugin failed"
installed=$(find "$plugin_prefix" -name "$plugin_file" -print -quit)
[[ "$installed" == */sluice/plugins/$plugin_file ]] ||
  fail "$plugin_file was not installed under <prefix>/<libdir>/sluice/plugins (found: '$installed')"

rm -rf "$work"
echo "template_build_test: PASS"
