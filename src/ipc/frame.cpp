#include "molt/ipc/frame.hpp"

#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

namespace molt::ipc {
namespace {
std::uint32_t read_le32(const char* p) {
  const auto* b = reinterpret_cast<const unsigned char*>(p);
  return static_cast<std::uint32_t>(b[0]) | (static_cast<std::uint32_t>(b[1]) << 8) |
         (static_cast<std::uint32_t>(b[2]) << 16) | (static_cast<std::uint32_t>(b[3]) << 24);
}
void write_le32(char* p, std::uint32_t v) {
  p[0] = static_cast<char>(v & 0xff);
  p[1] = static_cast<char>((v >> 8) & 0xff);
  p[2] = static_cast<char>((v >> 16) & 0xff);
  p[3] = static_cast<char>((v >> 24) & 0xff);
}
}  // namespace

std::span<char> FrameReader::prepare(std::size_t min_size) {
  // Move the unread tail to the front once the consumed prefix dominates.
  if (begin_ > 0 && (begin_ == end_ || begin_ >= buffer_.size() / 2)) {
    std::memmove(buffer_.data(), buffer_.data() + begin_, size());
    end_ -= begin_;
    begin_ = 0;
  }
  if (buffer_.size() - end_ < min_size) buffer_.resize(end_ + min_size);
  return {buffer_.data() + end_, buffer_.size() - end_};
}

void FrameReader::commit(std::size_t written) {
  end_ += written;
  skip_buffered();
}

void FrameReader::feed(std::string_view bytes) {
  auto room = prepare(bytes.size());
  std::memcpy(room.data(), bytes.data(), bytes.size());
  commit(bytes.size());
}

void FrameReader::skip_buffered() {
  if (skip_left_ == 0) return;
  const std::size_t drop = static_cast<std::size_t>(std::min<std::uint64_t>(skip_left_, size()));
  begin_ += drop;
  skip_left_ -= drop;
}

std::optional<FrameEvent> FrameReader::next() {
  skip_buffered();
  if (skip_left_ > 0 || size() < kFrameHeader) return std::nullopt;
  const std::uint32_t length = read_le32(buffer_.data() + begin_);
  if (length > max_frame_) {
    begin_ += kFrameHeader;
    skip_left_ = length;
    skip_buffered();
    return FrameEvent{FrameEvent::Kind::Oversized, {}, length};
  }
  if (size() < kFrameHeader + length) return std::nullopt;
  std::string_view body(buffer_.data() + begin_ + kFrameHeader, length);
  begin_ += kFrameHeader + length;
  return FrameEvent{FrameEvent::Kind::Frame, body, length};
}

void append_frame(std::string& out, std::string_view body) {
  FrameBuilder frame(out);
  out.append(body);
  frame.finish();
}

void FrameBuilder::finish(std::size_t bytes_after) {
  const std::size_t length = out_.size() - header_at_ - kFrameHeader + bytes_after;
  // The length field has 32 bits: a larger body would wrap it and desynchronise the stream.
  if (length > std::numeric_limits<std::uint32_t>::max())
    throw std::length_error("frame body of " + std::to_string(length) + " bytes");
  write_le32(out_.data() + header_at_, static_cast<std::uint32_t>(length));
}

}  // namespace molt::ipc
