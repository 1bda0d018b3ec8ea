#include "molt/worker/line_log.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <future>
#include <string>

namespace molt::worker {
namespace {

using namespace std::chrono_literals;

std::string line(int i) {
  return "{\"line\":" + std::to_string(i) + ",\"pad\":\"" + std::string(100, 'x') + "\"}\n";
}

// A stderr pipe nobody reads (about 600 lines fill it) must not stop the threads that log:
// their writes return at once, and past the waiting room lines are dropped and counted.
TEST(LineLog, AReaderThatDoesNotReadDelaysNoWriter) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  {
    LineLog log(fds[1], 1000);
    const auto begin = std::chrono::steady_clock::now();
    for (int i = 0; i < 5000; ++i) log.write(line(i));
    EXPECT_LT(std::chrono::steady_clock::now() - begin, 2s);
    EXPECT_GT(log.dropped(), 0u);
  }  // the destructor gives up on the stuck writer after a second
  // Closing the reading end makes the writer's write(2) fail (EPIPE, ignored as molt-worker
  // ignores it), so its thread ends; the writing end stays open, since that thread may still
  // be about to use it.
  std::signal(SIGPIPE, SIG_IGN);
  ::close(fds[0]);
}

TEST(LineLog, LinesArriveWholeAndInOrder) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  auto text = std::async(std::launch::async, [&] {
    std::string all;
    char chunk[4096];
    ssize_t n;
    while ((n = ::read(fds[0], chunk, sizeof(chunk))) > 0) all.append(chunk, n);
    return all;
  });
  {
    LineLog log(fds[1]);
    for (int i = 0; i < 200; ++i) log.write(line(i));
  }  // everything is written before the destructor returns
  ::close(fds[1]);
  std::string expected;
  for (int i = 0; i < 200; ++i) expected += line(i);
  EXPECT_EQ(text.get(), expected);
  ::close(fds[0]);
}

}  // namespace
}  // namespace molt::worker
