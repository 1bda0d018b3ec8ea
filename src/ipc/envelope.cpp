#include "molt/ipc/envelope.hpp"

#include <array>

#include "molt/codec/base64.hpp"
#include "molt/codec/json.hpp"
#include "molt/codec/msgpack.hpp"
#include "molt/ipc/frame.hpp"

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

std::string_view to_string(Wire wire) noexcept { return wire == Wire::Json ? "json" : "msgpack"; }

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
  if (!f.text("entry", r.entry) || r.entry.empty()) {
    out.error = f.problem("entry", "a non-empty string");
    return;
  }
  if (!f.uint_or("timeout_ms", r.timeout_ms, 0)) {
    out.error = f.problem("timeout_ms", "an unsigned integer");
    return;
  }
  std::string codec_name = "msgpack";
  if (!f.text_or("codec", codec_name, "msgpack")) {
    out.error = f.problem("codec", "a string");
    return;
  }
  const auto codec = parse_codec(codec_name);
  if (!codec) {
    out.error = "unknown codec '" + codec_name + "' (expected msgpack, json, raw or arrow_ipc)";
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
  explicit MsgPackFields(const msgpack::object& map) : map_(map) {}

  const msgpack::object* find(std::string_view key) const {
    const msgpack::object* found = nullptr;
    for (std::uint32_t i = 0; i < map_.via.map.size; ++i) {
      const auto& kv = map_.via.map.ptr[i];
      if (kv.key.type == msgpack::type::STR &&
          std::string_view(kv.key.via.str.ptr, kv.key.via.str.size) == key)
        found = &kv.val;
    }
    return found;
  }
  bool uint(std::string_view key, std::uint64_t& out) const {
    const auto* v = find(key);
    if (!v || v->type != msgpack::type::POSITIVE_INTEGER) return false;
    out = v->via.u64;
    return true;
  }
  bool uint_or(std::string_view key, std::uint64_t& out, std::uint64_t fallback) const {
    const auto* v = find(key);
    if (!v || v->type == msgpack::type::NIL) {
      out = fallback;
      return true;
    }
    return uint(key, out);
  }
  bool text(std::string_view key, std::string& out) const {
    const auto* v = find(key);
    if (!v || v->type != msgpack::type::STR) return false;
    out.assign(v->via.str.ptr, v->via.str.size);
    return true;
  }
  bool text_or(std::string_view key, std::string& out, std::string_view fallback) const {
    const auto* v = find(key);
    if (!v || v->type == msgpack::type::NIL) {
      out = fallback;
      return true;
    }
    return text(key, out);
  }
  bool payload(std::string& out) const {
    const auto* v = find("payload");
    if (!v || v->type == msgpack::type::NIL) return true;
    if (v->type != msgpack::type::BIN && v->type != msgpack::type::STR) return false;
    out.assign(codec::detail::msgpack_string(*v));
    return true;
  }
  std::string problem(std::string_view key, std::string_view expected) const {
    const auto* v = find(key);
    return "envelope key '" + std::string(key) + "' must be " + std::string(expected) + ", got " +
           (v ? std::string(codec::msgpack_kind(*v)) : std::string("nothing"));
  }
  std::string payload_problem() const { return problem("payload", "bytes"); }

 private:
  const msgpack::object& map_;
};

class JsonFields {
 public:
  explicit JsonFields(const boost::json::object& obj) : obj_(obj) {}

  bool uint(std::string_view key, std::uint64_t& out) const {
    const auto* v = obj_.if_contains(key);
    if (!v) return false;
    if (v->is_uint64()) out = v->get_uint64();
    else if (v->is_int64() && v->get_int64() >= 0) out = static_cast<std::uint64_t>(v->get_int64());
    else return false;
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
  bool text(std::string_view key, std::string& out) const {
    const auto* v = obj_.if_contains(key);
    if (!v || !v->is_string()) return false;
    out.assign(v->get_string().data(), v->get_string().size());
    return true;
  }
  bool text_or(std::string_view key, std::string& out, std::string_view fallback) const {
    const auto* v = obj_.if_contains(key);
    if (!v || v->is_null()) {
      out = fallback;
      return true;
    }
    return text(key, out);
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
      msgpack::zone zone;
      const msgpack::object root = codec::unpack_msgpack(body, zone);
      if (root.type != msgpack::type::MAP) {
        out.error = "envelope must be a MsgPack map";
        return out;
      }
      MsgPackFields fields(root);
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

void pack_metric(codec::Packer& p, const MetricValue& value) {
  std::visit([&](const auto& v) { codec::pack(p, v); }, value);
}

void write_metric_json(std::string& out, const MetricValue& value) {
  std::visit([&](const auto& v) { codec::write_json(out, v); }, value);
}

}  // namespace

void append_response_frame(std::string& out, const Response& r, Wire wire) {
  FrameBuilder frame(out);
  const bool failed = r.status != StatusCode::Ok;
  if (wire == Wire::MsgPack) {
    codec::StringSink sink{out};
    codec::Packer p(sink);
    p.pack_map(4 + (failed ? 1 : 0) + (r.entry.empty() ? 0 : 1) + (r.metrics.empty() ? 0 : 1));
    codec::pack(p, std::string_view("request_id"));
    p.pack_uint64(r.request_id);
    codec::pack(p, std::string_view("status"));
    codec::pack(p, core::to_string(r.status));
    codec::pack(p, std::string_view("codec"));
    codec::pack(p, to_string(r.codec));
    codec::pack(p, std::string_view("payload"));
    p.pack_bin(static_cast<std::uint32_t>(r.payload.size()));
    p.pack_bin_body(r.payload.data(), static_cast<std::uint32_t>(r.payload.size()));
    if (failed) {
      codec::pack(p, std::string_view("error"));
      codec::pack(p, r.error);
    }
    if (!r.entry.empty()) {
      codec::pack(p, std::string_view("entry"));
      codec::pack(p, r.entry);
    }
    if (!r.metrics.empty()) {
      codec::pack(p, std::string_view("metrics"));
      p.pack_map(static_cast<std::uint32_t>(r.metrics.size()));
      for (const auto& [key, value] : r.metrics) {
        codec::pack(p, key);
        pack_metric(p, value);
      }
    }
  } else {
    out += "{\"request_id\":";
    codec::append_integer(out, r.request_id);
    out += ",\"status\":";
    codec::write_json_string(out, core::to_string(r.status));
    out += ",\"codec\":";
    codec::write_json_string(out, to_string(r.codec));
    out += ",\"payload_b64\":\"";
    codec::append_base64(out, r.payload);
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

void append_request_frame(std::string& out, const Request& r, Wire wire) {
  FrameBuilder frame(out);
  if (wire == Wire::MsgPack) {
    codec::StringSink sink{out};
    codec::Packer p(sink);
    p.pack_map(5);
    codec::pack(p, std::string_view("request_id"));
    p.pack_uint64(r.request_id);
    codec::pack(p, std::string_view("entry"));
    codec::pack(p, r.entry);
    codec::pack(p, std::string_view("timeout_ms"));
    p.pack_uint64(r.timeout_ms);
    codec::pack(p, std::string_view("codec"));
    codec::pack(p, to_string(r.codec));
    codec::pack(p, std::string_view("payload"));
    p.pack_bin(static_cast<std::uint32_t>(r.payload.size()));
    p.pack_bin_body(r.payload.data(), static_cast<std::uint32_t>(r.payload.size()));
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
MetricValue metric_from_msgpack(const msgpack::object& v) {
  switch (v.type) {
    case msgpack::type::POSITIVE_INTEGER: return static_cast<std::int64_t>(v.via.u64);
    case msgpack::type::NEGATIVE_INTEGER: return v.via.i64;
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64: return v.via.f64;
    case msgpack::type::STR: return std::string(v.via.str.ptr, v.via.str.size);
    default: throw core::InvalidInput("metric values must be numbers or strings");
  }
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

Response decode_response(std::string_view body, Wire* wire_out) {
  const auto wire = detect_wire(body);
  if (!wire) throw core::InvalidInput("response is neither a MsgPack map nor a JSON object");
  if (wire_out) *wire_out = *wire;
  Response r;
  std::string text;
  if (*wire == Wire::MsgPack) {
    msgpack::zone zone;
    const msgpack::object root = codec::unpack_msgpack(body, zone);
    if (root.type != msgpack::type::MAP) throw core::InvalidInput("response must be a map");
    MsgPackFields f(root);
    if (!f.uint("request_id", r.request_id)) throw core::InvalidInput(f.problem("request_id", "uint"));
    if (!f.text("status", text)) throw core::InvalidInput(f.problem("status", "a string"));
    r.status = status_from(text);
    if (f.text("codec", text)) r.codec = codec_from(text);
    if (!f.payload(r.payload)) throw core::InvalidInput(f.payload_problem());
    f.text("error", r.error);
    f.text("entry", r.entry);
    if (const auto* m = f.find("metrics"); m && m->type == msgpack::type::MAP) {
      for (std::uint32_t i = 0; i < m->via.map.size; ++i) {
        const auto& kv = m->via.map.ptr[i];
        if (kv.key.type != msgpack::type::STR) continue;
        r.metrics.emplace_back(std::string(kv.key.via.str.ptr, kv.key.via.str.size),
                               metric_from_msgpack(kv.val));
      }
    }
  } else {
    const boost::json::value root = codec::parse_json(body);
    if (!root.is_object()) throw core::InvalidInput("response must be a JSON object");
    JsonFields f(root.get_object());
    if (!f.uint("request_id", r.request_id)) throw core::InvalidInput(f.problem("request_id", "uint"));
    if (!f.text("status", text)) throw core::InvalidInput(f.problem("status", "a string"));
    r.status = status_from(text);
    if (f.text("codec", text)) r.codec = codec_from(text);
    if (!f.payload(r.payload)) throw core::InvalidInput(f.payload_problem());
    f.text("error", r.error);
    f.text("entry", r.entry);
    if (const auto* m = root.get_object().if_contains("metrics"); m && m->is_object()) {
      for (const auto& kv : m->get_object())
        r.metrics.emplace_back(std::string(kv.key()), metric_from_json(kv.value()));
    }
  }
  return r;
}

}  // namespace molt::ipc
