// The pure pieces of the PostgreSQL backend: `:name` rewriting, text-format cell decoding,
// array literals and parameter encoding. No server involved; expected texts are what a
// PostgreSQL 15 server sends and accepts.

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <random>

#include "db/postgres/named_params.hpp"
#include "db/postgres/session_rules.hpp"
#include "db/postgres/text_params.hpp"
#include "db/postgres/text_values.hpp"
#include "molt/core/status.hpp"
#include "support/status_of.hpp"

namespace molt::db::pg {
namespace {

using core::StatusCode;
using Names = std::vector<std::string>;
using Elements = std::vector<std::optional<std::string>>;

using molt::testing::status_of;

// The rewritten text alone, for the many cases where the names are not the point.
std::string rewrite(std::string_view sql) {
  return rewrite_named_params(sql).sql;
}

Value cell(std::uint32_t oid, std::string_view text) {
  return decode_text_cell(oid, text.data(), static_cast<int>(text.size()), false);
}

// ---- rewrite_named_params -------------------------------------------------------------

TEST(PgSessionRules, SessionAndTransactionStatementsAreRefusedByTheirFirstKeyword) {
  for (const char* sql :
       {"SET search_path = x", "set session authorization bob", "  -- why\n  SET x = 1",
        "/* a /* nested */ comment */ SET x = 1", "RESET ALL", "DISCARD ALL", "DEALLOCATE ALL",
        "LISTEN a", "UNLISTEN *", "LOAD 'x'", "BEGIN", "start transaction", "COMMIT", "END",
        "ROLLBACK", "ABORT", "SAVEPOINT s", "RELEASE s", "PREPARE p AS SELECT 1"})
    EXPECT_NE(pg::session_statement_refusal(sql, false), nullptr) << sql;
  for (const char* sql :
       {"SELECT 1", "SET LOCAL statement_timeout = 1", "SET CONSTRAINTS ALL DEFERRED",
        "WITH s AS (SELECT 1) SELECT * FROM s", "  (SELECT 1)", "UPDATE settings SET x = 1",
        "SELECT 'BEGIN'", "", "-- only a comment", "INSERT INTO t VALUES ('SET')", "SETTLE",
        "BEGINNING"})
    EXPECT_EQ(pg::session_statement_refusal(sql, false), nullptr) << sql;
}

// Found by a review: an empty statement first (the server drops it), and a `--` comment that
// a carriage return ends, hid the keyword; and outside a transaction of the API, a first
// statement of a batch that made its transaction read-write let the next one write.
TEST(PgSessionRules, NeitherEmptyStatementsNorCommentsHideTheKeyword) {
  for (const char* sql :
       {";SET search_path = x", " ; ;BEGIN", "--x\rSET x = 1", "/* a */;RESET ALL"})
    EXPECT_NE(pg::session_statement_refusal(sql, false), nullptr) << sql;
  // From a fault review: a quoted name (read by the server as the plain one) hid the setting,
  // and a batch's INSERT after it was committed.
  for (const char* sql :
       {"SET TRANSACTION READ WRITE", "SET LOCAL transaction_read_only = off",
        "set local default_transaction_read_only TO off",
        "SET LOCAL \"transaction_read_only\" = off",
        "SET LOCAL \"Default_Transaction_Read_Only\" TO off",
        "SET LOCAL U&\"transaction\005fread_only\" = off", "SET LOCAL u&\"x\" = off"}) {
    EXPECT_NE(pg::session_statement_refusal(sql, false), nullptr) << sql;
    EXPECT_EQ(pg::session_statement_refusal(sql, true), nullptr) << sql;  // in a transaction
  }
  EXPECT_EQ(pg::session_statement_refusal("SET LOCAL statement_timeout = 5", false), nullptr);
}

// Which statements execute() may commit with the statement itself: only those that cannot
// give rows by their form; everything else waits for its rows (errs towards true).
TEST(PgSessionRules, MayReturnRowsErrsTowardsTrue) {
  for (const char* sql : {"SELECT 1", "WITH w AS (DELETE FROM t RETURNING *) SELECT * FROM w",
                          "VALUES (1)", "TABLE t", "EXPLAIN ANALYZE INSERT INTO t VALUES (1)",
                          "CALL p()", "(SELECT 1)", "INSERT INTO t VALUES (1) RETURNING id",
                          "update t set x = 1 returning *", "/* c */ DELETE FROM t RETURNING id",
                          "MERGE INTO t USING s ON true WHEN MATCHED THEN "
                          "DELETE RETURNING *",
                          "INSERT INTO t VALUES ('returning')", ""})
    EXPECT_TRUE(pg::may_return_rows(sql)) << sql;
  for (const char* sql : {"INSERT INTO t VALUES (1)", "UPDATE t SET x = 1", "-- c\nDELETE FROM t",
                          "CREATE TABLE t AS SELECT 1", "ALTER TABLE t ADD x int", "DROP TABLE t",
                          "TRUNCATE t", "MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE"})
    EXPECT_FALSE(pg::may_return_rows(sql)) << sql;
}

// DO and CALL are no reads; they and set_config() may change the session unseen.
TEST(PgSessionRules, DoCallAndSetConfigAreKnownByTheirText) {
  for (const char* sql :
       {"DO $$ BEGIN END $$", " -- c\n do $$ BEGIN END $$", "CALL p()", "/* x */ call p()"}) {
    EXPECT_NE(pg::read_refusal(sql), nullptr) << sql;
    EXPECT_TRUE(pg::may_change_session(sql)) << sql;
  }
  for (const char* sql : {"SELECT set_config('a', 'b', false)", "select Set_Config('x','y',$3)",
                          "SELECT set_config('a', 'b', true), set_config('c', 'd', false)",
                          "SELECT set_config('a', $$b$$, true)", "SELECT set_config('a', 'b')",
                          "SELECT set_config('a', 'b', true", "INSERT INTO t VALUES ('set_config')",
                          "SELECT set_config('it''s', 'x', (SELECT true))"})
    EXPECT_TRUE(pg::may_change_session(sql)) << sql;
  // From a fault review: SQL run from text, and names written with escapes, hid set_config()
  // (a later caller of the session ran as another role, with another search_path).
  for (const char* sql :
       {"SELECT query_to_xml('select set_' || 'config(''role'',''x'',false)', false, false, '')",
        "SELECT Query_To_Xml_And_XmlSchema($1, false, false, '')",
        "SELECT * FROM ts_stat('select v from t')",
        "SELECT cursor_to_xml('c', 1, false, false, '')",
        "SELECT U&\"set\\005fconfig\"('TimeZone', 'UTC', false)",
        "SELECT ts_rewrite('a'::tsquery, 'select t, s from aliases')"})
    EXPECT_TRUE(pg::may_change_session(sql)) << sql;
  // Whole names only: these would close their session after every call for nothing.
  for (const char* sql : {"SELECT id, status FROM shipments_status WHERE id = $1",
                          "SELECT * FROM products_stats", "UPDATE a SET accounts_state = 'x'",
                          "SELECT * FROM t WHERE menu&1 = 1", "SELECT my_query_to_xml(1)"})
    EXPECT_FALSE(pg::may_change_session(sql)) << sql;
  // From a fault review: a TEMP table stayed with the pooled session, and a later caller's
  // INSERT INTO t went there (Ok, and never in public.t).
  for (const char* sql :
       {"CREATE TEMP TABLE t(id int)", "create temporary table t AS SELECT 1",
        "CREATE GLOBAL TEMPORARY TABLE t(id int)", "CREATE LOCAL TEMP TABLE t(id int)",
        "CREATE OR REPLACE TEMP VIEW v AS SELECT 1", "CREATE TEMP SEQUENCE s",
        "SELECT 1 AS a INTO TEMP t", "CREATE TABLE pg_temp.t(id int)",
        "CREATE\n  TEMP TABLE t(id int)"})
    EXPECT_TRUE(pg::may_change_session(sql)) << sql;
  for (const char* sql : {"SELECT temperature FROM readings", "SELECT temp FROM readings",
                          "INSERT INTO readings(temp) VALUES (1)", "CREATE TABLE temps(id int)",
                          "UPDATE t SET temp = 1"})
    EXPECT_FALSE(pg::may_change_session(sql)) << sql;
  // Local to its transaction, as SET LOCAL: row-level security's tenant, say.
  for (const char* sql :
       {"SELECT set_config('app.tenant', $1, true)", "select SET_CONFIG ( 'a' , 'b,c)' , TRUE )",
        "SELECT set_config('it''s', lower('X'), true) AS a, 1"})
    EXPECT_FALSE(pg::may_change_session(sql)) << sql;
  for (const char* sql : {"SELECT 1", "SELECT done FROM t", "SELECT * FROM calls",
                          "INSERT INTO t VALUES (1)", "DOUBLE", "WITH do AS (SELECT 1) TABLE do"}) {
    EXPECT_EQ(pg::read_refusal(sql), nullptr) << sql;
    EXPECT_FALSE(pg::may_change_session(sql)) << sql;
  }
}

TEST(PgNamedParams, NumbersNamesInOrderOfFirstUse) {
  const auto r = rewrite_named_params("SELECT * FROM t WHERE b = :beta AND a = :alpha");
  EXPECT_EQ(r.sql, "SELECT * FROM t WHERE b = $1 AND a = $2");
  EXPECT_EQ(r.names, (Names{"beta", "alpha"}));
}

TEST(PgNamedParams, RepeatedNameKeepsItsNumber) {
  const auto r = rewrite_named_params(":a, :b, :a, :b, :c");
  EXPECT_EQ(r.sql, "$1, $2, $1, $2, $3");
  EXPECT_EQ(r.names, (Names{"a", "b", "c"}));
}

TEST(PgNamedParams, NameCharactersAndCase) {
  const auto r = rewrite_named_params(":user_id2+:_x-:User_ID2*:a1.b");
  EXPECT_EQ(r.sql, "$1+$2-$3*$4.b");
  EXPECT_EQ(r.names, (Names{"user_id2", "_x", "User_ID2", "a1"}));
}

TEST(PgNamedParams, TenOrMoreParametersGetMultiDigitNumbers) {
  std::string sql;
  std::string expected;
  for (int i = 1; i <= 12; ++i) {
    sql += ":p" + std::to_string(i) + ",";
    expected += "$" + std::to_string(i) + ",";
  }
  sql += ":p11";
  expected += "$11";
  const auto r = rewrite_named_params(sql);
  EXPECT_EQ(r.sql, expected);
  ASSERT_EQ(r.names.size(), 12u);
  EXPECT_EQ(r.names[10], "p11");
}

TEST(PgNamedParams, CastsAreNotParameters) {
  EXPECT_EQ(rewrite("SELECT x::int, '1'::text"), "SELECT x::int, '1'::text");
  EXPECT_EQ(rewrite("SELECT :name::int"), "SELECT $1::int");
  EXPECT_EQ(rewrite("SELECT (:a)::text, :a::int[], :b::timestamptz"),
            "SELECT ($1)::text, $1::int[], $2::timestamptz");
  EXPECT_EQ(rewrite("SELECT x::name"), "SELECT x::name");  // a type called `name`
}

TEST(PgNamedParams, ColonsThatStartNoName) {
  EXPECT_EQ(rewrite("SELECT a[1:2], a[:3]"), "SELECT a[1:2], a[:3]");
  // A colon before a letter is a parameter even in a subscript; a space after the colon
  // keeps a slice bound by columns a slice.
  EXPECT_EQ(rewrite("SELECT a[1:n], a[:lo:2]"), "SELECT a[1$1], a[$2:2]");
  EXPECT_EQ(rewrite("SELECT a[lo: hi]"), "SELECT a[lo: hi]");
  EXPECT_EQ(rewrite("SELECT f(a := 1)"), "SELECT f(a := 1)");
  EXPECT_EQ(rewrite("SELECT 1 :"), "SELECT 1 :");
  EXPECT_EQ(rewrite(": :"), ": :");
}

TEST(PgNamedParams, SingleQuotedStringsAreLeftAlone) {
  EXPECT_EQ(rewrite("SELECT ':a', :b"), "SELECT ':a', $1");
  EXPECT_EQ(rewrite("SELECT 'it''s :a' = :b"), "SELECT 'it''s :a' = $1");
  EXPECT_EQ(rewrite("SELECT '' || :b || ''''"), "SELECT '' || $1 || ''''");
  // Standard strings take backslashes literally: the string ends right after it.
  EXPECT_EQ(rewrite("SELECT 'a\\' = :b"), "SELECT 'a\\' = $1");
  // Prefixed standard-quoted literals: bit strings, national, Unicode escapes.
  EXPECT_EQ(rewrite("SELECT B'1:a', X':a', N':a', U&':a', :z"),
            "SELECT B'1:a', X':a', N':a', U&':a', $1");
}

TEST(PgNamedParams, EscapeStringsHonourBackslashes) {
  EXPECT_EQ(rewrite("SELECT E'\\' :a' = :b"), "SELECT E'\\' :a' = $1");
  EXPECT_EQ(rewrite("SELECT e'\\\\' = :b"), "SELECT e'\\\\' = $1");
  EXPECT_EQ(rewrite("SELECT E'x'' :a' = :b"), "SELECT E'x'' :a' = $1");
  // A string continued on the next line keeps its backslash escapes, even past a comment.
  EXPECT_EQ(rewrite("SELECT E'a'\n'\\' :x' = :y"), "SELECT E'a'\n'\\' :x' = $1");
  EXPECT_EQ(rewrite("SELECT E'a' -- c\r\n  '\\' :x' = :y"), "SELECT E'a' -- c\r\n  '\\' :x' = $1");
  // Without a line break the next literal is a standard string of its own.
  EXPECT_EQ(rewrite("SELECT E'a' '\\', :x"), "SELECT E'a' '\\', $1");
  // Only a lone E starts one: `name'\'` is a typed literal of type name, then a parameter.
  EXPECT_EQ(rewrite("SELECT name'\\' = :x"), "SELECT name'\\' = $1");
}

TEST(PgNamedParams, QuotedIdentifiersAreLeftAlone) {
  EXPECT_EQ(rewrite("SELECT \"col :a\" FROM t WHERE x = :b"),
            "SELECT \"col :a\" FROM t WHERE x = $1");
  EXPECT_EQ(rewrite("SELECT \"a\"\":b\" = :c"), "SELECT \"a\"\":b\" = $1");
  EXPECT_EQ(rewrite("SELECT U&\"d:a\" = :c"), "SELECT U&\"d:a\" = $1");
}

TEST(PgNamedParams, DollarQuotedBodiesAreLeftAlone) {
  EXPECT_EQ(rewrite("SELECT $$ :a ' \" $$, :b"), "SELECT $$ :a ' \" $$, $1");
  EXPECT_EQ(rewrite("SELECT $fn$ :a $$ :b $fn$, :c"), "SELECT $fn$ :a $$ :b $fn$, $1");
  EXPECT_EQ(rewrite("SELECT $a1$ :a $a1$||$_$:b$_$, :c"), "SELECT $a1$ :a $a1$||$_$:b$_$, $1");
  // A tag is case-sensitive: $A$ does not close $a$.
  EXPECT_EQ(rewrite("SELECT $a$ :x $A$ :y $a$ :z"), "SELECT $a$ :x $A$ :y $a$ $1");
  // A stray `$` is just a byte.
  EXPECT_EQ(rewrite("SELECT $ :a"), "SELECT $ $1");
}

TEST(PgNamedParams, DollarInsideIdentifiersIsNeitherQuoteNorPlaceholder) {
  // `foo$$` and `a$1` are identifiers: no dollar quote opens, no $n placeholder is used.
  EXPECT_EQ(rewrite("SELECT foo$$ :x"), "SELECT foo$$ $1");
  EXPECT_EQ(rewrite("SELECT a$1 FROM t WHERE b = :b"), "SELECT a$1 FROM t WHERE b = $1");
}

TEST(PgNamedParams, CommentsAreLeftAlone) {
  EXPECT_EQ(rewrite("SELECT 1 -- :a\n, :b"), "SELECT 1 -- :a\n, $1");
  EXPECT_EQ(rewrite("SELECT 1 -- :a\r, :b"), "SELECT 1 -- :a\r, $1");
  EXPECT_EQ(rewrite("SELECT :b --:a"), "SELECT $1 --:a");
  EXPECT_EQ(rewrite("SELECT 2 - :b, 3 -:c"), "SELECT 2 - $1, 3 -$2");
  EXPECT_EQ(rewrite("SELECT /* :a */ :b / :c"), "SELECT /* :a */ $1 / $2");
  EXPECT_EQ(rewrite("SELECT /**/ :b"), "SELECT /**/ $1");
  EXPECT_EQ(rewrite("SELECT /* -- :a */ :b"), "SELECT /* -- :a */ $1");
  EXPECT_EQ(rewrite("SELECT /* ' */ :b"), "SELECT /* ' */ $1");
}

TEST(PgNamedParams, BlockCommentsNest) {
  EXPECT_EQ(rewrite("SELECT /* a /* :x */ :y */ :z"), "SELECT /* a /* :x */ :y */ $1");
  EXPECT_EQ(rewrite("SELECT /*/* */ :y **/ :z"), "SELECT /*/* */ :y **/ $1");
}

TEST(PgNamedParams, PositionalSqlPassesThrough) {
  const auto r = rewrite_named_params("SELECT $1, $2::int, $10");
  EXPECT_EQ(r.sql, "SELECT $1, $2::int, $10");
  EXPECT_TRUE(r.names.empty());
  EXPECT_EQ(rewrite(""), "");
}

TEST(PgNamedParams, MixingPlaceholderStylesIsRejected) {
  std::string message;
  EXPECT_EQ(status_of([] { rewrite_named_params("SELECT $1, :a"); }, &message),
            StatusCode::InvalidInput);
  EXPECT_NE(message.find("mixes $n and :name placeholders"), std::string::npos) << message;
  EXPECT_EQ(status_of([] { rewrite_named_params("SELECT :a::int, $2"); }),
            StatusCode::InvalidInput);
  // A `$1` that is only text is not a placeholder.
  EXPECT_EQ(rewrite("SELECT '$1', \"$1\", $$ $1 $$, :a -- $1"),
            "SELECT '$1', \"$1\", $$ $1 $$, $1 -- $1");
}

TEST(PgNamedParams, UnterminatedQuotesAndCommentsKeepTheirRest) {
  const auto r = rewrite_named_params("SELECT :a, 'oops :b");
  EXPECT_EQ(r.sql, "SELECT $1, 'oops :b");
  EXPECT_EQ(r.names, (Names{"a"}));
  EXPECT_EQ(rewrite(":a \"id :b"), "$1 \"id :b");
  EXPECT_EQ(rewrite(":a E'\\' :b"), "$1 E'\\' :b");
  EXPECT_EQ(rewrite(":a $t$ :b $$"), "$1 $t$ :b $$");
  EXPECT_EQ(rewrite(":a /* /* */ :b"), "$1 /* /* */ :b");
  EXPECT_EQ(rewrite(":a /"), "$1 /");
  EXPECT_EQ(rewrite(":a '"), "$1 '");
}

TEST(PgNamedParams, NonAsciiIdentifiers) {
  // Bytes >= 0x80 are identifier letters; a name itself is ASCII.
  EXPECT_EQ(rewrite("SELECT \xc3\xa9:x"), "SELECT \xc3\xa9$1");
  EXPECT_EQ(rewrite("SELECT :\xc3\xa9"), "SELECT :\xc3\xa9");
}

// ---- order_named_params ---------------------------------------------------------------

Params named(std::vector<std::pair<std::string, Param>> entries) {
  Params params;
  for (auto& [name, value] : entries) {
    params.names.push_back(name);
    params.values.push_back(std::move(value));
  }
  return params;
}

TEST(PgNamedParams, OrdersValuesByPlaceholderNumber) {
  const auto r = rewrite_named_params("SELECT :a, :b, :a");
  const auto ordered =
      order_named_params(r, named({{"b", {std::int64_t{2}}}, {"a", {std::string("one")}}}));
  ASSERT_EQ(ordered.size(), 2u);
  EXPECT_EQ(ordered[0].value, Value(std::string("one")));
  EXPECT_EQ(ordered[1].value, Value(std::int64_t{2}));
}

TEST(PgNamedParams, OrderingKeepsTheNullType) {
  const auto r = rewrite_named_params("SELECT :n");
  const auto ordered = order_named_params(r, named({{"n", Param::null(ValueType::Bytes)}}));
  ASSERT_EQ(ordered.size(), 1u);
  EXPECT_EQ(ordered[0].value, Value(nullptr));
  EXPECT_EQ(ordered[0].null_type, ValueType::Bytes);
}

TEST(PgNamedParams, MissingExtraAndDuplicateNamesAreNamed) {
  const auto r = rewrite_named_params("SELECT :user_id, :q");
  std::string message;
  EXPECT_EQ(status_of(
                [&] {
                  order_named_params(r, named({{"q", {true}}}));
                },
                &message),
            StatusCode::InvalidInput);
  EXPECT_EQ(message, "no value given for :user_id");
  EXPECT_EQ(
      status_of(
          [&] {
            order_named_params(r, named({{"user_id", {true}}, {"q", {true}}, {"zzz", {true}}}));
          },
          &message),
      StatusCode::InvalidInput);
  EXPECT_EQ(message, "the SQL has no :zzz");
  EXPECT_EQ(
      status_of(
          [&] {
            order_named_params(r, named({{"user_id", {true}}, {"q", {true}}, {"q", {false}}}));
          },
          &message),
      StatusCode::InvalidInput);
  EXPECT_NE(message.find(":q"), std::string::npos) << message;
  EXPECT_NE(message.find("twice"), std::string::npos) << message;
  // Names are case-sensitive, as in SQLite.
  EXPECT_EQ(status_of(
                [&] {
                  order_named_params(r, named({{"USER_ID", {true}}, {"q", {true}}}));
                },
                &message),
            StatusCode::InvalidInput);
  EXPECT_EQ(message, "no value given for :user_id");
}

TEST(PgNamedParams, NamedSqlWithoutNamedValues) {
  const auto r = rewrite_named_params("SELECT :a");
  std::string message;
  EXPECT_EQ(status_of([&] { order_named_params(r, Params{}); }, &message),
            StatusCode::InvalidInput);
  EXPECT_EQ(message, "no value given for :a");
  EXPECT_EQ(
      status_of([&] { order_named_params(r, Params::positional({{std::int64_t{1}}})); }, &message),
      StatusCode::InvalidInput);
  EXPECT_NE(message.find(":a"), std::string::npos) << message;
}

TEST(PgNamedParams, PositionalValuesForPositionalSql) {
  const auto r = rewrite_named_params("SELECT $1, $2");
  const auto ordered =
      order_named_params(r, Params::positional({{std::int64_t{1}}, {std::string("x")}}));
  ASSERT_EQ(ordered.size(), 2u);
  EXPECT_EQ(ordered[1].value, Value(std::string("x")));
  std::string message;
  EXPECT_EQ(status_of(
                [&] {
                  order_named_params(r, named({{"a", {true}}}));
                },
                &message),
            StatusCode::InvalidInput);
  EXPECT_EQ(message, "the SQL has no :a");
}

// As many values as the highest $n asks for: extra ones were sent and ignored by the server.
TEST(PgNamedParams, PositionalValuesMustMatchTheHighestPlaceholder) {
  const auto r = rewrite_named_params("SELECT $2::int, '$9', $1 -- $7");
  EXPECT_EQ(r.highest_number, 2u);
  std::string message;
  EXPECT_EQ(
      status_of(
          [&] {
            order_named_params(
                r, Params::positional({{std::int64_t{1}}, {std::int64_t{2}}, {std::int64_t{3}}}));
          },
          &message),
      StatusCode::InvalidInput);
  EXPECT_EQ(message, "the statement has 2 placeholders but 3 values were given");
  EXPECT_EQ(status_of([&] { order_named_params(r, Params::positional({{std::int64_t{1}}})); }),
            StatusCode::InvalidInput);
  EXPECT_EQ(status_of([&] {
              order_named_params(rewrite_named_params("SELECT 1"),
                                 Params::positional({{std::int64_t{1}}}));
            }),
            StatusCode::InvalidInput);
  EXPECT_TRUE(order_named_params(rewrite_named_params("SELECT 1"), Params{}).empty());
}

TEST(PgNamedParams, NamesAndValuesOfDifferentCounts) {
  const auto r = rewrite_named_params("SELECT :a");
  Params params;
  params.names = {"a", "b"};
  params.values = {{true}};
  EXPECT_EQ(status_of([&] { order_named_params(r, params); }), StatusCode::InvalidInput);
}

// ---- decode_text_cell -----------------------------------------------------------------

TEST(PgTextValues, Bool) {
  EXPECT_EQ(cell(16, "t"), Value(true));
  EXPECT_EQ(cell(16, "f"), Value(false));
  for (const char* bad : {"true", "T", "", "1", "tt"})
    EXPECT_EQ(status_of([&] { cell(16, bad); }), StatusCode::InternalError) << bad;
}

TEST(PgTextValues, Integers) {
  EXPECT_EQ(cell(21, "-32768"), Value(std::int64_t{-32768}));
  EXPECT_EQ(cell(23, "2147483647"), Value(std::int64_t{2147483647}));
  EXPECT_EQ(cell(20, "-9223372036854775808"), Value(std::numeric_limits<std::int64_t>::min()));
  EXPECT_EQ(cell(20, "9223372036854775807"), Value(std::numeric_limits<std::int64_t>::max()));
  EXPECT_EQ(cell(26, "4294967295"), Value(std::int64_t{4294967295}));
  EXPECT_EQ(cell(23, "0"), Value(std::int64_t{0}));
}

TEST(PgTextValues, MalformedIntegersNameOidAndText) {
  for (const std::uint32_t oid : {21u, 23u, 20u, 26u})
    for (const char* bad : {"", "12a", " 1", "1 ", "+1", "1.0", "0x10", "-", "9223372036854775808"})
      EXPECT_EQ(status_of([&] { cell(oid, bad); }), StatusCode::InternalError) << oid << " " << bad;
  std::string message;
  status_of([] { cell(20, "12abc"); }, &message);
  EXPECT_NE(message.find("20"), std::string::npos) << message;
  EXPECT_NE(message.find("'12abc'"), std::string::npos) << message;
}

TEST(PgTextValues, LongMalformedTextIsShortenedInTheMessage) {
  const std::string huge(100000, '9');
  std::string message;
  EXPECT_EQ(status_of([&] { cell(20, huge); }, &message), StatusCode::InternalError);
  EXPECT_LT(message.size(), 200u);
}

TEST(PgTextValues, Floats) {
  for (const std::uint32_t oid : {700u, 701u}) {
    EXPECT_EQ(cell(oid, "1.5"), Value(1.5));
    EXPECT_EQ(cell(oid, "0.1"), Value(0.1));
    EXPECT_EQ(cell(oid, "1e+300"), Value(1e300));
    EXPECT_EQ(cell(oid, "3.4028235e+38"), Value(3.4028235e38));
    EXPECT_EQ(cell(oid, "5e-324"), Value(5e-324));
    EXPECT_EQ(cell(oid, "123456789012"), Value(123456789012.0));
    const double zero = std::get<double>(cell(oid, "-0"));
    EXPECT_EQ(zero, 0.0);
    EXPECT_TRUE(std::signbit(zero));
    EXPECT_TRUE(std::isnan(std::get<double>(cell(oid, "NaN"))));
    EXPECT_EQ(cell(oid, "Infinity"), Value(std::numeric_limits<double>::infinity()));
    EXPECT_EQ(cell(oid, "-Infinity"), Value(-std::numeric_limits<double>::infinity()));
  }
}

TEST(PgTextValues, MalformedFloats) {
  for (const std::uint32_t oid : {700u, 701u})
    for (const char* bad :
         {"", "abc", "inf", "nan", "infinity", "1.5x", "1e400", " 1", "--1", "1e", "."})
      EXPECT_EQ(status_of([&] { cell(oid, bad); }), StatusCode::InternalError) << oid << " " << bad;
}

TEST(PgTextValues, NumericStaysExactText) {
  EXPECT_EQ(cell(1700, "12.3400"), Value(std::string("12.3400")));
  EXPECT_EQ(cell(1700, "123456789012345678901234567890.000000000000000001"),
            Value(std::string("123456789012345678901234567890.000000000000000001")));
  EXPECT_EQ(cell(1700, "NaN"), Value(std::string("NaN")));
  EXPECT_EQ(cell(1700, "-Infinity"), Value(std::string("-Infinity")));
}

TEST(PgTextValues, CharacterTypesAreText) {
  for (const std::uint32_t oid : {25u, 1043u, 1042u, 19u, 18u})
    EXPECT_EQ(cell(oid, "h\xc3\xa9 "), Value(std::string("h\xc3\xa9 "))) << oid;
  // The length bounds the cell: libpq's buffer need not end where the cell does.
  const char buffer[] = "abcdef";
  EXPECT_EQ(decode_text_cell(25, buffer, 3, false), Value(std::string("abc")));
}

TEST(PgTextValues, EmptyTextIsNotNull) {
  EXPECT_EQ(cell(25, ""), Value(std::string()));
  EXPECT_EQ(decode_text_cell(25, nullptr, 0, false), Value(std::string()));
}

TEST(PgTextValues, NullIsAFlagForEveryType) {
  for (const std::uint32_t oid : {16u, 17u, 18u, 19u, 20u, 21u, 23u, 25u, 26u, 114u, 700u, 701u,
                                  1042u, 1043u, 1082u, 1700u, 3802u, 424242u}) {
    EXPECT_EQ(decode_text_cell(oid, "", 0, true), Value(nullptr)) << oid;
    EXPECT_EQ(decode_text_cell(oid, nullptr, 0, true), Value(nullptr)) << oid;
  }
}

TEST(PgTextValues, ByteaHex) {
  EXPECT_EQ(cell(17, "\\x0aff"), Value(Bytes{"\x0a\xff"}));
  EXPECT_EQ(cell(17, "\\x0AFF"), Value(Bytes{"\x0a\xff"}));
  EXPECT_EQ(cell(17, "\\x"), Value(Bytes{}));
  EXPECT_EQ(cell(17, "\\x00410042"), Value(Bytes{std::string("\0A\0B", 4)}));
}

TEST(PgTextValues, MalformedByteaIsInternalError) {
  for (const char* bad : {"", "\\", "x0a", "0aff", "\\x0", "\\x0g", "\\xzz", "\\X0a",
                          "\\001abc" /* escape format */, "\\x0a f"})
    EXPECT_EQ(status_of([&] { cell(17, bad); }), StatusCode::InternalError) << bad;
}

TEST(PgTextValues, DatesTimesUuidJsonAndUnknownTypesAreTheServersText) {
  const std::vector<std::pair<std::uint32_t, std::string>> samples{
      {1082, "2024-01-02"},
      {1083, "03:04:05.123456"},
      {1114, "2024-01-02 03:04:05"},
      {1184, "2024-01-02 03:04:05+00"},
      {1186, "1 day 02:00:00"},
      {2950, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
      {114, "{\"a\": [1, 2]}"},
      {3802, "{\"a\": [1, 2]}"},
      {600, "(1,2)"},         // point: a type we do not decode
      {1017, "{\"(1,2)\"}"},  // point[]: an array of a type we do not decode
      {999999, "whatever"},
  };
  for (const auto& [oid, text] : samples) EXPECT_EQ(cell(oid, text), Value(text)) << oid;
}

Array array_of(std::vector<Element> elements) {
  return Array{std::move(elements)};
}

TEST(PgTextValues, OneDimensionalArraysDecodeTheirElementsByType) {
  EXPECT_EQ(cell(1007, "{1,NULL,-3}"),
            Value(array_of({std::int64_t{1}, nullptr, std::int64_t{-3}})));
  EXPECT_EQ(cell(1016, "{}"), Value(array_of({})));
  EXPECT_EQ(cell(1000, "{t,f,NULL}"), Value(array_of({true, false, nullptr})));
  const Value floats = cell(1022, "{1.5,NaN,-Infinity,1e-05}");
  const auto& f = std::get<Array>(floats).elements;
  ASSERT_EQ(f.size(), 4u);
  EXPECT_EQ(std::get<double>(f[0]), 1.5);
  EXPECT_TRUE(std::isnan(std::get<double>(f[1])));
  EXPECT_EQ(std::get<double>(f[2]), -std::numeric_limits<double>::infinity());
  EXPECT_EQ(std::get<double>(f[3]), 1e-05);
  // Quoted text keeps its spaces, quotes and backslashes; a quoted "NULL" is the text.
  EXPECT_EQ(
      cell(1009, R"({"a b",NULL,"NULL","q\"uote","back\\slash",plain})"),
      Value(array_of({std::string("a b"), nullptr, std::string("NULL"), std::string("q\"uote"),
                      std::string("back\\slash"), std::string("plain")})));
  // bytea elements arrive in hex inside the literal, with their backslash escaped.
  EXPECT_EQ(cell(1001, R"({"\\x00ff",NULL})"),
            Value(array_of({Bytes{std::string("\0\xff", 2)}, nullptr})));
  // numeric, dates, uuid, json stay text, element by element.
  EXPECT_EQ(cell(1231, "{1.10,NaN}"), Value(array_of({std::string("1.10"), std::string("NaN")})));
  EXPECT_EQ(cell(1185, R"({"2024-01-02 03:04:05+00"})"),
            Value(array_of({std::string("2024-01-02 03:04:05+00")})));
  EXPECT_EQ(cell(3807, R"({"{\"a\": 1}"})"), Value(array_of({std::string("{\"a\": 1}")})));
  EXPECT_EQ(type_of(cell(2951, "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}")), ValueType::Array);
}

TEST(PgTextValues, ArraysThisDecoderDoesNotTakeSayWhy) {
  std::string why;
  EXPECT_EQ(status_of([] { cell(1007, "{{1,2},{3,4}}"); }, &why), StatusCode::InvalidInput);
  EXPECT_NE(why.find("one-dimensional"), std::string::npos) << why;
  EXPECT_EQ(status_of([] { cell(1007, "[0:1]={1,2}"); }), StatusCode::InvalidInput);
  // A malformed literal or element is the server's fault, not the caller's.
  EXPECT_EQ(status_of([] { cell(1007, "{1,2"); }), StatusCode::InternalError);
  EXPECT_EQ(status_of([&] { cell(1007, "{1,x}"); }, &why), StatusCode::InternalError);
  EXPECT_NE(why.find("'x'"), std::string::npos) << why;
  EXPECT_EQ(status_of([] { cell(1000, "{maybe}"); }), StatusCode::InternalError);
}

TEST(PgTextParams, ArraysAreNotParameters) {
  EXPECT_EQ(status_of([] { encode_param(Param{array_of({std::int64_t{1}})}); }),
            StatusCode::InvalidInput);
  EXPECT_EQ(parse_value_type("array"), std::nullopt);
  EXPECT_EQ(to_string(ValueType::Array), "array");
}

TEST(PgTextValues, NegativeLengthIsInternalError) {
  EXPECT_EQ(status_of([] { decode_text_cell(25, "x", -1, false); }), StatusCode::InternalError);
}

// ---- parse_text_array -----------------------------------------------------------------

TEST(PgTextArray, Simple) {
  EXPECT_EQ(parse_text_array("{1,2,3}"), (Elements{"1", "2", "3"}));
  EXPECT_EQ(parse_text_array("{}"), Elements{});
  EXPECT_EQ(parse_text_array(" { } "), Elements{});
  EXPECT_EQ(parse_text_array("{t,f}"), (Elements{"t", "f"}));
}

TEST(PgTextArray, QuotingAndNull) {
  EXPECT_EQ(parse_text_array("{\"a b\",\"c\\\"d\",NULL,\"NULL\"}"),
            (Elements{"a b", "c\"d", std::nullopt, "NULL"}));
  // What the server sends for ARRAY['', 'x\y', ' lead', '{', ',', 'null'].
  EXPECT_EQ(parse_text_array("{\"\",\"x\\\\y\",\" lead\",\"{\",\",\",\"null\"}"),
            (Elements{"", "x\\y", " lead", "{", ",", "null"}));
  EXPECT_EQ(parse_text_array("{null,Null,nULl}"),
            (Elements{std::nullopt, std::nullopt, std::nullopt}));
  // An escape protects the keyword, as in array_in.
  EXPECT_EQ(parse_text_array("{\\NULL,NULLS,NUL}"), (Elements{"NULL", "NULLS", "NUL"}));
}

TEST(PgTextArray, WhitespaceAroundElements) {
  EXPECT_EQ(parse_text_array("{ 1 , 2\t,\n3 }"), (Elements{"1", "2", "3"}));
  EXPECT_EQ(parse_text_array("{ a b , \" c \" }"), (Elements{"a b", " c "}));
  EXPECT_EQ(parse_text_array("{ NULL }"), (Elements{std::nullopt}));
  EXPECT_EQ(parse_text_array("{a\\ }"), (Elements{"a "}));  // an escaped space is kept
  EXPECT_EQ(parse_text_array("{\"tab\there\",\"nl\nx\",\xc3\xa9}"),
            (Elements{"tab\there", "nl\nx", "\xc3\xa9"}));
}

TEST(PgTextArray, ElementsOfOtherTypes) {
  const auto bytea = parse_text_array("{\"\\\\x01\",NULL}");
  ASSERT_TRUE(bytea);
  EXPECT_EQ(bytea, (Elements{"\\x01", std::nullopt}));
  EXPECT_EQ(cell(17, *(*bytea)[0]), Value(Bytes{"\x01"}));
  EXPECT_EQ(parse_text_array("{\"{\\\"a\\\": [1, 2]}\"}"), (Elements{"{\"a\": [1, 2]}"}));
  EXPECT_EQ(parse_text_array("{\"2024-01-02 03:04:05+00\"}"), (Elements{"2024-01-02 03:04:05+00"}));
  EXPECT_EQ(parse_text_array("{\"ab \"}"), (Elements{"ab "}));
  EXPECT_EQ(parse_text_array("{NaN,Infinity,1.5}"), (Elements{"NaN", "Infinity", "1.5"}));
}

TEST(PgTextArray, QuotesOnlyAroundAWholeElement) {
  // PostgreSQL 15's array_in rejects quoted pieces inside an element; so does the parser.
  EXPECT_EQ(parse_text_array("{ \"a\" , \"b\"}"), (Elements{"a", "b"}));
  EXPECT_EQ(parse_text_array("{a\\\"b}"), (Elements{"a\"b"}));  // an escaped quote is fine
  for (const char* bad : {"{a\"b c\"d}", "{\"a\"b}", "{a\"b\"}", "{\"a\" b}", "{\"a\\\"b\"c}"})
    EXPECT_EQ(parse_text_array(bad), std::nullopt) << bad;
}

TEST(PgTextArray, RejectsWhatItDoesNotTake) {
  for (const char* bad :
       {"{{1},{2}}", "{{}}", "{1,{2}}", "[0:1]={1,2}", "[1:1][1:1]={{1}}", "", "1,2", "{1,2",
        "{1,,2}", "{1,}", "{,1}", "{\"a}", "{\"a\\\"}", "{a\\", "{1} x", "{1}}", "x{1}"})
    EXPECT_EQ(parse_text_array(bad), std::nullopt) << bad;
}

TEST(PgTextArray, ElementOids) {
  // pg_type.typarray -> oid on a PostgreSQL 15 server.
  const std::vector<std::pair<std::uint32_t, std::uint32_t>> expected{
      {1000, 16},   {1001, 17},   {1002, 18},   {1003, 19},   {1005, 21},   {1007, 23},
      {1009, 25},   {1014, 1042}, {1015, 1043}, {1016, 20},   {1021, 700},  {1022, 701},
      {1028, 26},   {1115, 1114}, {1182, 1082}, {1183, 1083}, {1185, 1184}, {1187, 1186},
      {1231, 1700}, {199, 114},   {2951, 2950}, {3807, 3802},
  };
  for (const auto& [array, element] : expected)
    EXPECT_EQ(array_element_oid(array), element) << array;
  for (const std::uint32_t not_array : {0u, 16u, 23u, 25u, 1017u /* point[] */, 4294967295u})
    EXPECT_EQ(array_element_oid(not_array), std::nullopt) << not_array;
}

// ---- encode_param ---------------------------------------------------------------------

void expect_encoded(const Param& param, std::uint32_t oid, std::optional<std::string> text,
                    bool binary = false) {
  const EncodedParam encoded = encode_param(param);
  EXPECT_EQ(encoded.oid, oid);
  EXPECT_EQ(encoded.text, text);
  EXPECT_EQ(encoded.binary, binary);
}

TEST(PgTextParams, NullsCarryTheirType) {
  expect_encoded(Param::null(ValueType::Bool), 16, std::nullopt);
  expect_encoded(Param::null(ValueType::Int), 20, std::nullopt);
  expect_encoded(Param::null(ValueType::Float), 701, std::nullopt);
  expect_encoded(Param::null(ValueType::Text), 25, std::nullopt);
  const EncodedParam bytes = encode_param(Param::null(ValueType::Bytes));
  EXPECT_EQ(bytes.oid, 17u);
  EXPECT_EQ(bytes.text, std::nullopt);
  expect_encoded(Param::null(ValueType::Null), 0, std::nullopt);
  expect_encoded(Param{nullptr}, 0, std::nullopt);
}

TEST(PgTextParams, BoolsAndInts) {
  expect_encoded({true}, 16, "t");
  expect_encoded({false}, 16, "f");
  expect_encoded({std::int64_t{0}}, 20, "0");
  expect_encoded({std::int64_t{-1}}, 20, "-1");
  expect_encoded({std::numeric_limits<std::int64_t>::min()}, 20, "-9223372036854775808");
  expect_encoded({std::numeric_limits<std::int64_t>::max()}, 20, "9223372036854775807");
}

TEST(PgTextParams, FloatsAreShortestRoundTripText) {
  expect_encoded({0.1}, 701, "0.1");
  expect_encoded({1.5}, 701, "1.5");
  expect_encoded({-0.0}, 701, "-0");
  expect_encoded({1e300}, 701, "1e+300");
  expect_encoded({1e16}, 701, "1e+16");
  expect_encoded({5e-324}, 701, "5e-324");
  expect_encoded({123456789012.0}, 701, "123456789012");
  expect_encoded({std::numeric_limits<double>::quiet_NaN()}, 701, "NaN");
  expect_encoded({std::numeric_limits<double>::infinity()}, 701, "Infinity");
  expect_encoded({-std::numeric_limits<double>::infinity()}, 701, "-Infinity");
}

TEST(PgTextParams, FloatTextDecodesToTheSameBits) {
  // Encoder and decoder agree on every double, including extremes and subnormals.
  std::mt19937_64 random(20240611);
  std::vector<double> samples{std::numeric_limits<double>::max(),
                              std::numeric_limits<double>::lowest(),
                              std::numeric_limits<double>::min(),
                              std::numeric_limits<double>::denorm_min(), -2.2250738585072014e-308};
  for (int i = 0; i < 5000; ++i) {
    const double value = std::bit_cast<double>(random());
    if (std::isfinite(value)) samples.push_back(value);
  }
  for (const double value : samples) {
    const EncodedParam encoded = encode_param({value});
    ASSERT_TRUE(encoded.text);
    const double back = std::get<double>(cell(701, *encoded.text));
    EXPECT_EQ(std::bit_cast<std::uint64_t>(back), std::bit_cast<std::uint64_t>(value))
        << *encoded.text;
  }
}

TEST(PgTextParams, TextAsIs) {
  expect_encoded({std::string("h\xc3\xa9llo 'x' \\")}, 25, "h\xc3\xa9llo 'x' \\");
  expect_encoded({std::string()}, 25, "");  // empty text, not NULL
}

TEST(PgTextParams, TextWithNulIsInvalidInput) {
  std::string message;
  EXPECT_EQ(status_of([] { encode_param({std::string("a\0b", 3)}); }, &message),
            StatusCode::InvalidInput);
  EXPECT_NE(message.find("NUL"), std::string::npos) << message;
}

TEST(PgTextParams, BytesAreSentRawInBinary) {
  const std::string raw("\0\x01\xff'\\x", 6);
  expect_encoded({Bytes{raw}}, 17, raw, true);
  expect_encoded({Bytes{}}, 17, "", true);
}

}  // namespace
}  // namespace molt::db::pg
