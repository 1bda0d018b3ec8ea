// A blocking client socket on 127.0.0.1 for the server's tests, with a receive timeout so
// that a test can never hang.
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <string>
#include <string_view>

#include "molt/web/test_client.hpp"

namespace molt::web::testing {

class Client {
 public:
  explicit Client(std::uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval timeout{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  }
  ~Client() { ::close(fd_); }
  bool connected() const { return connected_; }
  int fd() const { return fd_; }
  void send(std::string_view bytes) {
    ASSERT_EQ(::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(bytes.size()));
  }
  // Reads until `answers` complete answers arrived, or the peer closed, or 5 s passed.
  std::string receive(std::size_t answers) {
    std::string data;
    char chunk[65536];
    while (true) {
      try {
        if (molt::web::TestClient::parse_responses(data).size() >= answers) return data;
      } catch (const std::exception&) {
      }
      const ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
      if (n <= 0) return data;
      data.append(chunk, static_cast<std::size_t>(n));
    }
  }
  // Every byte until the peer closes (or 5 s pass): for an answer that the close ends.
  std::string receive_until_closed() {
    std::string data;
    char chunk[65536];
    for (ssize_t n; (n = ::recv(fd_, chunk, sizeof(chunk), 0)) > 0;)
      data.append(chunk, static_cast<std::size_t>(n));
    return data;
  }
  // Reads until the peer ends the connection (or 5 s pass): whether it ended with a reset
  // rather than a clean close, which a body cut short must end with. What came before goes
  // to `data`.
  bool ended_by_reset(std::string& data) {
    char chunk[4096];
    ssize_t n;
    while ((n = ::recv(fd_, chunk, sizeof(chunk), 0)) > 0) data.append(chunk, n);
    return n == -1 && errno == ECONNRESET;
  }
  // Bytes up to the end of an answer's head, for a HEAD answer that has no body to wait for.
  std::string receive_head() {
    std::string data;
    char chunk[4096];
    while (data.find("\r\n\r\n") == std::string::npos) {
      const ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
      if (n <= 0) break;
      data.append(chunk, static_cast<std::size_t>(n));
    }
    return data;
  }
  // True when the server closed the connection (EOF) within the receive timeout.
  bool closed_by_peer() {
    char byte;
    return ::recv(fd_, &byte, 1, 0) == 0;
  }

 private:
  int fd_;
  bool connected_ = false;
};

}  // namespace molt::web::testing
