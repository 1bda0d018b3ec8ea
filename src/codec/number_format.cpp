#include "molt/codec/number_format.hpp"

#include <charconv>
#include <cmath>
#include <cstring>

namespace molt::codec {

namespace {

// The common case, fast: a value that is exactly what a decimal with at most four places reads
// as (0.25, 3.0, 19.99, 0.0001). Below 1e9 one unit in the fourth place is thousands of ulps, so
// at most one such decimal reads back as `value`, and trying 0, 1, 2... places finds the
// shortest, which is Python's repr. Python writes all of these in fixed notation.
bool append_short_decimal(std::string& out, double value) {
  static constexpr double kPow10[] = {1, 10, 100, 1000, 10000};
  const double magnitude = std::fabs(value);
  if (magnitude == 0) {
    out += std::signbit(value) ? "-0.0" : "0.0";
    return true;
  }
  if (!(magnitude >= 1e-4 && magnitude < 1e9)) return false;
  for (int places = 0; places <= 4; ++places) {
    const double scaled = std::nearbyint(magnitude * kPow10[places]);
    if (scaled / kPow10[places] != magnitude) continue;
    auto units = static_cast<std::uint64_t>(scaled);
    const auto unit = static_cast<std::uint64_t>(kPow10[places]);
    if (value < 0) out += '-';
    append_integer(out, units / unit);
    out += '.';
    if (places == 0) {
      out += '0';
      return true;
    }
    char frac[4];
    std::uint64_t rest = units % unit;
    for (int i = places - 1; i >= 0; --i) {
      frac[i] = static_cast<char>('0' + rest % 10);
      rest /= 10;
    }
    out.append(frac, static_cast<std::size_t>(places));
    return true;
  }
  return false;
}

}  // namespace

void append_python_float(std::string& out, double value) {
  if (std::isnan(value)) {
    out += "NaN";
    return;
  }
  if (std::isinf(value)) {
    out += value < 0 ? "-Infinity" : "Infinity";
    return;
  }
  if (append_short_decimal(out, value)) return;
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
