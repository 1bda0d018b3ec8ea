#include "molt/codec/decode_error.hpp"

#include <vector>

namespace molt::codec {

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
      out += s.key.empty() ? std::string_view("\"\"") : s.key;  // a map key "" shows as ""
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

}  // namespace molt::codec
