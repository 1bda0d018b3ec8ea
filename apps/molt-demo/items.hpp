// The demo's data: the `items` table of DESIGN.md §5 (the list_items contract), on an embedded
// SQLite file created and seeded on first run, or on PostgreSQL (seeded by molt-seed).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "contracts.hpp"
#include "molt/codec/defaults.hpp"
#include "molt/codec/rules.hpp"
#include "molt/core/cancel.hpp"
#include "molt/core/deadline.hpp"
#include "molt/db/database.hpp"

namespace molt_demo {

using molt_worker::Item;
using molt_worker::ListItemsRequest;
using molt_worker::ListItemsResponse;

struct NewItem {
  std::int64_t user_id = 0;
  std::string title;
  std::string status = "open";  // or "closed"
  double score = 0.0;           // 0..10
};
BOOST_DESCRIBE_STRUCT(NewItem, (), (user_id, title, status, score))
MOLT_DEFAULTS(NewItem, status, score)
MOLT_RULES(NewItem, rule(&NewItem::user_id, at_least(1)), rule(&NewItem::title, length(1, 200)),
           rule(&NewItem::status, one_of("open", "closed")), rule(&NewItem::score, between(0, 10)))

// One line of POST /items/import: an item of the user the import is for. A line of
// /items/export fits too (its other fields are ignored), so an export imports back.
struct ImportLine {
  std::string title;
  std::string status = "open";
  double score = 0.0;
};
BOOST_DESCRIBE_STRUCT(ImportLine, (), (title, status, score))
MOLT_DEFAULTS(ImportLine, status, score)

// A user's items summed up: what the demo's report job computes.
struct ItemSummary {
  std::int64_t user_id = 0;
  std::int64_t items = 0;
  std::int64_t open = 0;
  std::int64_t closed = 0;
  double mean_score = 0.0;  // 0 when the user has no items
};
BOOST_DESCRIBE_STRUCT(ItemSummary, (), (user_id, items, open, closed, mean_score))

class ItemsStore {
 public:
  // SQLite at `path`: created and seeded with the demo rows (1,000 users x 200 items) when the
  // file does not exist yet.
  static ItemsStore open_sqlite(const std::string& path);
  static ItemsStore open_postgres(const std::string& dsn);

  // The list_items contract: the same JSON as molt-worker and the Django baseline.
  // Throws core::InvalidInput for a bad cursor.
  ListItemsResponse list(const ListItemsRequest& request, molt::core::Deadline deadline,
                         molt::core::CancelToken cancel) const;
  // The same answer as its JSON bytes, written as the rows come off the database (no Items in
  // between): what GET /items sends when the client takes JSON.
  std::string list_json(const ListItemsRequest& request, molt::core::Deadline deadline,
                        molt::core::CancelToken cancel) const;
  // The item with this id, if there is one.
  std::optional<Item> find(std::int64_t id, molt::core::Deadline deadline) const;
  // Throws core::InvalidInput naming the field of `item` that is wrong ("item.title: ..."):
  // NewItem's rules, which a decoded body has met already, and no NUL in the title.
  static void validate(const NewItem& item);
  // Inserts an item; throws core::InvalidInput naming the field that is wrong.
  Item create(const NewItem& item, molt::core::Deadline deadline) const;
  // Inserts the items in one transaction (all or none), after validating every one.
  std::vector<Item> create_all(const std::vector<NewItem>& items,
                               molt::core::Deadline deadline) const;

  // The user's items summed up (all of them, not a page).
  ItemSummary summary(std::int64_t user_id, molt::core::Deadline deadline,
                      molt::core::CancelToken cancel) const;
  // The database itself, for what shares it (the job store).
  const std::shared_ptr<molt::db::Database>& database() const { return db_; }

  // The highest item id there is (0 when there is none): new items get higher ones, so an
  // export that stops there is a snapshot of what existed when it began.
  std::int64_t last_id(molt::core::Deadline deadline) const;

  std::string_view backend() const;
  // Whether a read runs inside this process (SQLite) rather than over the network
  // (PostgreSQL): only the first can be stopped on time by a short budget.
  bool reads_in_process() const;

 private:
  explicit ItemsStore(std::shared_ptr<molt::db::Database> db) : db_(std::move(db)) {}
  std::shared_ptr<molt::db::Database> db_;
};

}  // namespace molt_demo
