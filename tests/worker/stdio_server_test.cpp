#include "molt/worker/stdio_server.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "collecting_sink.hpp"

namespace molt::worker {
namespace {

using core::StatusCode;
using ipc::Codec;
using ipc::Wire;

ipc::Request request(std::uint64_t id, std::string entry, Codec codec = Codec::Raw,
                     std::string payload = {}) {
  ipc::Request r;
  r.request_id = id;
  r.entry = std::move(entry);
  r.codec = codec;
  r.payload = std::move(payload);
  return r;
}

class StdioServerTest : public ::testing::Test {
 protected:
  StdioServerTest() {
    registry.add_raw("echo", Codec::Raw, Codec::Raw,
                     [](std::string_view p, ExportContext&) { return std::string(p); });
    table = ExportTable::all_of(registry);
  }

  // Runs a server reading `in_fd` until its input ends, then shuts its dispatcher down.
  void run_until_input_ends(int in_fd, ResponseSink& sink, std::size_t max_frame = 1024) {
    Dispatcher dispatcher(*table, {1, 16}, sink);
    StdioServer server(dispatcher, sink, in_fd, max_frame);
    server.run();
    dispatcher.shutdown(std::chrono::seconds(2));
  }

  // Serves `input` on a pipe and returns every answer in order. The pipe is closed once
  // `expected` answers are out, because end of input cancels whatever is still running.
  std::vector<ipc::Response> serve(const std::string& input, std::size_t expected,
                                   std::size_t max_frame = 1024,
                                   std::vector<Wire>* wires = nullptr) {
    int fds[2];
    EXPECT_EQ(::pipe(fds), 0);
    testing::CollectingSink sink;
    std::thread writer([&] {
      std::string_view rest = input;
      while (!rest.empty()) {  // small writes: frames arrive split
        const std::size_t n = std::min<std::size_t>(rest.size(), 7);
        EXPECT_EQ(::write(fds[1], rest.data(), n), static_cast<ssize_t>(n));
        rest.remove_prefix(n);
      }
      sink.wait_for(expected);
      ::close(fds[1]);
    });
    run_until_input_ends(fds[0], sink, max_frame);
    writer.join();
    ::close(fds[0]);
    if (wires) *wires = sink.wires();
    return sink.wait_for(0);
  }

  ExportRegistry registry;
  std::optional<ExportTable> table;
};

TEST_F(StdioServerTest, PingAndRequestsSplitAcrossReadsAreAnswered) {
  std::string input;
  ipc::append_request_frame(input, request(1, "__ping__"), Wire::MsgPack);
  ipc::append_request_frame(input, request(2, "echo", Codec::Raw, "hello"), Wire::Json);
  auto answers = serve(input, 2);
  ASSERT_EQ(answers.size(), 2u);
  // The ping is answered by the reading thread, the echo by a pool thread: either may be first.
  if (answers[0].request_id != 1) std::swap(answers[0], answers[1]);
  EXPECT_EQ(answers[0].request_id, 1u);
  EXPECT_EQ(answers[0].status, StatusCode::Ok);
  EXPECT_EQ(answers[1].request_id, 2u);
  EXPECT_EQ(answers[1].payload, "hello");
}

// stdin and stdout the same socket (socat, a systemd socket unit): the answer writer makes it
// non-blocking, and a read with no input yet must wait rather than end the worker.
TEST_F(StdioServerTest, ANonBlockingInputWithNothingYetIsWaitedFor) {
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  ASSERT_EQ(::fcntl(fds[0], F_SETFL, ::fcntl(fds[0], F_GETFL) | O_NONBLOCK), 0);
  testing::CollectingSink sink;
  std::thread peer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the server reads first
    std::string input;
    ipc::append_request_frame(input, request(1, "__ping__"), Wire::MsgPack);
    EXPECT_EQ(::write(fds[1], input.data(), input.size()), static_cast<ssize_t>(input.size()));
    sink.wait_for(1);
    ::shutdown(fds[1], SHUT_WR);
  });
  run_until_input_ends(fds[0], sink);
  peer.join();
  ::close(fds[0]);
  ::close(fds[1]);
  const auto answers = sink.wait_for(0);
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].request_id, 1u);
  EXPECT_EQ(answers[0].status, StatusCode::Ok);
}

// While the answers wait for a reader that does not read (the sink has no room), no request
// is read, so they cannot pile up; once there is room the requests are served.
TEST_F(StdioServerTest, NoRequestIsReadWhileTheSinkHasNoRoom) {
  class FullSink final : public ResponseSink {
   public:
    explicit FullSink(testing::CollectingSink& answers) : answers_(answers) {}
    void send(std::string_view frames) override { answers_.send(frames); }
    bool wait_for_room(std::chrono::milliseconds wait) override {
      std::this_thread::sleep_for(std::min(wait, std::chrono::milliseconds(5)));
      return room.load();
    }
    std::atomic<bool> room{false};

   private:
    testing::CollectingSink& answers_;
  };
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  testing::CollectingSink answers;
  FullSink sink(answers);
  std::string input;
  ipc::append_request_frame(input, request(1, "__ping__"), Wire::MsgPack);
  ASSERT_EQ(::write(fds[1], input.data(), input.size()), static_cast<ssize_t>(input.size()));
  std::thread peer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    EXPECT_EQ(answers.wait_for(0).size(), 0u);  // not read, so not answered
    sink.room = true;
    answers.wait_for(1);
    ::close(fds[1]);
  });
  run_until_input_ends(fds[0], sink);
  peer.join();
  ::close(fds[0]);
  EXPECT_EQ(answers.wait_for(0).size(), 1u);
}

TEST_F(StdioServerTest, OversizedFrameIsSkippedEvenWhenItArrivesInPieces) {
  std::string input;
  ipc::append_frame(input, std::string(5000, '\x81'));  // would parse as maps if not skipped
  ipc::append_request_frame(input, request(3, "__ping__"), Wire::MsgPack);
  const auto answers = serve(input, 2, /*max_frame=*/1024);
  ASSERT_EQ(answers.size(), 2u);
  EXPECT_EQ(answers[0].request_id, 0u);
  EXPECT_EQ(answers[0].status, StatusCode::InvalidInput);
  EXPECT_EQ(answers[1].request_id, 3u);
  EXPECT_EQ(answers[1].status, StatusCode::Ok);
}

TEST_F(StdioServerTest, UnreadableFrameIsAnsweredOnTheWireThePeerUsedLast) {
  std::string input;
  ipc::append_request_frame(input, request(1, "__ping__"), Wire::Json);
  ipc::append_frame(input, "\x01\x02 not an envelope");
  std::vector<Wire> wires;
  const auto answers = serve(input, 2, 1024, &wires);
  ASSERT_EQ(answers.size(), 2u);
  EXPECT_EQ(answers[1].status, StatusCode::InvalidInput);
  EXPECT_EQ(wires[1], Wire::Json);
}

TEST_F(StdioServerTest, TruncatedFrameAtEndOfInputIsReported) {
  std::string input;
  ipc::append_request_frame(input, request(1, "__ping__"), Wire::MsgPack);
  input.append("\x20\x00\x00\x00\x85", 5);
  const auto answers = serve(input, 1);
  ASSERT_EQ(answers.size(), 2u);
  EXPECT_EQ(answers[1].status, StatusCode::InvalidInput);
  EXPECT_NE(answers[1].error.find("inside a frame"), std::string::npos);
}

TEST_F(StdioServerTest, CancelWithUndecodablePayloadIsInvalidInput) {
  std::string input;
  ipc::append_request_frame(input, request(4, "__cancel__", Codec::MsgPack, "\xc1"), Wire::MsgPack);
  const auto answers = serve(input, 1);
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].request_id, 4u);
  EXPECT_EQ(answers[0].status, StatusCode::InvalidInput);
  EXPECT_NE(answers[0].error.find("bad __cancel__"), std::string::npos) << answers[0].error;
}

// Found by an adversarial review: a raw-coded payload on the JSON wire was read as MsgPack
// (`{` is the integer 123 there).
TEST_F(StdioServerTest, ARawCancelPayloadIsReadInTheWiresForm) {
  std::string input;
  ipc::append_request_frame(input, request(5, "__cancel__", Codec::Raw, R"({"request_id": 9})"),
                            Wire::Json);
  ipc::append_request_frame(input, request(6, "__cancel__", Codec::Raw, "\x81\xaarequest_id\x09"),
                            Wire::MsgPack);
  const auto answers = serve(input, 2);
  ASSERT_EQ(answers.size(), 2u);
  EXPECT_EQ(answers[0].status, StatusCode::Ok) << answers[0].error;
  EXPECT_EQ(answers[1].status, StatusCode::Ok) << answers[1].error;
}

}  // namespace
}  // namespace molt::worker
