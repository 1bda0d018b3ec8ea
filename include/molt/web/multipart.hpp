// multipart/form-data read as it arrives, for uploads larger than memory should hold
// (Starlette's request.stream() with python-multipart, FastAPI's UploadFile without the spool):
//
//   app.post("/upload", [](const Request& request, Ctx& ctx) -> awaitable<Response> {
//     molt::web::MultipartReader parts(request, ctx.body());       // 415 if not multipart
//     while (auto part = co_await parts.next_part()) {             // the part's head
//       if (!part->is_file()) {
//         const std::string text = co_await parts.text();          // a text field, UTF-8
//         continue;
//       }
//       while (auto piece = co_await parts.read()) store(*piece);  // its bytes, piece by piece
//     }
//     co_return Response::text("stored");
//   }, "upload", {.max_body_bytes = 1 << 30, .stream_body = true});
//
// On a route with stream_body the body is read from the socket as the handler reads the parts
// (backpressure as ctx.body() has it); on another route it reads the body already in memory.
// A malformed body is a 400 invalid_form, thrown where the reader meets it, so a handler may
// already have read the parts before it. MultipartParser underneath is the same reader without
// I/O: bytes in, events out; Form::parse uses it for whole bodies.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <cstddef>
#include <exception>
#include <optional>
#include <string>
#include <string_view>

#include "molt/web/body.hpp"
#include "molt/web/message.hpp"

namespace molt::web {

// A part's head.
struct FormPart {
  std::string name;
  std::optional<std::string> filename;  // set for a file: the client's word, never a path
  std::string content_type;             // as the part said ("" when it said nothing)

  bool is_file() const { return filename.has_value(); }
};

// RFC 7578 / RFC 2046 §5.1, incrementally: parts between `--boundary` lines, the last one
// `--boundary--`, a preamble and an epilogue ignored. Call next() and act on its event:
//   NeedInput: call feed() with the next bytes, or finish() when there are no more;
//   Part:      part() is the next part's head;
//   Data:      data() is the next piece of the part's bytes;
//   PartEnd:   the part has ended;
//   Done:      the last part has ended (and next() says Done ever after).
// Bytes given to feed() must stay valid until next() asks for input again; data() until the
// next call to next(); a piece of data is no larger than the input it came in (or than twice
// the delimiter, when that is larger), and read in place where it can be. The parser
// keeps little: the head of a part (at most 16 KiB) and a tail of up to a boundary's length
// that may begin the next delimiter. A malformed body throws
// HttpError 400 invalid_form from next(); the parser is then spent.
class MultipartParser {
 public:
  static constexpr std::size_t kMaxPartHead = 16 * 1024;

  enum class Event { NeedInput, Part, Data, PartEnd, Done };

  // The boundary from a request's Content-Type (`multipart/form-data; boundary=...`): 400
  // invalid_form without one of 1 to 70 characters.
  explicit MultipartParser(std::string_view content_type);

  Event next();
  void feed(std::string_view input);
  void finish();

  const FormPart& part() const { return part_; }
  std::string_view data() const { return data_; }

 private:
  enum class State { Preamble, BoundaryLine, Head, Content, Done };

  std::string_view rest() const { return window_.substr(at_); }
  Event step();
  // Keeps what is unread, and reads on into what is left of the input; false when the input
  // is used up.
  bool refill();
  void take(std::string_view input);

  std::string delimiter_;  // "\r\n--" + boundary
  State state_ = State::Preamble;
  std::string carry_;         // what a previous input left unread
  std::string_view window_;   // what is being read: the input, or carry_ with a little of it
  std::string_view pending_;  // the input not yet in the window
  bool window_in_carry_ = false;
  std::size_t at_ = 0;        // how much of window_ is read
  std::size_t searched_ = 0;  // Head: how much of rest() holds no blank line
  bool body_start_ = true;    // Preamble: rest() begins the body
  bool blanks_ = false;       // BoundaryLine: blanks after the delimiter were read
  bool wants_input_ = false;
  bool finished_ = false;
  FormPart part_;
  std::string_view data_;
};

// The parts of a request's multipart/form-data body, read from `body` (ctx.body()) as the
// handler asks. The reader and the views it gives live within the handler; a piece from
// read() stays valid until the next call to read(), text() or next_part().
class MultipartReader {
 public:
  // At most this many parts (Starlette's max_fields; Form::kMaxFields is the same).
  static constexpr std::size_t kMaxParts = 1000;

  // 415 unless the request's Content-Type is multipart/form-data; 400 without a boundary.
  MultipartReader(const Request& request, RequestBody& body);

  // The next part's head, the rest of the current part skipped; std::nullopt after the last.
  // A file input left empty (no filename, no bytes) is no part, as Form reads it (but counts
  // toward kMaxParts).
  boost::asio::awaitable<std::optional<FormPart>> next_part();
  // The current part's next piece of bytes; std::nullopt at its end (and before a part).
  boost::asio::awaitable<std::optional<std::string_view>> read();
  // The rest of the current part as text: 400 invalid_form unless it is UTF-8, 413 past
  // `max_bytes` (Starlette's max_part_size, 1 MiB).
  boost::asio::awaitable<std::string> text(std::size_t max_bytes = 1 << 20);

 private:
  boost::asio::awaitable<MultipartParser::Event> pull();

  MultipartParser parser_;
  RequestBody& body_;
  std::optional<MultipartParser::Event> held_;  // an event pulled ahead of its time
  std::exception_ptr failed_;  // the body's error, thrown again by every later call
  std::size_t parts_ = 0;
  bool in_part_ = false;
  bool done_ = false;
};

}  // namespace molt::web
