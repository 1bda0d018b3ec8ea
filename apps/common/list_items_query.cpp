#include "list_items_query.hpp"

#include <algorithm>
#include <charconv>
#include <string>
#include <vector>

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
constexpr std::string_view kCountsSql =
    "SELECT status, count(*) AS n FROM items WHERE user_id = :user_id GROUP BY status";

// `%q%` for LIKE with q's own wildcards taken literally (ESCAPE '\\').
std::string like_pattern(const std::string& q) {
  std::string out = "%";
  for (char c : q) {
    if (c == '%' || c == '_' || c == '\\') out += '\\';
    out += c;
  }
  out += '%';
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

}  // namespace

ListItemsResponse query_list_items(molt::db::Database& db, const ListItemsRequest& request,
                                   const molt::db::QueryOptions& options,
                                   std::string_view field_prefix) {
  const std::int64_t limit = std::clamp<std::int64_t>(request.limit.value_or(50), 1, 500);
  Params params{{{request.user_id}, {cursor_id(request.cursor, field_prefix)}, {limit}},
                {"user_id", "after", "limit"}};
  if (request.status) {
    params.values.push_back({*request.status});
    params.names.push_back("status");
  }
  if (request.q) {
    params.values.push_back({like_pattern(*request.q)});
    params.names.push_back("pattern");
  }
  std::vector<molt::db::Rows> results = db.query_batch(
      {{kItemsSql[(request.status ? 1 : 0) + (request.q ? 2 : 0)], std::move(params)},
       {kCountsSql, Params{{{request.user_id}}, {"user_id"}}}},
      options);
  molt::db::Rows& rows = results[0];
  const molt::db::Rows& counts = results[1];

  ListItemsResponse out;
  out.items.resize(rows.size());
  // Columns by position: the SELECT above fixes their order. The texts are moved out of the
  // result, which is ours: a copy each would be an allocation each.
  for (std::size_t i = 0; i < rows.size(); ++i) {
    Item& item = out.items[i];
    item.id = std::get<std::int64_t>(rows.at(i, 0));
    item.created_at = std::move(std::get<std::string>(rows.at(i, 1)));
    item.status = std::move(std::get<std::string>(rows.at(i, 2)));
    item.title = std::move(std::get<std::string>(rows.at(i, 3)));
    const auto& score = rows.at(i, 4);
    item.score = std::holds_alternative<double>(score)
                     ? std::get<double>(score)
                     : static_cast<double>(std::get<std::int64_t>(score));
    item.unread = std::get<std::int64_t>(rows.at(i, 5)) != 0;
  }
  for (std::size_t i = 0; i < counts.size(); ++i) {
    const auto status = counts.get<std::string>(i, "status");
    if (status == "open") out.counts.open = counts.get<std::int64_t>(i, "n");
    if (status == "closed") out.counts.closed = counts.get<std::int64_t>(i, "n");
  }
  if (static_cast<std::int64_t>(rows.size()) == limit)
    out.next_cursor = std::to_string(out.items.back().id);
  return out;
}

}  // namespace molt_worker
