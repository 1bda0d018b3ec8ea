#pragma once
// A query's result, materialised: column names and cells, with typed access by index or name
// (molt/db/described.hpp reads rows into described structs by column name).

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "molt/core/status.hpp"
#include "molt/db/value.hpp"

namespace molt::db {

class Rows {
 public:
  Rows() = default;
  explicit Rows(std::vector<std::string> columns) : columns_(std::move(columns)) {}

  const std::vector<std::string>& columns() const noexcept { return columns_; }
  std::size_t size() const noexcept {
    return columns_.empty() ? 0 : cells_.size() / columns_.size();
  }
  bool empty() const noexcept { return size() == 0; }

  const Value& at(std::size_t row, std::size_t column) const {
    if (column >= columns_.size() || row >= size()) out_of_range(row, column);
    return cells_[row * columns_.size() + column];
  }
  // The cell itself, to move a value out of a result the caller owns.
  Value& at(std::size_t row, std::size_t column) {
    if (column >= columns_.size() || row >= size()) out_of_range(row, column);
    return cells_[row * columns_.size() + column];
  }
  const Value& at(std::size_t row, std::string_view column) const;
  std::optional<std::size_t> column_index(std::string_view name) const noexcept;

  // The cell as T (bool, integers, double, std::string, Bytes, Array, std::optional of those);
  // throws core::Error(InternalError) naming the column when the cell is another type.
  template <class T>
  T get(std::size_t row, std::string_view column) const;
  // By the column's position (`get<std::int64_t>(0, 0)` of a PRAGMA's one cell).
  template <class T>
  T get(std::size_t row, std::size_t column) const;

  // Appending, for backends.
  void reserve_cells(std::size_t cells) { cells_.reserve(cells); }
  void add_row(std::vector<Value>&& cells);
  void append_cell(Value value) { cells_.push_back(std::move(value)); }
  // Drops the rows, keeping the columns (and the room): for results read in parts.
  void clear_rows() noexcept { cells_.clear(); }

 private:
  [[noreturn]] static void out_of_range(std::size_t row, std::size_t column);

  std::vector<std::string> columns_;
  std::vector<Value> cells_;  // row-major
};

// What a writing statement did.
struct ExecResult {
  std::int64_t rows_affected = 0;
  std::optional<std::int64_t> last_insert_id;  // SQLite's rowid of an INSERT
  Rows returned;  // what a RETURNING clause gave (INSERT ... RETURNING id); else empty
};

namespace detail {
[[noreturn]] void wrong_cell_type(std::string_view column, std::string_view wanted,
                                  const Value& got);
// A cell whose value the type asked for cannot hold (get<int> of 2^40).
[[noreturn]] void out_of_type_range(std::string_view column, const std::string& value);

// The cell `v` of `column` as T: Rows::get's rules, for a cell already found.
template <class T>
T cell_as(const Value& v, std::string_view column) {
  if constexpr (requires { typename T::value_type; } && !std::is_same_v<T, std::string>) {
    if (std::holds_alternative<std::nullptr_t>(v)) return std::nullopt;
    return cell_as<typename T::value_type>(v, column);
  } else if constexpr (std::is_same_v<T, bool>) {
    if (const auto* b = std::get_if<bool>(&v)) return *b;
    if (const auto* i = std::get_if<std::int64_t>(&v)) return *i != 0;  // SQLite has no bool
    detail::wrong_cell_type(column, "bool", v);
  } else if constexpr (std::is_same_v<T, char> || std::is_same_v<T, wchar_t> ||
                       std::is_same_v<T, char8_t> || std::is_same_v<T, char16_t> ||
                       std::is_same_v<T, char32_t>) {
    static_assert(!std::is_same_v<T, T>,
                  "a character type is not a cell type: read text as std::string, a small "
                  "integer as std::int8_t or std::uint8_t");
  } else if constexpr (std::is_integral_v<T>) {
    if (const auto* i = std::get_if<std::int64_t>(&v)) {
      if (!std::in_range<T>(*i)) detail::out_of_type_range(column, std::to_string(*i));
      return static_cast<T>(*i);
    }
    detail::wrong_cell_type(column, "integer", v);
  } else if constexpr (std::is_floating_point_v<T>) {
    if (const auto* d = std::get_if<double>(&v)) {
      // A float cannot hold every double: one past its range would read as infinity.
      if constexpr (sizeof(T) < sizeof(double))
        if (std::isfinite(*d) && std::abs(*d) > std::numeric_limits<T>::max())
          detail::out_of_type_range(column, std::to_string(*d));
      return static_cast<T>(*d);
    }
    if (const auto* i = std::get_if<std::int64_t>(&v)) return static_cast<T>(*i);
    detail::wrong_cell_type(column, "number", v);
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (const auto* s = std::get_if<std::string>(&v)) return *s;
    detail::wrong_cell_type(column, "text", v);
  } else if constexpr (std::is_same_v<T, Bytes>) {
    if (const auto* b = std::get_if<Bytes>(&v)) return *b;
    detail::wrong_cell_type(column, "bytes", v);
  } else if constexpr (std::is_same_v<T, Array>) {
    if (const auto* a = std::get_if<Array>(&v)) return *a;
    detail::wrong_cell_type(column, "array", v);
  } else {
    static_assert(sizeof(T) == 0,
                  "not a cell type: bool, an integer, a floating point type, std::string, Bytes, "
                  "Array, or std::optional of one");
  }
}
}  // namespace detail

template <class T>
T Rows::get(std::size_t row, std::string_view column) const {
  return detail::cell_as<T>(at(row, column), column);
}

template <class T>
T Rows::get(std::size_t row, std::size_t column) const {
  const Value& cell = at(row, column);  // checks the column first
  return detail::cell_as<T>(cell, columns_[column]);
}

}  // namespace molt::db
