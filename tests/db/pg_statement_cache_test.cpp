// The bookkeeping of a PostgreSQL connection's prepared statements (no server involved):
// least recently used out, entries of the running round kept, names never reused, and the
// names the caller must deallocate on the server.

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "db/postgres/statement_cache.hpp"

namespace molt::db::pg {
namespace {

using Names = std::vector<std::string>;

// One round of use() calls, as a call makes them, followed by the trim.
std::vector<StatementCache::Entry*> round(StatementCache& cache, std::vector<std::string> keys) {
  cache.begin_round();
  std::vector<StatementCache::Entry*> used;
  for (const auto& k : keys) used.push_back(cache.use(k));
  cache.trim();
  for (auto* e : used) e->prepared = true;  // as if the server answered every Parse
  return used;
}

TEST(PgStatementCache, KeysTellSqlAndParameterTypesApart) {
  const std::uint32_t int8[] = {20}, text[] = {25}, both[] = {20, 25};
  EXPECT_EQ(StatementCache::key_of("SELECT $1", int8), StatementCache::key_of("SELECT $1", int8));
  EXPECT_NE(StatementCache::key_of("SELECT $1", int8), StatementCache::key_of("SELECT $1", text));
  EXPECT_NE(StatementCache::key_of("SELECT $1", int8), StatementCache::key_of("SELECT $1", both));
  EXPECT_NE(StatementCache::key_of("SELECT 1", {}), StatementCache::key_of("SELECT 2", {}));
}

TEST(PgStatementCache, ReusesAnEntryAndEvictsTheLeastRecentlyUsed) {
  StatementCache cache(2);
  const auto a = round(cache, {"a"})[0]->name;
  const auto b = round(cache, {"b"})[0]->name;
  EXPECT_NE(a, b);
  EXPECT_EQ(round(cache, {"a"})[0]->name, a);  // a is now the most recently used
  EXPECT_TRUE(cache.take_evicted().empty());
  const auto c = round(cache, {"c"})[0]->name;  // evicts b, not a
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.take_evicted(), Names{b});
  EXPECT_TRUE(cache.take_evicted().empty());  // taken once
  EXPECT_NE(cache.find("a"), nullptr);
  EXPECT_EQ(cache.find("b"), nullptr);
  // b comes back under a new name: the server may still hold the old one until deallocated.
  const auto b2 = round(cache, {"b"})[0]->name;
  EXPECT_NE(b2, b);
  EXPECT_NE(b2, c);
  EXPECT_EQ(cache.take_evicted(), Names{a});
}

TEST(PgStatementCache, ARoundKeepsEveryStatementItUsesEvenBeyondCapacity) {
  StatementCache cache(2);
  const auto used = round(cache, {"a", "b", "c", "a"});
  EXPECT_EQ(cache.size(), 3u);  // over capacity until the next round
  EXPECT_EQ(used[0], used[3]);
  EXPECT_TRUE(cache.take_evicted().empty());
  const std::set<std::string> b_and_c{used[1]->name, used[2]->name};
  round(cache, {"d"});  // now b and c (least recently used: a came last) go; a and d stay
  EXPECT_EQ(cache.size(), 2u);
  const auto evicted = cache.take_evicted();
  EXPECT_EQ(std::set<std::string>(evicted.begin(), evicted.end()), b_and_c);
  EXPECT_EQ(evicted.size(), 2u);
  EXPECT_NE(cache.find("a"), nullptr);
  EXPECT_NE(cache.find("d"), nullptr);
}

TEST(PgStatementCache, ForgettingDeallocatesOnlyWhatTheServerMayHold) {
  StatementCache cache(4);
  const auto x = round(cache, {"x"})[0]->name;
  cache.begin_round();
  StatementCache::Entry* y = cache.use("y");  // not prepared yet
  const std::string y_name = y->name;
  cache.forget("y", false);  // its Parse failed: nothing on the server
  cache.forget("x", true);   // outdated plan: deallocate it
  cache.forget("nothing", true);
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_EQ(cache.take_evicted(), Names{x});
  EXPECT_NE(round(cache, {"y"})[0]->name, y_name);
}

TEST(PgStatementCache, ForgetAllDeallocatesPreparedOnesAndClearDropsEverything) {
  StatementCache cache(4);
  const auto used = round(cache, {"a", "b"});
  const Names names{used[0]->name, used[1]->name};
  cache.begin_round();
  cache.use("c");  // unprepared: the server never had it
  cache.forget_all();
  EXPECT_EQ(cache.size(), 0u);
  auto evicted = cache.take_evicted();
  std::sort(evicted.begin(), evicted.end());
  auto expected = names;
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(evicted, expected);

  round(cache, {"a"});
  round(cache, {"b"});
  cache.forget("a", true);
  cache.clear();  // a new session: nothing to deallocate, not even what was pending
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_TRUE(cache.take_evicted().empty());
}

TEST(PgStatementCache, CapacityZeroCachesNothing) {
  StatementCache cache(0);
  cache.begin_round();
  EXPECT_EQ(cache.use("a"), nullptr);
  cache.trim();
  EXPECT_EQ(cache.size(), 0u);
}

}  // namespace
}  // namespace molt::db::pg
