// list_items (DESIGN.md §5), the same JSON Django answers. With a database configured it reads
// the `items` table (molt-seed writes it); without one it makes deterministic fake rows, with
// latency knobs to stand in for a slow database.

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

#include "contracts.hpp"
#include "list_items_query.hpp"
#include "molt/worker/export_registry.hpp"
#include "settings.hpp"

namespace molt_worker {
namespace {

using molt::worker::ExportContext;

struct FakeDbKnobs {
  std::int64_t delay_ms = 0;           // MOLT_FAKE_DB_DELAY_MS: once per call
  std::int64_t decode_us_per_row = 0;  // MOLT_FAKE_DB_DECODE_US_PER_ROW
  std::int64_t cpu_iters_per_row = 0;  // MOLT_FAKE_DB_CPU_ITERS
};

// Python's len() of a str: code points, not bytes.
std::int64_t code_points(const std::optional<std::string>& text) {
  if (!text) return 0;
  std::int64_t n = 0;
  for (unsigned char c : *text) n += (c & 0xC0) != 0x80;
  return n;
}

void two_digits(char* out, std::int64_t v) {
  out[0] = static_cast<char>('0' + v / 10);
  out[1] = static_cast<char>('0' + v % 10);
}

ListItemsResponse list_items_fake(const ListItemsRequest& req, ExportContext& ctx,
                                  const FakeDbKnobs& knobs) {
  constexpr std::int64_t kMaxUserId = 1'000'000'000'000LL;  // keeps ids well inside int64
  if (req.user_id > kMaxUserId || req.user_id < -kMaxUserId)
    throw molt::core::InvalidInput("payload.user_id: out of range (|user_id| <= 10^12)");
  const std::int64_t limit = std::clamp<std::int64_t>(req.limit.value_or(50), 1, 500);
  if (knobs.delay_ms > 0) ctx.sleep_for(std::chrono::milliseconds(knobs.delay_ms));
  if (knobs.decode_us_per_row > 0)
    ctx.sleep_for(std::chrono::microseconds(knobs.decode_us_per_row * limit));

  const std::int64_t magnitude = req.user_id < 0 ? -req.user_id : req.user_id;
  const std::int64_t base =
      magnitude * 1000 + code_points(req.q) + code_points(req.status) + code_points(req.cursor);
  ListItemsResponse out;
  out.items.resize(static_cast<std::size_t>(limit));
  for (std::int64_t idx = 0; idx < limit; ++idx) {
    if (knobs.cpu_iters_per_row > 0) {
      ctx.check();
      volatile std::uint64_t spin = 0;
      for (std::int64_t i = 0; i < knobs.cpu_iters_per_row; ++i) spin = spin * 31 + i;
    }
    Item& item = out.items[static_cast<std::size_t>(idx)];
    item.id = base + idx;
    const bool open = idx % 2 == 0;
    item.status = open ? "open" : "closed";
    char created[] = "2026-01-DDT00:00:SSZ";
    two_digits(created + 8, idx % 28 + 1);
    two_digits(created + 17, idx % 60);
    item.created_at.assign(created, sizeof created - 1);
    char title[32] = "Item ";
    const auto end = std::to_chars(title + 5, title + sizeof title, item.id).ptr;
    item.title.assign(title, end);
    item.score = static_cast<double>(idx % 100) / 100.0;
    item.unread = idx % 3 == 0;
    ++(open ? out.counts.open : out.counts.closed);
  }
  out.next_cursor = std::to_string(req.user_id) + ":" + std::to_string(limit);
  return out;
}

// The answer's JSON written as the rows come off the database (write_list_items_json): the
// bytes the typed path would give, without the Items in between.
std::string list_items_db(std::string_view payload, ExportContext& ctx, molt::db::Database& db) {
  const auto decode_started = std::chrono::steady_clock::now();
  const auto req = molt::codec::decode_msgpack<ListItemsRequest>(payload);
  const auto started = std::chrono::steady_clock::now();
  ctx.decode_time = started - decode_started;
  molt::db::QueryOptions options;
  options.deadline = ctx.deadline();
  options.cancel = ctx.token();
  std::string out;  // sized for the page by write_list_items_json
  std::size_t rows = 0;
  try {
    rows = write_list_items_json(out, db, req, options, "payload.");
  } catch (const molt::core::SqlError& e) {
    // This SQL is the export's own: what the database refuses (a missing table, a file that
    // is not a database, a text cell that is not UTF-8) is the server's fault, not the
    // caller's request. An InternalError: the details go to the log.
    throw molt::core::Error(molt::core::StatusCode::InternalError, e.what());
  }
  // db_us now includes writing the JSON: the rows are written as they come off the database.
  ctx.add_metric("db_us",
                 static_cast<std::int64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                               std::chrono::steady_clock::now() - started)
                                               .count()));
  ctx.add_metric("db_rows", static_cast<std::int64_t>(rows));
  return out;
}

}  // namespace
}  // namespace molt_worker

void molt_register_list_items(molt::worker::ExportRegistry& registry) {
  using namespace molt_worker;
  std::shared_ptr<molt::db::Database> db = configured_database();
  if (db) {
    registry.add_raw("list_items", molt::ipc::Codec::MsgPack, molt::ipc::Codec::Json,
                     [db](std::string_view payload, molt::worker::ExportContext& ctx) {
                       return list_items_db(payload, ctx, *db);
                     });
    return;
  }
  const FakeDbKnobs knobs{int_from_env("MOLT_FAKE_DB_DELAY_MS", 0),
                          int_from_env("MOLT_FAKE_DB_DECODE_US_PER_ROW", 0),
                          int_from_env("MOLT_FAKE_DB_CPU_ITERS", 0)};
  registry.add<ListItemsRequest, ListItemsResponse>(
      "list_items", molt::ipc::Codec::MsgPack, molt::ipc::Codec::Json,
      [knobs](const ListItemsRequest& req, molt::worker::ExportContext& ctx) {
        return list_items_fake(req, ctx, knobs);
      });
}
