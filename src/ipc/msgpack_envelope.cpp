#include "msgpack_envelope.hpp"

#include <bit>
#include <cstring>

namespace molt::ipc::detail {

std::string_view EnvelopeSlot::kind_name() const noexcept {
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

namespace {

using Kind = EnvelopeSlot::Kind;
constexpr int kMaxDepth = 64;

[[noreturn]] void fail(const char* what) {
  throw core::InvalidInput(std::string("invalid MsgPack envelope: ") + what);
}

// Reads MsgPack value headers straight from the frame. An envelope is a flat map of scalars,
// and msgpack-cxx's general parser (object tree or visitor) cost several times the whole rest
// of a __ping__; this reader only has to know where each value starts and ends.
class Reader {
 public:
  explicit Reader(std::string_view bytes)
      : p_(reinterpret_cast<const unsigned char*>(bytes.data())), end_(p_ + bytes.size()) {}

  bool at_end() const noexcept { return p_ == end_; }

  // Envelope keys are short strings: read one without the general dispatch when it is.
  bool try_fixstr(std::string_view& text) {
    if (p_ == end_ || (*p_ & 0xe0) != 0xa0) return false;
    const std::size_t size = *p_ & 0x1f;
    if (left() < size + 1) return false;  // the general path reports the truncation
    text = std::string_view(reinterpret_cast<const char*>(p_ + 1), size);
    p_ += size + 1;
    return true;
  }
  std::size_t left() const noexcept { return static_cast<std::size_t>(end_ - p_); }

  // Reads the next value's header into `slot`. Strings, binaries and exts are read whole;
  // for arrays and maps the element count is returned and the elements follow.
  std::uint32_t read(EnvelopeSlot& slot) {
    const unsigned char b = byte();
    if (b <= 0x7f) return scalar(slot, Kind::UInt, b);
    if (b <= 0x8f) return container(slot, Kind::Map, b & 0x0f);
    if (b <= 0x9f) return container(slot, Kind::Array, b & 0x0f);
    if (b <= 0xbf) return text(slot, Kind::Str, b & 0x1f);
    if (b >= 0xe0) return signed_int(slot, static_cast<std::int8_t>(b));
    switch (b) {
      case 0xc0:
        slot.kind = Kind::Nil;
        return 0;
      case 0xc2:
      case 0xc3:
        slot.kind = Kind::Bool;
        slot.boolean = b == 0xc3;
        return 0;
      case 0xc4:
        return text(slot, Kind::Bin, be(1));
      case 0xc5:
        return text(slot, Kind::Bin, be(2));
      case 0xc6:
        return text(slot, Kind::Bin, be(4));
      case 0xc7:
        return text(slot, Kind::Ext, be(1) + 1);
      case 0xc8:
        return text(slot, Kind::Ext, be(2) + 1);
      case 0xc9:
        return text(slot, Kind::Ext, be(4) + 1);
      case 0xca: {
        const auto bits = static_cast<std::uint32_t>(be(4));
        slot.kind = Kind::Float;
        slot.real = std::bit_cast<float>(bits);
        return 0;
      }
      case 0xcb:
        slot.kind = Kind::Float;
        slot.real = std::bit_cast<double>(be(8));
        return 0;
      case 0xcc:
        return scalar(slot, Kind::UInt, be(1));
      case 0xcd:
        return scalar(slot, Kind::UInt, be(2));
      case 0xce:
        return scalar(slot, Kind::UInt, be(4));
      case 0xcf:
        return scalar(slot, Kind::UInt, be(8));
      case 0xd0:
        return signed_int(slot, static_cast<std::int8_t>(be(1)));
      case 0xd1:
        return signed_int(slot, static_cast<std::int16_t>(be(2)));
      case 0xd2:
        return signed_int(slot, static_cast<std::int32_t>(be(4)));
      case 0xd3:
        return signed_int(slot, static_cast<std::int64_t>(be(8)));
      case 0xd4:
        return text(slot, Kind::Ext, 2);
      case 0xd5:
        return text(slot, Kind::Ext, 3);
      case 0xd6:
        return text(slot, Kind::Ext, 5);
      case 0xd7:
        return text(slot, Kind::Ext, 9);
      case 0xd8:
        return text(slot, Kind::Ext, 17);
      case 0xd9:
        return text(slot, Kind::Str, be(1));
      case 0xda:
        return text(slot, Kind::Str, be(2));
      case 0xdb:
        return text(slot, Kind::Str, be(4));
      case 0xdc:
        return container(slot, Kind::Array, be(2));
      case 0xdd:
        return container(slot, Kind::Array, be(4));
      case 0xde:
        return container(slot, Kind::Map, be(2));
      case 0xdf:
        return container(slot, Kind::Map, be(4));
      default:
        fail("byte 0xc1 is never used");
    }
  }

  // Skips `count` values (a map of n pairs is 2n values), `depth` levels down.
  void skip(std::uint64_t count, int depth) {
    if (depth > kMaxDepth) fail("nested deeper than 64 levels");
    EnvelopeSlot scratch;
    for (std::uint64_t i = 0; i < count; ++i) {
      const std::uint32_t n = read(scratch);
      if (scratch.kind == Kind::Array)
        skip(n, depth + 1);
      else if (scratch.kind == Kind::Map)
        skip(std::uint64_t{n} * 2, depth + 1);
    }
  }

 private:
  unsigned char byte() {
    if (p_ == end_) fail("truncated");
    return *p_++;
  }
  std::uint64_t be(int size) {
    if (left() < static_cast<std::size_t>(size)) fail("truncated");
    std::uint64_t v = 0;
    for (int i = 0; i < size; ++i) v = (v << 8) | *p_++;
    return v;
  }
  std::uint32_t scalar(EnvelopeSlot& slot, Kind kind, std::uint64_t v) {
    slot.kind = kind;
    slot.uint = v;
    return 0;
  }
  // Non-negative values of the signed formats are plain unsigned integers, as in msgpack-cxx.
  std::uint32_t signed_int(EnvelopeSlot& slot, std::int64_t v) {
    if (v >= 0) return scalar(slot, Kind::UInt, static_cast<std::uint64_t>(v));
    slot.kind = Kind::NegInt;
    slot.sint = v;
    return 0;
  }
  std::uint32_t text(EnvelopeSlot& slot, Kind kind, std::uint64_t size) {
    if (left() < size) fail("truncated");
    slot.kind = kind;
    slot.bytes = std::string_view(reinterpret_cast<const char*>(p_), size);
    p_ += size;
    return 0;
  }
  std::uint32_t container(EnvelopeSlot& slot, Kind kind, std::uint64_t count) {
    // Every element takes at least a byte: a count beyond what is left is a lie.
    if (count > left()) fail("truncated");
    slot.kind = kind;
    return static_cast<std::uint32_t>(count);
  }

  const unsigned char* p_;
  const unsigned char* end_;
};

// Fixed-size compares that the compiler turns into a couple of integer comparisons.
template <std::size_t N>
bool is(std::string_view key, const char (&name)[N]) {
  return std::memcmp(key.data(), name, N - 1) == 0;
}

EnvelopeSlot* slot_named(MsgPackEnvelope& env, std::string_view key) {
  switch (key.size()) {
    case 5:
      if (is(key, "entry")) return &env.entry;
      if (is(key, "codec")) return &env.codec;
      if (is(key, "error")) return &env.error;
      break;
    case 6:
      if (is(key, "status")) return &env.status;
      break;
    case 7:
      if (is(key, "payload")) return &env.payload;
      if (is(key, "metrics")) return &env.metrics;
      break;
    case 10:
      if (is(key, "request_id")) return &env.request_id;
      if (is(key, "timeout_ms")) return &env.timeout_ms;
      break;
  }
  return nullptr;
}

std::optional<MetricValue> metric_value(const EnvelopeSlot& v) {
  switch (v.kind) {
    case Kind::UInt:
      return static_cast<std::int64_t>(v.uint);
    case Kind::NegInt:
      return v.sint;
    case Kind::Float:
      return v.real;
    case Kind::Str:
      return std::string(v.bytes);
    default:
      return std::nullopt;
  }
}

void read_metrics(Reader& reader, std::uint32_t pairs, Metrics& out) {
  for (std::uint32_t i = 0; i < pairs; ++i) {
    EnvelopeSlot key, value;
    std::uint32_t n = reader.read(key);
    if (key.kind == Kind::Array || key.kind == Kind::Map)
      reader.skip(key.kind == Kind::Map ? std::uint64_t{n} * 2 : n, 3);
    n = reader.read(value);
    if (value.kind == Kind::Array || value.kind == Kind::Map) {
      reader.skip(value.kind == Kind::Map ? std::uint64_t{n} * 2 : n, 3);
      continue;
    }
    if (key.kind != Kind::Str) continue;
    if (auto v = metric_value(value)) out.emplace_back(std::string(key.bytes), std::move(*v));
  }
}

}  // namespace

void scan_msgpack_envelope(std::string_view body, MsgPackEnvelope& out) {
  Reader reader(body);
  EnvelopeSlot root;
  const std::uint32_t pairs = reader.read(root);
  if (root.kind != Kind::Map) throw core::InvalidInput("envelope must be a MsgPack map");
  for (std::uint32_t i = 0; i < pairs; ++i) {
    EnvelopeSlot* slot = nullptr;
    std::string_view name;
    if (reader.try_fixstr(name)) {
      slot = slot_named(out, name);
    } else {
      EnvelopeSlot key;
      const std::uint32_t n = reader.read(key);
      if (key.kind == Kind::Array) reader.skip(n, 2);
      if (key.kind == Kind::Map) reader.skip(std::uint64_t{n} * 2, 2);
      if (key.kind == Kind::Str) slot = slot_named(out, key.bytes);
    }
    EnvelopeSlot scratch;
    EnvelopeSlot& value = slot ? *slot : scratch;
    value = EnvelopeSlot{};  // a repeated key: the last one wins
    const std::uint32_t n = reader.read(value);
    if (value.kind == Kind::Map && slot == &out.metrics && out.metrics_out) {
      out.metrics_out->clear();
      read_metrics(reader, n, *out.metrics_out);
    } else if (value.kind == Kind::Array) {
      reader.skip(n, 2);
    } else if (value.kind == Kind::Map) {
      reader.skip(std::uint64_t{n} * 2, 2);
    }
  }
  if (!reader.at_end())
    throw core::InvalidInput("invalid MsgPack envelope: " + std::to_string(reader.left()) +
                             " unexpected bytes after it");
}

}  // namespace molt::ipc::detail
