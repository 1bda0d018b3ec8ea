#include "molt/codec/number_format.hpp"

#include <charconv>
#include <cmath>
#include <cstring>

namespace molt::codec {

void append_python_float(std::string& out, double value) {
  if (std::isnan(value)) {
    out += "NaN";
    return;
  }
  if (std::isinf(value)) {
    out += value < 0 ? "-Infinity" : "Infinity";
    return;
  }
  // Shortest round-trip digits in scientific form, e.g. "-1.2345e-07", then re-laid out.
  char sci[32];
  auto [end, ec] = std::to_chars(sci, sci + sizeof sci, value, std::chars_format::scientific);
  const char* p = sci;
  if (*p == '-') {
    out += '-';
    ++p;
  }
  const char* e = static_cast<const char*>(std::memchr(p, 'e', end - p));
  char digits[24];
  int ndigits = 0;
  for (const char* q = p; q < e; ++q)
    if (*q != '.') digits[ndigits++] = *q;
  int exp10 = 0;
  std::from_chars(e[1] == '+' ? e + 2 : e + 1, end, exp10);
  // `decpt` is where the decimal point goes in the digit string, as in Python's repr.
  const int decpt = exp10 + 1;
  if (decpt > -4 && decpt <= 16) {
    if (decpt <= 0) {
      out += "0.";
      out.append(static_cast<std::size_t>(-decpt), '0');
      out.append(digits, ndigits);
    } else if (decpt >= ndigits) {
      out.append(digits, ndigits);
      out.append(static_cast<std::size_t>(decpt - ndigits), '0');
      out += ".0";
    } else {
      out.append(digits, decpt);
      out += '.';
      out.append(digits + decpt, ndigits - decpt);
    }
    return;
  }
  out += digits[0];
  if (ndigits > 1) {
    out += '.';
    out.append(digits + 1, ndigits - 1);
  }
  char exp_text[8];
  const int shown = decpt - 1;
  int n = 0;
  exp_text[n++] = 'e';
  exp_text[n++] = shown < 0 ? '-' : '+';
  const int magnitude = shown < 0 ? -shown : shown;
  if (magnitude < 10) exp_text[n++] = '0';
  n += static_cast<int>(std::to_chars(exp_text + n, exp_text + sizeof exp_text, magnitude).ptr -
                        (exp_text + n));
  out.append(exp_text, n);
}

void append_integer(std::string& out, std::int64_t value) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, value);
  out.append(buf, r.ptr);
}

void append_integer(std::string& out, std::uint64_t value) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, value);
  out.append(buf, r.ptr);
}

}  // namespace molt::codec
