#include "molt/codec/number_format.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace molt::codec {
namespace {

std::string python_float(double value) {
  std::string out;
  append_python_float(out, value);
  return out;
}

TEST(PythonFloatTest, KnownValues) {
  const struct {
    double value;
    const char* text;
  } cases[] = {
      {0.0, "0.0"},
      {-0.0, "-0.0"},
      {1.0, "1.0"},
      {-1.0, "-1.0"},
      {0.1, "0.1"},
      {0.93, "0.93"},
      {27.125, "27.125"},
      {1.5, "1.5"},
      {100.0, "100.0"},
      {0.1 + 0.2, "0.30000000000000004"},
      {1.0 / 3.0, "0.3333333333333333"},
      {0.0001, "0.0001"},
      {0.00012345, "0.00012345"},
      {0.00001, "1e-05"},
      {1.5e-5, "1.5e-05"},
      {1e-7, "1e-07"},
      {1e15, "1000000000000000.0"},
      {1234567890123456.0, "1234567890123456.0"},
      {9999999999999998.0, "9999999999999998.0"},
      {1e16, "1e+16"},
      {1.5e16, "1.5e+16"},
      {12345678901234568.0, "1.2345678901234568e+16"},
      {1e22, "1e+22"},
      {1e100, "1e+100"},
      {-2.5e-100, "-2.5e-100"},
      {std::numeric_limits<double>::max(), "1.7976931348623157e+308"},
      {std::numeric_limits<double>::lowest(), "-1.7976931348623157e+308"},
      {std::numeric_limits<double>::min(), "2.2250738585072014e-308"},
      {std::numeric_limits<double>::denorm_min(), "5e-324"},
      {std::numeric_limits<double>::epsilon(), "2.220446049250313e-16"},
      {9007199254740993.0, "9007199254740992.0"},
      {123.456, "123.456"},
  };
  for (const auto& c : cases) EXPECT_EQ(python_float(c.value), c.text) << "for " << c.text;
}

TEST(PythonFloatTest, NonFiniteValuesUsePythonsJsonSpelling) {
  EXPECT_EQ(python_float(std::numeric_limits<double>::quiet_NaN()), "NaN");
  EXPECT_EQ(python_float(-std::numeric_limits<double>::quiet_NaN()), "NaN");
  EXPECT_EQ(python_float(std::numeric_limits<double>::infinity()), "Infinity");
  EXPECT_EQ(python_float(-std::numeric_limits<double>::infinity()), "-Infinity");
}

TEST(PythonFloatTest, AppendsWithoutTouchingWhatIsThere) {
  std::string out = "[";
  append_python_float(out, 2.5);
  out += ',';
  append_python_float(out, 1e-9);
  EXPECT_EQ(out, "[2.5,1e-09");
}

TEST(AppendIntegerTest, FullRange) {
  std::string out;
  append_integer(out, std::int64_t{0});
  out += ' ';
  append_integer(out, std::numeric_limits<std::int64_t>::min());
  out += ' ';
  append_integer(out, std::numeric_limits<std::int64_t>::max());
  out += ' ';
  append_integer(out, std::numeric_limits<std::uint64_t>::max());
  out += ' ';
  append_integer(out, std::int64_t{-42});
  EXPECT_EQ(out, "0 -9223372036854775808 9223372036854775807 18446744073709551615 -42");
}

// ---- the same 50,000 doubles formatted by python3 itself ---------------------------------

double from_bits(std::uint64_t bits) {
  return std::bit_cast<double>(bits);
}

std::vector<double> sample_doubles() {
  std::mt19937_64 rng(20240611);
  std::vector<double> values;
  auto u64 = [&] { return rng(); };
  auto below = [&](std::uint64_t n) { return rng() % n; };

  // Special values.
  for (double v :
       {0.0, -0.0, 1.0, -1.0, std::numeric_limits<double>::max(),
        std::numeric_limits<double>::lowest(), std::numeric_limits<double>::min(),
        std::numeric_limits<double>::denorm_min(), std::numeric_limits<double>::epsilon(),
        std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity(),
        std::numeric_limits<double>::quiet_NaN(), 1e16, 1e-5, 1e-4, 1e15, 1e17, 9007199254740992.0,
        9007199254740993.0})
    values.push_back(v);
  // Random bit patterns: every sign, exponent and mantissa, NaNs included.
  for (int i = 0; i < 15000; ++i) values.push_back(from_bits(u64()));
  // Subnormals.
  for (int i = 0; i < 3000; ++i)
    values.push_back(from_bits((u64() & 0x800fffffffffffffULL) | (below(2) ? 0 : 1)));
  // Multiples of 0.1 and of other short decimals, as money and scores are.
  for (int k = 0; k < 5000; ++k) values.push_back(0.1 * k);
  for (int k = 0; k < 3000; ++k) values.push_back(k / 100.0 - 15.0);
  // Integers as floats, up to and beyond 2^53.
  for (int i = 0; i < 4000; ++i) {
    const int bits = static_cast<int>(below(70));
    const std::uint64_t n = bits >= 64 ? u64() : (u64() >> (64 - std::max(bits, 1)));
    const double v = static_cast<double>(n) * (bits >= 64 ? std::ldexp(1.0, bits - 63) : 1.0);
    values.push_back(below(2) ? v : -v);
  }
  // Short decimal strings parsed to doubles across all exponents ("0.93", "27.125", "5e-310").
  for (int i = 0; i < 10000; ++i) {
    const int digits = 1 + static_cast<int>(below(17));
    std::string text = std::to_string(1 + below(9));
    for (int d = 1; d < digits; ++d) text += static_cast<char>('0' + below(10));
    text.insert(1, ".");
    text += 'e' + std::to_string(static_cast<int>(below(640)) - 324);
    values.push_back(std::strtod(text.c_str(), nullptr));
  }
  // Around the switch between fixed and exponent notation, and powers of ten.
  for (int e = -330; e <= 310; ++e) {
    const double p = std::pow(10.0, e);
    values.push_back(p);
    values.push_back(std::nextafter(p, 0.0));
    values.push_back(std::nextafter(p, std::numeric_limits<double>::infinity()));
  }
  for (int i = 0; i < 6000; ++i) {
    const int e = static_cast<int>(below(26)) - 8;  // 1e-8 .. 1e17
    const double mantissa = 1.0 + std::ldexp(static_cast<double>(u64() >> 11), -53) * 9.0;
    values.push_back(mantissa * std::pow(10.0, e));
  }
  // Decimals with up to four places (prices, scores), their neighbours one ulp away, and their
  // sums, which are rarely short: 19.99, 19.990000000000002, 0.1 + 0.7.
  static constexpr double kScale[] = {1, 10, 100, 1000, 10000, 100000};
  for (int i = 0; i < 3000; ++i) {
    const double places = kScale[below(6)];
    const double v = static_cast<double>(below(std::uint64_t{1} << (below(2) ? 20 : 45))) / places;
    values.push_back(v);
    values.push_back(-v);
    values.push_back(std::nextafter(v, 0.0));
    values.push_back(std::nextafter(v, 1e300));
    values.push_back(v + static_cast<double>(below(1000)) / places);
  }
  // Uniform reals in common ranges.
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::uniform_real_distribution<double> wide(-1e6, 1e6);
  while (values.size() < 50000) {
    values.push_back(unit(rng));
    values.push_back(wide(rng));
  }
  return values;
}

// Runs python3 over the bit patterns in a file; one json.dumps() line per value.
std::vector<std::string> python_json_dumps(const std::vector<double>& values) {
  const auto input = std::filesystem::temp_directory_path() /
                     ("molt_number_format_" + std::to_string(::getpid()) + ".txt");
  {
    std::ofstream out(input);
    char line[24];
    for (double v : values) {
      std::snprintf(line, sizeof line, "%016llx\n",
                    static_cast<unsigned long long>(std::bit_cast<std::uint64_t>(v)));
      out << line;
    }
  }
  const std::string script =
      "import json, struct, sys\n"
      "out = []\n"
      "for line in open(sys.argv[1]):\n"
      "    (x,) = struct.unpack('<d', int(line, 16).to_bytes(8, 'little'))\n"
      "    out.append(json.dumps(x))\n"
      "sys.stdout.write('\\n'.join(out) + '\\n')\n";
  const std::string command = "python3 -c \"" + script + "\" '" + input.string() + "'";
  std::vector<std::string> lines;
  if (FILE* pipe = ::popen(command.c_str(), "r")) {
    std::string current;
    char buffer[65536];
    std::size_t n;
    while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) {
      for (std::size_t i = 0; i < n; ++i) {
        if (buffer[i] == '\n') {
          lines.push_back(std::move(current));
          current.clear();
        } else {
          current += buffer[i];
        }
      }
    }
    ::pclose(pipe);
  }
  std::filesystem::remove(input);
  return lines;
}

TEST(PythonFloatTest, MatchesPythonJsonDumpsOnFiftyThousandDoubles) {
  const std::vector<double> values = sample_doubles();
  ASSERT_GE(values.size(), 50000u);
  const std::vector<std::string> expected = python_json_dumps(values);
  ASSERT_EQ(expected.size(), values.size())
      << "python3 did not answer one line per value (is python3 on PATH?)";
  int mismatches = 0;
  for (std::size_t i = 0; i < values.size(); ++i) {
    const std::string ours = python_float(values[i]);
    if (ours == expected[i]) continue;
    if (++mismatches <= 20) {
      ADD_FAILURE() << "bits " << std::hex << std::bit_cast<std::uint64_t>(values[i]) << std::dec
                    << ": ours " << ours << ", python " << expected[i];
    }
  }
  EXPECT_EQ(mismatches, 0);
}

}  // namespace
}  // namespace molt::codec
