#pragma once
// UTF-8 checks for text that must be a string on the wire (MsgPack str, JSON string) but may
// carry bytes a peer sent, e.g. an unknown entry name quoted back in an error message.

#include <string>
#include <string_view>

namespace molt::codec {

// Well-formed UTF-8 (RFC 3629): no overlongs, no surrogates, nothing above U+10FFFF.
bool is_valid_utf8(std::string_view text) noexcept;
// `text` with each ill-formed sequence replaced by U+FFFD.
std::string replace_invalid_utf8(std::string_view text);

}  // namespace molt::codec
