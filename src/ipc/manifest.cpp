#include "molt/ipc/manifest.hpp"

#include <fstream>
#include <set>
#include <sstream>

#include "molt/codec/json.hpp"

namespace molt::ipc {

const ExportSpec* Manifest::find(std::string_view name) const noexcept {
  for (const auto& e : exports)
    if (e.name == name) return &e;
  return nullptr;
}

namespace {
struct RawExport {
  std::string name;
  std::string codec_in;
  std::string codec_out;
};
BOOST_DESCRIBE_STRUCT(RawExport, (), (name, codec_in, codec_out))

struct RawManifest {
  std::string abi_version;
  std::vector<RawExport> exports;
};
BOOST_DESCRIBE_STRUCT(RawManifest, (), (abi_version, exports))

Codec codec_of(const RawExport& e, const std::string& field, const std::string& value) {
  auto codec = parse_codec(value);
  if (!codec)
    throw core::InvalidInput("manifest: export '" + e.name + "' has unknown " + field + " '" +
                             value + "' (expected msgpack, json, raw or arrow_ipc)");
  return *codec;
}
}  // namespace

Manifest parse_manifest(std::string_view json_text) {
  RawManifest raw;
  try {
    codec::from_json_value(codec::parse_json(json_text), raw, {nullptr, "manifest", 0});
  } catch (const core::Error& e) {
    throw core::InvalidInput(std::string("manifest: ") + e.what());
  }
  if (raw.abi_version != kAbiVersion)
    throw core::InvalidInput("manifest: abi_version '" + raw.abi_version +
                             "' is not supported (expected '" + std::string(kAbiVersion) + "')");
  Manifest manifest;
  manifest.abi_version = raw.abi_version;
  std::set<std::string> seen;
  for (const auto& e : raw.exports) {
    if (e.name.empty()) throw core::InvalidInput("manifest: an export has an empty name");
    if (e.name.starts_with("__"))
      throw core::InvalidInput("manifest: export '" + e.name +
                               "' starts with '__', which is reserved for control entries");
    if (!seen.insert(e.name).second)
      throw core::InvalidInput("manifest: export '" + e.name + "' is listed twice");
    manifest.exports.push_back(
        {e.name, codec_of(e, "codec_in", e.codec_in), codec_of(e, "codec_out", e.codec_out)});
  }
  return manifest;
}

Manifest load_manifest_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw core::InvalidInput("manifest: cannot read '" + path + "'");
  std::ostringstream text;
  text << in.rdbuf();
  try {
    return parse_manifest(text.str());
  } catch (const core::Error& e) {
    throw core::InvalidInput(path + ": " + e.what());
  }
}

std::string to_json(const Manifest& manifest) {
  std::string out = "{\"abi_version\":";
  codec::write_json_string(out, manifest.abi_version);
  out += ",\"exports\":[";
  bool first = true;
  for (const auto& e : manifest.exports) {
    if (!first) out += ',';
    first = false;
    out += "\n  {\"name\":";
    codec::write_json_string(out, e.name);
    out += ",\"codec_in\":";
    codec::write_json_string(out, to_string(e.codec_in));
    out += ",\"codec_out\":";
    codec::write_json_string(out, to_string(e.codec_out));
    out += '}';
  }
  out += "\n]}\n";
  return out;
}

}  // namespace molt::ipc
