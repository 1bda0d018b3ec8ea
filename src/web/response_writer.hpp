// Serializes a Response (head and body) into a reused buffer, so it goes out in one write.
#pragma once

#include <string>

#include "molt/web/message.hpp"

namespace molt::web::detail {

struct WriteOptions {
  int version = 11;        // the request's: 10 or 11
  bool keep_alive = true;  // false adds `Connection: close`
  bool head_only = false;  // HEAD: the head of the answer, without its body
};

// Appends the bytes of `response` to `out`. Adds Content-Length, Date and
// X-Content-Type-Options: nosniff; no Server header (no version banner).
void write_response(std::string& out, const Response& response, const WriteOptions& options);

// One piece of a chunked body (nothing for an empty piece), and the end of one.
void append_chunk(std::string& out, std::string_view data);
inline constexpr std::string_view kLastChunk = "0\r\n\r\n";

// The reason phrase of a status code ("Not Found"); "" for codes without one.
std::string_view reason_phrase(int status);

}  // namespace molt::web::detail
