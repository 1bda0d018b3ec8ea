#pragma once
// The body of every worker binary's main(): flags and environment (DESIGN.md §4), the
// exports table, signals, the stdio loop and a clean shutdown. molt_add_worker() in CMake
// generates a main() that calls this with the binary's own registration functions.

#include <functional>

#include "molt/worker/export_registry.hpp"

namespace molt::worker {

using RegisterExports = std::function<void(ExportRegistry&)>;

int run_worker(int argc, char** argv, const RegisterExports& register_exports);

}  // namespace molt::worker
