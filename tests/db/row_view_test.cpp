// Database::query_batch_each's default (what a backend without its own streaming path, such
// as PostgreSQL, runs): query_batch() and each of its rows visited through a RowView.

#include "molt/db/row_view.hpp"

#include <gtest/gtest.h>

#include "molt/db/database.hpp"
#include "support/status_of.hpp"

namespace molt::db {
namespace {

using core::StatusCode;
using molt::testing::status_of;

// Answers every batch with the same two results, whatever the SQL.
class FixedDatabase final : public Database {
 public:
  Backend backend() const noexcept override { return Backend::Postgres; }
  Rows query(std::string_view, const Params&, const QueryOptions&) override { return {}; }
  std::vector<Rows> query_batch(const std::vector<BatchQuery>& queries,
                                const QueryOptions&) override {
    ++batches;
    Rows first({"id", "title", "score", "flag", "data"});
    first.add_row({std::int64_t{7}, std::string("seven"), 2.5, true, Bytes{"\x01\x02"}});
    first.add_row({std::int64_t{8}, nullptr, std::int64_t{3}, false, nullptr});
    Rows second({"n"});
    second.add_row({std::int64_t{42}});
    std::vector<Rows> out;
    out.push_back(std::move(first));
    out.push_back(std::move(second));
    out.resize(queries.size());
    return out;
  }
  ExecResult execute(std::string_view, const Params&, const QueryOptions&) override { return {}; }
  Transaction begin(const QueryOptions&) override { return Transaction(nullptr); }
  PoolStats stats() const override { return {}; }

  int batches = 0;
};

TEST(RowViewTest, TheDefaultVisitsTheRowsOfQueryBatchInOrder) {
  FixedDatabase db;
  std::vector<std::pair<std::size_t, std::int64_t>> ids;
  std::vector<CellView> cells;
  std::vector<double> scores;
  db.query_batch_each({{"first", {}}, {"second", {}}}, {},
                      [&](std::size_t statement, const RowView& row) {
                        ids.emplace_back(statement, row.integer(0));
                        if (statement == 0) {
                          EXPECT_EQ(row.width(), 5u);
                          scores.push_back(row.number(2));  // a float, then an integer
                          for (std::size_t c = 0; c < 5; ++c) cells.push_back(row.cell(c));
                        }
                      });
  EXPECT_EQ(db.batches, 1);
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids[0], (std::pair<std::size_t, std::int64_t>{0, 7}));
  EXPECT_EQ(ids[1], (std::pair<std::size_t, std::int64_t>{0, 8}));
  EXPECT_EQ(ids[2], (std::pair<std::size_t, std::int64_t>{1, 42}));
  EXPECT_EQ(scores, (std::vector<double>{2.5, 3.0}));
  // Views of the cells are only valid during the visit: compare their types here.
  ASSERT_EQ(cells.size(), 10u);
  EXPECT_EQ(cells[1].type, ValueType::Text);
  EXPECT_EQ(cells[3].type, ValueType::Bool);
  EXPECT_EQ(cells[3].integer, 1);
  EXPECT_EQ(cells[4].type, ValueType::Bytes);
  EXPECT_EQ(cells[6].type, ValueType::Null);
  EXPECT_EQ(cells[9].type, ValueType::Null);
}

TEST(RowViewTest, TypedReadsOfAnotherTypeAreInternalErrors) {
  FixedDatabase db;
  std::string why;
  EXPECT_EQ(status_of(
                [&] {
                  db.query_batch_each({{"first", {}}}, {},
                                      [](std::size_t, const RowView& row) { row.text(1); });
                },
                &why),
            StatusCode::InternalError);
  EXPECT_NE(why.find("column 1 holds null, not text"), std::string::npos) << why;
  EXPECT_EQ(status_of([&] {
              db.query_batch_each({{"first", {}}}, {},
                                  [](std::size_t, const RowView& row) { row.number(1); });
            }),
            StatusCode::InternalError);
  EXPECT_EQ(status_of([&] {
              db.query_batch_each({{"first", {}}}, {},
                                  [](std::size_t, const RowView& row) { row.cell(5); });
            }),
            StatusCode::InternalError);
}

}  // namespace
}  // namespace molt::db
