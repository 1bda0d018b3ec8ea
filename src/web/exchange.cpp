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

void log_stream_failure(const Request& request, std::string_view what) {
  log_request_failure(request, ": the streamed answer failed", what);
}

bool write_answer(std::string& out, const Request& request, const Response& response,
                  bool closing) {
  // HTTP/1.0 has no chunks: a streamed body of no declared length ends where the connection
  // does.
  const bool close_delimited =
      request.version() < 11 && sends_stream(request, response) && !response.stream_length();
  const bool keep_alive = request.keep_alive() && !closing && !close_delimited;
  write_response(out, response, {request.version(), keep_alive, request.method() == "HEAD"});
  return keep_alive;
}

bool sends_stream(const Request& request, const Response& response) {
  const int status = response.status();
  const bool bodiless = status < 200 || status == 204 || status == 304;
  return response.streaming() && !bodiless && request.method() != "HEAD";
}

StreamFraming::StreamFraming(const Request& request, const Response& response)
    : request_(request),
      chunked_(request.version() >= 11 && !response.stream_length()),
      length_(response.stream_length()) {}

bool StreamFraming::piece(std::string& out, std::string_view piece) {
  if (length_ && piece.size() > *length_ - sent_) {
    log_stream_failure(request_, "its producer gave more than the " + std::to_string(*length_) +
                                     " bytes of its stream length");
    return false;
  }
  sent_ += piece.size();
  if (chunked_)
    append_chunk(out, piece);
  else
    out += piece;
  return true;
}

bool StreamFraming::end(std::string& out) {
  if (length_ && sent_ < *length_) {
    log_stream_failure(request_, "its producer ended after " + std::to_string(sent_) + " of the " +
                                     std::to_string(*length_) + " bytes of its stream length");
    return false;
  }
  if (chunked_) out += kLastChunk;
  return true;
}

void write_read_error(std::string& out, const ReadError& error) {
  write_response(out, Response::error(error.status, error.code, error.message), {11, false, false});
}

}  // namespace molt::web::detail
