#pragma once
// The fuzz targets' oracle: a property that fails is a finding, reported like a crash so that
// libFuzzer saves the input. (assert() would vanish in a build with NDEBUG.)

#include <cstdio>
#include <cstdlib>

namespace molt::fuzz {

[[noreturn]] inline void check_failed(const char* condition, const char* file, int line) {
  std::fprintf(stderr, "%s:%d: fuzz property failed: %s\n", file, line, condition);
  std::abort();
}

}  // namespace molt::fuzz

#define FUZZ_CHECK(condition) \
  ((condition) ? static_cast<void>(0) : ::molt::fuzz::check_failed(#condition, __FILE__, __LINE__))
