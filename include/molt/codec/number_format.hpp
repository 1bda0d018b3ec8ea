#pragma once
// Numbers written the way Python's json module writes them, so our JSON is byte-for-byte
// what Django answers (DESIGN.md §9): shortest round-trip digits, fixed notation when the
// decimal exponent is in [-4, 16), else `1e-05` / `1.5e+16`; integral values keep `.0`;
// non-finite values as `NaN`, `Infinity`, `-Infinity` (Python's allow_nan default).

#include <cstddef>
#include <cstdint>
#include <string>

namespace molt::codec {

void append_python_float(std::string& out, double value);
void append_integer(std::string& out, std::int64_t value);
void append_integer(std::string& out, std::uint64_t value);

// The same, written at `at` (room for kNumberRoom bytes) for loops that size their room once;
// each returns where it ended.
inline constexpr std::size_t kNumberRoom = 32;
char* write_python_float(char* at, double value);
char* write_integer(char* at, std::int64_t value);
char* write_integer(char* at, std::uint64_t value);

// For JSON, which has no NaN or infinities: those as the strings "NaN", "Infinity" and
// "-Infinity" (as PostgreSQL's to_json and molt_accel write them, where Python would write
// bare tokens that JSON.parse refuses); every other value as write_python_float.
void append_json_double(std::string& out, double value);
char* write_json_double(char* at, double value);

}  // namespace molt::codec
