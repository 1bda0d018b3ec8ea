// Where a streamed request body comes from: the connection's socket, or the TestClient's
// input. BodyStream holds what both share (the reader's pieces, `Expect: 100-continue`, the
// errors, and what is left of a body once the handler has answered); each of them says how
// to send the interim answer and how to read more bytes.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <optional>
#include <string_view>

#include "request_reader.hpp"

namespace molt::web::detail {

// What is left of a streamed body when the handler has answered is read and dropped up to
// this much (a Content-Length remainder), so that the connection can go on; past it, the
// connection closes after the answer (as Go's net/http does, with 256 KiB).
inline constexpr std::uint64_t kMaxDrainBytes = 64 * 1024;

// What RequestBody pulls from.
class BodySource {
 public:
  // The next piece (valid until the next call), std::nullopt at the end; throws HttpError
  // for a body over its limit, malformed or cut short.
  virtual boost::asio::awaitable<std::optional<std::string_view>> next_piece() = 0;

 protected:
  ~BodySource() = default;
};

class BodyStream : public BodySource {
 public:
  explicit BodyStream(RequestReader& reader) : reader_(reader) {}

  // A new streamed request (the reader's current one).
  void begin() {
    continue_owed_ = reader_.expects_continue();
    ended_ = false;
    over_ = false;
    draining_ = false;
  }

  boost::asio::awaitable<std::optional<std::string_view>> next_piece() final;
  // Whether next_piece() has reached the end of the body.
  bool ended() const { return ended_; }
  // Whether settle() has run: what is left is no longer the handler's.
  bool settled() const { return over_; }

  // What is left of the body once the handler has answered.
  enum class Rest {
    None,       // the body is over: the connection can take another request
    Little,     // a Content-Length remainder of at most `max_drain` bytes, for drain()
    Abandoned,  // a large or endless remainder, a body in error, or one the client was told
                // to wait for with `Expect: 100-continue` and never asked for: close after
                // the answer
  };
  // Once the handler has answered (later reads throw std::logic_error, so that a streamed
  // answer's producer cannot read a body that was skipped or abandoned): drops what of the
  // body is already buffered, and says what is left. Never waits for the client: the answer
  // goes out first, so that a client that paused its upload to wait for it gets it.
  Rest settle(std::uint64_t max_drain);
  // Reads and drops a Little rest, after the answer. False when it did not come (the
  // connection then closes).
  boost::asio::awaitable<bool> drain();

 protected:
  // Sends `100 Continue`; throws if it cannot.
  virtual boost::asio::awaitable<void> send_continue() = 0;
  // Reads more bytes into the reader (body_read_space()/commit()); false at the end of the
  // input. Throws for a read that failed or was cancelled.
  virtual boost::asio::awaitable<bool> receive() = 0;
  // The handler has read the body to its end (not called when settle() skips the rest).
  virtual void on_end() {}

  ~BodyStream() = default;
  RequestReader& reader() { return reader_; }

 private:
  RequestReader& reader_;
  bool continue_owed_ = false;
  bool ended_ = false;
  bool over_ = false;      // settle() has run: the body is no longer the handler's to read
  bool draining_ = false;  // drain() reads the rest
};

}  // namespace molt::web::detail
