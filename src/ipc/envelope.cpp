#include "molt/ipc/envelope.hpp"

#include <array>

#include "molt/codec/base64.hpp"
#include "molt/codec/json.hpp"
#include "molt/codec/msgpack.hpp"
#include "molt/codec/utf8.hpp"
#include "molt/ipc/frame.hpp"
#include "msgpack_envelope.hpp"
#include "msgpack_writer.hpp"

namespace molt::ipc {

using core::StatusCode;

namespace {
constexpr std::array<std::pair<Codec, std::string_view>, 4> kCodecNames{{
    {Codec::MsgPack, "msgpack"},
    {Codec::Json, "json"},
    {Codec::Raw, "raw"},
    {Codec::ArrowIpc, "arrow_ipc"},
}};
}  // namespace

std::string_view to_string(Wire wire) noexcept {
  return wire == Wire::Json ? "json" : "msgpack";
}

std::string_view to_string(Codec codec) noexcept {
  for (const auto& [c, name] : kCodecNames)
    if (c == codec) return name;
  return "raw";
}

std::optional<Codec> parse_codec(std::string_view name) noexcept {
  for (const auto& [c, n] : kCodecNames)
    if (n == name) return c;
  return std::nullopt;
}

std::optional<Wire> detect_wire(std::string_view body) noexcept {
  if (body.empty()) return std::nullopt;
  const auto first = static_cast<unsigned char>(body.front());
  if ((first & 0xf0) == 0x80 || first == 0xde || first == 0xdf) return Wire::MsgPack;
  for (char c : body) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
    return c == '{' ? std::optional(Wire::Json) : std::nullopt;
  }
  return std::nullopt;
}

// ---- request decoding -------------------------------------------------------------------

namespace {

// Reads the envelope keys of one wire into a Request. Each wire gives a view of its values;
// the rules (which keys, which types, which defaults) are written once, here.
template <class Fields>
void read_request_fields(Fields& f, DecodedRequest& out) {
  Request& r = out.request;
  // request_id first, so every later error can still reach its caller.
  if (!f.uint("request_id", r.request_id)) {
    out.error = f.problem("request_id", "an unsigned integer");
    return;
  }
  const auto entry = f.text("entry");
  if (!entry || entry->empty()) {
    out.error = f.problem("entry", "a non-empty string");
    return;
  }
  r.entry.assign(*entry);
  if (!f.uint_or("timeout_ms", r.timeout_ms, 0)) {
    out.error = f.problem("timeout_ms", "an unsigned integer");
    return;
  }
  const auto codec_name = f.text_or("codec", "msgpack");
  if (!codec_name) {
    out.error = f.problem("codec", "a string");
    return;
  }
  const auto codec = parse_codec(*codec_name);
  if (!codec) {
    out.error = "unknown codec '" + std::string(*codec_name) +
                "' (expected msgpack, json, raw or arrow_ipc)";
    return;
  }
  r.codec = *codec;
  if (!f.payload(r.payload)) {
    out.error = f.payload_problem();
    return;
  }
  out.ok = true;
}

class MsgPackFields {
 public:
  explicit MsgPackFields(const detail::MsgPackEnvelope& env) : env_(env) {}

  bool uint(std::string_view key, std::uint64_t& out) const {
    const auto& v = slot(key);
    if (v.kind != detail::EnvelopeSlot::Kind::UInt) return false;
    out = v.uint;
    return true;
  }
  bool uint_or(std::string_view key, std::uint64_t& out, std::uint64_t fallback) const {
    if (slot(key).absent()) {
      out = fallback;
      return true;
    }
    return uint(key, out);
  }
  std::optional<std::string_view> text(std::string_view key) const {
    const auto& v = slot(key);
    if (!v.is_text()) return std::nullopt;
    return v.bytes;
  }
  std::optional<std::string_view> text_or(std::string_view key, std::string_view fallback) const {
    if (slot(key).absent()) return fallback;
    return text(key);
  }
  bool payload(std::string& out) const {
    if (env_.payload.absent()) return true;
    if (!env_.payload.is_bytes()) return false;
    out.assign(env_.payload.bytes);
    return true;
  }
  std::string problem(std::string_view key, std::string_view expected) const {
    return "envelope key '" + std::string(key) + "' must be " + std::string(expected) + ", got " +
           std::string(slot(key).kind_name());
  }
  std::string payload_problem() const { return problem("payload", "bytes"); }

 private:
  const detail::EnvelopeSlot& slot(std::string_view key) const {
    if (key == "request_id") return env_.request_id;
    if (key == "entry") return env_.entry;
    if (key == "timeout_ms") return env_.timeout_ms;
    if (key == "codec") return env_.codec;
    if (key == "status") return env_.status;
    if (key == "error") return env_.error;
    return env_.payload;
  }
  const detail::MsgPackEnvelope& env_;
};

class JsonFields {
 public:
  explicit JsonFields(const boost::json::object& obj) : obj_(obj) {}

  bool uint(std::string_view key, std::uint64_t& out) const {
    const auto* v = obj_.if_contains(key);
    if (!v) return false;
    if (v->is_uint64())
      out = v->get_uint64();
    else if (v->is_int64() && v->get_int64() >= 0)
      out = static_cast<std::uint64_t>(v->get_int64());
    else
      return false;
    return true;
  }
  bool uint_or(std::string_view key, std::uint64_t& out, std::uint64_t fallback) const {
    const auto* v = obj_.if_contains(key);
    if (!v || v->is_null()) {
      out = fallback;
      return true;
    }
    return uint(key, out);
  }
  std::optional<std::string_view> text(std::string_view key) const {
    const auto* v = obj_.if_contains(key);
    if (!v || !v->is_string()) return std::nullopt;
    return std::string_view(v->get_string().data(), v->get_string().size());
  }
  std::optional<std::string_view> text_or(std::string_view key, std::string_view fallback) const {
    const auto* v = obj_.if_contains(key);
    if (!v || v->is_null()) return fallback;
    return text(key);
  }
  bool payload(std::string& out) const {
    const auto* v = obj_.if_contains("payload_b64");
    if (!v || v->is_null()) return true;
    if (!v->is_string()) return false;
    auto decoded = codec::decode_base64(std::string_view(v->get_string()));
    if (!decoded) return false;
    out = std::move(*decoded);
    return true;
  }
  std::string problem(std::string_view key, std::string_view expected) const {
    const auto* v = obj_.if_contains(key);
    return "envelope key '" + std::string(key) + "' must be " + std::string(expected) + ", got " +
           (v ? std::string(codec::json_kind(*v)) : std::string("nothing"));
  }
  std::string payload_problem() const {
    return "envelope key 'payload_b64' must be a base64 string";
  }

 private:
  const boost::json::object& obj_;
};

}  // namespace

DecodedRequest decode_request(std::string_view body) {
  DecodedRequest out;
  const auto wire = detect_wire(body);
  if (!wire) {
    out.error = "frame is neither a MsgPack map nor a JSON object";
    return out;
  }
  out.wire = *wire;
  out.wire_detected = true;
  try {
    if (*wire == Wire::MsgPack) {
      detail::MsgPackEnvelope envelope;
      detail::scan_msgpack_envelope(body, envelope);
      MsgPackFields fields(envelope);
      read_request_fields(fields, out);
    } else {
      const boost::json::value root = codec::parse_json(body);
      if (!root.is_object()) {
        out.error = "envelope must be a JSON object";
        return out;
      }
      JsonFields fields(root.get_object());
      read_request_fields(fields, out);
    }
  } catch (const core::Error& e) {
    out.error = std::string("malformed envelope: ") + e.what();
  }
  if (!out.ok) out.error = "bad request envelope: " + out.error;
  return out;
}

// ---- encoding ---------------------------------------------------------------------------

namespace {

constexpr std::size_t kMaxHeader = detail::MsgPackWriter::kHeaderSize;

std::size_t metric_size(const MetricValue& value) {
  const auto* text = std::get_if<std::string>(&value);
  return text ? kMaxHeader + text->size() : detail::MsgPackWriter::kNumberSize;
}

struct MetricWriter {
  detail::MsgPackWriter& w;
  void operator()(std::int64_t v) const { w.sint(v); }
  void operator()(double v) const { w.float64(v); }
  void operator()(const std::string& v) const { w.str(v); }
};

void write_metric_json(std::string& out, const MetricValue& value) {
  std::visit([&](const auto& v) { codec::write_json(out, v); }, value);
}

// A response's envelope on the MsgPack wire up to its payload's bin header: the payload's
// `payload_size` bytes go right after it.
void append_msgpack_envelope_head(std::string& out, const Response& r, std::size_t payload_size) {
  const bool failed = r.status != StatusCode::Ok;
  std::size_t room = 160 + r.error.size() + r.entry.size();
  for (const auto& [key, value] : r.metrics) room += key.size() + kMaxHeader + metric_size(value);
  detail::MsgPackWriter w(out, room);
  w.map(4 + (failed ? 1 : 0) + (r.entry.empty() ? 0 : 1) + (r.metrics.empty() ? 0 : 1));
  w.str("request_id");
  w.uint(r.request_id);
  w.str("status");
  w.str(core::to_string(r.status));
  w.str("codec");
  w.str(to_string(r.codec));
  if (failed) {
    w.str("error");
    w.str(r.error);
  }
  if (!r.entry.empty()) {
    w.str("entry");
    w.str(r.entry);
  }
  if (!r.metrics.empty()) {
    w.str("metrics");
    w.map(static_cast<std::uint32_t>(r.metrics.size()));
    for (const auto& [key, value] : r.metrics) {
      w.str(key);
      std::visit(MetricWriter{w}, value);
    }
  }
  w.str("payload");
  w.bin_header(payload_size);
  w.finish();
}

// Error texts may quote what a peer sent; a wire string must still be valid UTF-8. Cleans
// them in `r` itself.
void clean_texts(Response& r) {
  if (!codec::is_valid_utf8(r.error)) r.error = codec::replace_invalid_utf8(r.error);
  if (!codec::is_valid_utf8(r.entry)) r.entry = codec::replace_invalid_utf8(r.entry);
}

}  // namespace

void append_response_frame(std::string& out, const Response& response, Wire wire) {
  const bool clean = codec::is_valid_utf8(response.error) && codec::is_valid_utf8(response.entry);
  Response cleaned;
  if (!clean) {
    cleaned = {response.request_id, response.status, response.codec,  {},
               response.error,      response.entry,  response.metrics};
    clean_texts(cleaned);
  }
  // The payload is read from `response` either way: it is never copied for the cleaning.
  const Response& r = clean ? response : cleaned;
  FrameBuilder frame(out);
  const bool failed = r.status != StatusCode::Ok;
  if (wire == Wire::MsgPack) {
    append_msgpack_envelope_head(out, r, response.payload.size());
    out.append(response.payload);
  } else {
    out += "{\"request_id\":";
    codec::append_integer(out, r.request_id);
    out += ",\"status\":";
    codec::write_json_string(out, core::to_string(r.status));
    out += ",\"codec\":";
    codec::write_json_string(out, to_string(r.codec));
    out += ",\"payload_b64\":\"";
    codec::append_base64(out, response.payload);
    out += '"';
    if (failed) {
      out += ",\"error\":";
      codec::write_json_string(out, r.error);
    }
    if (!r.entry.empty()) {
      out += ",\"entry\":";
      codec::write_json_string(out, r.entry);
    }
    if (!r.metrics.empty()) {
      out += ",\"metrics\":{";
      bool first = true;
      for (const auto& [key, value] : r.metrics) {
        if (!first) out += ',';
        first = false;
        codec::write_json_string(out, key);
        out += ':';
        write_metric_json(out, value);
      }
      out += '}';
    }
    out += '}';
  }
  frame.finish();
}

std::string take_response_frame(Response& response, Wire wire) {
  if (wire != Wire::MsgPack || response.payload.size() < kOwnFrameBytes) {
    std::string out;
    append_response_frame(out, response, wire);
    return out;
  }
  clean_texts(response);
  std::string head;
  FrameBuilder builder(head);
  append_msgpack_envelope_head(head, response, response.payload.size());
  builder.finish(response.payload.size());
  std::string frame = std::move(response.payload);
  frame.insert(0, head);  // within the payload's own room when it has some to spare
  return frame;
}

void append_request_frame(std::string& out, const Request& r, Wire wire) {
  FrameBuilder frame(out);
  if (wire == Wire::MsgPack) {
    detail::MsgPackWriter w(out, 128 + r.entry.size());
    w.map(5);
    w.str("request_id");
    w.uint(r.request_id);
    w.str("entry");
    w.str(r.entry);
    w.str("timeout_ms");
    w.uint(r.timeout_ms);
    w.str("codec");
    w.str(to_string(r.codec));
    w.str("payload");
    w.bin_header(r.payload.size());
    w.finish();
    out.append(r.payload);
  } else {
    out += "{\"request_id\":";
    codec::append_integer(out, r.request_id);
    out += ",\"entry\":";
    codec::write_json_string(out, r.entry);
    out += ",\"timeout_ms\":";
    codec::append_integer(out, r.timeout_ms);
    out += ",\"codec\":";
    codec::write_json_string(out, to_string(r.codec));
    out += ",\"payload_b64\":\"";
    codec::append_base64(out, r.payload);
    out += "\"}";
  }
  frame.finish();
}

// ---- response decoding (clients) --------------------------------------------------------

namespace {
MetricValue metric_from_json(const boost::json::value& v) {
  if (v.is_int64()) return v.get_int64();
  if (v.is_uint64()) return static_cast<std::int64_t>(v.get_uint64());
  if (v.is_double()) return v.get_double();
  if (v.is_string()) return std::string(v.get_string());
  throw core::InvalidInput("metric values must be numbers or strings");
}
StatusCode status_from(std::string_view name) {
  auto code = core::parse_status_code(name);
  if (!code) throw core::InvalidInput("unknown status '" + std::string(name) + "'");
  return *code;
}
Codec codec_from(std::string_view name) {
  auto c = parse_codec(name);
  if (!c) throw core::InvalidInput("unknown codec '" + std::string(name) + "'");
  return *c;
}
}  // namespace

namespace {
template <class Fields>
void read_response_fields(const Fields& f, Response& r) {
  if (!f.uint("request_id", r.request_id))
    throw core::InvalidInput(f.problem("request_id", "an unsigned integer"));
  const auto status = f.text("status");
  if (!status) throw core::InvalidInput(f.problem("status", "a string"));
  r.status = status_from(*status);
  if (const auto codec = f.text("codec")) r.codec = codec_from(*codec);
  if (!f.payload(r.payload)) throw core::InvalidInput(f.payload_problem());
  if (const auto error = f.text("error")) r.error.assign(*error);
  if (const auto entry = f.text("entry")) r.entry.assign(*entry);
}
}  // namespace

Response decode_response(std::string_view body, Wire* wire_out) {
  const auto wire = detect_wire(body);
  if (!wire) throw core::InvalidInput("response is neither a MsgPack map nor a JSON object");
  if (wire_out) *wire_out = *wire;
  Response r;
  if (*wire == Wire::MsgPack) {
    detail::MsgPackEnvelope envelope;
    envelope.metrics_out = &r.metrics;
    detail::scan_msgpack_envelope(body, envelope);
    MsgPackFields f(envelope);
    read_response_fields(f, r);
  } else {
    const boost::json::value root = codec::parse_json(body);
    if (!root.is_object()) throw core::InvalidInput("response must be a JSON object");
    JsonFields f(root.get_object());
    read_response_fields(f, r);
    if (const auto* m = root.get_object().if_contains("metrics"); m && m->is_object()) {
      for (const auto& kv : m->get_object())
        r.metrics.emplace_back(std::string(kv.key()), metric_from_json(kv.value()));
    }
  }
  return r;
}

}  // namespace molt::ipc
