#pragma once
// Request and response envelopes on both wires (DESIGN.md §4): a MsgPack map with `payload`
// as bin, or a JSON object with `payload_b64`. Unknown keys are ignored; a known key of the
// wrong type is an error that names it.

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "molt/core/status.hpp"

namespace molt::ipc {

enum class Wire { MsgPack, Json };
std::string_view to_string(Wire wire) noexcept;

// How a payload is encoded (the `codec` key).
enum class Codec { MsgPack, Json, Raw, ArrowIpc };
std::string_view to_string(Codec codec) noexcept;
std::optional<Codec> parse_codec(std::string_view name) noexcept;

inline constexpr std::string_view kPingEntry = "__ping__";
inline constexpr std::string_view kCancelEntry = "__cancel__";

struct Request {
  std::uint64_t request_id = 0;
  std::string entry;
  std::uint64_t timeout_ms = 0;
  Codec codec = Codec::MsgPack;
  std::string payload;
};

// Metric values are numbers, or a few strings (DESIGN.md §4).
using MetricValue = std::variant<std::int64_t, double, std::string>;
using Metrics = std::vector<std::pair<std::string, MetricValue>>;

struct Response {
  std::uint64_t request_id = 0;
  core::StatusCode status = core::StatusCode::Ok;
  Codec codec = Codec::Raw;
  std::string payload;
  std::string error;  // set when status != Ok
  std::string entry;  // set only on a __cancel__ acknowledgement
  Metrics metrics;
};

// Which wire a frame body is on: a MsgPack map or a JSON object (leading whitespace allowed).
// Anything else is nullopt.
std::optional<Wire> detect_wire(std::string_view body) noexcept;

// The outcome of decoding one request frame. On failure, `request_id` is whatever could be
// read (0 when unknowable) so the error answer reaches the right caller.
struct DecodedRequest {
  Wire wire = Wire::MsgPack;
  bool wire_detected = false;  // false: the body was neither MsgPack map nor JSON object
  bool ok = false;
  Request request;
  std::string error;
};
DecodedRequest decode_request(std::string_view body);

// The largest payload an answer on `wire` can carry within a frame body of `max_frame` bytes:
// room is kept for the envelope (status, metrics, error), and the JSON wire base64s the
// payload. 0 when `max_frame` is 0 (no limit).
constexpr std::size_t payload_room(std::size_t max_frame, Wire wire) {
  constexpr std::size_t kEnvelopeRoom = 4096;
  if (max_frame == 0) return 0;
  const std::size_t room = max_frame > kEnvelopeRoom ? max_frame - kEnvelopeRoom : 1;
  return wire == Wire::Json ? std::max<std::size_t>(room / 4 * 3, 1) : room;
}

// Appends a complete response frame (header + envelope) on `wire` to `out`.
void append_response_frame(std::string& out, const Response& response, Wire wire);
// The same frame, returned, taking the payload out of `response` (and making its texts valid
// UTF-8): a MsgPack-wire payload of at least kOwnFrameBytes becomes the frame itself, the
// envelope put in front of it (in its own room when it has some to spare), so that a large
// answer is not copied.
inline constexpr std::size_t kOwnFrameBytes = 64 * 1024;
std::string take_response_frame(Response& response, Wire wire);
// Appends a complete request frame; used by clients, tests and benchmarks.
void append_request_frame(std::string& out, const Request& request, Wire wire);

// Decodes a response frame body (for clients, tests and benchmarks); throws InvalidInput.
Response decode_response(std::string_view body, Wire* wire_out = nullptr);

}  // namespace molt::ipc
