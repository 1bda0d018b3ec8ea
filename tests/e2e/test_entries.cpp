// Exports used only by the end-to-end tests: each one exercises a failure path of the worker.

#include <charconv>
#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>

#include "molt/worker/export_registry.hpp"

namespace {
using molt::ipc::Codec;
using molt::worker::ExportContext;

std::int64_t millis_from(std::string_view payload) {
  std::int64_t ms = 0;
  std::from_chars(payload.data(), payload.data() + payload.size(), ms);
  return ms;
}
}  // namespace

void molt_register_test_entries(molt::worker::ExportRegistry& registry) {
  registry.add_raw("echo", Codec::Raw, Codec::Raw,
                   [](std::string_view payload, ExportContext&) { return std::string(payload); });
  // Throws something that is not a molt error, with text that must not reach the caller.
  registry.add_raw(
      "boom", Codec::Raw, Codec::Raw, [](std::string_view, ExportContext&) -> std::string {
        throw std::runtime_error("secret internals: connection string postgres://admin:hunter2@db");
      });
  // Sleeps for the payload's milliseconds, stopping early when cancelled.
  // Both say on stderr when they start, so tests can act on a request known to be running.
  registry.add_raw("sleep", Codec::Raw, Codec::Raw,
                   [](std::string_view payload, ExportContext& ctx) {
                     std::fprintf(stderr, "sleep: started\n");
                     ctx.sleep_for(std::chrono::milliseconds(millis_from(payload)));
                     return std::string("slept");
                   });
  // Busy for the payload's milliseconds and never checks for cancellation.
  registry.add_raw("spin", Codec::Raw, Codec::Raw, [](std::string_view payload, ExportContext&) {
    std::fprintf(stderr, "spin: started\n");
    const auto until =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(millis_from(payload));
    while (std::chrono::steady_clock::now() < until) {
    }
    return std::string("spun");
  });
}
