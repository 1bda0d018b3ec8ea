#pragma once
// The rows of the demo database (DESIGN.md §5, list_items in database mode): a pure function
// of (users, items per user), with no randomness and no database in sight, so every writer
// (SQLite now, PostgreSQL later) and every test sees exactly the same rows.
//
// For user u in 1..users and j in 0..items_per_user-1:
//   id         = (u-1)*items_per_user + j + 1
//   status     = "closed" when (u + j) % 3 == 0, else "open"
//   created_at = "2026-MM-DDTHH:MM:SSZ" with month j%12+1, day j%28+1, hour j%24,
//                minute (j*7)%60, second (j*13)%60
//   title      = "Item <id> <word>", word = kDemoWords[id % 8]
//   score      = ((id*37) % 1000) / 100.0
//   unread     = id % 4 == 0

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace molt::demo {

inline constexpr int kDefaultUsers = 1000;
inline constexpr int kDefaultItemsPerUser = 200;

inline constexpr std::array<std::string_view, 8> kDemoWords = {"alpha",   "beta", "gamma", "delta",
                                                               "epsilon", "zeta", "eta",   "theta"};

struct DemoRow {
  std::int64_t id = 0;
  std::int64_t user_id = 0;
  std::string created_at;
  std::string_view status;  // "open" or "closed" (static storage)
  std::string title;
  double score = 0.0;
  bool unread = false;
};

// Overwrites `row` with item `j` of user `user`; reuses its buffers. Needs user >= 1 and
// 0 <= j < items_per_user.
void fill_demo_row(std::int64_t user, std::int64_t j, std::int64_t items_per_user, DemoRow& row);

// Item `j` of user `user`, with the same preconditions.
DemoRow make_demo_row(std::int64_t user, std::int64_t j, std::int64_t items_per_user);

// users * items_per_user, or 0 when either is not positive.
std::int64_t demo_row_count(std::int64_t users, std::int64_t items_per_user);

// Calls `visit` for every row in id order (user 1 first). The row passed is one object reused
// from call to call: copy it to keep it. Nothing is visited when either count is not positive.
void for_each_demo_row(std::int64_t users, std::int64_t items_per_user,
                       const std::function<void(const DemoRow&)>& visit);

}  // namespace molt::demo
