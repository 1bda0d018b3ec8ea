// fuzz_typed_decode: the typed codecs (molt/codec/msgpack.hpp, json.hpp) on hostile bytes,
// through a described struct that uses every shape they support.
//
// Properties, for the same input read as MsgPack and as JSON:
//  - decoding either succeeds or throws core::Error; anything else escaping is a crash;
//  - whatever decodes can be written back to both codecs;
//  - MsgPack re-encoding is stable: encode, decode, encode again gives the same bytes;
//  - a value read from JSON survives a trip through MsgPack with the same JSON text.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "fuzz_types.hpp"
#include "molt/codec/json.hpp"
#include "molt/codec/msgpack.hpp"

namespace {

using namespace molt;
using fuzz_types::Record;

template <class Decode>
std::optional<Record> try_decode(Decode decode) {
  try {
    return decode();
  } catch (const core::Error&) {
    return std::nullopt;  // refused with a status: the expected outcome for most inputs
  }
}

// Returns the MsgPack bytes of `value` after checking that they decode and re-encode to
// themselves.
std::string checked_msgpack(const Record& value) {
  const std::string once = codec::to_msgpack(value);
  const auto back = try_decode([&] { return codec::decode_msgpack<Record>(once); });
  FUZZ_CHECK(back.has_value());
  FUZZ_CHECK(codec::to_msgpack(*back) == once);
  return once;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);

  if (const auto from_msgpack = try_decode([&] { return codec::decode_msgpack<Record>(bytes); })) {
    checked_msgpack(*from_msgpack);
    // Not re-parsed: doubles may be NaN or infinite, which JSON cannot carry. Writing must
    // still work.
    (void)codec::to_json(*from_msgpack);
  }

  if (const auto from_json = try_decode([&] { return codec::decode_json<Record>(bytes); })) {
    const std::string json_text = codec::to_json(*from_json);
    const std::string packed = checked_msgpack(*from_json);
    const Record via_msgpack = codec::decode_msgpack<Record>(packed);
    FUZZ_CHECK(codec::to_json(via_msgpack) == json_text);
  }
  return 0;
}
