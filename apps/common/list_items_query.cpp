#include "list_items_query.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <string>
#include <vector>

#include "molt/codec/json.hpp"
#include "molt/codec/number_format.hpp"
#include "molt/core/status.hpp"

namespace molt_worker {
namespace {

using molt::db::Params;

// One fixed statement per combination of filters, as an ORM would write it: a condition
// like `(:status IS NULL OR status = :status)` costs SQLite work on every row.
constexpr std::string_view kItemsSql[4] = {
    "SELECT id, created_at, status, title, score, unread FROM items WHERE user_id = :user_id "
    "AND id > :after ORDER BY id LIMIT :limit",
    "SELECT id, created_at, status, title, score, unread FROM items WHERE user_id = :user_id "
    "AND status = :status AND id > :after ORDER BY id LIMIT :limit",
    "SELECT id, created_at, status, title, score, unread FROM items WHERE user_id = :user_id "
    "AND title LIKE :pattern ESCAPE '\\' AND id > :after ORDER BY id LIMIT :limit",
    "SELECT id, created_at, status, title, score, unread FROM items WHERE user_id = :user_id "
    "AND status = :status AND title LIKE :pattern ESCAPE '\\' AND id > :after ORDER BY id "
    "LIMIT :limit",
};
// The user's counts per status, kept in item_counts by triggers on items (molt-seed's
// schema): two key lookups, where counting the (user_id, status) index ranges stepped ~200
// entries a call (106k of 294k instructions a call on SQLite). A status with no items has no
// row yet, hence the coalesce.
constexpr std::string_view kCountsSql =
    "SELECT coalesce((SELECT n FROM item_counts WHERE user_id = :user_id AND status = 'open'), "
    "0) AS n_open, coalesce((SELECT n FROM item_counts WHERE user_id = :user_id AND status = "
    "'closed'), 0) AS n_closed";

// SQLite refuses a longer LIKE pattern (SQLITE_MAX_LIKE_PATTERN_LENGTH) as "too complex".
constexpr std::size_t kMaxLikePattern = 50000;

// `%q%` for LIKE with q's own wildcards taken literally (ESCAPE '\\'). A NUL is refused:
// SQLite's LIKE stops at it, so "%\0%" would match every item. So is a q whose pattern SQLite
// would refuse: the caller's input, not the database's failure.
std::string like_pattern(const std::string& q, std::string_view field_prefix) {
  if (q.find('\0') != std::string::npos)
    throw molt::core::InvalidInput(std::string(field_prefix) + "q: must not contain a NUL byte");
  std::string out = "%";
  for (char c : q) {
    if (c == '%' || c == '_' || c == '\\') out += '\\';
    out += c;
  }
  out += '%';
  if (out.size() > kMaxLikePattern)
    throw molt::core::InvalidInput(std::string(field_prefix) +
                                   "q: too long (its search pattern would pass 50000 bytes)");
  return out;
}

std::int64_t cursor_id(const std::optional<std::string>& cursor, std::string_view field_prefix) {
  if (!cursor || cursor->empty()) return 0;
  std::int64_t id = 0;
  auto [ptr, ec] = std::from_chars(cursor->data(), cursor->data() + cursor->size(), id);
  if (ec != std::errc() || ptr != cursor->data() + cursor->size() || id < 0)
    throw molt::core::InvalidInput(std::string(field_prefix) +
                                   "cursor: expected an item id (digits), got '" + *cursor + "'");
  return id;
}

// The page statement for the request's filters and the counts statement, with their values.
std::vector<molt::db::BatchQuery> list_items_batch(const ListItemsRequest& request,
                                                   std::int64_t limit,
                                                   std::string_view field_prefix) {
  Params params{{{request.user_id}, {cursor_id(request.cursor, field_prefix)}, {limit}},
                {"user_id", "after", "limit"}};
  if (request.status) {
    params.values.push_back({*request.status});
    params.names.push_back("status");
  }
  if (request.q) {
    params.values.push_back({like_pattern(*request.q, field_prefix)});
    params.names.push_back("pattern");
  }
  std::vector<molt::db::BatchQuery> batch;
  batch.reserve(2);
  batch.push_back({kItemsSql[(request.status ? 1 : 0) + (request.q ? 2 : 0)], std::move(params)});
  batch.push_back({kCountsSql, Params{{{request.user_id}}, {"user_id"}}});
  return batch;
}

std::int64_t clamped_limit(const ListItemsRequest& request) {
  return std::clamp<std::int64_t>(request.limit.value_or(50), 1, 500);
}

char* put(char* at, std::string_view text) {
  std::memcpy(at, text.data(), text.size());
  return at + text.size();
}

// One item of the page, its members in Item's described order (as write_json writes them),
// into room sized once for the worst case (every text byte escaped), so no piece checks the
// string's capacity. Returns the item's id.
std::int64_t append_item_json(std::string& out, bool first, const molt::db::RowView& row) {
  using molt::codec::json_string_room;
  using molt::codec::kNumberRoom;
  const std::int64_t id = row.integer(0);
  const std::string_view created_at = row.text(1), status = row.text(2), title = row.text(3);
  const std::size_t start = out.size();
  out.resize(start + 80 + 2 * kNumberRoom + json_string_room(created_at.size()) +
             json_string_room(status.size()) + json_string_room(title.size()));
  char* at = out.data() + start;
  at = molt::codec::write_integer(put(at, first ? "{\"id\":" : ",{\"id\":"), id);
  at = molt::codec::write_json_string(put(at, ",\"created_at\":"), created_at);
  at = molt::codec::write_json_string(put(at, ",\"status\":"), status);
  at = molt::codec::write_json_string(put(at, ",\"title\":"), title);
  at = molt::codec::write_json_double(put(at, ",\"score\":"), row.number(4));
  at = put(at, row.integer(5) != 0 ? ",\"unread\":true}" : ",\"unread\":false}");
  out.resize(static_cast<std::size_t>(at - out.data()));
  return id;
}

}  // namespace

ListItemsResponse query_list_items(molt::db::Database& db, const ListItemsRequest& request,
                                   const molt::db::QueryOptions& options,
                                   std::string_view field_prefix) {
  const std::int64_t limit = clamped_limit(request);
  ListItemsResponse out;
  out.items.reserve(static_cast<std::size_t>(limit));
  // Cells straight from the driver into the items, columns by position (the SELECTs above fix
  // their order): no Rows, no Value per cell, one copy of each text.
  db.query_batch_each(list_items_batch(request, limit, field_prefix), options,
                      [&out](std::size_t statement, const molt::db::RowView& row) {
                        if (statement == 1) {
                          out.counts.open = row.integer(0);
                          out.counts.closed = row.integer(1);
                          return;
                        }
                        Item& item = out.items.emplace_back();
                        item.id = row.integer(0);
                        item.created_at = row.text(1);
                        item.status = row.text(2);
                        item.title = row.text(3);
                        item.score = row.number(4);
                        item.unread = row.integer(5) != 0;
                      });
  if (static_cast<std::int64_t>(out.items.size()) == limit)
    out.next_cursor = std::to_string(out.items.back().id);
  return out;
}

std::size_t write_list_items_json(std::string& out, molt::db::Database& db,
                                  const ListItemsRequest& request,
                                  const molt::db::QueryOptions& options,
                                  std::string_view field_prefix) {
  const std::int64_t limit = clamped_limit(request);
  // About 130 bytes an item: one allocation for a full page rather than a dozen regrowths.
  out.reserve(out.size() + 256 + 160 * static_cast<std::size_t>(limit));
  // The members in ListItemsResponse's and Item's described order, as write_json writes them.
  out += "{\"items\":[";
  std::size_t items = 0;
  std::int64_t last_id = 0;
  StatusCounts counts;
  db.query_batch_each(list_items_batch(request, limit, field_prefix), options,
                      [&](std::size_t statement, const molt::db::RowView& row) {
                        if (statement == 1) {
                          counts.open = row.integer(0);
                          counts.closed = row.integer(1);
                          return;
                        }
                        last_id = append_item_json(out, items++ == 0, row);
                      });
  out += "],\"next_cursor\":";
  if (static_cast<std::int64_t>(items) == limit)
    molt::codec::write_json_string(out, std::to_string(last_id));
  else
    out += "null";
  out += ",\"counts\":";
  molt::codec::write_json(out, counts);
  out += '}';
  return items;
}

}  // namespace molt_worker
