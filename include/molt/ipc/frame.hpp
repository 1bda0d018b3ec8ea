#pragma once
// Length-prefixed frames (DESIGN.md §4): a u32 little-endian length, then that many bytes.
// FrameReader is incremental: feed it whatever a read returned, take complete frames out.
// A frame over the limit is reported at once and then skipped as its bytes arrive, never
// buffered.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace molt::ipc {

inline constexpr std::size_t kDefaultMaxFrame = 64u * 1024 * 1024;
inline constexpr std::size_t kFrameHeader = 4;

struct FrameEvent {
  enum class Kind { Frame, Oversized };
  Kind kind;
  std::string_view bytes;       // Frame: the body, valid until the next prepare()/feed()
  std::uint64_t declared_size;  // the length the header announced
};

class FrameReader {
 public:
  explicit FrameReader(std::size_t max_frame = kDefaultMaxFrame) : max_frame_(max_frame) {}

  // Room for the next read of at least `min_size` bytes; commit() what was written.
  std::span<char> prepare(std::size_t min_size = 64 * 1024);
  void commit(std::size_t written);
  // Copying convenience for tests and fuzzers: prepare + memcpy + commit.
  void feed(std::string_view bytes);

  // The next complete frame or oversize notice; nullopt when more bytes are needed.
  std::optional<FrameEvent> next();

  // True when input stopped inside a frame (a truncated frame at EOF).
  bool mid_frame() const noexcept { return size() > 0 || skip_left_ > 0; }
  std::size_t max_frame() const noexcept { return max_frame_; }

 private:
  std::size_t size() const noexcept { return end_ - begin_; }
  void skip_buffered();

  std::size_t max_frame_;
  std::string buffer_;
  std::size_t begin_ = 0;  // first unread byte
  std::size_t end_ = 0;    // one past the last received byte
  std::uint64_t skip_left_ = 0;
};

// Appends one frame (header + body) to `out`.
void append_frame(std::string& out, std::string_view body);

// Builds a frame in place: the constructor reserves the header, finish() writes the length of
// what was appended since (plus `bytes_after`, a rest of the body that will follow it from
// elsewhere). Lets encoders write the body straight into the output buffer.
class FrameBuilder {
 public:
  explicit FrameBuilder(std::string& out) : out_(out), header_at_(out.size()) {
    out_.append(kFrameHeader, '\0');
  }
  std::string& body() { return out_; }
  void finish(std::size_t bytes_after = 0);

 private:
  std::string& out_;
  std::size_t header_at_;
};

}  // namespace molt::ipc
