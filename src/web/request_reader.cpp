#include "request_reader.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <cstring>

namespace molt::web::detail {

namespace http = boost::beast::http;

RequestReader::RequestReader(const Limits& limits, const App* app) : limits_(limits), app_(app) {
  buffer_.resize(limits_.initial_buffer_bytes);
  begin_request();
}

void RequestReader::begin_request() {
  request_.reset();
  parser_.emplace(request_, limits_.max_header_bytes, limits_.max_headers, limits_.max_body_bytes,
                  app_);
  // Not eager: the first put() stops at the end of the header, which tells where it ends.
  parser_->eager(false);
  header_end_ = 0;
  header_reported_ = false;
  stalled_ = false;
  start_ = next_;
}

void RequestReader::start_next() {
  begin_request();
}

// Body bytes the parser has taken are in request_.body() already, or were handed out as
// pieces of a streamed body: drop them, keeping the header (the request's views) in place.
void RequestReader::drop_consumed_body() {
  if (parser_->is_header_done() && next_ > header_end_) {
    std::memmove(buffer_.data() + header_end_, buffer_.data() + next_, end_ - next_);
    end_ -= next_ - header_end_;
    next_ = header_end_;
  }
}

// Bytes of requests already answered: slide the current one to the front.
void RequestReader::slide_to_front() {
  std::memmove(buffer_.data(), buffer_.data() + start_, end_ - start_);
  // Beast hands out the request line as soon as it is read, before the rest of the
  // header: whatever views the request holds move with the bytes.
  request_.rebase(-static_cast<std::ptrdiff_t>(start_));
  next_ -= start_;
  end_ -= start_;
  header_end_ = parser_->is_header_done() ? header_end_ - start_ : 0;
  start_ = 0;
}

std::span<char> RequestReader::read_space() {
  if (end_ == buffer_.size()) {
    drop_consumed_body();
    if (start_ > 0 && end_ == buffer_.size()) slide_to_front();
    if (end_ == buffer_.size()) {
      const char* before = buffer_.data();
      buffer_.resize(buffer_.size() * 2);
      request_.rebase(buffer_.data() - before);
    }
  }
  return {buffer_.data() + end_, buffer_.size() - end_};
}

RequestReader::State RequestReader::parse() {
  if (!error_.code.empty()) return State::Failed;
  // RFC 9112 §2.2: empty lines before a request line are ignored (some clients end a body
  // with an extra CRLF). They belong to no request, so the request starts after them.
  if (!parser_->got_some()) {
    while (next_ < end_ && (buffer_[next_] == '\r' || buffer_[next_] == '\n')) ++next_;
    start_ = next_;
  }
  while (!parser_->is_done() && !stalled_) {
    if (next_ == end_) break;
    boost::beast::error_code ec;
    const bool header_was_done = parser_->is_header_done();
    const std::size_t used = parser_->feed({buffer_.data() + next_, end_ - next_}, ec);
    next_ += used;
    if (!header_was_done && parser_->is_header_done()) {
      header_end_ = next_;
      if (parser_->streams_body()) [[unlikely]]
        return streamed_header(ec);
      parser_->eager(true);  // the body: take all of it that is here
    }
    if (ec == http::error::need_more) {
      if (oversized_chunk_line()) return fail_oversized_chunk_line();
      stalled_ = true;
      break;
    }
    if (ec) return fail_from(ec);
    if (used == 0) break;
  }
  if (parser_->is_done()) return State::Ready;
  if (parser_->is_header_done() && !header_reported_) {
    header_reported_ = true;
    return State::HeaderReady;
  }
  return State::NeedMore;
}

// The header of a request whose handler streams the body: it is ready now, and the body is
// left for next_piece(). Out of parse(), whose loop runs for every request.
RequestReader::State RequestReader::streamed_header(const boost::beast::error_code& ec) {
  if (ec) return fail_from(ec);  // a header refused (over the route's limit, ...)
  request_.set_body_streamed(true);
  // Beast knows keep-alive from the header; the end of the body would tell it too late.
  request_.set_keep_alive(parser_->keep_alive());
  return State::Ready;
}

RequestReader::Piece RequestReader::next_piece(std::string_view& piece) {
  if (!error_.code.empty()) return Piece::Failed;
  while (!parser_->is_done() && !stalled_ && next_ < end_) {
    boost::beast::error_code ec;
    const std::size_t used = parser_->feed({buffer_.data() + next_, end_ - next_}, ec);
    next_ += used;
    if (ec == http::error::need_more) {
      if (oversized_chunk_line()) {
        fail_oversized_chunk_line();
        return Piece::Failed;
      }
      stalled_ = true;
      break;
    }
    if (ec) {
      fail_from(ec);
      return Piece::Failed;
    }
    piece = parser_->take_piece();
    if (!piece.empty()) return Piece::Data;
    if (used == 0) break;
  }
  return parser_->is_done() ? Piece::End : Piece::NeedMore;
}

std::span<char> RequestReader::body_read_space() {
  drop_consumed_body();
  if (start_ > 0) slide_to_front();
  // Room for the body beside the header, however large the header.
  const std::size_t wanted = header_end_ + limits_.stream_buffer_bytes;
  if (buffer_.size() < wanted) {
    const char* before = buffer_.data();
    buffer_.resize(wanted);
    request_.rebase(buffer_.data() - before);
  }
  return read_space();
}

std::optional<std::uint64_t> RequestReader::body_remaining() const {
  if (parser_->chunked()) return std::nullopt;
  return parser_->content_length_remaining().value_or(0);
}

// After the header, Beast waits for a whole chunk-size line (with its extensions) or a whole
// trailer section before it takes any of it; header_limit does not apply there. Held to the
// header's own limit, so that a client cannot grow the buffer without end.
bool RequestReader::oversized_chunk_line() const {
  return parser_->is_header_done() && end_ - next_ > limits_.max_header_bytes;
}

RequestReader::State RequestReader::fail_oversized_chunk_line() {
  return fail(431, "header_too_large", "a chunk's extensions or the trailer section are too large");
}

RequestReader::State RequestReader::input_closed() {
  if (!error_.code.empty()) return State::Failed;
  if (end_ == start_) return State::NeedMore;  // closed between requests: nothing lost
  boost::beast::error_code ec;
  parser_->put_eof(ec);
  if (ec || !parser_->is_done()) return fail(400, "bad_request", "the request ended early");
  return State::Ready;
}

bool RequestReader::expects_continue() const {
  return detail::expects_continue(request_);
}

void RequestReader::shrink_if_idle() {
  if (end_ == start_ && buffer_.size() > limits_.initial_buffer_bytes) {
    std::string().swap(buffer_);
    buffer_.resize(limits_.initial_buffer_bytes);
    start_ = next_ = end_ = 0;
    begin_request();
  }
}

bool RequestReader::request_line_ended() const {
  std::string_view input(buffer_.data() + start_, end_ - start_);
  while (!input.empty() && (input.front() == '\r' || input.front() == '\n'))
    input.remove_prefix(1);  // empty lines before a request line are skipped
  return input.substr(0, limits_.max_header_bytes).find('\n') != std::string_view::npos;
}

RequestReader::State RequestReader::fail(int status, std::string code, std::string message) {
  error_ = {status, std::move(code), std::move(message)};
  return State::Failed;
}

RequestReader::State RequestReader::fail_from(const boost::beast::error_code& ec) {
  if (ec == http::error::header_limit && parser_->chunk_line_too_large())
    return fail_oversized_chunk_line();
  // RFC 9112 §3: a request line longer than the server reads (its end not within the
  // header limit) is a 414, not a 431.
  if (ec == http::error::header_limit && !request_line_ended())
    return fail(414, "uri_too_long", "the request target is too long");
  if (ec == http::error::header_limit)
    return fail(
        431, "header_too_large",
        parser_->too_many_headers() ? "too many header fields" : "the request header is too large");
  if (ec == http::error::body_limit)
    return fail(413, "payload_too_large",
                "the request body is larger than the " +
                    std::to_string(parser_->body_bytes_allowed()) + " bytes taken here");
  if (ec == http::error::bad_content_length || ec == http::error::multiple_content_length)
    return fail(400, "bad_request", "invalid Content-Length");
  if (ec == http::error::bad_transfer_encoding && parser_->old_version_coding())
    return fail(400, "bad_request", "Transfer-Encoding is not allowed in an HTTP/1.0 request");
  if (ec == http::error::bad_transfer_encoding && parser_->unsupported_coding())
    return fail(501, "not_implemented", "only the chunked transfer coding is supported");
  if (ec == http::error::bad_transfer_encoding)
    return fail(400, "bad_request", "invalid Transfer-Encoding");
  if (ec == http::error::bad_chunk || ec == http::error::bad_chunk_extension)
    return fail(400, "bad_request", "invalid chunked body");
  if (parser_->invalid_host()) return fail(400, "bad_request", "invalid Host");
  if (ec == http::error::bad_field && parser_->bad_host())
    return fail(400, "bad_request", "a request needs exactly one Host header");
  if (ec == http::error::bad_field && parser_->folded_header())
    return fail(400, "bad_request",
                "a header value continued on the next line (obsolete line folding) is not "
                "accepted");
  if (ec == http::error::bad_method) return fail(400, "bad_request", "invalid method");
  if (ec == http::error::bad_target) return fail(400, "bad_request", "invalid request target");
  if (ec == http::error::bad_version) return fail(400, "bad_request", "invalid HTTP version");
  return fail(400, "bad_request", "malformed request");
}

}  // namespace molt::web::detail
