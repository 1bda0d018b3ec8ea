#include "molt/ipc/envelope.hpp"

#include <gtest/gtest.h>

#include <functional>
#include <limits>
#include <string>

#include "molt/codec/msgpack.hpp"
#include "molt/ipc/frame.hpp"

namespace molt::ipc {
namespace {

using core::StatusCode;

// The body of the single frame in `framed`, checking its header on the way.
std::string body_of(const std::string& framed) {
  FrameReader reader;
  reader.feed(framed);
  auto event = reader.next();
  EXPECT_TRUE(event && event->kind == FrameEvent::Kind::Frame);
  EXPECT_FALSE(reader.mid_frame()) << "more than one frame";
  return event ? std::string(event->bytes) : std::string();
}

std::string request_body(const Request& r, Wire wire) {
  std::string out;
  append_request_frame(out, r, wire);
  return body_of(out);
}

std::string response_body(const Response& r, Wire wire) {
  std::string out;
  append_response_frame(out, r, wire);
  return body_of(out);
}

// A MsgPack map built key by key, for envelopes our encoder would never write.
class MapBuilder {
 public:
  MapBuilder& add(std::string_view key, const std::function<void(codec::Packer&)>& value) {
    entries_.emplace_back(std::string(key), value);
    return *this;
  }
  MapBuilder& str(std::string_view key, std::string_view value) {
    return add(key, [v = std::string(value)](codec::Packer& p) { codec::pack(p, v); });
  }
  MapBuilder& uint(std::string_view key, std::uint64_t value) {
    return add(key, [value](codec::Packer& p) { p.pack_uint64(value); });
  }
  MapBuilder& bin(std::string_view key, std::string_view value) {
    return add(key, [v = std::string(value)](codec::Packer& p) {
      p.pack_bin(static_cast<std::uint32_t>(v.size()));
      p.pack_bin_body(v.data(), static_cast<std::uint32_t>(v.size()));
    });
  }
  MapBuilder& nil(std::string_view key) {
    return add(key, [](codec::Packer& p) { p.pack_nil(); });
  }
  MapBuilder& without(std::string_view key) {
    std::erase_if(entries_, [&](const auto& e) { return e.first == key; });
    return *this;
  }
  std::string bytes() const {
    std::string out;
    codec::StringSink sink{out};
    codec::Packer p(sink);
    p.pack_map(static_cast<std::uint32_t>(entries_.size()));
    for (const auto& [key, fill] : entries_) {
      codec::pack(p, key);
      fill(p);
    }
    return out;
  }

 private:
  std::vector<std::pair<std::string, std::function<void(codec::Packer&)>>> entries_;
};

MapBuilder valid_msgpack_request() {
  MapBuilder m;
  m.uint("request_id", 42).str("entry", "list_items").uint("timeout_ms", 250).str("codec", "json");
  m.bin("payload", "{}");
  return m;
}

// ---- names --------------------------------------------------------------------------------

TEST(EnvelopeNamesTest, WiresAndCodecs) {
  EXPECT_EQ(to_string(Wire::MsgPack), "msgpack");
  EXPECT_EQ(to_string(Wire::Json), "json");
  for (Codec c : {Codec::MsgPack, Codec::Json, Codec::Raw, Codec::ArrowIpc})
    EXPECT_EQ(parse_codec(to_string(c)), c);
  EXPECT_EQ(to_string(Codec::ArrowIpc), "arrow_ipc");
  EXPECT_EQ(to_string(Codec::Raw), "raw");
  EXPECT_FALSE(parse_codec("MsgPack"));
  EXPECT_FALSE(parse_codec(""));
  EXPECT_FALSE(parse_codec("xml"));
  EXPECT_EQ(kPingEntry, "__ping__");
  EXPECT_EQ(kCancelEntry, "__cancel__");
}

// ---- detect_wire --------------------------------------------------------------------------

TEST(DetectWireTest, MsgPackMapsOfEverySize) {
  EXPECT_EQ(detect_wire("\x80"), Wire::MsgPack);
  EXPECT_EQ(detect_wire("\x8f"), Wire::MsgPack);
  EXPECT_EQ(detect_wire(std::string("\xde\x00\x10", 3)), Wire::MsgPack);
  EXPECT_EQ(detect_wire(std::string("\xdf\x00\x00\x00\x10", 5)), Wire::MsgPack);
}

TEST(DetectWireTest, JsonObjectsWithLeadingWhitespace) {
  EXPECT_EQ(detect_wire("{}"), Wire::Json);
  EXPECT_EQ(detect_wire(" \t\r\n{\"a\":1}"), Wire::Json);
}

TEST(DetectWireTest, AnythingElseIsUnknown) {
  for (std::string body : {std::string(""), std::string("   "), std::string("[1]"),
                           std::string("\x90"), std::string("\xc0"), std::string("\x01"),
                           std::string("\xdc\x00\x01"), std::string(" x{"), std::string("null")})
    EXPECT_FALSE(detect_wire(body).has_value()) << body;
}

// ---- decode_request -----------------------------------------------------------------------

TEST(DecodeRequestTest, RoundTripsOnBothWires) {
  Request r;
  r.request_id = std::numeric_limits<std::uint64_t>::max();
  r.entry = "list_items";
  r.timeout_ms = 1500;
  r.codec = Codec::Json;
  r.payload = std::string("{\"n\":1}\0\xff", 9);
  for (Wire wire : {Wire::MsgPack, Wire::Json}) {
    const DecodedRequest d = decode_request(request_body(r, wire));
    EXPECT_TRUE(d.ok) << d.error;
    EXPECT_TRUE(d.wire_detected);
    EXPECT_EQ(d.wire, wire);
    EXPECT_EQ(d.request.request_id, r.request_id);
    EXPECT_EQ(d.request.entry, r.entry);
    EXPECT_EQ(d.request.timeout_ms, r.timeout_ms);
    EXPECT_EQ(d.request.codec, r.codec);
    EXPECT_EQ(d.request.payload, r.payload);
    EXPECT_EQ(d.error, "");
  }
}

TEST(DecodeRequestTest, EveryCodecAndAnEmptyPayload) {
  for (Codec c : {Codec::MsgPack, Codec::Json, Codec::Raw, Codec::ArrowIpc}) {
    for (Wire wire : {Wire::MsgPack, Wire::Json}) {
      const DecodedRequest d = decode_request(request_body({1, "__ping__", 0, c, ""}, wire));
      ASSERT_TRUE(d.ok) << d.error;
      EXPECT_EQ(d.request.codec, c);
      EXPECT_EQ(d.request.payload, "");
      EXPECT_EQ(d.request.entry, kPingEntry);
    }
  }
}

TEST(DecodeRequestTest, OptionalKeysTakeTheirDefaults) {
  const DecodedRequest mp =
      decode_request(MapBuilder().uint("request_id", 5).str("entry", "e").bytes());
  ASSERT_TRUE(mp.ok) << mp.error;
  EXPECT_EQ(mp.request.timeout_ms, 0u);
  EXPECT_EQ(mp.request.codec, Codec::MsgPack);
  EXPECT_EQ(mp.request.payload, "");

  const DecodedRequest nil = decode_request(MapBuilder()
                                                .uint("request_id", 5)
                                                .str("entry", "e")
                                                .nil("timeout_ms")
                                                .nil("codec")
                                                .nil("payload")
                                                .bytes());
  ASSERT_TRUE(nil.ok) << nil.error;
  EXPECT_EQ(nil.request.timeout_ms, 0u);
  EXPECT_EQ(nil.request.codec, Codec::MsgPack);

  const DecodedRequest js = decode_request(R"({"request_id":5,"entry":"e"})");
  ASSERT_TRUE(js.ok) << js.error;
  EXPECT_EQ(js.request.timeout_ms, 0u);
  EXPECT_EQ(js.request.codec, Codec::MsgPack);
  EXPECT_EQ(js.request.payload, "");

  const DecodedRequest js_null = decode_request(
      R"({"request_id":5,"entry":"e","timeout_ms":null,"codec":null,"payload_b64":null})");
  ASSERT_TRUE(js_null.ok) << js_null.error;
}

TEST(DecodeRequestTest, UnknownKeysAreIgnored) {
  const DecodedRequest mp = decode_request(valid_msgpack_request()
                                               .str("trace", "abc")
                                               .add("nested",
                                                    [](codec::Packer& p) {
                                                      p.pack_array(2);
                                                      p.pack_map(0);
                                                      p.pack_nil();
                                                    })
                                               .bytes());
  EXPECT_TRUE(mp.ok) << mp.error;
  EXPECT_EQ(mp.request.request_id, 42u);
  const DecodedRequest js = decode_request(
      R"({"x":[1,{"y":null}],"request_id":3,"entry":"e","payload":"ignored","v":1.5})");
  EXPECT_TRUE(js.ok) << js.error;
  EXPECT_EQ(js.request.payload, "") << "the JSON wire carries payload_b64, not payload";
}

TEST(DecodeRequestTest, MsgPackPayloadMayBeStr) {
  const DecodedRequest d =
      decode_request(valid_msgpack_request().without("payload").str("payload", "text").bytes());
  ASSERT_TRUE(d.ok) << d.error;
  EXPECT_EQ(d.request.payload, "text");
}

struct BadKey {
  const char* name;
  std::string body;
  const char* key;           // the key the error must name
  std::uint64_t request_id;  // what must still be known
};

void expect_rejected(const BadKey& c, Wire wire) {
  SCOPED_TRACE(c.name);
  const DecodedRequest d = decode_request(c.body);
  EXPECT_FALSE(d.ok);
  EXPECT_TRUE(d.wire_detected);
  EXPECT_EQ(d.wire, wire);
  EXPECT_NE(d.error.find(c.key), std::string::npos) << d.error;
  EXPECT_EQ(d.error.rfind("bad request envelope: ", 0), 0u) << d.error;
  EXPECT_EQ(d.request.request_id, c.request_id);
}

TEST(DecodeRequestTest, MsgPackMissingOrMistypedKeysAreNamed) {
  auto neg = [](codec::Packer& p) { p.pack_int64(-1); };
  auto text = [](codec::Packer& p) { codec::pack(p, std::string_view("7")); };
  auto num = [](codec::Packer& p) { p.pack_uint64(7); };
  auto dbl = [](codec::Packer& p) { codec::pack(p, 7.0); };
  const BadKey cases[] = {
      {"request_id missing", valid_msgpack_request().without("request_id").bytes(), "'request_id'",
       0},
      {"request_id negative",
       valid_msgpack_request().without("request_id").add("request_id", neg).bytes(), "'request_id'",
       0},
      {"request_id string",
       valid_msgpack_request().without("request_id").add("request_id", text).bytes(),
       "'request_id'", 0},
      {"request_id float",
       valid_msgpack_request().without("request_id").add("request_id", dbl).bytes(), "'request_id'",
       0},
      {"request_id nil", valid_msgpack_request().without("request_id").nil("request_id").bytes(),
       "'request_id'", 0},
      {"entry missing", valid_msgpack_request().without("entry").bytes(), "'entry'", 42},
      {"entry empty", valid_msgpack_request().without("entry").str("entry", "").bytes(), "'entry'",
       42},
      {"entry number", valid_msgpack_request().without("entry").add("entry", num).bytes(),
       "'entry'", 42},
      {"entry bin", valid_msgpack_request().without("entry").bin("entry", "e").bytes(), "'entry'",
       42},
      {"timeout_ms negative",
       valid_msgpack_request().without("timeout_ms").add("timeout_ms", neg).bytes(), "'timeout_ms'",
       42},
      {"timeout_ms string",
       valid_msgpack_request().without("timeout_ms").add("timeout_ms", text).bytes(),
       "'timeout_ms'", 42},
      {"codec number", valid_msgpack_request().without("codec").add("codec", num).bytes(),
       "'codec'", 42},
      {"codec unknown", valid_msgpack_request().without("codec").str("codec", "xml").bytes(),
       "codec 'xml'", 42},
      {"payload number", valid_msgpack_request().without("payload").add("payload", num).bytes(),
       "'payload'", 42},
  };
  for (const auto& c : cases) expect_rejected(c, Wire::MsgPack);
}

TEST(DecodeRequestTest, JsonMissingOrMistypedKeysAreNamed) {
  const BadKey cases[] = {
      {"request_id missing", R"({"entry":"e"})", "'request_id'", 0},
      {"request_id negative", R"({"request_id":-1,"entry":"e"})", "'request_id'", 0},
      {"request_id string", R"({"request_id":"7","entry":"e"})", "'request_id'", 0},
      {"request_id fraction", R"({"request_id":7.5,"entry":"e"})", "'request_id'", 0},
      {"request_id null", R"({"request_id":null,"entry":"e"})", "'request_id'", 0},
      {"entry missing", R"({"request_id":9})", "'entry'", 9},
      {"entry empty", R"({"request_id":9,"entry":""})", "'entry'", 9},
      {"entry array", R"({"request_id":9,"entry":["e"]})", "'entry'", 9},
      {"timeout_ms negative", R"({"request_id":9,"entry":"e","timeout_ms":-5})", "'timeout_ms'", 9},
      {"timeout_ms string", R"({"request_id":9,"entry":"e","timeout_ms":"5"})", "'timeout_ms'", 9},
      {"codec number", R"({"request_id":9,"entry":"e","codec":1})", "'codec'", 9},
      {"codec unknown", R"({"request_id":9,"entry":"e","codec":"xml"})", "codec 'xml'", 9},
      {"payload_b64 number", R"({"request_id":9,"entry":"e","payload_b64":12})", "'payload_b64'",
       9},
      {"payload_b64 not base64", R"({"request_id":9,"entry":"e","payload_b64":"abc"})",
       "'payload_b64'", 9},
      {"payload_b64 bad char", R"({"request_id":9,"entry":"e","payload_b64":"ab*="})",
       "'payload_b64'", 9},
  };
  for (const auto& c : cases) expect_rejected(c, Wire::Json);
}

TEST(DecodeRequestTest, ErrorSaysWhatTheKeyHeld) {
  const DecodedRequest d = decode_request(R"({"request_id":"7","entry":"e"})");
  EXPECT_EQ(d.error,
            "bad request envelope: envelope key 'request_id' must be an unsigned integer, got "
            "string");
  const DecodedRequest m = decode_request(valid_msgpack_request().without("entry").bytes());
  EXPECT_EQ(m.error,
            "bad request envelope: envelope key 'entry' must be a non-empty string, got "
            "nothing");
}

TEST(DecodeRequestTest, MalformedBodiesAreRefusedWithoutAnId) {
  struct Case {
    std::string body;
    bool wire_detected;
  };
  const std::string good = valid_msgpack_request().bytes();
  const Case cases[] = {
      {"", false},
      {"[1,2]", false},
      {"hello", false},
      {std::string("\x92\x01\x02", 3), false},
      {good.substr(0, good.size() - 1), true},   // truncated map
      {good + '\x01', true},                     // trailing bytes
      {R"({"request_id":1,"entry":"e")", true},  // unterminated JSON
      {R"({"request_id":1,"entry":"e"} x)", true},
  };
  for (const auto& c : cases) {
    const DecodedRequest d = decode_request(c.body);
    EXPECT_FALSE(d.ok);
    EXPECT_EQ(d.wire_detected, c.wire_detected) << d.error;
    EXPECT_FALSE(d.error.empty());
    EXPECT_EQ(d.request.request_id, 0u);
  }
}

TEST(DecodeRequestTest, LastDuplicateKeyWinsOnBothWires) {
  // As in a Python dict, so both wires agree with the client's view.
  const DecodedRequest m = decode_request(valid_msgpack_request().uint("request_id", 77).bytes());
  ASSERT_TRUE(m.ok) << m.error;
  EXPECT_EQ(m.request.request_id, 77u);
  const DecodedRequest j = decode_request(R"({"request_id":1,"entry":"e","request_id":77})");
  ASSERT_TRUE(j.ok) << j.error;
  EXPECT_EQ(j.request.request_id, 77u);
}

// ---- responses ----------------------------------------------------------------------------

Response sample_response() {
  Response r;
  r.request_id = 123456789012345ull;
  r.status = StatusCode::Ok;
  r.codec = Codec::MsgPack;
  r.payload = std::string("\x81\xa1k\x01\0\xff", 6);
  r.metrics = {{"queue_us", std::int64_t{12}},
               {"exec_us", std::int64_t{-3}},
               {"queue_ms", 0.012},
               {"exec_ms", 2.0},
               {"db_backend", std::string("sqlite")}};
  return r;
}

void expect_same(const Response& a, const Response& b) {
  EXPECT_EQ(a.request_id, b.request_id);
  EXPECT_EQ(a.status, b.status);
  EXPECT_EQ(a.codec, b.codec);
  EXPECT_EQ(a.payload, b.payload);
  EXPECT_EQ(a.error, b.error);
  EXPECT_EQ(a.entry, b.entry);
  EXPECT_EQ(a.metrics, b.metrics);
}

TEST(ResponseTest, RoundTripsOnBothWires) {
  for (Wire wire : {Wire::MsgPack, Wire::Json}) {
    SCOPED_TRACE(to_string(wire));
    const Response r = sample_response();
    Wire seen = wire == Wire::Json ? Wire::MsgPack : Wire::Json;
    const Response back = decode_response(response_body(r, wire), &seen);
    EXPECT_EQ(seen, wire);
    expect_same(back, r);
  }
}

TEST(ResponseTest, IntegralDoubleMetricsStayDoubles) {
  for (Wire wire : {Wire::MsgPack, Wire::Json}) {
    Response r;
    r.metrics = {{"exec_ms", 3.0}, {"zero", 0.0}};
    const Response back = decode_response(response_body(r, wire));
    ASSERT_EQ(back.metrics.size(), 2u);
    EXPECT_TRUE(std::holds_alternative<double>(back.metrics[0].second)) << to_string(wire);
    EXPECT_TRUE(std::holds_alternative<double>(back.metrics[1].second)) << to_string(wire);
  }
}

TEST(ResponseTest, ErrorsRoundTripAndAreOnlySentWhenNotOk) {
  for (Wire wire : {Wire::MsgPack, Wire::Json}) {
    for (StatusCode code : {StatusCode::InvalidInput, StatusCode::Busy, StatusCode::Timeout,
                            StatusCode::Cancelled, StatusCode::InternalError}) {
      Response r;
      r.request_id = 7;
      r.status = code;
      r.error = "bad \"input\"\n\tat payload.items[0]\x01";
      const Response back = decode_response(response_body(r, wire));
      expect_same(back, r);
    }
    Response ok;
    ok.error = "not sent";
    const std::string body = response_body(ok, wire);
    EXPECT_EQ(body.find("not sent"), std::string::npos);
    EXPECT_EQ(body.find("error"), std::string::npos);
    EXPECT_EQ(decode_response(body).error, "");
  }
}

TEST(ResponseTest, CancelAcknowledgementCarriesItsEntry) {
  for (Wire wire : {Wire::MsgPack, Wire::Json}) {
    Response ack;
    ack.request_id = 99;
    ack.codec = Codec::Raw;
    ack.entry = std::string(kCancelEntry);
    const std::string body = response_body(ack, wire);
    const Response back = decode_response(body);
    expect_same(back, ack);
    EXPECT_EQ(back.entry, "__cancel__");
    // An ordinary answer has no `entry` key at all.
    Response plain;
    plain.request_id = 99;
    EXPECT_EQ(response_body(plain, wire).find("entry"), std::string::npos);
  }
}

TEST(ResponseTest, JsonWireLayout) {
  Response r;
  r.request_id = 7;
  r.status = StatusCode::Ok;
  r.codec = Codec::Json;
  r.payload = "{}";
  r.metrics = {{"queue_us", std::int64_t{3}}, {"exec_ms", 0.5}, {"db", std::string("pg")}};
  EXPECT_EQ(response_body(r, Wire::Json),
            R"({"request_id":7,"status":"Ok","codec":"json","payload_b64":"e30=",)"
            R"("metrics":{"queue_us":3,"exec_ms":0.5,"db":"pg"}})");
  Response failed;
  failed.request_id = 8;
  failed.status = StatusCode::Busy;
  failed.error = "queue full";
  failed.entry = "__cancel__";
  EXPECT_EQ(response_body(failed, Wire::Json),
            R"({"request_id":8,"status":"Busy","codec":"raw","payload_b64":"",)"
            R"("error":"queue full","entry":"__cancel__"})");
}

// A large answer framed from its own bytes (take_response_frame) is the same frame as one
// built by copying; a small one, or one on the JSON wire, is built as before.
TEST(ResponseTest, ATakenFrameIsTheSameFrame) {
  for (const std::size_t size : {std::size_t{10}, kOwnFrameBytes, std::size_t{300'000}}) {
    for (const Wire wire : {Wire::MsgPack, Wire::Json}) {
      Response r;
      r.request_id = 42;
      r.codec = Codec::Json;
      r.payload = std::string(size, 'p');
      r.metrics.emplace_back("exec_us", std::int64_t{7});
      std::string copied;
      append_response_frame(copied, r, wire);
      const std::string taken = take_response_frame(r, wire);
      EXPECT_EQ(taken, copied) << size;
      // The large MsgPack-wire payload became the frame: given up, not copied.
      if (wire == Wire::MsgPack && size >= kOwnFrameBytes) {
        EXPECT_TRUE(r.payload.empty());
      }
    }
  }
}

TEST(ResponseTest, MsgPackWireUsesBinForThePayload) {
  Response r;
  r.request_id = 1;
  r.payload = "xyz";
  const std::string body = response_body(r, Wire::MsgPack);
  codec::MsgPackReader reader(body);
  codec::MsgPackValue root, key, value;
  reader.read(root);
  ASSERT_EQ(root.kind, codec::MsgPackValue::Kind::Map);
  EXPECT_EQ(root.count, 4u);  // request_id, status, codec, payload
  bool saw_payload = false;
  for (std::uint32_t i = 0; i < root.count; ++i) {
    reader.read(key);
    reader.read(value);
    reader.skip_inside(value, 1);
    if (key.bytes == "payload") {
      saw_payload = true;
      EXPECT_EQ(value.kind, codec::MsgPackValue::Kind::Bin);
    }
  }
  EXPECT_TRUE(saw_payload);
  reader.expect_end();
}

TEST(ResponseTest, SeveralFramesAppendToOneBuffer) {
  std::string out;
  Response a;
  a.request_id = 1;
  Response b;
  b.request_id = 2;
  append_response_frame(out, a, Wire::MsgPack);
  append_response_frame(out, b, Wire::Json);
  FrameReader reader;
  reader.feed(out);
  auto first = reader.next();
  ASSERT_TRUE(first);
  EXPECT_EQ(decode_response(first->bytes).request_id, 1u);
  auto second = reader.next();
  ASSERT_TRUE(second);
  EXPECT_EQ(decode_response(second->bytes).request_id, 2u);
  EXPECT_FALSE(reader.next());
}

TEST(ResponseTest, DecodeRefusesMalformedResponses) {
  for (const char* body :
       {"", "[]", "{}", R"({"request_id":1})", R"({"status":"Ok"})",
        R"({"request_id":1,"status":"Fine"})", R"({"request_id":1,"status":"Ok","codec":"xml"})",
        R"({"request_id":1,"status":"Ok","payload_b64":"@@@@"})",
        R"({"request_id":1,"status":"Ok","metrics":{"a":[1]}})",
        R"({"request_id":1,"status":"Ok")"}) {
    EXPECT_THROW(decode_response(body), core::InvalidInput) << body;
  }
  const std::string truncated = response_body(sample_response(), Wire::MsgPack);
  EXPECT_THROW(decode_response(truncated.substr(0, truncated.size() - 2)), core::InvalidInput);
}

}  // namespace
}  // namespace molt::ipc
