#pragma once
// Typed MsgPack: the same described types and the same path-naming errors as the JSON codec.
// Encoding goes through msgpack-cxx's packer; decoding reads the bytes with MsgPackReader
// straight into the target type. A std::string takes a str or a bin, and either must be UTF-8.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <exception>
#include <limits>
#include <msgpack.hpp>
#include <string>
#include <string_view>
#include <unordered_map>

#include "molt/codec/decode_error.hpp"
#include "molt/codec/msgpack_reader.hpp"
#include "molt/codec/rules.hpp"
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
// A MsgPack str. Text that is not UTF-8 (a path parameter, a header) has each ill-formed
// sequence replaced by U+FFFD: a str must be UTF-8, and clients refuse one that is not.
void pack_text(Packer& packer, std::string_view text);
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
    pack_text(p, value);
  } else if constexpr (std::is_same_v<T, Bytes>) {
    p.pack_bin(static_cast<std::uint32_t>(value.data.size()));
    p.pack_bin_body(value.data.data(), static_cast<std::uint32_t>(value.data.size()));
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

// A str or bin read as text (DecodeError naming `at` otherwise): both must be UTF-8, since
// what is decoded as a string goes back out in JSON answers, which cannot carry other bytes.
std::string_view msgpack_text(const MsgPackValue& value, const PathSegment& at);

namespace detail {
using MsgPackKind = MsgPackValue::Kind;

// Space for a claimed element count is reserved up front only where it costs at most 16 bytes
// per input byte (every element takes at least one): for larger elements a count alone, cheap
// to send, would make the decoder allocate far more than the input, so those grow as elements
// actually decode.
template <class T>
std::size_t reserve_for(std::uint32_t count) {
  constexpr std::size_t kMaxUpFront = std::size_t{1} << 20;
  return sizeof(T) <= 16 ? count : std::min<std::size_t>(count, kMaxUpFront / sizeof(T));
}

template <class T>
void integer_from(const MsgPackValue& v, T& out, const PathSegment& at) {
  using limits = std::numeric_limits<T>;
  if (v.kind == MsgPackKind::UInt) {
    if (v.uint > static_cast<std::uint64_t>(limits::max()))
      throw DecodeError(at, "integer in range", "out-of-range integer");
    out = static_cast<T>(v.uint);
  } else if (v.kind == MsgPackKind::NegInt) {
    if constexpr (std::is_unsigned_v<T>) {
      throw DecodeError(at, "non-negative integer", "negative integer");
    } else {
      if (v.sint < static_cast<std::int64_t>(limits::min()))
        throw DecodeError(at, "integer in range", "out-of-range integer");
      out = static_cast<T>(v.sint);
    }
  } else {
    throw DecodeError(at, "integer", v.kind_name());
  }
}

// A map key as text: a str or a bin, UTF-8 (a key goes back out as JSON text, as values do).
std::string_view key_text(const MsgPackValue& key, const PathSegment& at);

// Refuses a container `depth` levels down once that passes MsgPackReader::kMaxDepth.
void check_depth(const MsgPackReader& reader, int depth);

// The values of one map that did not decode. The last of a repeated key wins, as in Python's
// dict, so such a value is an error only if its key does not come again: each is kept until
// then, and what is left is thrown at the map's end. (Looking ahead for the key at each
// failure made a map of failing keys, repeated at its end, cost its size squared: 80 s for
// 1 MB.)
// Puts `reader` back at `value_at` and past the value there: where the next value starts,
// after one that failed to decode somewhere inside.
void skip_value(MsgPackReader& reader, const MsgPackReader& value_at, int depth);

class FailedValues {
 public:
  // Runs `decode` on the value of `key`; a DecodeError skips the value, is kept, and false
  // is returned.
  template <class Decode>
  bool decode(MsgPackReader& reader, std::string_view key, int depth, Decode&& decode) {
    const MsgPackReader value_at = reader;
    try {
      decode();
      if (!failed_.empty()) failed_.erase(key);
      return true;
    } catch (const DecodeError&) {
      skip_value(reader, value_at, depth);
      failed_.insert_or_assign(key, Failure{count_++, std::current_exception()});
      // As many as an error lists: decoding stops here (a later repeat of a key could have
      // mended one, but a map of a million bad values must not cost a million throws).
      if (failed_.size() >= Problems::kMost) {
        Problems problems;
        check(problems);
        problems.check();
      }
      return false;
    }
  }
  // At the map's end: the values still in error are kept in `problems`, in the order they
  // came.
  void check(Problems& problems) const;
  bool failed(std::string_view key) const { return failed_.contains(key); }

 private:
  struct Failure {
    std::uint32_t order;
    std::exception_ptr error;
  };
  std::unordered_map<std::string_view, Failure> failed_;  // keys are views into the input
  std::uint32_t count_ = 0;
};

// Reads the value whose header is `head` (already read) into any JSON value.
void json_from_msgpack(MsgPackReader& reader, const MsgPackValue& head, boost::json::value& out,
                       const PathSegment& at, int depth);

// The position of the member called `name` in T's description, or the member count.
template <class T>
std::size_t member_index(std::string_view name) {
  using Members = boost::describe::describe_members<T, boost::describe::mod_public |
                                                           boost::describe::mod_inherited>;
  std::size_t index = 0, found = boost::mp11::mp_size<Members>::value;
  boost::mp11::mp_for_each<Members>([&](auto member) {
    if (found == boost::mp11::mp_size<Members>::value && name == member.name) found = index;
    ++index;
  });
  return found;
}
}  // namespace detail

template <class T>
void from_msgpack(MsgPackReader& reader, T& out, const PathSegment& at, int depth = 0);

// Decodes the value whose header `head` was just read from `reader`, consuming its elements.
template <class T>
void from_msgpack(MsgPackReader& reader, const MsgPackValue& head, T& out, const PathSegment& at,
                  int depth) {
  using detail::MsgPackKind;
  if constexpr (traits::is_optional<T>::value) {
    if (head.kind == MsgPackKind::Nil) {
      if constexpr (traits::is_optional<typename T::value_type>::value)
        out.emplace();  // nil is "set to nothing", apart from an absent field (see json.hpp)
      else
        out.reset();
      return;
    }
    from_msgpack(reader, head, out.emplace(), at, depth);
  } else if constexpr (std::is_same_v<T, boost::json::value>) {
    detail::json_from_msgpack(reader, head, out, at, depth);
  } else if constexpr (std::is_same_v<T, bool>) {
    if (head.kind != MsgPackKind::Bool) throw DecodeError(at, "boolean", head.kind_name());
    out = head.boolean;
  } else if constexpr (traits::is_integer_v<T>) {
    detail::integer_from(head, out, at);
  } else if constexpr (std::is_floating_point_v<T>) {
    switch (head.kind) {
      case MsgPackKind::Float:
        // NaN and the infinities are carried as they are; a finite double too large for a
        // float is not one (and converting it would be undefined).
        if (sizeof(T) < sizeof(double) && std::isfinite(head.real) &&
            std::fabs(head.real) > static_cast<double>(std::numeric_limits<T>::max()))
          throw DecodeError(at, "number in range", "out-of-range number");
        out = static_cast<T>(head.real);
        break;
      case MsgPackKind::UInt:
        out = static_cast<T>(head.uint);
        break;
      case MsgPackKind::NegInt:
        out = static_cast<T>(head.sint);
        break;
      default:
        throw DecodeError(at, "number", head.kind_name());
    }
  } else if constexpr (std::is_same_v<T, std::string>) {
    out.assign(msgpack_text(head, at));
  } else if constexpr (std::is_same_v<T, Bytes>) {
    if (!head.is_bytes()) throw DecodeError(at, "bytes", head.kind_name());
    out.data.assign(head.bytes);
  } else if constexpr (traits::is_vector<T>::value) {
    if (head.kind != MsgPackKind::Array) throw DecodeError(at, "array", head.kind_name());
    detail::check_depth(reader, depth);
    out.clear();
    out.reserve(detail::reserve_for<typename T::value_type>(head.count));
    detail::Problems problems;  // every element that does not fit, not the first alone
    for (std::uint32_t i = 0; i < head.count; ++i) {
      typename T::value_type element{};
      const MsgPackReader element_at = reader;
      if (problems.attempt([&] { from_msgpack(reader, element, at.element(i), depth + 1); }))
        out.push_back(std::move(element));
      else
        detail::skip_value(reader, element_at, depth + 1);
    }
    problems.check();
  } else if constexpr (traits::is_string_map<T>::value) {
    if (head.kind != MsgPackKind::Map) throw DecodeError(at, "object", head.kind_name());
    detail::check_depth(reader, depth);
    out.clear();
    MsgPackValue key;
    detail::FailedValues failed;
    for (std::uint32_t i = 0; i < head.count; ++i) {
      reader.read(key);
      const std::string_view name = detail::key_text(key, at);
      failed.decode(reader, name, depth + 1, [&] {
        from_msgpack(reader, out[std::string(name)], at.field(name), depth + 1);
      });
    }
    detail::Problems problems;
    failed.check(problems);
    problems.check();
  } else if constexpr (traits::is_described_enum_v<T>) {
    if (head.kind != MsgPackKind::Str)
      throw DecodeError(at, traits::enum_names_hint<T>(), head.kind_name());
    if (!traits::enum_from_name(head.bytes, out))
      throw DecodeError(at, traits::enum_names_hint<T>(), quoted_excerpt(head.bytes));
  } else if constexpr (traits::is_described_struct_v<T>) {
    using Members = boost::describe::describe_members<T, boost::describe::mod_public |
                                                             boost::describe::mod_inherited>;
    constexpr std::size_t kMembers = boost::mp11::mp_size<Members>::value;
    static_assert(traits::defaults_name_members<T>(),
                  "MOLT_DEFAULTS lists a name that is not a described member of this struct");
    if (head.kind != MsgPackKind::Map) throw DecodeError(at, "object", head.kind_name());
    detail::check_depth(reader, depth);
    // Fields come in the sender's order; a repeated one is decoded again, so the last wins
    // (as in Python's dict). Keys that are not members, and their values, are skipped.
    std::array<bool, kMembers> seen{};
    MsgPackValue key, value;
    detail::FailedValues failed;
    for (std::uint32_t i = 0; i < head.count; ++i) {
      reader.read(key);
      reader.skip_inside(key, depth + 1);
      const std::size_t index = key.is_bytes() ? detail::member_index<T>(key.bytes) : kMembers;
      if constexpr (kMembers > 0) {
        if (index < kMembers) {
          seen[index] |= failed.decode(reader, key.bytes, depth + 1, [&] {
            boost::mp11::mp_with_index<kMembers>(index, [&](auto m) {
              using Member = boost::mp11::mp_at_c<Members, m>;
              from_msgpack(reader, out.*Member::pointer, at.field(Member::name), depth + 1);
            });
          });
          continue;
        }
      }
      reader.read(value);
      reader.skip_inside(value, depth + 1);
    }
    // Every member that did not decode, or is missing, is named; the rules are checked on the
    // members that decoded.
    detail::Problems problems;
    failed.check(problems);
    std::array<bool, kMembers> missing{};
    boost::mp11::mp_for_each<boost::mp11::mp_iota_c<kMembers>>([&](auto i) {
      using Member = boost::mp11::mp_at_c<Members, i>;
      using M = std::remove_cvref_t<decltype(out.*Member::pointer)>;
      if (seen[i] || failed.failed(Member::name)) return;
      if constexpr (traits::keeps_default<T>(Member::name)) {
        detail::restore_default(out, Member::pointer);
      } else if constexpr (traits::is_optional<M>::value) {
        (out.*Member::pointer).reset();
      } else {
        missing[i] = true;
        problems.add(DecodeError(at.field(Member::name), traits::expected_name<M>(),
                                 "nothing (the field is required)"));
      }
    });
    check_rules(out, at, problems, [&](std::string_view name) {
      const std::size_t index = detail::member_index<T>(name);
      return index >= kMembers || missing[index] || failed.failed(name);
    });
    problems.check();
  } else {
    static_assert(sizeof(T) == 0, "molt::codec: this type has no MsgPack decoding; describe it");
  }
}

template <class T>
void from_msgpack(MsgPackReader& reader, T& out, const PathSegment& at, int depth) {
  MsgPackValue head;
  reader.read(head);
  from_msgpack(reader, head, out, at, depth);
}

// Decodes `bytes`, which must be exactly one value, straight into T: no object tree is built.
// Errors name the field from `root`, as decode_json's do.
template <class T>
T decode_msgpack(std::string_view bytes, std::string_view root = kRootPath.key) {
  MsgPackReader reader(bytes);
  T out{};
  from_msgpack(reader, out, PathSegment{nullptr, root, 0});
  reader.expect_end();
  return out;
}

}  // namespace molt::codec
