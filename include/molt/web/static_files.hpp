// Files from a folder, as FastAPI's StaticFiles:
//
//   molt::web::serve_files(app, "/static", "public");   // GET and HEAD /static/<path>
//   molt::web::serve_files(app, "/", "site",
//                          {.index_html = true, .max_age = std::chrono::hours(1)});
//
// A path is looked up under the folder only: `..` and `%2F..` are refused by the router, and a
// symbolic link that leads out of the folder is a 404 unless allowed. Answers carry
// Content-Type by extension, Content-Length, ETag and Last-Modified, and answer
// If-None-Match / If-Modified-Since with 304 and one `Range: bytes=` with 206 (416 past the
// end). Small files are read whole; larger ones are sent piece by piece, each read as the
// client takes the one before. Files are read on the I/O thread, as nginx reads without aio:
// fast from the page cache, a wait on a cold disk.
#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <optional>
#include <string_view>

#include "molt/web/app.hpp"

namespace molt::web {

struct StaticOptions {
  // A folder's index.html answers for the folder (Starlette's html=True); else a folder is
  // a 404.
  bool index_html = false;
  // Cache-Control: public, max-age=N; none when absent.
  std::optional<std::chrono::seconds> max_age;
  // A file larger than this is sent in pieces of this size (one is in memory for each
  // download in progress).
  std::size_t piece_bytes = 64 * 1024;
  // Symbolic links may lead out of the folder (Starlette's follow_symlink).
  bool follow_links_out = false;
};

// The handler of a route whose pattern ends in `{path:path}`: the file at that path under
// `folder` (an absent `path` is the folder itself). std::invalid_argument when `folder` is
// not a folder.
Handler static_files(std::filesystem::path folder, StaticOptions options = {});

// Adds GET `prefix/{path:path}` (and `prefix/` with index_html) serving `folder`, left out of
// the OpenAPI document. `prefix` is "" or "/name".
void serve_files(App& app, std::string_view prefix, std::filesystem::path folder,
                 StaticOptions options = {});

}  // namespace molt::web
