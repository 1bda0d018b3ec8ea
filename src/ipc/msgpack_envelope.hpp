#pragma once
// One pass over a MsgPack envelope with msgpack-cxx's visitor parser: the top-level keys we
// know are captured as views into the frame, everything else is skipped. No object tree and
// no zone are built, which is most of the cost of a small request such as __ping__.

#include <cstdint>
#include <string_view>

#include "molt/ipc/envelope.hpp"

namespace molt::ipc::detail {

// What one top-level value was, and its scalar content.
struct EnvelopeSlot {
  enum class Kind : std::uint8_t {
    Missing,
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
  std::uint64_t uint = 0;
  std::int64_t sint = 0;
  double real = 0;
  bool boolean = false;
  std::string_view bytes;  // Str and Bin: a view into the frame

  bool is_text() const noexcept { return kind == Kind::Str; }
  bool is_bytes() const noexcept { return kind == Kind::Str || kind == Kind::Bin; }
  bool absent() const noexcept { return kind == Kind::Missing || kind == Kind::Nil; }
  std::string_view kind_name() const noexcept;
};

struct MsgPackEnvelope {
  EnvelopeSlot request_id, entry, timeout_ms, codec, payload, status, error, metrics;
  // When set, the entries of a `metrics` map are appended here (responses).
  Metrics* metrics_out = nullptr;
};

// Scans `body`, which must be exactly one MsgPack map nested at most 64 deep.
// Throws core::InvalidInput otherwise.
void scan_msgpack_envelope(std::string_view body, MsgPackEnvelope& out);

}  // namespace molt::ipc::detail
