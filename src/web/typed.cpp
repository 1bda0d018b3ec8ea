#include "molt/web/typed.hpp"

#include <charconv>
#include <optional>
#include <string>
#include <string_view>

namespace molt::web {

namespace {

// What an Accept header says about one media type: the quality of the most specific range that
// matches it (RFC 9110 §12.5.1: type/subtype over type/* over */*), and where that range
// stands in the header. No matching range: quality 0.
struct Acceptance {
  double quality = 0;
  std::size_t position = 0;
  int specificity = -1;
};

Acceptance acceptance(std::string_view accept, std::string_view type) {
  const std::string_view major = type.substr(0, type.find('/') + 1);  // "application/"
  Acceptance best;
  std::size_t position = 0;
  while (!accept.empty()) {
    std::string_view range = next_list_element(accept);
    std::string_view params;
    if (const std::size_t semicolon = range.find(';'); semicolon != std::string_view::npos) {
      params = range.substr(semicolon + 1);
      range = range.substr(0, semicolon);
    }
    range = trim_ows(range);
    if (range.empty()) continue;
    ++position;
    int specificity = -1;
    if (iequals(range, type))
      specificity = 2;
    else if (range.size() == major.size() + 1 && range.back() == '*' &&
             iequals(range.substr(0, major.size()), major))
      specificity = 1;
    else if (range == "*/*")
      specificity = 0;
    if (specificity <= best.specificity) continue;
    best = {list_quality(params), position, specificity};
  }
  return best;
}

}  // namespace

bool prefers_msgpack(const Request& request) {
  std::string joined;
  const std::optional<std::string_view> accept = request.header_list("Accept", joined);
  if (!accept) return false;
  // Either name of MsgPack: the one the client named more precisely, or at the same
  // precision the one it weighs more.
  Acceptance msgpack = acceptance(*accept, kMsgPack);
  const Acceptance legacy = acceptance(*accept, "application/x-msgpack");
  if (legacy.specificity > msgpack.specificity ||
      (legacy.specificity == msgpack.specificity && legacy.quality > msgpack.quality))
    msgpack = legacy;
  if (msgpack.quality <= 0) return false;
  const Acceptance json = acceptance(*accept, kJson);
  if (msgpack.quality != json.quality) return msgpack.quality > json.quality;
  // Equal weights: a type named outright beats one a wildcard matched (`*/*, application/json`
  // asks for JSON); between two named alike, the one named first.
  if (msgpack.specificity != json.specificity) return msgpack.specificity > json.specificity;
  return msgpack.position < json.position;
}

namespace detail {

void field_error(const codec::PathSegment& at, std::string_view expected, std::string_view got) {
  throw codec::DecodeError(at, expected, got);
}

}  // namespace detail

}  // namespace molt::web
