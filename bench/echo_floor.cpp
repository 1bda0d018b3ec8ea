// echo_floor: the floor that worker_load's `echo` mode measures. It reads length-prefixed
// frames from stdin and writes each one back unchanged, doing as little as a frame peer can:
// one large read, then one write for every complete frame that read brought in. Whatever a
// real worker does beyond this (envelopes, dispatch, encoding) shows up as the gap to it.

#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace {

bool write_all(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

std::uint32_t read_le32(const char* p) {
  const auto* b = reinterpret_cast<const unsigned char*>(p);
  return b[0] | (b[1] << 8) | (b[2] << 16) | (static_cast<std::uint32_t>(b[3]) << 24);
}

}  // namespace

int main() {
  std::vector<char> buffer(256 * 1024);
  std::size_t have = 0;
  for (;;) {
    const ssize_t n = ::read(STDIN_FILENO, buffer.data() + have, buffer.size() - have);
    if (n < 0) {
      if (errno == EINTR) continue;
      return 1;
    }
    if (n == 0) return have == 0 ? 0 : 1;  // EOF inside a frame is the peer's error
    have += static_cast<std::size_t>(n);

    // The end of the last complete frame in the buffer.
    std::size_t complete = 0;
    while (have - complete >= 4) {
      const std::size_t length = read_le32(buffer.data() + complete);
      if (have - complete - 4 < length) {
        // A frame larger than the buffer would never complete: make room for it.
        if (complete == 0 && 4 + length > buffer.size()) buffer.resize(4 + length);
        break;
      }
      complete += 4 + length;
    }
    if (complete == 0) continue;
    if (!write_all(STDOUT_FILENO, buffer.data(), complete)) return 1;
    std::memmove(buffer.data(), buffer.data() + complete, have - complete);
    have -= complete;
  }
}
