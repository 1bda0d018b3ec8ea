#pragma once
// UTF-8 checks for text that must be a string on the wire (MsgPack str, JSON string) but may
// carry bytes a peer sent, e.g. an unknown entry name quoted back in an error message.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace molt::codec {

namespace detail {
bool is_valid_utf8_beyond_ascii(std::string_view text) noexcept;
// Length of the well-formed sequence starting at text[i] (1 for ASCII), or 0 when it is
// ill-formed.
std::size_t utf8_sequence_length(std::string_view text, std::size_t i) noexcept;
}  // namespace detail

// Well-formed UTF-8 (RFC 3629): no overlongs, no surrogates, nothing above U+10FFFF.
// Inline for the common case, short ASCII text (a database cell, a name): its bytes are
// OR-ed together in words (the last one overlapping the one before, so no byte loop) and
// settled by one test; anything else is read sequence by sequence out of line.
inline bool is_valid_utf8(std::string_view text) noexcept {
  const char* at = text.data();
  const std::size_t size = text.size();
  std::uint64_t seen = 0;
  if (size >= 8) {
    std::uint64_t word;
    for (std::size_t i = 0; i + 8 < size; i += 8) {
      std::memcpy(&word, at + i, 8);
      seen |= word;
    }
    std::memcpy(&word, at + size - 8, 8);
    seen |= word;
  } else if (size >= 4) {
    std::uint32_t first, last;
    std::memcpy(&first, at, 4);
    std::memcpy(&last, at + size - 4, 4);
    seen = first | last;
  } else {
    for (std::size_t i = 0; i < size; ++i) seen |= static_cast<unsigned char>(at[i]);
  }
  if ((seen & 0x8080808080808080u) == 0) return true;
  return detail::is_valid_utf8_beyond_ascii(text);
}
// `text` with each ill-formed sequence replaced by U+FFFD.
std::string replace_invalid_utf8(std::string_view text);
// Where to cut `text` to at most `max_bytes` without cutting a character in two: the length
// of its longest prefix that long that does not end inside one.
std::size_t utf8_cut(std::string_view text, std::size_t max_bytes) noexcept;

}  // namespace molt::codec
