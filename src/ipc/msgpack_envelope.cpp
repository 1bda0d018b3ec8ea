#include "msgpack_envelope.hpp"

#include <cstring>

namespace molt::ipc::detail {

namespace {

using Kind = EnvelopeSlot::Kind;
using Reader = codec::MsgPackReader;
constexpr const char* kErrorPrefix = "invalid MsgPack envelope";

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
    reader.read(key);
    reader.skip_inside(key, 2);
    reader.read(value);
    if (value.is_container()) {
      reader.skip_inside(value, 2);
      continue;
    }
    if (key.kind != Kind::Str) continue;
    if (auto v = metric_value(value)) out.emplace_back(std::string(key.bytes), std::move(*v));
  }
}

}  // namespace

void scan_msgpack_envelope(std::string_view body, MsgPackEnvelope& out) {
  Reader reader(body, kErrorPrefix);
  EnvelopeSlot root;
  reader.read(root);
  if (root.kind != Kind::Map) throw core::InvalidInput("envelope must be a MsgPack map");
  for (std::uint32_t i = 0; i < root.count; ++i) {
    EnvelopeSlot* slot = nullptr;
    std::string_view name;
    if (reader.try_fixstr(name)) {
      slot = slot_named(out, name);
    } else {
      EnvelopeSlot key;
      reader.read(key);
      reader.skip_inside(key, 1);
      if (key.kind == Kind::Str) slot = slot_named(out, key.bytes);
    }
    EnvelopeSlot scratch;
    EnvelopeSlot& value = slot ? *slot : scratch;
    value = EnvelopeSlot{};  // a repeated key: the last one wins
    reader.read(value);
    if (value.kind == Kind::Map && slot == &out.metrics && out.metrics_out) {
      out.metrics_out->clear();
      read_metrics(reader, value.count, *out.metrics_out);
    } else {
      reader.skip_inside(value, 1);
    }
  }
  reader.expect_end();
}

}  // namespace molt::ipc::detail
