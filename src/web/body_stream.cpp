#include "body_stream.hpp"

#include "molt/web/app.hpp"

namespace molt::web::detail {

namespace {
[[noreturn]] void throw_read_error(const ReadError& error) {
  throw HttpError(error.status, error.code, error.message);
}
}  // namespace

boost::asio::awaitable<std::optional<std::string_view>> BodyStream::next_piece() {
  using Piece = RequestReader::Piece;
  if (continue_owed_) {
    // Asked for the body at last: now the client may send it.
    continue_owed_ = false;
    co_await send_continue();
  }
  for (;;) {
    std::string_view piece;
    switch (reader_.next_piece(piece)) {
      case Piece::Data:
        co_return piece;
      case Piece::End:
        ended_ = true;
        co_return std::nullopt;
      case Piece::Failed:
        throw_read_error(reader_.error());
      case Piece::NeedMore:
        if (!co_await receive()) {
          reader_.input_closed();  // cut short: the reader fails the request
          throw_read_error(reader_.error());
        }
        break;
    }
  }
}

boost::asio::awaitable<bool> BodyStream::finish(std::uint64_t max_drain) {
  using Piece = RequestReader::Piece;
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
    while (co_await next_piece()) {
    }
  } catch (const std::exception&) {
    co_return false;
  }
  co_return true;
}

}  // namespace molt::web::detail
