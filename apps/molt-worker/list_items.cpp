// list_items in fake-DB mode (DESIGN.md §5): deterministic rows, the same JSON Django answers,
// with latency knobs to stand in for a slow database.

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <string>

#include "contracts.hpp"
#include "molt/worker/export_registry.hpp"

namespace molt_worker {
namespace {

using molt::worker::ExportContext;

struct FakeDbKnobs {
  std::int64_t delay_ms = 0;           // MOLT_FAKE_DB_DELAY_MS: once per call
  std::int64_t decode_us_per_row = 0;  // MOLT_FAKE_DB_DECODE_US_PER_ROW
  std::int64_t cpu_iters_per_row = 0;  // MOLT_FAKE_DB_CPU_ITERS
};

std::int64_t knob_from_env(const char* name) {
  const char* text = std::getenv(name);
  if (!text || !*text) return 0;
  std::int64_t value = 0;
  const char* end = text + std::char_traits<char>::length(text);
  auto [ptr, ec] = std::from_chars(text, end, value);
  if (ec != std::errc() || ptr != end || value < 0)
    throw std::invalid_argument(std::string(name) + " must be a non-negative integer, got '" +
                                text + "'");
  return value;
}

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

}  // namespace
}  // namespace molt_worker

void molt_register_list_items(molt::worker::ExportRegistry& registry) {
  using namespace molt_worker;
  const FakeDbKnobs knobs{knob_from_env("MOLT_FAKE_DB_DELAY_MS"),
                          knob_from_env("MOLT_FAKE_DB_DECODE_US_PER_ROW"),
                          knob_from_env("MOLT_FAKE_DB_CPU_ITERS")};
  registry.add<ListItemsRequest, ListItemsResponse>(
      "list_items", molt::ipc::Codec::MsgPack, molt::ipc::Codec::Json,
      [knobs](const ListItemsRequest& req, molt::worker::ExportContext& ctx) {
        return list_items_fake(req, ctx, knobs);
      });
}
