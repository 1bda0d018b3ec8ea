#include "molt/db/rows.hpp"

#include "molt/db/described.hpp"

namespace molt::db {

void Rows::out_of_range(std::size_t row, std::size_t column) {
  throw core::Error(core::StatusCode::InternalError, "row " + std::to_string(row) + ", column " +
                                                         std::to_string(column) +
                                                         " is outside the result");
}

const Value& Rows::at(std::size_t row, std::string_view column) const {
  const auto index = column_index(column);
  if (!index)
    throw core::Error(core::StatusCode::InternalError,
                      "the result has no column '" + std::string(column) + "'");
  return at(row, *index);
}

std::optional<std::size_t> Rows::column_index(std::string_view name) const noexcept {
  for (std::size_t i = 0; i < columns_.size(); ++i)
    if (columns_[i] == name) return i;
  return std::nullopt;
}

void Rows::add_row(std::vector<Value>&& cells) {
  for (auto& cell : cells) cells_.push_back(std::move(cell));
}

namespace detail {
void wrong_cell_type(std::string_view column, std::string_view wanted, const Value& got) {
  throw core::Error(core::StatusCode::InternalError, "column '" + std::string(column) + "' holds " +
                                                         std::string(to_string(type_of(got))) +
                                                         ", not " + std::string(wanted));
}

void out_of_type_range(std::string_view column, const std::string& value) {
  throw core::Error(core::StatusCode::InternalError,
                    "column '" + std::string(column) + "' holds " + value +
                        ", out of the range of the type asked for");
}

void missing_member_column(std::string_view member, const Rows& rows) {
  std::string columns;
  for (const std::string& name : rows.columns()) {
    if (!columns.empty()) columns += ", ";
    columns += name;
  }
  throw core::Error(core::StatusCode::InternalError,
                    "the result has no column '" + std::string(member) +
                        "' for the struct's member of that name (its columns: " +
                        (columns.empty() ? std::string("none") : columns) + ")");
}
}  // namespace detail

}  // namespace molt::db
