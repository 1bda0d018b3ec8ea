// health (DESIGN.md §5): {"ok": true, "version", "uptime_s", "pid"}. The input is ignored.

#include <unistd.h>

#include <chrono>

#include "molt/codec/json.hpp"
#include "molt/worker/export_registry.hpp"

void molt_register_health(molt::worker::ExportRegistry& registry) {
  const auto started = std::chrono::steady_clock::now();
  registry.add_raw(
      "health", molt::ipc::Codec::Json, molt::ipc::Codec::Json,
      [started](std::string_view, molt::worker::ExportContext&) {
        const double uptime =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        std::string out = "{\"ok\":true,\"version\":\"0.1.0\",\"uptime_s\":";
        molt::codec::append_python_float(out, std::round(uptime * 1000) / 1000);
        out += ",\"pid\":";
        molt::codec::append_integer(out, static_cast<std::int64_t>(::getpid()));
        out += '}';
        return out;
      });
}
