#pragma once
// Writing the demo rows (demo_rows.hpp) into a database: the items table of DESIGN.md §5, its
// indexes, its 200,000 rows and the item_counts kept from them, on SQLite or PostgreSQL. molt-seed
// and molt-demo both use it.

#include <cstdint>
#include <string_view>

#include "demo_rows.hpp"
#include "molt/db/database.hpp"

namespace molt::demo {

struct SeedOptions {
  int users = kDefaultUsers;
  int items = kDefaultItemsPerUser;
  bool force = false;  // replace an items table that already has rows
};

// (Re)creates the items table and fills it, all in one transaction: either every row is there
// or the database is as it was. An existing table with rows is kept unless `force` (an error
// naming `where`). Returns the number of rows written; throws core::Error.
std::int64_t write_demo_items(db::Database& database, const SeedOptions& options,
                              std::string_view where);

// Creates item_counts (a user's items per status, what list_items answers as `counts`) from
// the rows already in items, and the triggers that keep it right through every later insert,
// delete and change of user_id or status. write_demo_items calls it; a test that writes rows
// of its own into an items table of the demo schema calls it after them. Needs an open
// transaction; throws core::Error.
void create_item_counts(db::Transaction& tx, db::Backend backend);

}  // namespace molt::demo
