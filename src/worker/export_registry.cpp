#include "molt/worker/export_registry.hpp"

namespace molt::worker {

void ExportRegistry::add_raw(std::string name, ipc::Codec codec_in, ipc::Codec codec_out,
                             RawHandler handler) {
  if (name.empty()) throw std::invalid_argument("export name must not be empty");
  if (name.starts_with("__"))
    throw std::invalid_argument("export name '" + name + "' starts with '__' (reserved)");
  if (!handler) throw std::invalid_argument("export '" + name + "' has no handler");
  if (exports_.contains(name))
    throw std::invalid_argument("export '" + name + "' is registered twice");
  ipc::ExportSpec spec{name, codec_in, codec_out};
  exports_.emplace(std::move(name), Export{std::move(spec), std::move(handler)});
}

void ExportRegistry::require_typed_codec(const std::string& name, ipc::Codec codec) {
  if (codec != ipc::Codec::MsgPack && codec != ipc::Codec::Json)
    throw std::invalid_argument("typed export '" + name + "' needs codec msgpack or json, not " +
                                std::string(ipc::to_string(codec)));
}

const Export* ExportRegistry::find(std::string_view name) const {
  auto it = exports_.find(name);
  return it == exports_.end() ? nullptr : &it->second;
}

ipc::Manifest ExportRegistry::manifest() const {
  ipc::Manifest m;
  for (const auto& [name, e] : exports_) m.exports.push_back(e.spec);
  return m;
}

ExportTable ExportTable::all_of(const ExportRegistry& registry) {
  ExportTable table;
  for (const auto& [name, e] : registry.all()) table.exports_.emplace(name, &e);
  return table;
}

ExportTable ExportTable::from_manifest(const ExportRegistry& registry,
                                       const ipc::Manifest& manifest) {
  ExportTable table;
  for (const auto& spec : manifest.exports) {
    const Export* e = registry.find(spec.name);
    if (!e)
      throw core::InvalidInput("manifest lists export '" + spec.name +
                               "', which this worker does not implement");
    if (e->spec.codec_in != spec.codec_in || e->spec.codec_out != spec.codec_out)
      throw core::InvalidInput(
          "manifest export '" + spec.name +
          "' says codec_in=" + std::string(ipc::to_string(spec.codec_in)) +
          " codec_out=" + std::string(ipc::to_string(spec.codec_out)) +
          ", but this worker implements codec_in=" + std::string(ipc::to_string(e->spec.codec_in)) +
          " codec_out=" + std::string(ipc::to_string(e->spec.codec_out)));
    table.exports_.emplace(spec.name, e);
  }
  return table;
}

const Export* ExportTable::find(std::string_view name) const {
  auto it = exports_.find(name);
  return it == exports_.end() ? nullptr : it->second;
}

}  // namespace molt::worker
