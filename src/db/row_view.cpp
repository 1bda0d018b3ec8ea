#include "molt/db/row_view.hpp"

#include <string>
#include <variant>

#include "molt/core/status.hpp"
#include "molt/db/database.hpp"

namespace molt::db {
namespace {

// A row of a materialised result, for backends without a streaming path of their own.
class RowsRowView final : public RowView {
 public:
  RowsRowView(const Rows& rows, std::size_t row) : rows_(rows), row_(row) {}

  std::size_t width() const noexcept override { return rows_.columns().size(); }
  CellView cell(std::size_t column) const override {
    const Value& v = rows_.at(row_, column);
    CellView out;
    out.type = type_of(v);
    std::visit(
        [&](const auto& x) {
          using V = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<V, bool>)
            out.integer = x ? 1 : 0;
          else if constexpr (std::is_same_v<V, std::int64_t>)
            out.integer = x;
          else if constexpr (std::is_same_v<V, double>)
            out.real = x;
          else if constexpr (std::is_same_v<V, std::string>)
            out.text = x;
          else if constexpr (std::is_same_v<V, Bytes>)
            out.text = x.data;
        },
        v);
    return out;
  }

 private:
  const Rows& rows_;
  std::size_t row_;
};

}  // namespace

void detail::wrong_cell_type(std::size_t column, std::string_view wanted, ValueType got) {
  throw core::Error(core::StatusCode::InternalError, "column " + std::to_string(column) +
                                                         " holds " + std::string(to_string(got)) +
                                                         ", not " + std::string(wanted));
}

std::int64_t RowView::integer(std::size_t column) const {
  const CellView c = cell(column);
  if (c.type != ValueType::Int && c.type != ValueType::Bool)
    detail::wrong_cell_type(column, "integer", c.type);
  return c.integer;
}

double RowView::number(std::size_t column) const {
  const CellView c = cell(column);
  if (c.type == ValueType::Float) return c.real;
  if (c.type == ValueType::Int) return static_cast<double>(c.integer);
  detail::wrong_cell_type(column, "number", c.type);
}

std::string_view RowView::text(std::size_t column) const {
  const CellView c = cell(column);
  if (c.type != ValueType::Text) detail::wrong_cell_type(column, "text", c.type);
  return c.text;
}

void Database::query_batch_each(const std::vector<BatchQuery>& queries, const QueryOptions& options,
                                const RowVisitor& visit) {
  const std::vector<Rows> results = query_batch(queries, options);
  for (std::size_t s = 0; s < results.size(); ++s)
    for (std::size_t r = 0; r < results[s].size(); ++r) visit(s, RowsRowView(results[s], r));
}

void Database::query_in_parts(std::string_view sql, const Params& params,
                              const QueryOptions& options, const PartVisitor& visit) {
  visit(query(sql, params, options));
}

}  // namespace molt::db
