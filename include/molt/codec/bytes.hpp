#pragma once
// Binary data in a described struct. A std::string member is text (UTF-8 on both wires); a
// Bytes member is any bytes: MsgPack bin (a str is taken too), JSON a base64 string (RFC
// 4648, padded), since JSON has no bytes.

#include <string>

namespace molt::codec {

struct Bytes {
  std::string data;
  friend bool operator==(const Bytes&, const Bytes&) = default;
};

}  // namespace molt::codec
