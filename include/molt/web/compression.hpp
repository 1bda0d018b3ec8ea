// gzip for answers (Starlette's GZipMiddleware):
//
//   app.use(molt::web::compression());                        // JSON and text of 500 bytes up
//   app.use(molt::web::compression({.minimum_bytes = 1024, .level = 4}));
//
// An answer is compressed when the client accepts gzip (Accept-Encoding, q-values read), it is
// not encoded already, its type is text (text/*, JSON, JavaScript, XML, SVG, *+json, *+xml)
// and not an event stream, it is not a 206 or bodiless, and a body read whole has at least
// `minimum_bytes`. Streamed bodies are compressed piece by piece, each piece sent as soon as
// it is made (a flush per piece), so a client is never kept waiting for a piece already
// produced. It says `Vary: Accept-Encoding`, and a strong ETag becomes weak (the bytes differ
// from the ones it names).
#pragma once

#include <cstddef>
#include <string_view>

#include "molt/web/app.hpp"

namespace molt::web {

struct CompressionOptions {
  // Smaller bodies go as they are: gzip's own framing (18 bytes) and the time would not pay.
  std::size_t minimum_bytes = 500;
  // zlib's 1 (fastest) to 9 (smallest); 6 is zlib's default balance.
  int level = 6;
};

Middleware compression(CompressionOptions options = {});

// Whether an Accept-Encoding value takes gzip (its q above 0, or `*`'s when gzip is not named).
bool accepts_gzip(std::string_view accept_encoding);

}  // namespace molt::web
