#include "statement_cache.hpp"

#include <utility>

namespace molt::db::pg {

std::string StatementCache::key_of(std::string_view sql, std::span<const std::uint32_t> oids) {
  // SQL text cannot contain a NUL byte (libpq sends it NUL-terminated), so the separator
  // keeps "SELECT $1" + [23] apart from any other text.
  std::string key;
  key.reserve(sql.size() + 1 + oids.size() * sizeof(std::uint32_t));
  key.append(sql);
  key.push_back('\0');
  for (const std::uint32_t oid : oids) key.append(reinterpret_cast<const char*>(&oid), sizeof oid);
  return key;
}

StatementCache::Entry* StatementCache::use(std::string_view key) {
  if (capacity_ == 0) return nullptr;
  if (const auto found = by_key_.find(key); found != by_key_.end()) {
    entries_.splice(entries_.begin(), entries_, found->second);
    found->second->last_use = round_;
    return &*found->second;
  }
  entries_.push_front(
      Entry{std::string(key), "molt_" + std::to_string(next_name_++), false, round_});
  by_key_.emplace(entries_.front().key, entries_.begin());
  return &entries_.front();
}

void StatementCache::trim() {
  while (entries_.size() > capacity_ && entries_.back().last_use != round_) {
    Entry& victim = entries_.back();
    if (victim.prepared) evicted_.push_back(std::move(victim.name));
    by_key_.erase(victim.key);
    entries_.pop_back();
  }
}

StatementCache::Entry* StatementCache::find(std::string_view key) {
  const auto found = by_key_.find(key);
  return found == by_key_.end() ? nullptr : &*found->second;
}

void StatementCache::forget(std::string_view key, bool deallocate) {
  const auto found = by_key_.find(key);
  if (found == by_key_.end()) return;
  if (deallocate) evicted_.push_back(found->second->name);
  const auto at = found->second;
  by_key_.erase(found);
  entries_.erase(at);
}

void StatementCache::forget_all() {
  for (Entry& entry : entries_)
    if (entry.prepared) evicted_.push_back(std::move(entry.name));
  by_key_.clear();
  entries_.clear();
}

void StatementCache::clear() noexcept {
  by_key_.clear();
  entries_.clear();
  evicted_.clear();
}

}  // namespace molt::db::pg
