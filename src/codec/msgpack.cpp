#include "molt/codec/msgpack.hpp"

#include <boost/json/value.hpp>
#include <cstring>

namespace molt::codec {

void pack_json_value(Packer& p, const boost::json::value& value) {
  switch (value.kind()) {
    case boost::json::kind::null:
      p.pack_nil();
      break;
    case boost::json::kind::bool_:
      value.get_bool() ? p.pack_true() : p.pack_false();
      break;
    case boost::json::kind::int64:
      p.pack_int64(value.get_int64());
      break;
    case boost::json::kind::uint64:
      p.pack_uint64(value.get_uint64());
      break;
    case boost::json::kind::double_:
      pack_float64(p, value.get_double());
      break;
    case boost::json::kind::string: {
      const auto& s = value.get_string();
      pack(p, std::string_view(s.data(), s.size()));
      break;
    }
    case boost::json::kind::array:
      p.pack_array(static_cast<std::uint32_t>(value.get_array().size()));
      for (const auto& v : value.get_array()) pack_json_value(p, v);
      break;
    case boost::json::kind::object:
      p.pack_map(static_cast<std::uint32_t>(value.get_object().size()));
      for (const auto& kv : value.get_object()) {
        pack(p, std::string_view(kv.key()));
        pack_json_value(p, kv.value());
      }
      break;
  }
}

void pack_float64(Packer& p, double value) {
  std::uint64_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  char bytes[9];
  bytes[0] = static_cast<char>(0xcb);
  for (int i = 0; i < 8; ++i) bytes[1 + i] = static_cast<char>(bits >> (56 - 8 * i));
  // The packer has no raw write; a bin body is appended verbatim, here a whole float64.
  p.pack_bin_body(bytes, sizeof bytes);
}

void msgpack_to_json_value(const msgpack::object& o, boost::json::value& out,
                           const PathSegment& at) {
  switch (o.type) {
    case msgpack::type::NIL:
      out = nullptr;
      break;
    case msgpack::type::BOOLEAN:
      out = o.via.boolean;
      break;
    case msgpack::type::POSITIVE_INTEGER:
      out = o.via.u64;
      break;
    case msgpack::type::NEGATIVE_INTEGER:
      out = o.via.i64;
      break;
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64:
      out = o.via.f64;
      break;
    case msgpack::type::STR:
    case msgpack::type::BIN:
      out = boost::json::string(detail::msgpack_string(o));
      break;
    case msgpack::type::ARRAY: {
      boost::json::array arr;
      arr.resize(o.via.array.size);
      for (std::uint32_t i = 0; i < o.via.array.size; ++i)
        msgpack_to_json_value(o.via.array.ptr[i], arr[i], at.element(i));
      out = std::move(arr);
      break;
    }
    case msgpack::type::MAP: {
      boost::json::object obj;
      for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
        const auto& kv = o.via.map.ptr[i];
        const std::string_view key = detail::map_key(kv.key, at);
        msgpack_to_json_value(kv.val, obj[key], at.field(key));
      }
      out = std::move(obj);
      break;
    }
    case msgpack::type::EXT:
      throw DecodeError(at, "a JSON-compatible value", "ext");
  }
}

std::string_view detail::map_key(const msgpack::object& key, const PathSegment& at) {
  if (key.type != msgpack::type::STR)
    throw DecodeError(at, "object with string keys", "a " + std::string(msgpack_kind(key)) + " key");
  return msgpack_string(key);
}

std::string_view msgpack_kind(const msgpack::object& o) noexcept {
  switch (o.type) {
    case msgpack::type::NIL:
      return "null";
    case msgpack::type::BOOLEAN:
      return "boolean";
    case msgpack::type::POSITIVE_INTEGER:
    case msgpack::type::NEGATIVE_INTEGER:
      return "integer";
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64:
      return "number";
    case msgpack::type::STR:
      return "string";
    case msgpack::type::BIN:
      return "bytes";
    case msgpack::type::ARRAY:
      return "array";
    case msgpack::type::MAP:
      return "object";
    case msgpack::type::EXT:
      return "ext";
  }
  return "value";
}

namespace {
// Strings and binaries point into the caller's bytes instead of being copied into the zone.
bool reference_in_place(msgpack::type::object_type type, std::size_t, void*) {
  return type == msgpack::type::STR || type == msgpack::type::BIN;
}
}  // namespace

msgpack::object unpack_msgpack(std::string_view bytes, msgpack::zone& zone) {
  // Every element takes at least one byte, so no honest count exceeds the input's size: this
  // stops a five-byte header from asking for gigabytes of element slots.
  const std::size_t n = bytes.size();
  const msgpack::unpack_limit limit(n, n / 2, n, n, n, 64);
  std::size_t offset = 0;
  bool referenced = false;
  msgpack::object object;
  try {
    object = msgpack::unpack(zone, bytes.data(), n, offset, referenced, reference_in_place, nullptr,
                             limit);
  } catch (const msgpack::insufficient_bytes&) {
    throw core::InvalidInput("invalid MsgPack: truncated value");
  } catch (const msgpack::depth_size_overflow&) {
    throw core::InvalidInput("invalid MsgPack: nested deeper than 64 levels");
  } catch (const msgpack::size_overflow&) {
    throw core::InvalidInput("invalid MsgPack: a container claims more elements than it holds");
  } catch (const std::exception& e) {
    throw core::InvalidInput(std::string("invalid MsgPack: ") + e.what());
  }
  if (offset != n)
    throw core::InvalidInput("invalid MsgPack: " + std::to_string(n - offset) +
                             " unexpected bytes after the value");
  return object;
}

}  // namespace molt::codec
