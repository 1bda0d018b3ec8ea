// fuzz_frames: hostile bytes through the framing and envelope layers.
//
// Properties:
//  - FrameReader, fed the stream in fuzzer-chosen pieces, yields exactly the frames and
//    oversize notices that a plain one-pass reading of the whole stream yields, and agrees on
//    whether the stream stopped inside a frame.
//  - decode_request answers every frame body with a request or an error message, and throws
//    nothing (any exception escaping here is a crash for libFuzzer).
//  - A decoded request, re-encoded on its wire, decodes to the same request; a response built
//    from it survives append_response_frame + decode_response unchanged.
//
// Input layout: [n][n chunk sizes][stream]. The low 4 bits of the first byte give n; each of
// the next n bytes is the size of one piece of the stream (0: poll without feeding); whatever
// is left of the stream then arrives in one piece.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.hpp"
#include "molt/codec/utf8.hpp"
#include "molt/ipc/envelope.hpp"
#include "molt/ipc/frame.hpp"

namespace {

using namespace molt;

// Small, so that oversize notices and their skipping happen within libFuzzer's input sizes.
constexpr std::size_t kMaxFrame = 4096;

struct Event {
  bool oversized = false;
  std::string body;
  std::uint64_t declared = 0;
  bool operator==(const Event&) const = default;
};

std::uint32_t read_le32(const char* p) {
  const auto* b = reinterpret_cast<const unsigned char*>(p);
  return b[0] | (b[1] << 8) | (b[2] << 16) | (static_cast<std::uint32_t>(b[3]) << 24);
}

// The specification, written as plainly as possible: walk the whole stream once.
std::vector<Event> reference_events(std::string_view stream, bool& mid_frame) {
  std::vector<Event> events;
  const std::uint64_t n = stream.size();
  std::uint64_t pos = 0;
  while (pos <= n && n - pos >= ipc::kFrameHeader) {
    const std::uint32_t length = read_le32(stream.data() + pos);
    if (length > kMaxFrame) {
      events.push_back({true, {}, length});
      pos += ipc::kFrameHeader + length;  // may run past the end: the skip is still pending
      continue;
    }
    if (n - pos - ipc::kFrameHeader < length) break;
    events.push_back({false, std::string(stream.substr(pos + ipc::kFrameHeader, length)), length});
    pos += ipc::kFrameHeader + length;
  }
  mid_frame = pos != n;
  return events;
}

void drain(ipc::FrameReader& reader, std::vector<Event>& events) {
  while (auto event = reader.next()) {
    const bool oversized = event->kind == ipc::FrameEvent::Kind::Oversized;
    events.push_back({oversized, std::string(event->bytes), event->declared_size});
  }
}

bool same_request(const ipc::Request& a, const ipc::Request& b) {
  return a.request_id == b.request_id && a.entry == b.entry && a.timeout_ms == b.timeout_ms &&
         a.codec == b.codec && a.payload == b.payload;
}

bool same_response(const ipc::Response& a, const ipc::Response& b) {
  return a.request_id == b.request_id && a.status == b.status && a.codec == b.codec &&
         a.payload == b.payload && a.error == b.error && a.entry == b.entry &&
         a.metrics == b.metrics;
}

std::string_view body_of(std::string_view frame) {
  FUZZ_CHECK(frame.size() >= ipc::kFrameHeader);
  FUZZ_CHECK(read_le32(frame.data()) == frame.size() - ipc::kFrameHeader);
  return frame.substr(ipc::kFrameHeader);
}

void check_response_round_trip(const ipc::Response& response, ipc::Wire wire) {
  std::string frame;
  ipc::append_response_frame(frame, response, wire);
  ipc::Wire seen{};
  const ipc::Response back = ipc::decode_response(body_of(frame), &seen);
  FUZZ_CHECK(seen == wire);
  // Texts on the wire are valid UTF-8: ill-formed bytes come back as U+FFFD.
  ipc::Response expected = response;
  expected.error = codec::replace_invalid_utf8(response.error);
  expected.entry = codec::replace_invalid_utf8(response.entry);
  FUZZ_CHECK(codec::is_valid_utf8(back.error) && codec::is_valid_utf8(back.entry));
  FUZZ_CHECK(same_response(back, expected));
}

void check_envelope(std::string_view body) {
  const ipc::DecodedRequest decoded = ipc::decode_request(body);
  if (!decoded.ok) {
    FUZZ_CHECK(!decoded.error.empty());
    ipc::Response refusal;
    refusal.request_id = decoded.request.request_id;
    refusal.status = core::StatusCode::InvalidInput;
    refusal.error = decoded.error;
    check_response_round_trip(refusal, decoded.wire);
    return;
  }
  FUZZ_CHECK(decoded.wire_detected);
  FUZZ_CHECK(!decoded.request.entry.empty());

  std::string frame;
  ipc::append_request_frame(frame, decoded.request, decoded.wire);
  const ipc::DecodedRequest again = ipc::decode_request(body_of(frame));
  FUZZ_CHECK(again.ok);
  FUZZ_CHECK(again.wire == decoded.wire);
  FUZZ_CHECK(same_request(again.request, decoded.request));

  // An answer shaped like the worker's: the payload echoed, metrics of every kind. The double
  // is exactly representable so that its JSON text is unambiguous.
  ipc::Response answer;
  answer.request_id = decoded.request.request_id;
  answer.codec = decoded.request.codec;
  answer.payload = decoded.request.payload;
  answer.metrics = {{"queue_us", static_cast<std::int64_t>(decoded.request.request_id)},
                    {"exec_ms", 0.375},
                    {"entry", decoded.request.entry}};
  if (decoded.request.entry == ipc::kCancelEntry) answer.entry = decoded.request.entry;
  check_response_round_trip(answer, decoded.wire);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  if (input.empty()) return 0;
  const std::size_t cuts = std::min<std::size_t>(input[0] & 0x0f, input.size() - 1);
  const std::string_view sizes = input.substr(1, cuts);
  const std::string_view stream = input.substr(1 + cuts);

  ipc::FrameReader reader(kMaxFrame);
  std::vector<Event> events;
  std::string_view rest = stream;
  for (const char c : sizes) {
    const std::size_t piece = std::min<std::size_t>(static_cast<unsigned char>(c), rest.size());
    reader.feed(rest.substr(0, piece));
    rest.remove_prefix(piece);
    drain(reader, events);
  }
  reader.feed(rest);
  drain(reader, events);

  bool expected_mid_frame = false;
  const std::vector<Event> expected = reference_events(stream, expected_mid_frame);
  FUZZ_CHECK(events == expected);
  FUZZ_CHECK(reader.mid_frame() == expected_mid_frame);

  for (const Event& event : events)
    if (!event.oversized) check_envelope(event.body);
  return 0;
}
