#pragma once
// A pull reader over MsgPack bytes: one value header at a time, strings and binaries as views
// into the input, containers as an element count whose elements follow. Nothing is built on
// the way, so reading a value costs no memory beyond what its reader keeps: the typed decoder
// and the worker's envelope scanner both read through it. (msgpack-cxx's object tree costs 24
// bytes per element before any typed check runs, so an 8 MiB array of small integers took
// 200 MB before being refused.)

#include <bit>
#include <cstdint>
#include <string>
#include <string_view>

#include "molt/core/status.hpp"

namespace molt::codec {

// One value's header: its kind and, for scalars, its content.
struct MsgPackValue {
  enum class Kind : std::uint8_t {
    Missing,  // not read (a field that was not in a map)
    Nil,
    Bool,
    UInt,
    NegInt,
    Float,
    Str,
    Bin,
    Array,
    Map,
    Ext
  };
  Kind kind = Kind::Missing;
  bool boolean = false;
  std::uint32_t count = 0;  // Array: elements, Map: pairs (2 * count values follow)
  std::uint64_t uint = 0;
  std::int64_t sint = 0;
  double real = 0;
  std::string_view bytes;  // Str, Bin and Ext (type byte first): a view into the input

  bool is_text() const noexcept { return kind == Kind::Str; }
  bool is_bytes() const noexcept { return kind == Kind::Str || kind == Kind::Bin; }
  bool is_container() const noexcept { return kind == Kind::Array || kind == Kind::Map; }
  bool absent() const noexcept { return kind == Kind::Missing || kind == Kind::Nil; }
  // The values that follow this header: its elements, or a map's keys and values.
  std::uint64_t values_inside() const noexcept {
    return kind == Kind::Map ? std::uint64_t{count} * 2 : kind == Kind::Array ? count : 0;
  }
  // What the value is, in the words of a decode error ("integer", "array", ...).
  std::string_view kind_name() const noexcept;
};

class MsgPackReader {
 public:
  static constexpr int kMaxDepth = 64;

  // `error_prefix` starts every error message, e.g. "invalid MsgPack envelope".
  explicit MsgPackReader(std::string_view bytes, const char* error_prefix = "invalid MsgPack")
      : p_(reinterpret_cast<const unsigned char*>(bytes.data())),
        end_(p_ + bytes.size()),
        error_prefix_(error_prefix) {}

  bool at_end() const noexcept { return p_ == end_; }
  std::size_t left() const noexcept { return static_cast<std::size_t>(end_ - p_); }

  // Reads the next value's header into `value`; returns its element count (0 for scalars).
  // A truncated value, an unused byte (0xc1) or a count larger than the bytes left throws
  // core::InvalidInput.
  std::uint32_t read(MsgPackValue& value);

  // Envelope keys are short strings: reads one without the general dispatch when it is.
  bool try_fixstr(std::string_view& text) noexcept {
    if (p_ == end_ || (*p_ & 0xe0) != 0xa0) return false;
    const std::size_t size = *p_ & 0x1f;
    if (left() < size + 1) return false;  // the general path reports the truncation
    text = std::string_view(reinterpret_cast<const char*>(p_ + 1), size);
    p_ += size + 1;
    return true;
  }

  // Skips `count` whole values found `depth` levels down.
  void skip(std::uint64_t count, int depth);
  // Skips what follows `value`'s header (a container's elements), at `depth`.
  void skip_inside(const MsgPackValue& value, int depth) {
    if (value.is_container()) skip(value.values_inside(), depth + 1);
  }
  // Throws unless every byte was read: a value must be the whole input.
  void expect_end() const;

  [[noreturn]] void fail(std::string_view what) const;

 private:
  unsigned char byte() {
    if (p_ == end_) fail("truncated value");
    return *p_++;
  }
  std::uint64_t be(int size) {
    if (left() < static_cast<std::size_t>(size)) fail("truncated value");
    std::uint64_t v = 0;
    for (int i = 0; i < size; ++i) v = (v << 8) | *p_++;
    return v;
  }
  static std::uint32_t scalar(MsgPackValue& value, MsgPackValue::Kind kind, std::uint64_t v) {
    value.kind = kind;
    value.uint = v;
    return 0;
  }
  // Non-negative values of the signed formats are plain unsigned integers, as in msgpack-cxx.
  static std::uint32_t signed_int(MsgPackValue& value, std::int64_t v) {
    if (v >= 0) return scalar(value, MsgPackValue::Kind::UInt, static_cast<std::uint64_t>(v));
    value.kind = MsgPackValue::Kind::NegInt;
    value.sint = v;
    return 0;
  }
  std::uint32_t text(MsgPackValue& value, MsgPackValue::Kind kind, std::uint64_t size) {
    if (left() < size) fail("truncated value");
    value.kind = kind;
    value.bytes = std::string_view(reinterpret_cast<const char*>(p_), size);
    p_ += size;
    return 0;
  }
  std::uint32_t container(MsgPackValue& value, MsgPackValue::Kind kind, std::uint64_t count) {
    // Every element takes at least a byte: a count beyond what is left is a lie, and refusing
    // it here keeps a five-byte header from making anyone reserve gigabytes.
    if (count > left()) fail("a container claims more elements than it holds");
    value.kind = kind;
    value.count = static_cast<std::uint32_t>(count);
    return value.count;
  }

  const unsigned char* p_;
  const unsigned char* end_;
  const char* error_prefix_;
};

inline std::uint32_t MsgPackReader::read(MsgPackValue& value) {
  using Kind = MsgPackValue::Kind;
  value.count = 0;
  const unsigned char b = byte();
  if (b <= 0x7f) return scalar(value, Kind::UInt, b);
  if (b <= 0x8f) return container(value, Kind::Map, b & 0x0f);
  if (b <= 0x9f) return container(value, Kind::Array, b & 0x0f);
  if (b <= 0xbf) return text(value, Kind::Str, b & 0x1f);
  if (b >= 0xe0) return signed_int(value, static_cast<std::int8_t>(b));
  switch (b) {
    case 0xc0:
      value.kind = Kind::Nil;
      return 0;
    case 0xc2:
    case 0xc3:
      value.kind = Kind::Bool;
      value.boolean = b == 0xc3;
      return 0;
    case 0xc4:
      return text(value, Kind::Bin, be(1));
    case 0xc5:
      return text(value, Kind::Bin, be(2));
    case 0xc6:
      return text(value, Kind::Bin, be(4));
    case 0xc7:
      return text(value, Kind::Ext, be(1) + 1);
    case 0xc8:
      return text(value, Kind::Ext, be(2) + 1);
    case 0xc9:
      return text(value, Kind::Ext, be(4) + 1);
    case 0xca:
      value.kind = Kind::Float;
      value.real = std::bit_cast<float>(static_cast<std::uint32_t>(be(4)));
      return 0;
    case 0xcb:
      value.kind = Kind::Float;
      value.real = std::bit_cast<double>(be(8));
      return 0;
    case 0xcc:
      return scalar(value, Kind::UInt, be(1));
    case 0xcd:
      return scalar(value, Kind::UInt, be(2));
    case 0xce:
      return scalar(value, Kind::UInt, be(4));
    case 0xcf:
      return scalar(value, Kind::UInt, be(8));
    case 0xd0:
      return signed_int(value, static_cast<std::int8_t>(be(1)));
    case 0xd1:
      return signed_int(value, static_cast<std::int16_t>(be(2)));
    case 0xd2:
      return signed_int(value, static_cast<std::int32_t>(be(4)));
    case 0xd3:
      return signed_int(value, static_cast<std::int64_t>(be(8)));
    case 0xd4:
      return text(value, Kind::Ext, 2);
    case 0xd5:
      return text(value, Kind::Ext, 3);
    case 0xd6:
      return text(value, Kind::Ext, 5);
    case 0xd7:
      return text(value, Kind::Ext, 9);
    case 0xd8:
      return text(value, Kind::Ext, 17);
    case 0xd9:
      return text(value, Kind::Str, be(1));
    case 0xda:
      return text(value, Kind::Str, be(2));
    case 0xdb:
      return text(value, Kind::Str, be(4));
    case 0xdc:
      return container(value, Kind::Array, be(2));
    case 0xdd:
      return container(value, Kind::Array, be(4));
    case 0xde:
      return container(value, Kind::Map, be(2));
    case 0xdf:
      return container(value, Kind::Map, be(4));
    default:
      fail("byte 0xc1 is never used");
  }
}

}  // namespace molt::codec
