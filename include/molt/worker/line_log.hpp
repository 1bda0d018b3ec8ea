#pragma once
// Log lines written to a descriptor (stderr) by a thread of their own. A reader that stops
// reading (a pipe nobody drains) then delays no handler and no timer: past `max_waiting`
// lines not yet written, new lines are dropped and counted.

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>

namespace molt::worker {

class LineLog {
 public:
  explicit LineLog(int fd, std::size_t max_waiting = 4096);
  // Writes what waits, for up to a second; a writer stuck on a full pipe is left behind.
  ~LineLog();
  LineLog(const LineLog&) = delete;
  LineLog& operator=(const LineLog&) = delete;

  // `line` ends with its newline; it is written whole, never interleaved with another.
  void write(std::string line);
  std::uint64_t dropped() const;

 private:
  // Shared with the writing thread, which may outlive this object (stuck in write(2)).
  struct State {
    std::mutex mutex;
    std::condition_variable wake;
    std::condition_variable idle;
    std::deque<std::string> lines;
    bool writing = false;
    bool stopping = false;
    std::uint64_t dropped = 0;
  };
  static void run(int fd, std::shared_ptr<State> state);

  std::shared_ptr<State> state_;
  std::size_t max_waiting_;
};

}  // namespace molt::worker
