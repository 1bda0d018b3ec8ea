#include "named_params.hpp"

#include <algorithm>
#include <string>
#include <unordered_map>
#include <utility>

#include "molt/core/status.hpp"
#include "sql_comments.hpp"

namespace molt::db::pg {
namespace {

constexpr std::size_t kNoEnd = std::string_view::npos;

bool is_ascii_letter(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// A parameter's name: ASCII letters, digits and `_`, not starting with a digit.
bool is_name_start(char c) {
  return is_ascii_letter(c) || c == '_';
}
bool is_name_char(char c) {
  return is_name_start(c) || is_digit(c);
}

// PostgreSQL's lexer counts every byte >= 0x80 as a letter (UTF-8 identifiers), and lets
// `$` continue an identifier: `a$1` is one identifier, not `a` followed by `$1`.
bool is_high_byte(char c) {
  return static_cast<unsigned char>(c) >= 0x80;
}
bool is_ident_start(char c) {
  return is_name_start(c) || is_high_byte(c);
}
bool is_ident_char(char c) {
  return is_ident_start(c) || is_digit(c) || c == '$';
}
// A dollar-quote tag is an identifier without `$` in it.
bool is_tag_char(char c) {
  return is_ident_start(c) || is_digit(c);
}

// One past the closing quote of a literal opened at `open` in which the quote character is
// doubled to stand for itself ('it''s', "a""b"), or kNoEnd when it never closes.
std::size_t end_of_doubled_quote(std::string_view sql, std::size_t open) {
  const char quote = sql[open];
  for (std::size_t i = open + 1; i < sql.size(); ++i) {
    if (sql[i] != quote) continue;
    if (i + 1 < sql.size() && sql[i + 1] == quote) {
      ++i;  // a doubled quote, still inside
      continue;
    }
    return i + 1;
  }
  return kNoEnd;
}

// SQL joins string literals separated only by whitespace holding a line break (comments
// allowed), and the joined segments keep the first one's escaping rules. Returns one past
// the opening quote of such a continuation starting at `after`, or kNoEnd.
std::size_t continued_segment(std::string_view sql, std::size_t after) {
  bool line_break = false;
  std::size_t i = after;
  while (i < sql.size()) {
    const char c = sql[i];
    if (c == '\n' || c == '\r') {
      line_break = true;
      ++i;
    } else if (c == ' ' || c == '\t' || c == '\f') {
      ++i;
    } else if (c == '-' && i + 1 < sql.size() && sql[i + 1] == '-') {
      i = end_of_line_comment(sql, i);
    } else {
      break;
    }
  }
  return line_break && i < sql.size() && sql[i] == '\'' ? i + 1 : kNoEnd;
}

// Like end_of_doubled_quote, for E'...' where a backslash also escapes the next byte
// (so E'\'' is one quote character, not the end of the string).
std::size_t end_of_escape_string(std::string_view sql, std::size_t open) {
  for (std::size_t i = open + 1; i < sql.size(); ++i) {
    if (sql[i] == '\\') {
      ++i;
    } else if (sql[i] == '\'') {
      if (i + 1 < sql.size() && sql[i + 1] == '\'') {
        ++i;
        continue;
      }
      const std::size_t next_segment = continued_segment(sql, i + 1);
      if (next_segment == kNoEnd) return i + 1;
      i = next_segment - 1;  // the loop steps onto the segment's first byte
    }
  }
  return kNoEnd;
}

// The scan over one statement. `done_` marks how much of the input is already in `out_`, so
// untouched stretches are appended in one piece instead of byte by byte.
class Rewriter {
 public:
  explicit Rewriter(std::string_view sql) : sql_(sql) { out_.reserve(sql.size() + 8); }

  RewrittenSql run() && {
    std::size_t i = 0;
    while (i < sql_.size()) {
      const std::size_t next = step(i);
      if (next == kNoEnd) break;  // unterminated: the rest is copied as it is
      i = next;
    }
    if (positional_ && !names_.empty())
      throw core::SqlError("the SQL mixes $n and :name placeholders");
    out_.append(sql_.substr(done_));
    return {std::move(out_), std::move(names_), highest_};
  }

 private:
  // Handles the token starting at `i`; returns where the next one starts.
  std::size_t step(std::size_t i) {
    const char c = sql_[i];
    const char next = i + 1 < sql_.size() ? sql_[i + 1] : '\0';
    switch (c) {
      case '\'':
      case '"':
        return end_of_doubled_quote(sql_, i);
      case '-':
        return next == '-' ? end_of_line_comment(sql_, i) : i + 1;
      case '/':
        return next == '*' ? end_of_block_comment(sql_, i) : i + 1;
      case '$':
        return dollar(i);
      case ':':
        if (next == ':') return i + 2;           // a cast; what follows is a type name
        if (!is_name_start(next)) return i + 1;  // `a[1:2]`, `:=`, a lone colon
        return parameter(i);
      default:
        break;
    }
    if (!is_ident_start(c)) return i + 1;
    std::size_t end = i + 1;
    while (end < sql_.size() && is_ident_char(sql_[end])) ++end;
    // Only a lone E starts an escape string: in `namE'x'` the E belongs to the identifier.
    if (end == i + 1 && (c == 'E' || c == 'e') && next == '\'')
      return end_of_escape_string(sql_, end);
    return end;
  }

  // `$` outside an identifier: a `$n` placeholder, a dollar-quoted body, or a stray byte.
  std::size_t dollar(std::size_t i) {
    std::size_t end = i + 1;
    if (end < sql_.size() && is_digit(sql_[end])) {
      positional_ = true;
      std::size_t number = 0;
      for (; end < sql_.size() && is_digit(sql_[end]); ++end)
        number = std::min<std::size_t>(number * 10 + static_cast<std::size_t>(sql_[end] - '0'),
                                       kTooHigh);
      highest_ = std::max(highest_, number);
      return end;
    }
    if (end < sql_.size() && is_ident_start(sql_[end])) {
      while (end < sql_.size() && is_tag_char(sql_[end])) ++end;
    }
    if (end >= sql_.size() || sql_[end] != '$') return i + 1;
    const std::string_view delimiter = sql_.substr(i, end + 1 - i);
    const std::size_t close = sql_.find(delimiter, end + 1);
    return close == kNoEnd ? kNoEnd : close + delimiter.size();
  }

  // `:name` at `i`: appended as `$k`.
  std::size_t parameter(std::size_t i) {
    std::size_t end = i + 1;
    while (end < sql_.size() && is_name_char(sql_[end])) ++end;
    const std::string_view name = sql_.substr(i + 1, end - i - 1);
    const auto [it, added] = numbers_.try_emplace(name, names_.size() + 1);
    if (added) names_.emplace_back(name);
    out_.append(sql_.substr(done_, i - done_));
    out_ += '$';
    out_ += std::to_string(it->second);
    done_ = end;
    return end;
  }

  std::string_view sql_;
  std::string out_;
  std::size_t done_ = 0;
  std::vector<std::string> names_;
  std::unordered_map<std::string_view, std::size_t> numbers_;  // name -> k, views into sql_
  bool positional_ = false;
  std::size_t highest_ = 0;
  static constexpr std::size_t kTooHigh = 1'000'000;  // past PostgreSQL's 65,535 parameters
};

}  // namespace

RewrittenSql rewrite_named_params(std::string_view sql) {
  return Rewriter(sql).run();
}

std::vector<Param> order_named_params(const RewrittenSql& rewritten, const Params& params) {
  if (!params.named()) {
    if (rewritten.names.empty()) {
      // The server would take values nothing uses without a word; SQLite refuses them too.
      if (params.values.size() != rewritten.highest_number)
        throw core::SqlError("the statement has " + std::to_string(rewritten.highest_number) +
                             " placeholders but " + std::to_string(params.values.size()) +
                             " values were given");
      return params.values;
    }
    if (!params.values.empty())
      throw core::SqlError("positional values given, but the SQL names :" +
                           rewritten.names.front());
  }
  if (params.names.size() != params.values.size())
    throw core::SqlError(std::to_string(params.values.size()) + " values given for " +
                         std::to_string(params.names.size()) + " names");
  std::unordered_map<std::string_view, std::size_t> given;
  for (std::size_t i = 0; i < params.names.size(); ++i)
    if (!given.try_emplace(params.names[i], i).second)
      throw core::SqlError("a value for :" + params.names[i] + " is given twice");
  std::vector<Param> ordered;
  ordered.reserve(rewritten.names.size());
  std::vector<bool> used(params.values.size(), false);
  for (const std::string& name : rewritten.names) {
    const auto it = given.find(name);
    if (it == given.end()) throw core::SqlError("no value given for :" + name);
    used[it->second] = true;
    ordered.push_back(params.values[it->second]);
  }
  for (std::size_t i = 0; i < used.size(); ++i)
    if (!used[i]) throw core::SqlError("the SQL has no :" + params.names[i]);
  return ordered;
}

}  // namespace molt::db::pg
