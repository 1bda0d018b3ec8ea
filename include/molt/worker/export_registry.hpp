#pragma once
// The exports a worker binary implements, by name. Typed exports take and return described
// structs (decoded from / encoded to their codecs by molt::codec); raw exports see bytes.
//
//   registry.add<ListItemsRequest, ListItemsResponse>(
//       "list_items", ipc::Codec::MsgPack, ipc::Codec::Json, &list_items);

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>

#include "molt/codec/json.hpp"
#include "molt/codec/msgpack.hpp"
#include "molt/ipc/manifest.hpp"
#include "molt/worker/export_context.hpp"

namespace molt::worker {

struct Export {
  ipc::ExportSpec spec;
  // Turns the request payload into the response payload, or throws (core::Error for a
  // status, anything else for InternalError).
  std::function<std::string(std::string_view payload, ExportContext& ctx)> invoke;
};

class ExportRegistry {
 public:
  using RawHandler = std::function<std::string(std::string_view payload, ExportContext& ctx)>;

  // Registers a bytes-in, bytes-out export. Throws std::invalid_argument on a bad or taken name.
  void add_raw(std::string name, ipc::Codec codec_in, ipc::Codec codec_out, RawHandler handler);

  // Registers a typed export: `handler(const In&, ExportContext&) -> Out`.
  template <class In, class Out, class Handler>
  void add(std::string name, ipc::Codec codec_in, ipc::Codec codec_out, Handler handler) {
    require_typed_codec(name, codec_in);
    require_typed_codec(name, codec_out);
    add_raw(std::move(name), codec_in, codec_out,
            [codec_in, codec_out, handler = std::move(handler)](std::string_view payload,
                                                                ExportContext& ctx) {
              const auto started = std::chrono::steady_clock::now();
              // A payload lives for its call: its JSON tree can be one arena.
              In input = codec_in == ipc::Codec::Json
                             ? codec::decode_json<In>(payload, codec::kRootPath.key,
                                                      codec::document_storage(payload.size()))
                             : codec::decode_msgpack<In>(payload);
              ctx.decode_time = std::chrono::steady_clock::now() - started;
              const Out output = handler(static_cast<const In&>(input), ctx);
              // Start at the size this thread's last answer needed: no regrowing on the way.
              thread_local std::size_t size_hint = 256;
              std::string out;
              out.reserve(size_hint);
              if (codec_out == ipc::Codec::Json)
                codec::write_json(out, output);
              else
                codec::write_msgpack(out, output);
              size_hint = std::min<std::size_t>(out.size() + out.size() / 8, 1u << 20);
              return out;
            });
  }

  const Export* find(std::string_view name) const;
  const std::map<std::string, Export, std::less<>>& all() const noexcept { return exports_; }

  // The manifest of everything registered (what --print-exports writes).
  ipc::Manifest manifest() const;

 private:
  static void require_typed_codec(const std::string& name, ipc::Codec codec);
  std::map<std::string, Export, std::less<>> exports_;
};

// The exports a worker answers: the registry limited to a manifest's allowlist. Every manifest
// entry must be implemented with the same codecs; otherwise this throws core::InvalidInput with
// a message meant for the operator.
class ExportTable {
 public:
  static ExportTable all_of(const ExportRegistry& registry);
  static ExportTable from_manifest(const ExportRegistry& registry, const ipc::Manifest& manifest);

  const Export* find(std::string_view name) const;
  std::size_t size() const noexcept { return exports_.size(); }
  const std::map<std::string, const Export*, std::less<>>& all() const noexcept { return exports_; }

 private:
  std::map<std::string, const Export*, std::less<>> exports_;
};

}  // namespace molt::worker
