// fuzz_worker_stream: the worker's request path without the pipes. The input is a stream of
// frames; each frame goes through StdioServer::handle_frame into a real Dispatcher (one
// handler thread, a short queue, timers) over a few test exports.
//
// Properties:
//  - nothing crashes or throws out of handle_frame, whatever the frames say;
//  - everything the worker writes is whole frames, each a decodable response envelope;
//  - every frame gets exactly one answer (DESIGN.md §4: a cancelled request answers
//    Cancelled and the __cancel__ frame its own acknowledgement), within a bounded time.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>

#include "fuzz_check.hpp"
#include "fuzz_types.hpp"
#include "molt/ipc/envelope.hpp"
#include "molt/ipc/frame.hpp"
#include "molt/worker/dispatcher.hpp"
#include "molt/worker/export_registry.hpp"
#include "molt/worker/stdio_server.hpp"

namespace {

using namespace molt;
using namespace std::chrono_literals;

constexpr std::size_t kMaxFrame = 4096;

fuzz_types::PointSummary summarize(const fuzz_types::Point& p, worker::ExportContext&) {
  // An input error raised by the handler itself, not by the decoder.
  if (p.x == 13) throw core::InvalidInput("payload.x: 13 is not allowed");
  return {p.x, p.label, p.tags.size()};
}

fuzz_types::Shape same_shape(const fuzz_types::Shape& s, worker::ExportContext&) {
  return s;
}

// Raw bytes, reversed. The first byte picks a behaviour, so that the fuzzer can reach the
// dispatcher's other paths: a foreign exception, a cancellation check, a short sleep that lets
// cancels, deadlines and a full queue meet running work.
std::string reverse_bytes(std::string_view payload, worker::ExportContext& ctx) {
  if (!payload.empty()) {
    if (payload[0] == 'X') throw 42;  // not a std::exception, so the worker logs nothing
    if (payload[0] == 'C') ctx.check();
    if (payload[0] == 'S') ctx.sleep_for(200us);
  }
  return std::string(payload.rbegin(), payload.rend());
}

void register_exports(worker::ExportRegistry& registry) {
  using fuzz_types::Point;
  using fuzz_types::PointSummary;
  using fuzz_types::Shape;
  registry.add<Point, PointSummary>("point", ipc::Codec::MsgPack, ipc::Codec::Json, &summarize);
  registry.add<Shape, Shape>("shape", ipc::Codec::Json, ipc::Codec::MsgPack, &same_shape);
  registry.add_raw("bytes", ipc::Codec::Raw, ipc::Codec::Raw, &reverse_bytes);
}

// Parses every answer as it arrives and counts them.
class CheckingSink final : public worker::ResponseSink {
 public:
  void send(std::string_view frames) override {
    std::lock_guard lock(mutex_);
    while (!frames.empty()) {
      FUZZ_CHECK(frames.size() >= ipc::kFrameHeader);
      const auto* b = reinterpret_cast<const unsigned char*>(frames.data());
      const std::uint32_t length =
          b[0] | (b[1] << 8) | (b[2] << 16) | (static_cast<std::uint32_t>(b[3]) << 24);
      FUZZ_CHECK(frames.size() - ipc::kFrameHeader >= length);
      try {
        ipc::decode_response(frames.substr(ipc::kFrameHeader, length));
      } catch (const core::Error&) {
        FUZZ_CHECK(!"the worker wrote a response that does not decode");
      }
      frames.remove_prefix(ipc::kFrameHeader + length);
      ++answers_;
    }
    arrived_.notify_all();
  }

  void reset() {
    std::lock_guard lock(mutex_);
    answers_ = 0;
  }

  // Waits until at least `count` answers arrived or `limit` passed; returns how many did.
  std::size_t wait_for(std::size_t count, std::chrono::milliseconds limit) {
    std::unique_lock lock(mutex_);
    arrived_.wait_for(lock, limit, [&] { return answers_ >= count; });
    return answers_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable arrived_;
  std::size_t answers_ = 0;
};

// One worker for the whole run: starting threads per input would drown the signal.
struct Harness {
  Harness() { register_exports(registry); }

  worker::ExportRegistry registry;
  worker::ExportTable table = worker::ExportTable::all_of(registry);
  CheckingSink sink;
  worker::Dispatcher dispatcher{table, {.threads = 1, .max_queue = 4}, sink};
  // The fd is never read: the fuzzer calls handle_frame directly.
  worker::StdioServer server{dispatcher, sink, -1, kMaxFrame};
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Harness harness;
  harness.sink.reset();

  ipc::FrameReader reader(kMaxFrame);
  reader.feed(std::string_view(reinterpret_cast<const char*>(data), size));
  std::size_t frames = 0;
  std::string answers;
  while (auto event = reader.next()) {
    if (event->kind != ipc::FrameEvent::Kind::Frame) continue;
    harness.server.handle_frame(event->bytes, answers);
    ++frames;
    // Sent per frame, as run() would after a read that held one frame: immediate answers
    // then interleave with the pool's, the way they do on the real pipe.
    if (!answers.empty()) harness.sink.send(answers);
    answers.clear();
  }

  // The handlers are quick; ten seconds without an answer means one was lost.
  const std::size_t answered = harness.sink.wait_for(frames, 10s);
  FUZZ_CHECK(answered == frames);
  return 0;
}
