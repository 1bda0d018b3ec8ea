// molt::db rows into described structs (molt/db/described.hpp), on a real SQLite file.

#include "molt/db/described.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/describe/class.hpp>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "molt/db/sqlite.hpp"
#include "support/status_of.hpp"

namespace {

using molt::core::StatusCode;
using molt::db::Params;
using molt::testing::status_of;

struct Item {
  std::int64_t id = 0;
  std::string title;
  std::optional<double> price;
  bool done = false;
};
BOOST_DESCRIBE_STRUCT(Item, (), (id, title, price, done))

struct Narrow {
  std::int8_t id = 0;
};
BOOST_DESCRIBE_STRUCT(Narrow, (), (id))

class DescribedRowsTest : public ::testing::Test {
 protected:
  DescribedRowsTest()
      : dir_(std::filesystem::path(::testing::TempDir()) /
             ("molt_described_" + std::to_string(::getpid()))) {
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    db_ = molt::db::open_sqlite(
        {.path = (dir_ / "items.db").string(), .read_write = true, .create = true});
    db_->execute("CREATE TABLE items(id INTEGER PRIMARY KEY, title TEXT, price REAL, done INT)");
    db_->execute(
        "INSERT INTO items VALUES (1, 'tea', 2.5, 0), (2, 'cake', NULL, 1), (300, 'x', 1, 1)");
  }
  ~DescribedRowsTest() override { std::filesystem::remove_all(dir_); }

  std::filesystem::path dir_;
  std::shared_ptr<molt::db::Database> db_;
};

TEST_F(DescribedRowsTest, EachMemberReadsTheColumnOfItsName) {
  // Columns in another order than the members, and one no member names.
  const auto rows = db_->query(
      "SELECT done, price, 'extra' AS note, title, id FROM items WHERE id < 10 ORDER BY id");
  const std::vector<Item> items = molt::db::rows_as<Item>(rows);
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].id, 1);
  EXPECT_EQ(items[0].title, "tea");
  EXPECT_EQ(items[0].price, 2.5);
  EXPECT_FALSE(items[0].done);
  EXPECT_EQ(items[1].id, 2);
  EXPECT_EQ(items[1].title, "cake");
  EXPECT_EQ(items[1].price, std::nullopt);  // NULL
  EXPECT_TRUE(items[1].done);
  const Item second = molt::db::row_as<Item>(rows, 1);
  EXPECT_EQ(second.title, "cake");
  EXPECT_TRUE(molt::db::rows_as<Item>(db_->query("SELECT * FROM items WHERE id < 0")).empty());
}

TEST_F(DescribedRowsTest, AMissingColumnOrAWrongCellSaysWhich) {
  std::string why;
  EXPECT_EQ(
      status_of([&] { molt::db::rows_as<Item>(db_->query("SELECT id, title FROM items")); }, &why),
      StatusCode::InternalError);
  EXPECT_NE(why.find("no column 'price'"), std::string::npos) << why;
  EXPECT_NE(why.find("its columns: id, title"), std::string::npos) << why;
  // A NULL where the member cannot hold one, text where a number belongs, a value too large.
  EXPECT_EQ(
      status_of(
          [&] {
            molt::db::rows_as<Item>(db_->query("SELECT id, title, price, NULL AS done FROM items"));
          },
          &why),
      StatusCode::InternalError);
  EXPECT_NE(why.find("column 'done' holds null"), std::string::npos) << why;
  EXPECT_EQ(status_of(
                [&] {
                  molt::db::rows_as<Item>(
                      db_->query("SELECT title AS id, title, price, done FROM items"));
                },
                &why),
            StatusCode::InternalError);
  EXPECT_NE(why.find("column 'id' holds str, not integer"), std::string::npos) << why;
  EXPECT_EQ(status_of([&] { molt::db::rows_as<Narrow>(db_->query("SELECT id FROM items")); }, &why),
            StatusCode::InternalError);
  EXPECT_NE(why.find("holds 300, out of the range"), std::string::npos) << why;
}

}  // namespace
