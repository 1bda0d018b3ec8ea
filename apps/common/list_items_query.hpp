// list_items in database mode (DESIGN.md §5), shared by molt-worker and molt-demo so that both
// run the same statements and give the same answer: the user's items filtered by status and
// `title LIKE %q%` (q's %, _ and \ taken literally, as Django's `contains`), after the cursor
// (an item id), `limit` of them (default 50, clamped to 1..500) in id order; next_cursor is the
// last id when the page is full; counts are over all the user's items.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "contracts.hpp"
#include "molt/db/database.hpp"

namespace molt_worker {

// Both statements go in one batch (one round trip on PostgreSQL). A malformed cursor is
// core::InvalidInput naming the field as `<field_prefix>cursor`.
ListItemsResponse query_list_items(molt::db::Database& db, const ListItemsRequest& request,
                                   const molt::db::QueryOptions& options,
                                   std::string_view field_prefix = {});

// The same answer written straight as its JSON, appended to `out`: the bytes that
// codec::write_json gives for query_list_items' result, each cell written as it comes off the
// database (no Items, no copies of their texts). Returns how many items it wrote.
std::size_t write_list_items_json(std::string& out, molt::db::Database& db,
                                  const ListItemsRequest& request,
                                  const molt::db::QueryOptions& options,
                                  std::string_view field_prefix = {});

}  // namespace molt_worker
