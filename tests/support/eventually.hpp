#pragma once
// Waits for something another thread or process does: polls `done` until it holds, false after
// a generous bound (a hang, not a speed check).

#include <chrono>
#include <functional>
#include <thread>

namespace molt::testing {

inline bool eventually(const std::function<bool()>& done,
                       std::chrono::milliseconds give_up_after = std::chrono::seconds(10),
                       std::chrono::microseconds pause = std::chrono::microseconds(500)) {
  const auto give_up = std::chrono::steady_clock::now() + give_up_after;
  while (!done()) {
    if (std::chrono::steady_clock::now() > give_up) return done();
    std::this_thread::sleep_for(pause);
  }
  return true;
}

}  // namespace molt::testing
