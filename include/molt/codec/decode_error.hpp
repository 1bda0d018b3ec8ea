#pragma once
// A typed decode failure that says where and what: "payload.items[3].score: expected number,
// got string". It is an InvalidInput, so the worker answers it as such.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "molt/core/status.hpp"

namespace molt::codec {

// A position inside the value being decoded: a chain of segments living on the decoder's stack,
// rendered to text only when an error is raised.
struct PathSegment {
  const PathSegment* parent = nullptr;
  std::string_view key;  // a field name (may be empty: a map key ""), unless is_index
  std::size_t index = 0;
  bool is_index = false;

  PathSegment field(std::string_view name) const { return {this, name, 0, false}; }
  PathSegment element(std::size_t i) const { return {this, {}, i, true}; }
  // "body.items[3].score"; a key longer than a few dozen bytes is cut short ("...").
  std::string render() const;
};

inline constexpr PathSegment kRootPath{nullptr, "payload", 0};

// `text` in double quotes for an error message, cut to its first few dozen bytes: a message
// quotes what was sent, but not a megabyte of it.
std::string quoted_excerpt(std::string_view text);

class DecodeError : public core::InvalidInput {
 public:
  DecodeError(const PathSegment& at, std::string_view expected, std::string_view got);
  const std::string& path() const noexcept { return path_; }
  const std::string& expected() const noexcept { return expected_; }
  const std::string& got() const noexcept { return got_; }

 protected:
  // `first`'s parts under another message (DecodeErrors': all of them).
  DecodeError(std::string message, const DecodeError& first);

 private:
  std::string path_, expected_, got_;
};

// Several inputs that do not fit, as one error: its path, expected and got are the first's
// (what a caller that knows only DecodeError reads), its message names them all ("a: ...; b:
// ..."), and all() gives each.
class DecodeErrors : public DecodeError {
 public:
  explicit DecodeErrors(std::vector<DecodeError> all);
  const std::vector<DecodeError>& all() const noexcept { return all_; }

 private:
  std::vector<DecodeError> all_;
};

namespace detail {

// The inputs of one value that do not fit, gathered while it is decoded so that one error
// lists them all (as FastAPI's 422 does) instead of the first alone. At most kMost are kept:
// past that the decoding stops with those, so that a huge array of wrong elements does not
// become a huge error.
class Problems {
 public:
  static constexpr std::size_t kMost = 50;

  // Runs `decode`; what it throws as a DecodeError (or each of a DecodeErrors) is kept.
  // Whether it decoded.
  template <class Decode>
  bool attempt(Decode&& decode) {
    try {
      decode();
      return true;
    } catch (const DecodeErrors& several) {
      for (const DecodeError& each : several.all()) add(each);
    } catch (const DecodeError& one) {
      add(one);
    }
    return false;
  }
  void add(const DecodeError& problem);
  bool empty() const noexcept { return kept_.empty(); }
  // Throws what was kept: one problem as itself, several as DecodeErrors; nothing when none.
  void check();

 private:
  [[noreturn]] void throw_kept();
  std::vector<DecodeError> kept_;
};

}  // namespace detail

}  // namespace molt::codec
