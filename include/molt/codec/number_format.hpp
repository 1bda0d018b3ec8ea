#pragma once
// Numbers written the way Python's json module writes them, so our JSON is byte-for-byte
// what Django answers (DESIGN.md §9): shortest round-trip digits, fixed notation when the
// decimal exponent is in [-4, 16), else `1e-05` / `1.5e+16`; integral values keep `.0`;
// non-finite values as `NaN`, `Infinity`, `-Infinity` (Python's allow_nan default).

#include <cstdint>
#include <string>

namespace molt::codec {

void append_python_float(std::string& out, double value);
void append_integer(std::string& out, std::int64_t value);
void append_integer(std::string& out, std::uint64_t value);

}  // namespace molt::codec
