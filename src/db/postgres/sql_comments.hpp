#pragma once
// PostgreSQL's comments, as its lexer reads them: for the scans of SQL text that molt::db
// makes before sending it (named parameters, session statements). Internal to molt::db.

#include <cstddef>
#include <string_view>

namespace molt::db::pg {

// End of a `--` comment opened at `open`: the line break (\n or \r) stays outside it. Never
// unterminated.
inline std::size_t end_of_line_comment(std::string_view sql, std::size_t open) {
  const std::size_t end = sql.find_first_of("\r\n", open);
  return end == std::string_view::npos ? sql.size() : end;
}

// One past the `*/` closing the block comment opened at `open`; PostgreSQL nests them, so
// `/* a /* b */ :c */` is all comment. npos when it never closes.
inline std::size_t end_of_block_comment(std::string_view sql, std::size_t open) {
  int depth = 0;
  std::size_t i = open;
  while (i + 1 < sql.size()) {
    if (sql[i] == '/' && sql[i + 1] == '*') {
      ++depth;
      i += 2;
    } else if (sql[i] == '*' && sql[i + 1] == '/') {
      i += 2;
      if (--depth == 0) return i;
    } else {
      ++i;
    }
  }
  return std::string_view::npos;
}

}  // namespace molt::db::pg
