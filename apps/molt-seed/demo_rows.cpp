#include "demo_rows.hpp"

#include <charconv>

namespace molt::demo {
namespace {

// Writes `value` (0..99) as two digits at `out`.
void put_two_digits(char* out, std::int64_t value) {
  out[0] = static_cast<char>('0' + value / 10);
  out[1] = static_cast<char>('0' + value % 10);
}

}  // namespace

void fill_demo_row(std::int64_t user, std::int64_t j, std::int64_t items_per_user, DemoRow& row) {
  row.id = (user - 1) * items_per_user + j + 1;
  row.user_id = user;
  row.status = (user + j) % 3 == 0 ? std::string_view("closed") : std::string_view("open");

  char stamp[] = "2026-MM-DDTHH:MM:SSZ";
  put_two_digits(stamp + 5, j % 12 + 1);
  put_two_digits(stamp + 8, j % 28 + 1);
  put_two_digits(stamp + 11, j % 24);
  put_two_digits(stamp + 14, (j * 7) % 60);
  put_two_digits(stamp + 17, (j * 13) % 60);
  row.created_at.assign(stamp, sizeof(stamp) - 1);

  char digits[24];
  const auto [end, ec] = std::to_chars(digits, digits + sizeof(digits), row.id);
  (void)ec;  // 24 characters hold any int64
  row.title.assign("Item ");
  row.title.append(digits, end);
  row.title.push_back(' ');
  row.title.append(kDemoWords[static_cast<std::size_t>(row.id % 8)]);

  row.score = static_cast<double>((row.id * 37) % 1000) / 100.0;
  row.unread = row.id % 4 == 0;
}

DemoRow make_demo_row(std::int64_t user, std::int64_t j, std::int64_t items_per_user) {
  DemoRow row;
  fill_demo_row(user, j, items_per_user, row);
  return row;
}

std::int64_t demo_row_count(std::int64_t users, std::int64_t items_per_user) {
  return users > 0 && items_per_user > 0 ? users * items_per_user : 0;
}

void for_each_demo_row(std::int64_t users, std::int64_t items_per_user,
                       const std::function<void(const DemoRow&)>& visit) {
  DemoRow row;
  for (std::int64_t user = 1; user <= users; ++user) {
    for (std::int64_t j = 0; j < items_per_user; ++j) {
      fill_demo_row(user, j, items_per_user, row);
      visit(row);
    }
  }
}

}  // namespace molt::demo
