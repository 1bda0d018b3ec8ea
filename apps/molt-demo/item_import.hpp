// The lines of POST /items/import (NDJSON), checked as the body's pieces arrive: the valid
// items gather in a batch for the route to insert, and the first bad line stops the import
// with an error that names it. It holds no more of the body than one partial line.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "items.hpp"

namespace molt_demo {

class ItemImport {
 public:
  // The longest line taken (an item is well under 1 KiB).
  static constexpr std::size_t kMaxLine = 16 * 1024;

  explicit ItemImport(std::int64_t user_id) : user_id_(user_id) {}

  // Checks the complete lines of `piece`; a line cut at its end waits for the next piece.
  // False once a line is bad (error() says which and why); later input is then ignored.
  bool feed(std::string_view piece);
  // The end of the body: checks its last line if it had no newline.
  bool finish();

  // The valid items not yet handed over; the caller inserts and clears them.
  std::vector<NewItem>& batch() { return batch_; }
  const std::string& error() const { return error_; }

 private:
  bool take(std::string_view line);
  bool fail(std::string_view why);

  std::int64_t user_id_;
  std::int64_t line_ = 0;  // the number of the line being read, from 1
  std::string partial_;
  std::vector<NewItem> batch_;
  std::string error_;
};

}  // namespace molt_demo
