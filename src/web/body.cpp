#include "molt/web/body.hpp"

#include "body_stream.hpp"

namespace molt::web {

boost::asio::awaitable<std::optional<std::string_view>> RequestBody::next() {
  if (finished_) co_return std::nullopt;
  if (source_ == nullptr) {
    // Read whole before the handler: one piece, then the end.
    finished_ = true;
    if (whole_ == nullptr || whole_->empty()) co_return std::nullopt;
    bytes_read_ = whole_->size();
    co_return std::string_view(*whole_);
  }
  const std::optional<std::string_view> piece = co_await source_->next_piece();
  if (piece) {
    bytes_read_ += piece->size();
  } else {
    finished_ = true;
  }
  co_return piece;
}

boost::asio::awaitable<std::string> RequestBody::read_all() {
  std::string all;
  while (const auto piece = co_await next()) all.append(*piece);
  co_return all;
}

}  // namespace molt::web
