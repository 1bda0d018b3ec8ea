#pragma once
// The status a call throws as core::Error (Ok when it returns) and, through `message`, its text.

#include <functional>
#include <string>

#include "molt/core/status.hpp"

namespace molt::testing {

inline core::StatusCode status_of(const std::function<void()>& call,
                                  std::string* message = nullptr) {
  try {
    call();
  } catch (const core::Error& e) {
    if (message) *message = e.what();
    return e.code();
  }
  return core::StatusCode::Ok;
}

}  // namespace molt::testing
