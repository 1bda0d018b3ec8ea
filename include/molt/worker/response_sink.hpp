#pragma once
// Where answers go. FdResponseSink writes frames to a file descriptor from any thread and
// coalesces: while one thread writes, others append to a pending buffer that is sent next, so
// a burst of answers costs a few write(2) calls, not one each.
//
// On a pipe or socket a handler thread never waits for the reader: the descriptor is made
// non-blocking, the calling thread writes what fits, and a drain thread takes over whatever did
// not fit (and what arrives behind it) until the reader has caught up. One answer at a time
// thus stays one write(2) with no thread hop, while a caller with many answers in flight (the
// 64 KiB pipe full) no longer puts a handler thread to sleep. A pipe that stderr shares keeps
// blocking writes.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

namespace molt::worker {

class ResponseSink {
 public:
  virtual ~ResponseSink() = default;
  // `frames` holds one or more complete frames; they are never interleaved with others.
  virtual void send(std::string_view frames) = 0;
  // The same, giving the bytes up: a sink that must keep what it cannot write at once may
  // keep them as they are instead of copying them.
  virtual void send(std::string&& frames) { send(std::string_view(frames)); }
  // Waits up to `wait` while the answers not yet taken by the reader are too many to read
  // more requests (each request read would add to them). True when there is room.
  virtual bool wait_for_room(std::chrono::milliseconds /*wait*/) { return true; }
};

class FdResponseSink final : public ResponseSink {
 public:
  explicit FdResponseSink(int fd);
  // Sends what is still pending, for at most a second without progress from the reader.
  ~FdResponseSink() override;
  // The same, now, for a process about to end without destructors (std::_Exit); later sends
  // are dropped. Idempotent.
  void close();
  FdResponseSink(const FdResponseSink&) = delete;
  FdResponseSink& operator=(const FdResponseSink&) = delete;

  void send(std::string_view frames) override;
  void send(std::string&& frames) override;
  // Room: at most kBacklogLimit bytes of answers wait for the reader (or the sink is broken or
  // closed, and nothing waits any more).
  bool wait_for_room(std::chrono::milliseconds wait) override;
  static constexpr std::size_t kBacklogLimit = 8u << 20;
  // False once the peer stopped reading (EPIPE or another write error); later sends are dropped.
  bool healthy() const;

 private:
  enum class Write { Done, WouldBlock, Failed };
  // send() of `frames`, which are `owned`'s bytes when the caller gave them up.
  void send_frames(std::string_view frames, std::string* owned);
  // Writes from the front of `bytes`, removing what was written.
  Write write_some(std::string_view& bytes);
  void drain_loop();

  const int fd_;
  bool nonblocking_ = false;
  mutable std::mutex mutex_;
  std::condition_variable wake_drain_;
  std::condition_variable room_;
  std::size_t batch_bytes_ = 0;  // what the drain thread took from pending_ and still writes
  std::string pending_;
  bool writing_ = false;   // a sending thread is in write(2)
  bool draining_ = false;  // the drain thread owns the output until pending_ is empty
  bool stopping_ = false;
  bool broken_ = false;
  bool closed_ = false;
  std::thread drain_;  // only for a non-blocking descriptor
};

}  // namespace molt::worker
