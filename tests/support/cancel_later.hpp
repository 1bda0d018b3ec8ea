#pragma once
// A cancel token that fires on its own a while from now, as a caller leaving would: the
// source is cancelled from a thread of its own, joined when this goes.

#include <chrono>
#include <thread>

#include "molt/core/cancel.hpp"

namespace molt::testing {

class CancelLater {
 public:
  explicit CancelLater(std::chrono::milliseconds after)
      : thread_([this, after] {
          std::this_thread::sleep_for(after);
          source_.cancel();
        }) {}
  ~CancelLater() { thread_.join(); }
  CancelLater(const CancelLater&) = delete;
  CancelLater& operator=(const CancelLater&) = delete;

  core::CancelToken token() const { return source_.token(); }

 private:
  core::CancelSource source_;  // before thread_: it exists before the thread starts
  std::thread thread_;
};

}  // namespace molt::testing
