#include "session_rules.hpp"

#include <array>
#include <cctype>
#include <cstddef>

namespace molt::db::pg {
namespace {

bool same_word(std::string_view word, std::string_view keyword) {
  if (word.size() != keyword.size()) return false;
  for (std::size_t i = 0; i < word.size(); ++i)
    if (std::toupper(static_cast<unsigned char>(word[i])) != keyword[i]) return false;
  return true;
}

// Past blanks and comments from `at`; sql.size() when nothing else follows.
std::size_t skip_blanks(std::string_view sql, std::size_t at) {
  while (at < sql.size()) {
    if (std::isspace(static_cast<unsigned char>(sql[at]))) {
      ++at;
    } else if (sql.substr(at, 2) == "--") {
      const auto end = sql.find('\n', at);
      at = end == std::string_view::npos ? sql.size() : end + 1;
    } else if (sql.substr(at, 2) == "/*") {
      int depth = 0;  // PostgreSQL's block comments nest
      do {
        if (sql.substr(at, 2) == "/*") {
          ++depth;
          at += 2;
        } else if (sql.substr(at, 2) == "*/") {
          --depth;
          at += 2;
        } else {
          ++at;
        }
      } while (depth > 0 && at < sql.size());
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

}  // namespace

const char* session_statement_refusal(std::string_view sql) {
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
    session = !same_word(second, "LOCAL") && !same_word(second, "TRANSACTION") &&
              !same_word(second, "CONSTRAINTS");
  }
  if (session)
    return "a statement that changes the session (SET, RESET, LISTEN, DISCARD, ...) is not "
           "accepted: the connection is shared with later calls (SET LOCAL inside a transaction "
           "is)";
  return nullptr;
}

}  // namespace molt::db::pg
