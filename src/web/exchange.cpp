#include "exchange.hpp"

#include <cstdio>

#include "molt/core/status.hpp"
#include "response_writer.hpp"

namespace molt::web::detail {

void log_request_failure(const Request& request, std::string_view how, std::string_view what) {
  std::fprintf(stderr, "molt::web: %.*s %.*s%.*s: %s\n", static_cast<int>(request.method().size()),
               request.method().data(), static_cast<int>(request.path().size()),
               request.path().data(), static_cast<int>(how.size()), how.data(),
               core::one_line(what).c_str());
}

void log_stream_failure(const Request& request, const char* what) {
  log_request_failure(request, ": the streamed answer failed", what);
}

bool write_answer(std::string& out, const Request& request, const Response& response,
                  bool closing) {
  // HTTP/1.0 has no chunks: a streamed body ends where the connection does.
  const bool close_delimited = request.version() < 11 && sends_stream(request, response);
  const bool keep_alive = request.keep_alive() && !closing && !close_delimited;
  write_response(out, response, {request.version(), keep_alive, request.method() == "HEAD"});
  return keep_alive;
}

bool sends_stream(const Request& request, const Response& response) {
  const int status = response.status();
  const bool bodiless = status < 200 || status == 204 || status == 304;
  return response.streaming() && !bodiless && request.method() != "HEAD";
}

void frame_piece(std::string& out, const Request& request, std::string_view piece) {
  if (request.version() >= 11) {
    append_chunk(out, piece);
  } else {
    out += piece;
  }
}

void frame_end(std::string& out, const Request& request) {
  if (request.version() >= 11) out += kLastChunk;
}

void write_read_error(std::string& out, const ReadError& error) {
  write_response(out, Response::error(error.status, error.code, error.message), {11, false, false});
}

}  // namespace molt::web::detail
