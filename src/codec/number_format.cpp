#include "molt/codec/number_format.hpp"

#include <charconv>
#include <cmath>
#include <cstring>
#include <string_view>

namespace molt::codec {

namespace {

char* put(char* at, std::string_view text) {
  std::memcpy(at, text.data(), text.size());
  return at + text.size();
}

char* repeat(char* at, std::size_t count, char c) {
  std::memset(at, c, count);
  return at + count;
}

// The common case, fast: a value that is exactly what a decimal with at most four places reads
// as (0.25, 3.0, 19.99, 0.0001). Below 1e9 one unit in the fourth place is thousands of ulps, so
// at most one such decimal reads back as `value`, and trying 0, 1, 2... places finds the
// shortest, which is Python's repr. Python writes all of these in fixed notation. nullptr when
// `value` is not such a decimal.
char* write_short_decimal(char* at, double value) {
  static constexpr double kPow10[] = {1, 10, 100, 1000, 10000};
  const double magnitude = std::fabs(value);
  if (magnitude == 0) return put(at, std::signbit(value) ? "-0.0" : "0.0");
  if (!(magnitude >= 1e-4 && magnitude < 1e9)) return nullptr;
  for (int places = 0; places <= 4; ++places) {
    const double scaled = std::nearbyint(magnitude * kPow10[places]);
    if (scaled / kPow10[places] != magnitude) continue;
    auto units = static_cast<std::uint64_t>(scaled);
    const auto unit = static_cast<std::uint64_t>(kPow10[places]);
    if (value < 0) *at++ = '-';
    at = write_integer(at, units / unit);
    *at++ = '.';
    if (places == 0) {
      *at++ = '0';
      return at;
    }
    std::uint64_t rest = units % unit;
    for (int i = places - 1; i >= 0; --i) {
      at[i] = static_cast<char>('0' + rest % 10);
      rest /= 10;
    }
    return at + places;
  }
  return nullptr;
}

}  // namespace

char* write_python_float(char* at, double value) {
  if (std::isnan(value)) return put(at, "NaN");
  if (std::isinf(value)) return put(at, value < 0 ? "-Infinity" : "Infinity");
  if (char* end = write_short_decimal(at, value)) return end;
  // Shortest round-trip digits in scientific form, e.g. "-1.2345e-07", then re-laid out.
  char sci[32];
  auto [end, ec] = std::to_chars(sci, sci + sizeof sci, value, std::chars_format::scientific);
  const char* p = sci;
  if (*p == '-') {
    *at++ = '-';
    ++p;
  }
  const char* e = static_cast<const char*>(std::memchr(p, 'e', end - p));
  char digits[24];
  std::size_t ndigits = 0;
  for (const char* q = p; q < e; ++q)
    if (*q != '.') digits[ndigits++] = *q;
  int exp10 = 0;
  std::from_chars(e[1] == '+' ? e + 2 : e + 1, end, exp10);
  const std::string_view all(digits, ndigits);
  // `decpt` is where the decimal point goes in the digit string, as in Python's repr.
  const int decpt = exp10 + 1;
  if (decpt > -4 && decpt <= 16) {
    if (decpt <= 0) return put(repeat(put(at, "0."), static_cast<std::size_t>(-decpt), '0'), all);
    const auto point = static_cast<std::size_t>(decpt);
    if (point >= ndigits) return put(repeat(put(at, all), point - ndigits, '0'), ".0");
    at = put(at, all.substr(0, point));
    *at++ = '.';
    return put(at, all.substr(point));
  }
  *at++ = digits[0];
  if (ndigits > 1) {
    *at++ = '.';
    at = put(at, all.substr(1));
  }
  const int shown = decpt - 1;
  *at++ = 'e';
  *at++ = shown < 0 ? '-' : '+';
  const int magnitude = shown < 0 ? -shown : shown;
  if (magnitude < 10) *at++ = '0';
  return std::to_chars(at, at + 4, magnitude).ptr;
}

char* write_integer(char* at, std::int64_t value) {
  return std::to_chars(at, at + kNumberRoom, value).ptr;
}

char* write_integer(char* at, std::uint64_t value) {
  return std::to_chars(at, at + kNumberRoom, value).ptr;
}

void append_python_float(std::string& out, double value) {
  char text[kNumberRoom];
  out.append(text, write_python_float(text, value));
}

char* write_json_double(char* at, double value) {
  if (std::isfinite(value)) [[likely]]
    return write_python_float(at, value);
  *at++ = '"';
  at = write_python_float(at, value);
  *at++ = '"';
  return at;
}

void append_json_double(std::string& out, double value) {
  char text[kNumberRoom];
  out.append(text, write_json_double(text, value));
}

void append_integer(std::string& out, std::int64_t value) {
  char text[kNumberRoom];
  out.append(text, write_integer(text, value));
}

void append_integer(std::string& out, std::uint64_t value) {
  char text[kNumberRoom];
  out.append(text, write_integer(text, value));
}

}  // namespace molt::codec
