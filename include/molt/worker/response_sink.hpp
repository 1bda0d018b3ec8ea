#pragma once
// Where answers go. FdResponseSink writes frames to a file descriptor from any thread and
// coalesces: while one thread writes, others append to a pending buffer that the writing
// thread sends next, so a burst of answers costs a few write(2) calls, not one each.

#include <mutex>
#include <string>
#include <string_view>

namespace molt::worker {

class ResponseSink {
 public:
  virtual ~ResponseSink() = default;
  // `frames` holds one or more complete frames; they are never interleaved with others.
  virtual void send(std::string_view frames) = 0;
};

class FdResponseSink final : public ResponseSink {
 public:
  explicit FdResponseSink(int fd) : fd_(fd) {}
  void send(std::string_view frames) override;
  // False once the peer stopped reading (EPIPE or another write error); later sends are dropped.
  bool healthy() const;

 private:
  bool write_all(std::string_view bytes);

  const int fd_;
  mutable std::mutex mutex_;
  std::string pending_;
  bool writing_ = false;
  bool broken_ = false;
};

}  // namespace molt::worker
