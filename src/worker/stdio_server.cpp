#include "molt/worker/stdio_server.hpp"

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

#include "molt/codec/json.hpp"
#include "molt/codec/msgpack.hpp"

namespace molt::worker {

using core::StatusCode;

namespace {

struct CancelPayload {
  std::uint64_t request_id = 0;
};
BOOST_DESCRIBE_STRUCT(CancelPayload, (), (request_id))

void append_error(std::string& answers, std::uint64_t id, ipc::Wire wire, std::string message) {
  ipc::Response r;
  r.request_id = id;
  r.status = StatusCode::InvalidInput;
  r.error = std::move(message);
  ipc::append_response_frame(answers, r, wire);
}

}  // namespace

void StdioServer::run() {
  std::string answers;
  while (!stop_.load(std::memory_order_acquire)) {
    // A peer that sends requests but reads no answers would make them pile up without
    // bound: the next requests are read once the answers waiting for it are few again.
    if (!sink_.wait_for_room(std::chrono::milliseconds(50))) continue;
    auto room = reader_.prepare();
    const ssize_t n = ::read(in_fd_, room.data(), room.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      // stdin can be non-blocking: the same socket as stdout (socat, a systemd socket unit),
      // whose flags the answer writer set. No input yet is a wait, not the end.
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        pollfd readable{in_fd_, POLLIN, 0};
        ::poll(&readable, 1, -1);
        continue;
      }
      break;
    }
    if (n == 0) {
      if (reader_.mid_frame()) append_error(answers, 0, last_wire_, "input ended inside a frame");
      if (!answers.empty()) sink_.send(answers);
      break;
    }
    reader_.commit(static_cast<std::size_t>(n));
    while (auto event = reader_.next()) {
      if (event->kind == ipc::FrameEvent::Kind::Oversized)
        handle_oversized(event->declared_size, answers);
      else
        handle_frame(event->bytes, answers);
    }
    if (!answers.empty()) {
      sink_.send(answers);
      answers.clear();
      if (answers.capacity() > (1u << 20)) std::string().swap(answers);
    }
  }
}

void StdioServer::handle_oversized(std::uint64_t declared, std::string& answers) const {
  append_error(answers, 0, last_wire_,
               "frame of " + std::to_string(declared) + " bytes exceeds the limit of " +
                   std::to_string(reader_.max_frame()) + " bytes; skipped");
}

void StdioServer::handle_frame(std::string_view body, std::string& answers) {
  ipc::DecodedRequest decoded = ipc::decode_request(body);
  if (decoded.wire_detected)
    last_wire_ = decoded.wire;
  else
    decoded.wire = last_wire_;
  if (!decoded.ok) {
    append_error(answers, decoded.request.request_id, decoded.wire, std::move(decoded.error));
    return;
  }
  ipc::Request& request = decoded.request;
  if (request.entry == ipc::kPingEntry) {
    ipc::Response pong;
    pong.request_id = request.request_id;
    ipc::append_response_frame(answers, pong, decoded.wire);
    return;
  }
  if (request.entry == ipc::kCancelEntry) {
    handle_cancel(request, decoded.wire, answers);
    return;
  }
  // Deadlines count from here; decoding the envelope took a microsecond at most.
  const auto arrival = core::Clock::now();
  if (auto immediate = dispatcher_.submit(std::move(request), decoded.wire, arrival))
    ipc::append_response_frame(answers, *immediate, decoded.wire);
}

void StdioServer::handle_cancel(const ipc::Request& request, ipc::Wire wire, std::string& answers) {
  // The target is in the payload; the envelope carries the same id, which is the fallback
  // for a client that sends an empty payload.
  std::uint64_t target = request.request_id;
  if (!request.payload.empty()) {
    // In the envelope's codec; a `raw` one is read in the wire's own form.
    const bool json = request.codec == ipc::Codec::Json ||
                      (request.codec == ipc::Codec::Raw && wire == ipc::Wire::Json);
    try {
      target = json ? codec::decode_json<CancelPayload>(request.payload).request_id
                    : codec::decode_msgpack<CancelPayload>(request.payload).request_id;
    } catch (const core::Error& e) {
      append_error(answers, request.request_id, wire, std::string("bad __cancel__: ") + e.what());
      return;
    }
  }
  dispatcher_.cancel(target);
  // Acknowledged after the cancelled request's own answer, which the dispatcher already sent.
  ipc::Response ack;
  ack.request_id = request.request_id;
  ack.entry = std::string(ipc::kCancelEntry);
  ipc::append_response_frame(answers, ack, wire);
}

}  // namespace molt::worker
