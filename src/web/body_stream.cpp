#include "body_stream.hpp"

#include <stdexcept>

#include "molt/web/app.hpp"

namespace molt::web::detail {

boost::asio::awaitable<std::optional<std::string_view>> BodyStream::next_piece() {
  using Piece = RequestReader::Piece;
  if (over_ && !draining_)
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
      if (!over_) on_end();  // not for a rest drain() drops
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

BodyStream::Rest BodyStream::settle(std::uint64_t max_drain) {
  using Piece = RequestReader::Piece;
  over_ = true;
  if (ended_) return Rest::None;
  if (continue_owed_) return Rest::Abandoned;  // the client still waits to be asked for it
  // What is buffered costs nothing to skip; more is read (by drain()) only when it is known
  // to be little.
  std::string_view piece;
  Piece state;
  while ((state = reader_.next_piece(piece)) == Piece::Data) {
  }
  if (state == Piece::End) return Rest::None;
  if (state == Piece::Failed) return Rest::Abandoned;
  const auto remaining = reader_.body_remaining();
  return remaining && *remaining <= max_drain ? Rest::Little : Rest::Abandoned;
}

boost::asio::awaitable<bool> BodyStream::drain() {
  draining_ = true;
  bool drained = true;
  try {
    // A declaration in the condition: GCC 12 miscompiles `while (co_await ...)` without one.
    while (const auto skipped = co_await next_piece()) {
    }
  } catch (const std::exception&) {
    drained = false;
  }
  draining_ = false;
  co_return drained;
}

}  // namespace molt::web::detail
