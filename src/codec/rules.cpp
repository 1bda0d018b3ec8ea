#include "molt/codec/rules.hpp"

#include "molt/codec/number_format.hpp"

namespace molt::codec::detail {

std::string number_text(double value) {
  std::string out;
  append_json_double(out, value);
  return out;
}

std::string number_text(std::int64_t value) {
  std::string out;
  append_integer(out, value);
  return out;
}

std::string number_text(std::uint64_t value) {
  std::string out;
  append_integer(out, value);
  return out;
}

std::size_t code_points(std::string_view utf8) noexcept {
  std::size_t n = 0;
  for (const char c : utf8) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

}  // namespace molt::codec::detail
