#pragma once
// One pass over a MsgPack envelope with the pull reader: the top-level keys we know are
// captured as views into the frame, everything else is skipped. No object tree and no zone
// are built, which was most of the cost of a small request such as __ping__.

#include <string_view>

#include "molt/codec/msgpack_reader.hpp"
#include "molt/ipc/envelope.hpp"

namespace molt::ipc::detail {

// What one top-level value was, and its scalar content.
using EnvelopeSlot = codec::MsgPackValue;

struct MsgPackEnvelope {
  EnvelopeSlot request_id, entry, timeout_ms, codec, payload, status, error, metrics;
  // When set, the entries of a `metrics` map are appended here (responses).
  Metrics* metrics_out = nullptr;
};

// Scans `body`, which must be exactly one MsgPack map nested at most 64 deep.
// Throws core::InvalidInput otherwise.
void scan_msgpack_envelope(std::string_view body, MsgPackEnvelope& out);

}  // namespace molt::ipc::detail
