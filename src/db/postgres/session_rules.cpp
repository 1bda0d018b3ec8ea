#include "session_rules.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstddef>
#include <optional>
#include <string_view>
#include <vector>

#include "sql_comments.hpp"

namespace molt::db::pg {
namespace {

bool same_word(std::string_view word, std::string_view keyword) {
  if (word.size() != keyword.size()) return false;
  for (std::size_t i = 0; i < word.size(); ++i)
    if (std::toupper(static_cast<unsigned char>(word[i])) != keyword[i]) return false;
  return true;
}

// Past blanks, comments and empty statements (`;`, which the server drops) from `at`;
// sql.size() when nothing else follows.
std::size_t skip_blanks(std::string_view sql, std::size_t at) {
  while (at < sql.size()) {
    if (std::isspace(static_cast<unsigned char>(sql[at])) || sql[at] == ';') {
      ++at;
    } else if (sql.substr(at, 2) == "--") {
      at = end_of_line_comment(sql, at);
    } else if (sql.substr(at, 2) == "/*") {
      at = std::min(end_of_block_comment(sql, at), sql.size());
    } else {
      break;
    }
  }
  return at;
}

// The keyword at `at` (letters and underscores), and where it ends.
std::string_view word_at(std::string_view sql, std::size_t at, std::size_t& end) {
  end = at;
  while (end < sql.size() &&
         (std::isalpha(static_cast<unsigned char>(sql[end])) || sql[end] == '_'))
    ++end;
  return sql.substr(at, end - at);
}

// The statement's first keyword, past blanks, comments and empty statements.
std::string_view first_word(std::string_view sql) {
  std::size_t end = 0;
  return word_at(sql, skip_blanks(sql, 0), end);
}

// DO and CALL run a body of statements of their own, which their first keyword says nothing of.
bool runs_a_body(std::string_view sql) {
  const std::string_view first = first_word(sql);
  return same_word(first, "DO") || same_word(first, "CALL");
}

// Whether `keyword` (upper case) is anywhere in `sql`, in any case: in a literal or a name too.
bool contains_word(std::string_view sql, std::string_view keyword) {
  for (std::size_t at = 0; at + keyword.size() <= sql.size(); ++at)
    if (same_word(sql.substr(at, keyword.size()), keyword)) return true;
  return false;
}

bool is_name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '$';
}

// Whether a name or literal written with escapes begins at `at`: `U&"..."` or `U&'...'`.
bool escapes_at(std::string_view sql, std::size_t at) {
  return at + 2 < sql.size() && (sql[at] == 'U' || sql[at] == 'u') && sql[at + 1] == '&' &&
         (sql[at + 2] == '"' || sql[at + 2] == '\'');
}

// Whether `test(word, at)` holds for a whole word of `sql` (letters, digits, '_' and '$',
// starting with a letter), in a literal or a name too: `products_stats` holds no `ts_stat`.
template <class Test>
bool any_whole_word(std::string_view sql, Test test) {
  for (std::size_t at = 0; at < sql.size(); ++at) {
    if (!std::isalpha(static_cast<unsigned char>(sql[at])) || (at > 0 && is_name_char(sql[at - 1])))
      continue;
    std::size_t end = at;
    while (end < sql.size() && is_name_char(sql[end])) ++end;
    if (test(sql.substr(at, end - at), at)) return true;
    at = end;
  }
  return false;
}

// The word (letters, digits, '_' and '$') that ends right before `at`, past blanks.
std::string_view word_before(std::string_view sql, std::size_t at) {
  while (at > 0 && std::isspace(static_cast<unsigned char>(sql[at - 1]))) --at;
  std::size_t begin = at;
  while (begin > 0 && is_name_char(sql[begin - 1])) --begin;
  return sql.substr(begin, at - begin);
}

// Built-ins that run SQL given as text, by their whole names, and names or literals written
// with escapes.
bool runs_text_or_escapes(std::string_view sql) {
  static constexpr std::array<std::string_view, 7> kRunsText = {
      "QUERY_TO_XML",  "QUERY_TO_XMLSCHEMA",  "QUERY_TO_XML_AND_XMLSCHEMA",
      "CURSOR_TO_XML", "CURSOR_TO_XMLSCHEMA", "TS_STAT",
      "TS_REWRITE"};
  return any_whole_word(sql, [&sql](std::string_view word, std::size_t at) {
    return escapes_at(sql, at) || std::any_of(kRunsText.begin(), kRunsText.end(),
                                              [word](auto name) { return same_word(word, name); });
  });
}

// A temporary table, view or sequence stays with the session, where a later caller's
// unqualified name would find it (its INSERT lands there, never in the real table):
// `CREATE [GLOBAL|LOCAL] TEMP|TEMPORARY ...`, `CREATE OR REPLACE TEMP VIEW`,
// `SELECT ... INTO TEMP t`, or a name in `pg_temp`. Whole words only: a column named
// `temperature`, or `temp` read in a query, is none.
bool makes_temporary_objects(std::string_view sql) {
  return any_whole_word(sql, [&sql](std::string_view word, std::size_t at) {
    if (same_word(word, "PG_TEMP")) return true;
    if (!same_word(word, "TEMP") && !same_word(word, "TEMPORARY")) return false;
    const std::string_view before = word_before(sql, at);
    for (const std::string_view opener : {"CREATE", "GLOBAL", "LOCAL", "REPLACE", "INTO"})
      if (same_word(before, opener)) return true;
    return false;
  });
}

}  // namespace

const char* session_statement_refusal(std::string_view sql, bool in_transaction) {
  std::size_t end = 0;
  const std::string_view first = word_at(sql, skip_blanks(sql, 0), end);
  static constexpr std::array<std::string_view, 9> kTransaction = {
      "BEGIN", "START", "COMMIT", "END", "ROLLBACK", "ABORT", "SAVEPOINT", "RELEASE", "PREPARE"};
  for (const std::string_view keyword : kTransaction)
    if (same_word(first, keyword))
      return "BEGIN, COMMIT, ROLLBACK, SAVEPOINT and PREPARE are not accepted: each call is a "
             "transaction of its own (use a transaction of the API for several statements)";
  static constexpr std::array<std::string_view, 6> kSession = {"RESET",  "DISCARD",  "DEALLOCATE",
                                                               "LISTEN", "UNLISTEN", "LOAD"};
  bool session = false;
  for (const std::string_view keyword : kSession) session = session || same_word(first, keyword);
  if (same_word(first, "SET")) {
    const std::string_view second = word_at(sql, skip_blanks(sql, end), end);
    // The setting may be a quoted name (`SET LOCAL "transaction_read_only"`), which the server
    // reads without its quotes and in any case, as a plain one.
    std::size_t at = skip_blanks(sql, end);
    const bool quoted = at < sql.size() && sql[at] == '"';
    const std::string_view third = word_at(sql, at + (quoted ? 1 : 0), end);
    // A name written with escapes (U&"...") cannot be read here: taken for a transaction's.
    const bool unreadable = escapes_at(sql, at);
    // Outside a transaction of the API a call reads only because its transaction does: a
    // statement that changes the transaction's own mode comes first in a batch and would let
    // the next one write.
    const auto begins = [](std::string_view word, std::string_view prefix) {
      return word.size() >= prefix.size() && same_word(word.substr(0, prefix.size()), prefix);
    };
    const bool transaction_mode =
        same_word(second, "TRANSACTION") ||
        (same_word(second, "LOCAL") &&
         (unreadable || begins(third, "TRANSACTION") || begins(third, "DEFAULT_TRANSACTION")));
    if (transaction_mode && !in_transaction)
      return "SET TRANSACTION and SET LOCAL of a transaction setting are accepted only in a "
             "transaction of the API";
    session = !same_word(second, "LOCAL") && !same_word(second, "TRANSACTION") &&
              !same_word(second, "CONSTRAINTS");
  }
  if (session)
    return "a statement that changes the session (SET, RESET, LISTEN, DISCARD, ...) is not "
           "accepted: the connection is shared with later calls (SET LOCAL inside a transaction "
           "is)";
  return nullptr;
}

const char* read_refusal(std::string_view sql) {
  if (runs_a_body(sql))
    return "DO and CALL are not accepted by a read: their body may commit and write (run them "
           "with execute())";
  return nullptr;
}

namespace {
// The arguments of the call whose `(` is at `open`, split at its own commas (not at those in
// nested calls, literals or quoted names); nullopt when they do not end in `)`.
std::optional<std::vector<std::string_view>> call_arguments(std::string_view sql,
                                                            std::size_t open) {
  std::vector<std::string_view> arguments;
  int depth = 0;
  std::size_t start = open + 1;
  for (std::size_t at = open; at < sql.size(); ++at) {
    const char c = sql[at];
    if (c == '\'' || c == '"') {  // a literal or a quoted name: to its closing quote
      for (++at;; ++at) {
        if (at >= sql.size()) return std::nullopt;
        if (sql[at] != c) continue;
        if (at + 1 < sql.size() && sql[at + 1] == c) {
          ++at;  // a doubled quote is one of the text's characters
          continue;
        }
        break;
      }
    } else if (c == '(') {
      ++depth;
    } else if (c == ')' && --depth == 0) {
      arguments.push_back(sql.substr(start, at - start));
      return arguments;
    } else if (c == ',' && depth == 1) {
      arguments.push_back(sql.substr(start, at - start));
      start = at + 1;
    } else if (c == '$' &&
               !(at + 1 < sql.size() && std::isdigit(static_cast<unsigned char>(sql[at + 1])))) {
      return std::nullopt;  // a dollar quote ($1 is a parameter): not read here
    }
  }
  return std::nullopt;
}

std::string_view trim_blanks(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front())))
    text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())))
    text.remove_suffix(1);
  return text;
}
}  // namespace

bool may_change_session(std::string_view sql) {
  if (runs_a_body(sql)) return true;
  // Built-ins that run SQL given as text (`query_to_xml('select set_' || 'config(...)')`)
  // and names or literals written with escapes (`U&"set\005fconfig"`) hide what they do
  // from any reading of the text.
  if (runs_text_or_escapes(sql) || makes_temporary_objects(sql)) return true;
  // set_config(name, value, true) ends with its transaction, as SET LOCAL does (a tenant's id
  // for row-level security, say): only another third argument may outlive the call.
  constexpr std::string_view kSetConfig = "SET_CONFIG";
  for (std::size_t at = 0; at + kSetConfig.size() <= sql.size(); ++at) {
    if (!same_word(sql.substr(at, kSetConfig.size()), kSetConfig)) continue;
    const std::size_t open = skip_blanks(sql, at + kSetConfig.size());
    const auto arguments =
        open < sql.size() && sql[open] == '(' ? call_arguments(sql, open) : std::nullopt;
    if (!arguments || arguments->size() != 3 || !same_word(trim_blanks((*arguments)[2]), "TRUE"))
      return true;
  }
  return false;
}

bool may_return_rows(std::string_view sql) {
  const std::string_view first = first_word(sql);
  static constexpr std::array<std::string_view, 8> kNoRows = {
      "INSERT", "UPDATE", "DELETE", "MERGE", "CREATE", "ALTER", "DROP", "TRUNCATE"};
  if (std::none_of(kNoRows.begin(), kNoRows.end(),
                   [&](std::string_view keyword) { return same_word(first, keyword); }))
    return true;
  return contains_word(sql, "RETURNING");
}

}  // namespace molt::db::pg
