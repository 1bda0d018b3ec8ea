#pragma once
// QueryOptions::max_bytes while a result is read: each cell's bytes are taken from the budget
// as it arrives, so an oversized result stops at the row that crosses it.

#include <cstddef>
#include <string>

#include "molt/core/status.hpp"

namespace molt::db::detail {

class ResultBudget {
 public:
  explicit ResultBudget(std::size_t max_bytes) : max_(max_bytes), left_(max_bytes) {}

  bool limited() const noexcept { return max_ != 0; }
  // Text and bytes count as long as they are; any other cell as 8.
  static constexpr std::size_t kOtherCell = 8;

  void take(std::size_t bytes) {
    if (bytes > left_)
      throw core::SqlError("the result is larger than " + std::to_string(max_) +
                           " bytes, the most an answer may carry: ask for fewer rows or columns");
    left_ -= bytes;
  }

 private:
  std::size_t max_;
  std::size_t left_;
};

}  // namespace molt::db::detail
