// FdResponseSink on a real pipe: a sender never waits for the reader, frames come out whole and
// in order, a reader that leaves marks the sink broken, and a plain file keeps blocking writes.
#include "molt/worker/response_sink.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <future>
#include <string>
#include <thread>
#include <vector>

namespace molt::worker {
namespace {

using namespace std::chrono_literals;

// Frame `i`: 4 bytes of i, then `size - 4` bytes of (i % 251).
std::string frame(std::uint32_t i, std::size_t size) {
  std::string f(reinterpret_cast<const char*>(&i), 4);
  f.append(size - 4, static_cast<char>(i % 251));
  return f;
}

std::string read_exactly(int fd, std::size_t n) {
  std::string out(n, '\0');
  std::size_t got = 0;
  while (got < n) {
    const ssize_t r = ::read(fd, out.data() + got, n - got);
    if (r <= 0) break;
    got += static_cast<std::size_t>(r);
  }
  out.resize(got);
  return out;
}

struct Pipe {
  int fds[2] = {-1, -1};
  Pipe() { EXPECT_EQ(::pipe(fds), 0); }
  ~Pipe() {
    for (int fd : fds)
      if (fd >= 0) ::close(fd);
  }
};

TEST(FdResponseSink, ASenderDoesNotWaitForTheReaderAndFramesKeepTheirOrder) {
  Pipe pipe;
  constexpr std::uint32_t kFrames = 200;
  constexpr std::size_t kSize = 4096;  // 800 KiB in all, far more than a pipe holds
  {
    FdResponseSink sink(pipe.fds[1]);
    auto sent = std::async(std::launch::async, [&] {
      for (std::uint32_t i = 0; i < kFrames; ++i) sink.send(frame(i, kSize));
    });
    // Nobody reads yet: a blocking sink would still be stuck in write(2).
    ASSERT_EQ(sent.wait_for(10s), std::future_status::ready);
    const std::string all = read_exactly(pipe.fds[0], kFrames * kSize);
    ASSERT_EQ(all.size(), kFrames * kSize);
    for (std::uint32_t i = 0; i < kFrames; ++i)
      ASSERT_EQ(all.substr(i * kSize, kSize), frame(i, kSize)) << "frame " << i;
    EXPECT_TRUE(sink.healthy());
    // After the reader caught up, a send goes straight out again.
    sink.send(frame(7, 16));
    EXPECT_EQ(read_exactly(pipe.fds[0], 16), frame(7, 16));
  }
}

// Frames given up (large answers: the sink keeps their own bytes instead of a copy) and lent
// ones, alternately, while nobody reads: all come out whole and in order.
TEST(FdResponseSink, GivenUpAndLentFramesKeepTheirOrder) {
  Pipe pipe;
  constexpr std::uint32_t kFrames = 12;
  const auto size_of = [](std::uint32_t i) -> std::size_t { return i % 2 ? 100 : 300'000; };
  {
    FdResponseSink sink(pipe.fds[1]);
    auto sent = std::async(std::launch::async, [&] {
      for (std::uint32_t i = 0; i < kFrames; ++i) {
        if (i % 2) {
          const std::string lent = frame(i, size_of(i));
          sink.send(std::string_view(lent));
        } else {
          sink.send(frame(i, size_of(i)));
        }
      }
    });
    ASSERT_EQ(sent.wait_for(10s), std::future_status::ready);
    for (std::uint32_t i = 0; i < kFrames; ++i)
      ASSERT_EQ(read_exactly(pipe.fds[0], size_of(i)), frame(i, size_of(i))) << "frame " << i;
    EXPECT_TRUE(sink.healthy());
  }
}

// close() sends what is pending before it returns, as the destructor would: molt-worker calls
// it before std::_Exit, which runs no destructor.
TEST(FdResponseSink, CloseSendsWhatIsPendingFirst) {
  Pipe pipe;
  constexpr std::uint32_t kFrames = 64;
  constexpr std::size_t kSize = 4096;  // 256 KiB: most of it waits in the sink
  FdResponseSink sink(pipe.fds[1]);
  for (std::uint32_t i = 0; i < kFrames; ++i) sink.send(frame(i, kSize));
  auto all =
      std::async(std::launch::async, [&] { return read_exactly(pipe.fds[0], kFrames * kSize); });
  sink.close();
  ::close(pipe.fds[1]);
  pipe.fds[1] = -1;
  const std::string got = all.get();
  ASSERT_EQ(got.size(), kFrames * kSize);
  EXPECT_EQ(got.substr((kFrames - 1) * kSize), frame(kFrames - 1, kSize));
  sink.send(frame(1, 16));  // after close: dropped, not written to a closed descriptor
}

// Answers nobody reads are bounded: past kBacklogLimit the sink says there is no room, so
// molt-worker reads no more requests until the reader catches up.
TEST(FdResponseSink, ABacklogOverItsLimitHasNoRoomUntilTheReaderCatchesUp) {
  Pipe pipe;
  FdResponseSink sink(pipe.fds[1]);
  EXPECT_TRUE(sink.wait_for_room(0ms));
  constexpr std::size_t kSize = 64 * 1024;
  const std::size_t frames = (FdResponseSink::kBacklogLimit + (1u << 20)) / kSize;
  for (std::uint32_t i = 0; i < frames; ++i) sink.send(frame(i, kSize));
  EXPECT_FALSE(sink.wait_for_room(100ms));  // nobody reads
  auto all =
      std::async(std::launch::async, [&] { return read_exactly(pipe.fds[0], frames * kSize); });
  EXPECT_TRUE(sink.wait_for_room(10s));
  EXPECT_EQ(all.get().size(), frames * kSize);
}

TEST(FdResponseSink, FramesFromManyThreadsArriveWhole) {
  Pipe pipe;
  constexpr std::uint32_t kThreads = 4, kPerThread = 300;
  constexpr std::size_t kSize = 1000;
  FdResponseSink sink(pipe.fds[1]);
  std::vector<std::thread> senders;
  for (std::uint32_t t = 0; t < kThreads; ++t)
    senders.emplace_back([&, t] {
      for (std::uint32_t i = 0; i < kPerThread; ++i) sink.send(frame(t * kPerThread + i, kSize));
    });
  const std::string all = read_exactly(pipe.fds[0], kThreads * kPerThread * kSize);
  for (auto& s : senders) s.join();
  ASSERT_EQ(all.size(), kThreads * kPerThread * kSize);
  std::vector<std::uint32_t> last(kThreads, 0);
  std::vector<bool> seen(kThreads, false);
  for (std::size_t at = 0; at < all.size(); at += kSize) {
    std::uint32_t id = 0;
    std::memcpy(&id, all.data() + at, 4);
    ASSERT_LT(id, kThreads * kPerThread);
    ASSERT_EQ(all.substr(at, kSize), frame(id, kSize)) << "frame at " << at << " is torn";
    // Each thread's frames in the order it sent them.
    const std::uint32_t t = id / kPerThread;
    if (seen[t]) {
      EXPECT_GT(id, last[t]);
    }
    seen[t] = true;
    last[t] = id;
  }
}

TEST(FdResponseSink, AReaderThatLeavesMarksTheSinkBroken) {
  std::signal(SIGPIPE, SIG_IGN);
  Pipe pipe;
  FdResponseSink sink(pipe.fds[1]);
  ::close(pipe.fds[0]);
  pipe.fds[0] = -1;
  sink.send(frame(1, 64));
  EXPECT_FALSE(sink.healthy());
  sink.send(frame(2, 64));  // dropped, no error
}

TEST(FdResponseSink, APipeThatStderrSharesStaysBlocking) {
  Pipe pipe;
  const int saved_stderr = ::dup(STDERR_FILENO);
  ASSERT_GE(saved_stderr, 0);
  ::dup2(pipe.fds[1], STDERR_FILENO);
  bool nonblocking = false;
  {
    FdResponseSink sink(pipe.fds[1]);
    nonblocking = (::fcntl(pipe.fds[1], F_GETFL) & O_NONBLOCK) != 0;
  }
  ::dup2(saved_stderr, STDERR_FILENO);
  ::close(saved_stderr);
  EXPECT_FALSE(nonblocking);
  // Without stderr on it, the same kind of pipe is made non-blocking.
  Pipe other;
  FdResponseSink sink(other.fds[1]);
  EXPECT_NE(::fcntl(other.fds[1], F_GETFL) & O_NONBLOCK, 0);
}

TEST(FdResponseSink, AFileGetsPlainWrites) {
  std::FILE* file = std::tmpfile();
  ASSERT_NE(file, nullptr);
  const int fd = ::fileno(file);
  {
    FdResponseSink sink(fd);
    for (std::uint32_t i = 0; i < 10; ++i) sink.send(frame(i, 100));
  }
  EXPECT_EQ(::fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
  ::lseek(fd, 0, SEEK_SET);
  const std::string all = read_exactly(fd, 1000);
  ASSERT_EQ(all.size(), 1000u);
  EXPECT_EQ(all.substr(900), frame(9, 100));
  std::fclose(file);
}

}  // namespace
}  // namespace molt::worker
