#pragma once
// Standard base64 (RFC 4648, with padding): payload_b64 on the JSON wire.

#include <optional>
#include <string>
#include <string_view>

namespace molt::codec {

void append_base64(std::string& out, std::string_view bytes);
// nullopt when `text` is not valid padded base64.
std::optional<std::string> decode_base64(std::string_view text);

// base64url (RFC 4648 §5) without padding: safe in URLs and cookies.
std::string base64url(std::string_view bytes);
// nullopt when `text` is not unpadded base64url.
std::optional<std::string> decode_base64url(std::string_view text);

}  // namespace molt::codec
