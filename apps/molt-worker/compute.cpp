// compute (DESIGN.md §5): {values, scale=1.0, offset=0.0} -> {count, sum, scaled}.

#include <string>

#include "contracts.hpp"
#include "molt/worker/export_registry.hpp"

void molt_register_compute(molt::worker::ExportRegistry& registry) {
  using namespace molt_worker;
  registry.add<ComputeRequest, ComputeResponse>(
      "compute", molt::ipc::Codec::MsgPack, molt::ipc::Codec::MsgPack,
      [](const ComputeRequest& req, molt::worker::ExportContext& ctx) {
        // Each scaled value is a float64 in the answer (9 bytes): an answer past the frame
        // limit is refused before it is computed and encoded (48 MiB of small integers would
        // have built a 430 MB answer, only to refuse it).
        constexpr std::size_t kBytesPerValue = 9;
        if (const std::size_t room = ctx.max_answer_bytes();
            room != 0 && req.values.size() > room / kBytesPerValue)
          throw molt::core::InvalidInput("values: " + std::to_string(req.values.size()) +
                                         " values make an answer over the " + std::to_string(room) +
                                         " bytes an answer may have (at most " +
                                         std::to_string(room / kBytesPerValue) + " values)");
        const double scale = req.scale.value_or(1.0);
        const double offset = req.offset.value_or(0.0);
        ComputeResponse out;
        out.count = static_cast<std::int64_t>(req.values.size());
        out.scaled.resize(req.values.size());
        for (std::size_t i = 0; i < req.values.size(); ++i) {
          if (i % 65536 == 0) ctx.check();  // large inputs stay cancellable
          out.sum += req.values[i];
          out.scaled[i] = req.values[i] * scale + offset;
        }
        return out;
      });
}
