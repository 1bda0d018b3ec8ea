// The pattern rule's matching (rules.hpp), the one place RE2 is used.
#include <re2/re2.h>

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <unordered_map>

#include "molt/codec/rules.hpp"

namespace molt::codec::detail {
namespace {

struct TextHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view text) const noexcept {
    return std::hash<std::string_view>{}(text);
  }
};

std::unique_ptr<const re2::RE2> compile(std::string_view expression) {
  re2::RE2::Options options;
  options.set_log_errors(false);  // the error is thrown, naming the expression
  // RE2's default (8 MiB) refuses a bounded repeat of a Unicode class, such as
  // ^[\p{L}\p{N}_-]{1,1000}$, as "pattern too large".
  options.set_max_mem(64 << 20);
  auto regex = std::make_unique<const re2::RE2>(
      re2::StringPiece(expression.data(), expression.size()), options);
  if (!regex->ok())
    throw std::invalid_argument("pattern(\"" + std::string(expression) +
                                "\"): not a regular expression RE2 takes: " + regex->error());
  return regex;
}

// Each expression compiled once per thread: no lock on the way to a match.
const re2::RE2& compiled(std::string_view expression) {
  thread_local std::unordered_map<std::string, std::unique_ptr<const re2::RE2>, TextHash,
                                  std::equal_to<>>
      cache;
  if (const auto found = cache.find(expression); found != cache.end()) return *found->second;
  return *cache.emplace(std::string(expression), compile(expression)).first->second;
}

}  // namespace

bool pattern_found(std::string_view expression, std::string_view text) {
  return re2::RE2::PartialMatch(re2::StringPiece(text.data(), text.size()), compiled(expression));
}

}  // namespace molt::codec::detail
