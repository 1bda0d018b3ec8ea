#pragma once
// One row of a result seen in place, for callers that build their own structures from the
// cells (Database::query_batch_each): no Rows, no Value per cell, texts viewed in the
// driver's buffers instead of copied. A view and what it returns are valid only during the
// visit that receives it.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "molt/db/value.hpp"

namespace molt::db {

namespace detail {
// The InternalError of a typed read of a cell of another type.
[[noreturn]] void wrong_cell_type(std::size_t column, std::string_view wanted, ValueType got);
}  // namespace detail

// A cell as the driver holds it: its type and, by type, the number or the viewed bytes.
struct CellView {
  ValueType type = ValueType::Null;
  std::int64_t integer = 0;  // Int and Bool
  double real = 0;           // Float
  std::string_view text;     // Text and Bytes
};

class RowView {
 public:
  virtual std::size_t width() const noexcept = 0;
  // Column `column` by position (0-based); past the last one is InternalError.
  virtual CellView cell(std::size_t column) const = 0;

  // Typed reads; a cell of another type is core::Error(InternalError) naming the column.
  // Virtual so that a backend can read the one type asked for without building a CellView.
  virtual std::int64_t integer(std::size_t column) const;
  virtual double number(std::size_t column) const;  // an integer cell reads as its double
  virtual std::string_view text(std::size_t column) const;

 protected:
  ~RowView() = default;
};

}  // namespace molt::db
