#include "molt/codec/decode_error.hpp"

#include <vector>

#include "molt/codec/utf8.hpp"

namespace molt::codec {

namespace {
constexpr std::size_t kMostQuoted = 40;
}  // namespace

std::string quoted_excerpt(std::string_view text) {
  std::string out = "\"";
  out.append(text.substr(0, utf8_cut(text, kMostQuoted)));  // whole characters only
  if (text.size() > kMostQuoted) out.append("...");
  out += '"';
  return out;
}

std::string PathSegment::render() const {
  std::vector<const PathSegment*> chain;
  for (const PathSegment* p = this; p; p = p->parent) chain.push_back(p);
  std::string out;
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
    const PathSegment& s = **it;
    if (s.is_index) {
      out += '[' + std::to_string(s.index) + ']';
    } else {
      if (!out.empty()) out += '.';
      if (s.key.empty())
        out += "\"\"";  // a map key "" shows as ""
      else
        out += s.key.size() > kMostQuoted ? quoted_excerpt(s.key) : std::string(s.key);
    }
  }
  return out;
}

namespace {
std::string describe(const PathSegment& at, std::string_view expected, std::string_view got) {
  std::string msg = at.render();
  msg += ": expected ";
  msg += expected;
  msg += ", got ";
  msg += got;
  return msg;
}
}  // namespace

DecodeError::DecodeError(const PathSegment& at, std::string_view expected, std::string_view got)
    : core::InvalidInput(describe(at, expected, got)),
      path_(at.render()),
      expected_(expected),
      got_(got) {}

DecodeError::DecodeError(std::string message, const DecodeError& first)
    : core::InvalidInput(std::move(message)),
      path_(first.path_),
      expected_(first.expected_),
      got_(first.got_) {}

namespace {
std::string joined_messages(const std::vector<DecodeError>& all) {
  std::string out;
  for (const DecodeError& each : all) {
    if (!out.empty()) out += "; ";
    out += each.message();
  }
  return out;
}
}  // namespace

DecodeErrors::DecodeErrors(std::vector<DecodeError> all)
    : DecodeError(joined_messages(all), all.at(0)), all_(std::move(all)) {}

void detail::Problems::add(const DecodeError& problem) {
  kept_.push_back(problem);
  if (kept_.size() >= kMost) throw_kept();
}

void detail::Problems::check() {
  if (!kept_.empty()) throw_kept();
}

void detail::Problems::throw_kept() {
  if (kept_.size() == 1) throw DecodeError(std::move(kept_.front()));
  throw DecodeErrors(std::move(kept_));
}

}  // namespace molt::codec
