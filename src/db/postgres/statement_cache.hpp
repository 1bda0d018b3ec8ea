#pragma once
// The prepared statements of one PostgreSQL connection, least recently used first out.
// A statement is keyed by its SQL text and its parameter type OIDs (the server fixes both at
// prepare time) and named `molt_<n>`, never reusing a name within one cache. The cache only
// does the bookkeeping; the caller prepares and deallocates on the server. Internal to
// molt::db; nothing here talks to a server.

#include <cstddef>
#include <cstdint>
#include <list>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace molt::db::pg {

class StatementCache {
 public:
  struct Entry {
    std::string key;
    std::string name;
    bool prepared = false;       // the server has it (set by the caller once Parse succeeded)
    std::uint64_t last_use = 0;  // the use() round it was last asked for in
  };

  // `capacity` 0 turns caching off: use() then always answers nullptr.
  explicit StatementCache(std::size_t capacity) : capacity_(capacity) {}

  // The key of `sql` with parameters of these type OIDs.
  static std::string key_of(std::string_view sql, std::span<const std::uint32_t> oids);

  // Starts a round of use() calls (one pipeline): entries used in the current round are
  // never evicted by it, so a batch can rely on every statement it named.
  void begin_round() noexcept { ++round_; }
  // The entry for `key`, now most recently used, created unprepared when missing. nullptr
  // when caching is off.
  Entry* use(std::string_view key);
  // The entry for `key` without touching its place; nullptr when there is none.
  Entry* find(std::string_view key);
  // Evicts least recently used entries beyond the capacity, except those of this round.
  // The names of evicted prepared statements are kept for take_evicted().
  void trim();
  // Names the server still holds but the cache no longer knows; the caller deallocates them.
  std::vector<std::string> take_evicted() { return std::exchange(evicted_, {}); }

  // Drops the entry for `key`, if any; `deallocate` when the server may hold it (its name
  // goes to take_evicted()).
  void forget(std::string_view key, bool deallocate);
  // Drops every entry and deallocates those the server was known to hold: after the server
  // said one of them is gone (DEALLOCATE ALL, DISCARD ALL), the others may be gone too.
  void forget_all();
  // Drops everything, without deallocating: the session is gone (closed, reconnected).
  void clear() noexcept;

  std::size_t size() const noexcept { return entries_.size(); }
  std::size_t capacity() const noexcept { return capacity_; }

 private:
  struct KeyHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };

  std::size_t capacity_;
  std::uint64_t round_ = 0;
  std::uint64_t next_name_ = 1;
  std::list<Entry> entries_;  // most recently used first
  std::unordered_map<std::string, std::list<Entry>::iterator, KeyHash, std::equal_to<>> by_key_;
  std::vector<std::string> evicted_;
};

}  // namespace molt::db::pg
