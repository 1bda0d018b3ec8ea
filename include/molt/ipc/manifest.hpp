#pragma once
// The exports manifest (DESIGN.md §4): the allowlist of entries a worker answers, with the
// codec of each entry's input and output.
//   {"abi_version": "0.1", "exports": [{"name": "list_items", "codec_in": "msgpack",
//                                       "codec_out": "json"}]}

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "molt/ipc/envelope.hpp"

namespace molt::ipc {

inline constexpr std::string_view kAbiVersion = "0.1";

struct ExportSpec {
  std::string name;
  Codec codec_in = Codec::MsgPack;
  Codec codec_out = Codec::MsgPack;
};

struct Manifest {
  std::string abi_version{kAbiVersion};
  std::vector<ExportSpec> exports;

  const ExportSpec* find(std::string_view name) const noexcept;
};

// Parses and validates a manifest: names non-empty, unique, not starting with "__"; codecs
// known; abi_version "0.1". Throws core::InvalidInput naming the offending export.
Manifest parse_manifest(std::string_view json_text);
Manifest load_manifest_file(const std::string& path);
std::string to_json(const Manifest& manifest);

}  // namespace molt::ipc
