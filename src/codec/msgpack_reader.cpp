#include "molt/codec/msgpack_reader.hpp"

namespace molt::codec {

std::string_view MsgPackValue::kind_name() const noexcept {
  switch (kind) {
    case Kind::Missing:
      return "nothing";
    case Kind::Nil:
      return "null";
    case Kind::Bool:
      return "boolean";
    case Kind::UInt:
    case Kind::NegInt:
      return "integer";
    case Kind::Float:
      return "number";
    case Kind::Str:
      return "string";
    case Kind::Bin:
      return "bytes";
    case Kind::Array:
      return "array";
    case Kind::Map:
      return "object";
    case Kind::Ext:
      return "ext";
  }
  return "value";
}

void MsgPackReader::skip(std::uint64_t count, int depth) {
  if (depth > kMaxDepth) fail("nested deeper than 64 levels");
  MsgPackValue scratch;
  for (std::uint64_t i = 0; i < count; ++i) {
    read(scratch);
    skip_inside(scratch, depth);
  }
}

void MsgPackReader::expect_end() const {
  if (!at_end()) fail(std::to_string(left()) + " unexpected bytes after the value");
}

void MsgPackReader::fail(std::string_view what) const {
  std::string message(error_prefix_);
  message += ": ";
  message += what;
  throw core::InvalidInput(std::move(message));
}

}  // namespace molt::codec
