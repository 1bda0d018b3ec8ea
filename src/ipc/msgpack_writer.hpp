#pragma once
// Writes MsgPack into a std::string through a raw pointer, into room reserved up front. The
// envelopes are small and frequent: appending a dozen pieces one by one through msgpack-cxx's
// packer cost more than everything else in answering a __ping__.

#include <bit>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace molt::ipc::detail {

class MsgPackWriter {
 public:
  // Room for the largest encoding of each kind of value.
  static constexpr std::size_t kNumberSize = 9;
  static constexpr std::size_t kHeaderSize = 5;

  // `max_size` must bound everything written before finish().
  MsgPackWriter(std::string& out, std::size_t max_size) : out_(out) {
    const std::size_t at = out.size();
    out.resize(at + max_size);
    p_ = out.data() + at;
  }
  // Trims the string to what was written.
  void finish() { out_.resize(static_cast<std::size_t>(p_ - out_.data())); }

  void map(std::uint32_t pairs) { header(pairs, 0x80, 16, 0xde); }
  void str(std::string_view s) {
    if (s.size() < 32) {
      *p_++ = static_cast<char>(0xa0 | s.size());
    } else if (s.size() < 256) {
      *p_++ = static_cast<char>(0xd9);
      *p_++ = static_cast<char>(s.size());
    } else {
      sized(s.size(), 0xda);
    }
    bytes(s);
  }
  // The header of a bin whose bytes the caller appends after finish().
  void bin_header(std::size_t size) {
    if (size < 256) {
      *p_++ = static_cast<char>(0xc4);
      *p_++ = static_cast<char>(size);
    } else {
      sized(size, 0xc5);
    }
  }
  void uint(std::uint64_t v) {
    if (v < 128) {
      *p_++ = static_cast<char>(v);
    } else if (v < 256) {
      *p_++ = static_cast<char>(0xcc);
      *p_++ = static_cast<char>(v);
    } else if (v < 65536) {
      *p_++ = static_cast<char>(0xcd);
      be(v, 2);
    } else if (v <= 0xffffffffu) {
      *p_++ = static_cast<char>(0xce);
      be(v, 4);
    } else {
      *p_++ = static_cast<char>(0xcf);
      be(v, 8);
    }
  }
  void sint(std::int64_t v) {
    if (v >= 0) return uint(static_cast<std::uint64_t>(v));
    if (v >= -32) {
      *p_++ = static_cast<char>(v);
    } else {
      *p_++ = static_cast<char>(0xd3);
      be(static_cast<std::uint64_t>(v), 8);
    }
  }
  void float64(double v) {
    *p_++ = static_cast<char>(0xcb);
    be(std::bit_cast<std::uint64_t>(v), 8);
  }
 private:
  void bytes(std::string_view b) {
    std::memcpy(p_, b.data(), b.size());
    p_ += b.size();
  }
  void be(std::uint64_t v, int size) {
    for (int i = size - 1; i >= 0; --i) *p_++ = static_cast<char>((v >> (8 * i)) & 0xff);
  }
  // 16-bit length after `marker`, or 32-bit after `marker + 1`.
  void sized(std::size_t n, unsigned char marker) {
    if (n < 65536) {
      *p_++ = static_cast<char>(marker);
      be(n, 2);
    } else {
      *p_++ = static_cast<char>(marker + 1);
      be(n, 4);
    }
  }
  void header(std::uint32_t n, unsigned char fix, std::uint32_t fix_limit, unsigned char marker) {
    if (n < fix_limit)
      *p_++ = static_cast<char>(fix | n);
    else
      sized(n, marker);
  }

  std::string& out_;
  char* p_;
};

}  // namespace molt::ipc::detail
