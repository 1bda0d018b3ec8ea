#include "body_stream.hpp"

#include <stdexcept>

#include "molt/web/app.hpp"

namespace molt::web::detail {

boost::asio::awaitable<std::optional<std::string_view>> BodyStream::next_piece() {
  using Piece = RequestReader::Piece;
  if (over_)
    throw std::logic_error("the request body is read in the handler, not after it has answered");
  if (continue_owed_) {
    // Asked for the body at last: now the client may send it.
    continue_owed_ = false;
    co_await send_continue();
  }
  for (;;) {
    std::string_view piece;
    const Piece state = reader_.next_piece(piece);
    if (state == Piece::Data) co_return piece;
    if (state == Piece::End) {
      ended_ = true;
      if (!skipping_) on_end();
      co_return std::nullopt;
    }
    if (state == Piece::NeedMore) {
      const bool more = co_await receive();
      if (more) continue;
      reader_.input_closed();  // cut short: the reader fails the request
    }
    const ReadError& error = reader_.error();
    throw HttpError(error.status, error.code, error.message);
  }
}

boost::asio::awaitable<bool> BodyStream::finish(std::uint64_t max_drain) {
  const bool can_go_on = co_await skip_rest(max_drain);
  over_ = true;
  co_return can_go_on;
}

boost::asio::awaitable<bool> BodyStream::skip_rest(std::uint64_t max_drain) {
  using Piece = RequestReader::Piece;
  skipping_ = true;
  if (ended_) co_return true;
  if (continue_owed_) co_return false;  // the client still waits to be asked for the body
  // What is buffered costs nothing to skip; more is read only when it is known to be little.
  std::string_view piece;
  Piece state;
  while ((state = reader_.next_piece(piece)) == Piece::Data) {
  }
  if (state == Piece::End) co_return true;
  if (state == Piece::Failed) co_return false;
  const auto remaining = reader_.body_remaining();
  if (!remaining || *remaining > max_drain) co_return false;
  try {
    // A declaration in the condition: GCC 12 miscompiles `while (co_await ...)` without one.
    while (const auto skipped = co_await next_piece()) {
    }
  } catch (const std::exception&) {
    co_return false;
  }
  co_return true;
}

}  // namespace molt::web::detail
