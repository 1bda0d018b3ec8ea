// Reads HTTP/1.1 requests out of one growable buffer, for a socket connection and for the
// TestClient alike: bytes go in through read_space()/commit(), requests come out in order
// (pipelining), and every malformed or oversized request becomes an error answer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "molt/web/limits.hpp"
#include "molt/web/message.hpp"
#include "request_parser.hpp"

namespace molt::web::detail {

// Why a request could not be read; the connection answers it and closes.
struct ReadError {
  int status = 400;
  std::string code;
  std::string message;
};

class RequestReader {
 public:
  // With `app`, bodies are limited per route (RouteOptions::max_body_bytes).
  explicit RequestReader(const Limits& limits, const App* app = nullptr);

  // Where to read the next bytes into; grows the buffer when full.
  std::span<char> read_space();
  void commit(std::size_t bytes) {
    end_ += bytes;
    stalled_ = false;
  }

  enum class State { NeedMore, HeaderReady, Ready, Failed };
  // Parses what is buffered. HeaderReady (once per request, when the header is complete but
  // the body is not) lets the caller answer `Expect: 100-continue`; then NeedMore again.
  // A request whose route streams its body is Ready as soon as its header is: its body is
  // then read with next_piece() (request().body_streamed() tells).
  State parse();
  // The peer closed its side: a request cut short is an error; between requests it is not.
  State input_closed();

  // A streamed body. Data: `piece` is the next bytes of it, a view into the buffer valid
  // until the next call that reads or moves it (next_piece, body_read_space, start_next).
  // End: the body is complete. NeedMore: read more (body_read_space()/commit()). Failed:
  // error() says why (413 past the limit, 400 for a malformed body).
  enum class Piece { Data, End, NeedMore, Failed };
  Piece next_piece(std::string_view& piece);
  // Where to read more of a streamed body into: the consumed bytes are dropped first, and
  // the buffer holds the header and Limits::stream_buffer_bytes (more only when a partial
  // chunk header needs it), so that it never holds more of the body than that.
  std::span<char> body_read_space();
  // What is left of a streamed body framed by Content-Length; nullopt when chunked.
  std::optional<std::uint64_t> body_remaining() const;
  // The whole buffer, to discard input into once the connection is closing.
  std::span<char> scratch() { return {buffer_.data(), buffer_.size()}; }

  Request& request() { return request_; }
  const ReadError& error() const { return error_; }
  bool expects_continue() const;
  // Where bytes that arrive while the request in hand is handled may go: the free end of the
  // buffer, never grown or moved (the request points into it); empty when it is full.
  std::span<char> spare_space() { return {buffer_.data() + end_, buffer_.size() - end_}; }
  // Whether any byte of a next request is buffered (the peer is pipelining).
  bool has_buffered_input() const { return end_ > next_; }
  // Whether the current request's line ended within the header limit.
  bool request_line_ended() const;
  // Forgets the request just answered and starts on the next one.
  void start_next();
  // The buffer's size: what an idle connection holds.
  std::size_t buffer_capacity() const { return buffer_.size(); }
  // Drops a large buffer while idle, so idle connections stay small.
  void shrink_if_idle();

 private:
  void begin_request();
  void drop_consumed_body();
  void slide_to_front();
  [[gnu::noinline]] State streamed_header(const boost::beast::error_code& ec);
  State fail(int status, std::string code, std::string message);
  State fail_from(const boost::beast::error_code& ec);
  bool oversized_chunk_line() const;
  [[gnu::noinline]] State fail_oversized_chunk_line();

  const Limits& limits_;
  const App* app_;
  std::string buffer_;
  std::size_t start_ = 0;  // first byte of the current request
  std::size_t next_ = 0;   // first byte not consumed by the parser
  std::size_t end_ = 0;    // one past the last byte read
  Request request_;
  std::optional<RequestParser> parser_;
  std::size_t header_end_ = 0;  // one past the header of the current request
  bool header_reported_ = false;
  // Beast said need_more and no byte came since: it must not be fed the same bytes again
  // (its chunk parser asserts that each call brings more).
  bool stalled_ = false;
  ReadError error_;
};

}  // namespace molt::web::detail
