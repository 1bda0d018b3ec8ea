#pragma once
// Typed MsgPack through msgpack-cxx: the same described types and the same path-naming
// errors as the JSON codec. Binary (bin) values decode into std::string as bytes.

#include <limits>
#include <msgpack.hpp>
#include <string>
#include <string_view>

#include "molt/codec/decode_error.hpp"
#include "molt/codec/traits.hpp"
#include "molt/codec/utf8.hpp"

namespace boost::json {
class value;
}

namespace molt::codec {

// Appends msgpack-cxx output to a std::string (msgpack::packer's buffer concept).
struct StringSink {
  std::string& out;
  void write(const char* data, std::size_t size) { out.append(data, size); }
};
using Packer = msgpack::packer<StringSink>;

void pack_json_value(Packer& packer, const boost::json::value& value);
// Always a MsgPack float64, as Python's msgpack writes floats. (msgpack-cxx 4.1's pack_double
// turns integral values into integers, so 6.0 would arrive in Python as int 6, and it converts
// 2^64 to uint64 on the way, which is undefined behaviour.)
void pack_float64(Packer& packer, double value);
// Converts any MsgPack value to JSON (bin as base64-free byte string; ext refused).
void msgpack_to_json_value(const msgpack::object& object, boost::json::value& out,
                           const PathSegment& at);

// What a MsgPack value is, in the words of a decode error.
std::string_view msgpack_kind(const msgpack::object& object) noexcept;

// Unpacks exactly one MsgPack value from `bytes` into `zone`. InvalidInput when the bytes are
// not one complete value (truncated, trailing bytes, nesting too deep, too large).
msgpack::object unpack_msgpack(std::string_view bytes, msgpack::zone& zone);

template <class T>
void pack(Packer& p, const T& value) {
  if constexpr (std::is_same_v<T, bool>) {
    value ? p.pack_true() : p.pack_false();
  } else if constexpr (traits::is_integer_v<T>) {
    if constexpr (std::is_signed_v<T>)
      p.pack_int64(value);
    else
      p.pack_uint64(value);
  } else if constexpr (std::is_floating_point_v<T>) {
    pack_float64(p, static_cast<double>(value));
  } else if constexpr (std::is_convertible_v<const T&, std::string_view>) {
    const std::string_view s = value;
    p.pack_str(static_cast<std::uint32_t>(s.size()));
    p.pack_str_body(s.data(), static_cast<std::uint32_t>(s.size()));
  } else if constexpr (std::is_same_v<T, boost::json::value>) {
    pack_json_value(p, value);
  } else if constexpr (traits::is_optional<T>::value) {
    if (value)
      pack(p, *value);
    else
      p.pack_nil();
  } else if constexpr (traits::is_vector<T>::value) {
    p.pack_array(static_cast<std::uint32_t>(value.size()));
    for (const auto& v : value) pack(p, v);
  } else if constexpr (traits::is_string_map<T>::value) {
    p.pack_map(static_cast<std::uint32_t>(value.size()));
    for (const auto& [k, v] : value) {
      pack(p, k);
      pack(p, v);
    }
  } else if constexpr (traits::is_described_enum_v<T>) {
    const char* name = boost::describe::enum_to_string(value, nullptr);
    if (name)
      pack(p, std::string_view(name));
    else
      p.pack_int64(static_cast<std::int64_t>(value));
  } else if constexpr (traits::is_described_struct_v<T>) {
    using Members = boost::describe::describe_members<T, boost::describe::mod_public |
                                                             boost::describe::mod_inherited>;
    p.pack_map(static_cast<std::uint32_t>(boost::mp11::mp_size<Members>::value));
    boost::mp11::mp_for_each<Members>([&](auto member) {
      pack(p, std::string_view(member.name));
      pack(p, value.*member.pointer);
    });
  } else {
    static_assert(sizeof(T) == 0, "molt::codec: this type has no MsgPack encoding; describe it");
  }
}

template <class T>
void write_msgpack(std::string& out, const T& value) {
  StringSink sink{out};
  Packer packer(sink);
  pack(packer, value);
}

template <class T>
std::string to_msgpack(const T& value) {
  std::string out;
  write_msgpack(out, value);
  return out;
}

namespace detail {
template <class T>
void from_msgpack_integer(const msgpack::object& o, T& out, const PathSegment& at) {
  using limits = std::numeric_limits<T>;
  if (o.type == msgpack::type::POSITIVE_INTEGER) {
    if (o.via.u64 > static_cast<std::uint64_t>(limits::max()))
      throw DecodeError(at, "integer in range", "out-of-range integer");
    out = static_cast<T>(o.via.u64);
  } else if (o.type == msgpack::type::NEGATIVE_INTEGER) {
    if constexpr (std::is_unsigned_v<T>) {
      throw DecodeError(at, "non-negative integer", "negative integer");
    } else {
      if (o.via.i64 < static_cast<std::int64_t>(limits::min()))
        throw DecodeError(at, "integer in range", "out-of-range integer");
      out = static_cast<T>(o.via.i64);
    }
  } else {
    throw DecodeError(at, "integer", msgpack_kind(o));
  }
}

inline std::string_view msgpack_string(const msgpack::object& o) {
  return o.type == msgpack::type::STR ? std::string_view(o.via.str.ptr, o.via.str.size)
                                      : std::string_view(o.via.bin.ptr, o.via.bin.size);
}

// A map key as text; JSON-shaped data only has string keys.
std::string_view map_key(const msgpack::object& key, const PathSegment& at);
}  // namespace detail

template <class T>
void from_msgpack_object(const msgpack::object& o, T& out, const PathSegment& at) {
  using msgpack::type::object_type;
  if constexpr (traits::is_optional<T>::value) {
    if (o.type == msgpack::type::NIL) {
      out.reset();
      return;
    }
    typename T::value_type inner{};
    from_msgpack_object(o, inner, at);
    out = std::move(inner);
  } else if constexpr (std::is_same_v<T, boost::json::value>) {
    msgpack_to_json_value(o, out, at);
  } else if constexpr (std::is_same_v<T, bool>) {
    if (o.type != msgpack::type::BOOLEAN) throw DecodeError(at, "boolean", msgpack_kind(o));
    out = o.via.boolean;
  } else if constexpr (traits::is_integer_v<T>) {
    detail::from_msgpack_integer(o, out, at);
  } else if constexpr (std::is_floating_point_v<T>) {
    switch (o.type) {
      case msgpack::type::FLOAT32:
      case msgpack::type::FLOAT64:
        out = static_cast<T>(o.via.f64);
        break;
      case msgpack::type::POSITIVE_INTEGER:
        out = static_cast<T>(o.via.u64);
        break;
      case msgpack::type::NEGATIVE_INTEGER:
        out = static_cast<T>(o.via.i64);
        break;
      default:
        throw DecodeError(at, "number", msgpack_kind(o));
    }
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (o.type != msgpack::type::STR && o.type != msgpack::type::BIN)
      throw DecodeError(at, "string", msgpack_kind(o));
    // A str is text (the MessagePack spec: UTF-8), as JSON's strings are: one that is not
    // would come back out in JSON answers no client can parse. A bin is bytes, kept as given.
    const std::string_view text = detail::msgpack_string(o);
    if (o.type == msgpack::type::STR && !is_valid_utf8(text))
      throw DecodeError(at, "string", "a str that is not UTF-8");
    out.assign(text);
  } else if constexpr (traits::is_vector<T>::value) {
    if (o.type != msgpack::type::ARRAY) throw DecodeError(at, "array", msgpack_kind(o));
    out.clear();
    out.resize(o.via.array.size);
    for (std::uint32_t i = 0; i < o.via.array.size; ++i)
      from_msgpack_object(o.via.array.ptr[i], out[i], at.element(i));
  } else if constexpr (traits::is_string_map<T>::value) {
    if (o.type != msgpack::type::MAP) throw DecodeError(at, "object", msgpack_kind(o));
    out.clear();
    for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
      const auto& kv = o.via.map.ptr[i];
      const std::string_view key = detail::map_key(kv.key, at);
      from_msgpack_object(kv.val, out[std::string(key)], at.field(key));
    }
  } else if constexpr (traits::is_described_enum_v<T>) {
    if (o.type != msgpack::type::STR)
      throw DecodeError(at, traits::enum_names_hint<T>(), msgpack_kind(o));
    const std::string_view name = detail::msgpack_string(o);
    if (!traits::enum_from_name(name, out))
      throw DecodeError(at, traits::enum_names_hint<T>(), "\"" + std::string(name) + "\"");
  } else if constexpr (traits::is_described_struct_v<T>) {
    if (o.type != msgpack::type::MAP) throw DecodeError(at, "object", msgpack_kind(o));
    boost::mp11::mp_for_each<boost::describe::describe_members<
        T, boost::describe::mod_public | boost::describe::mod_inherited>>([&](auto member) {
      using M = std::remove_cvref_t<decltype(out.*member.pointer)>;
      const PathSegment here = at.field(member.name);
      const msgpack::object* found = nullptr;
      for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
        const auto& key = o.via.map.ptr[i].key;
        if (key.type == msgpack::type::STR && detail::msgpack_string(key) == member.name)
          found = &o.via.map.ptr[i].val;  // the last duplicate wins, as in Python's dict
      }
      if (found) {
        from_msgpack_object(*found, out.*member.pointer, here);
      } else if constexpr (traits::is_optional<M>::value) {
        (out.*member.pointer).reset();
      } else {
        throw DecodeError(here, traits::expected_name<M>(), "nothing (the field is required)");
      }
    });
  } else {
    static_assert(sizeof(T) == 0, "molt::codec: this type has no MsgPack decoding; describe it");
  }
}

// Errors name the field from `root`, as decode_json's do.
template <class T>
T decode_msgpack(std::string_view bytes, std::string_view root = kRootPath.key) {
  msgpack::zone zone;
  const msgpack::object o = unpack_msgpack(bytes, zone);
  T out{};
  from_msgpack_object(o, out, PathSegment{nullptr, root, 0});
  return out;
}

}  // namespace molt::codec
