#pragma once
// The one status vocabulary shared by the worker protocol, the database layer and the web
// framework. The names are the wire names of DESIGN.md §4.

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace molt::core {

enum class StatusCode { Ok, InvalidInput, Busy, Timeout, Cancelled, InternalError };

std::string_view to_string(StatusCode code) noexcept;
std::optional<StatusCode> parse_status_code(std::string_view name) noexcept;

// Error text made fit for one log line: each run of line breaks, tabs and other control
// characters becomes one space, and none is left at either end (libpq's messages carry
// "\n\t" inside and a newline at the end).
std::string one_line(std::string_view text);

struct Status {
  StatusCode code = StatusCode::Ok;
  std::string message;

  bool ok() const noexcept { return code == StatusCode::Ok; }
  static Status success() { return {}; }
};

// Thrown to stop work with a specific status. Anything else a handler throws is reported as
// InternalError with a safe, generic message.
class Error : public std::runtime_error {
 public:
  Error(StatusCode code, std::string message)
      : std::runtime_error(message), code_(code), message_(std::move(message)) {}
  StatusCode code() const noexcept { return code_; }
  // All of it: what() ends at a NUL byte, which a message quoting the input may hold.
  const std::string& message() const noexcept { return message_; }
  Status status() const { return {code_, message_}; }

 private:
  StatusCode code_;
  std::string message_;
};

class InvalidInput : public Error {
 public:
  explicit InvalidInput(std::string message)
      : Error(StatusCode::InvalidInput, std::move(message)) {}
};

// A statement the database refused (its syntax, a constraint, a type). InvalidInput for a
// caller that wrote the SQL (molt-worker's db_query); but when a server's own handler wrote
// it, the fault is the server's, and molt::web answers 500 and logs the database's text
// rather than show it to the client.
class SqlError : public InvalidInput {
 public:
  using InvalidInput::InvalidInput;
};

}  // namespace molt::core
