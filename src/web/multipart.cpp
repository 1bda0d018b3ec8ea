#include "molt/web/multipart.hpp"

#include <algorithm>
#include <stdexcept>
#include <utility>
#include <vector>

#include "form_detail.hpp"
#include "molt/codec/utf8.hpp"
#include "molt/web/app.hpp"

namespace molt::web {

namespace {

using detail::form_malformed;

// RFC 5987's `charset'language'%-encoded` (filename*=UTF-8''r%C3%A9sum%C3%A9.pdf): the text.
std::string extended_value(std::string_view text) {
  const std::size_t first = text.find('\'');
  const std::size_t second = first == std::string_view::npos ? first : text.find('\'', first + 1);
  if (second == std::string_view::npos) return std::string(text);
  return detail::percent_decoded(text.substr(second + 1), false);
}

// The parameters of a header value after its first token: `form-data; name="a"; filename=b`.
// Quoted values may hold ';' and backslash escapes.
std::vector<std::pair<std::string, std::string>> header_parameters(std::string_view value) {
  std::vector<std::pair<std::string, std::string>> out;
  std::size_t i = value.find(';');
  while (i != std::string_view::npos && i < value.size()) {
    ++i;  // past ';'
    while (i < value.size() && (value[i] == ' ' || value[i] == '\t')) ++i;
    const std::size_t eq = value.find_first_of("=;", i);
    if (eq == std::string_view::npos) break;
    if (value[eq] == ';') {  // a parameter without a value: skipped
      i = eq;
      continue;
    }
    std::string name(trim_ows(value.substr(i, eq - i)));
    std::string text;
    i = eq + 1;
    while (i < value.size() && (value[i] == ' ' || value[i] == '\t')) ++i;
    if (i < value.size() && value[i] == '"') {
      // Browsers and curl send a backslash as it is (they escape '"' as %22): only \" and
      // \\ are escapes, as python-multipart reads them ("C:\dir\a.txt" stays whole), and a
      // \" with no quote after it is a backslash that ends the name ("dir\").
      for (++i; i < value.size() && value[i] != '"'; ++i) {
        const bool escape =
            value[i] == '\\' && i + 1 < value.size() &&
            (value[i + 1] == '\\' ||
             (value[i + 1] == '"' && value.find('"', i + 2) != std::string_view::npos));
        if (escape) ++i;
        text += value[i];
      }
      if (i >= value.size()) form_malformed("a quoted parameter does not end");
      i = value.find(';', i);
    } else {
      const std::size_t end = value.find(';', i);
      text = std::string(trim_ows(value.substr(i, end == std::string_view::npos ? end : end - i)));
      i = end;
    }
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out.emplace_back(std::move(name), std::move(text));
  }
  return out;
}

// One part's head: its Content-Disposition (name, filename) and Content-Type.
FormPart part_head(std::string_view head) {
  FormPart part;
  bool disposition = false;
  while (!head.empty()) {
    const std::size_t end = head.find("\r\n");
    const std::string_view line = head.substr(0, end);
    head = end == std::string_view::npos ? std::string_view() : head.substr(end + 2);
    // A lone CR or LF (or another control byte) would pass into a header the handler may
    // answer with (a file's Content-Type).
    if (std::any_of(line.begin(), line.end(), [](char c) {
          return (static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7F;
        }))
      form_malformed("a part's header holds a control character");
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) form_malformed("a part's header line has no ':'");
    const std::string_view name = trim_ows(line.substr(0, colon));
    const std::string_view value = trim_ows(line.substr(colon + 1));
    if (iequals(name, "Content-Disposition")) {
      if (!iequals(detail::media_type(value), "form-data"))
        form_malformed("a part is not form-data");
      disposition = true;
      std::optional<std::string> extended;
      bool named = false;
      for (auto& [key, text] : header_parameters(value)) {
        if (key == "name") {
          part.name = std::move(text);
          named = true;
        }
        if (key == "filename") part.filename = std::move(text);
        if (key == "filename*") extended = std::move(text);
      }
      if (!named) form_malformed("a part has no name");
      if (extended) part.filename = extended_value(*extended);  // RFC 5987: it wins
    } else if (iequals(name, "Content-Type")) {
      part.content_type = std::string(value);
    } else if (iequals(name, "Content-Transfer-Encoding")) {
      // RFC 7578 §4.7: not to be used; a part in base64 would be read as its encoding.
      if (!iequals(value, "binary") && !iequals(value, "8bit") && !iequals(value, "7bit"))
        form_malformed("a part's Content-Transfer-Encoding " + std::string(value) + " is not read");
    }
  }
  if (!disposition) form_malformed("a part has no Content-Disposition");
  if (!codec::is_valid_utf8(part.name)) form_malformed("a field's name is not UTF-8 text");
  if (part.filename && !codec::is_valid_utf8(*part.filename))
    part.filename = codec::replace_invalid_utf8(*part.filename);
  return part;
}

// How many of the last bytes of `text` begin `delimiter` (fewer than all of it).
std::size_t delimiter_prefix_at_end(std::string_view text, std::string_view delimiter) {
  for (std::size_t n = std::min(text.size(), delimiter.size() - 1); n > 0; --n)
    if (text.substr(text.size() - n) == delimiter.substr(0, n)) return n;
  return 0;
}

}  // namespace

MultipartParser::MultipartParser(std::string_view content_type) {
  std::string boundary;
  for (auto& [key, text] : header_parameters(content_type))
    if (key == "boundary") boundary = std::move(text);
  if (boundary.empty() || boundary.size() > 70)
    form_malformed("multipart/form-data needs a boundary of 1 to 70 characters");
  delimiter_ = "\r\n--" + boundary;
}

MultipartParser::Event MultipartParser::next() {
  if (wants_input_) throw std::logic_error("MultipartParser::next() before feed() or finish()");
  data_ = {};
  while (true) {
    const Event event = step();
    if (event != Event::NeedInput) return event;
    if (!refill()) return Event::NeedInput;
  }
}

// The next event from the window; NeedInput when the window is read as far as it can be.
MultipartParser::Event MultipartParser::step() {
  while (true) {
    const std::string_view rest = this->rest();
    switch (state_) {
      case State::Preamble: {
        // The first delimiter opens the body ("--B" at its start) or ends a preamble line.
        if (body_start_) {
          const std::string_view opening = std::string_view(delimiter_).substr(2);
          if (rest.size() < opening.size() && opening.starts_with(rest) && !finished_)
            return Event::NeedInput;
          body_start_ = false;
          if (rest.starts_with(opening)) {
            at_ += opening.size();
            state_ = State::BoundaryLine;
            continue;
          }
        }
        const std::size_t found = rest.find(delimiter_);
        if (found != std::string_view::npos) {
          at_ += found + delimiter_.size();
          state_ = State::BoundaryLine;
          continue;
        }
        if (finished_) form_malformed("no part begins (the boundary is not in the body)");
        at_ += rest.size() - delimiter_prefix_at_end(rest, delimiter_);  // the preamble: dropped
        return Event::NeedInput;
      }
      case State::BoundaryLine: {
        // After a delimiter: "--" ends the body; otherwise blanks, then the line's CRLF.
        if (!blanks_ && rest.size() < 2 && !finished_) return Event::NeedInput;
        if (!blanks_ && rest.starts_with("--")) {
          state_ = State::Done;  // an epilogue may follow: not read
          continue;
        }
        std::size_t blanks = 0;
        while (blanks < rest.size() && (rest[blanks] == ' ' || rest[blanks] == '\t')) ++blanks;
        at_ += blanks;
        blanks_ = blanks_ || blanks > 0;
        const std::string_view line_end = rest.substr(blanks);
        if (line_end.size() < 2 && std::string_view("\r\n").starts_with(line_end) && !finished_)
          return Event::NeedInput;
        if (!line_end.starts_with("\r\n"))
          form_malformed("a boundary line does not end where it should");
        at_ += 2;
        blanks_ = false;
        searched_ = 0;
        state_ = State::Head;
        continue;
      }
      case State::Head: {
        // Header lines up to a blank line.
        if (rest.size() < 2 && !finished_) return Event::NeedInput;
        if (rest.starts_with("\r\n")) form_malformed("a part has no Content-Disposition");
        const std::size_t end = rest.find("\r\n\r\n", searched_ < 3 ? 0 : searched_ - 3);
        if (end == std::string_view::npos && rest.size() <= kMaxPartHead + 3 && !finished_) {
          searched_ = rest.size();
          return Event::NeedInput;
        }
        if (end == std::string_view::npos || end > kMaxPartHead)
          form_malformed("a part's head does not end (or passes 16 KiB)");
        part_ = part_head(rest.substr(0, end));
        at_ += end + 4;
        state_ = State::Content;
        return Event::Part;
      }
      case State::Content: {
        const std::size_t found = rest.find(delimiter_);
        if (found == 0) {
          at_ += delimiter_.size();
          state_ = State::BoundaryLine;
          return Event::PartEnd;
        }
        // Up to the delimiter, or up to a tail that may begin one.
        const std::size_t end = found != std::string_view::npos
                                    ? found
                                    : rest.size() - delimiter_prefix_at_end(rest, delimiter_);
        if (end == 0) {
          if (finished_) form_malformed("the body ends inside a part");
          return Event::NeedInput;
        }
        data_ = rest.substr(0, end);
        at_ += end;
        return Event::Data;
      }
      case State::Done:
        return Event::Done;
    }
  }
}

bool MultipartParser::refill() {
  // What is left unread moves to carry_: the input it points into may be gone by the time
  // more comes.
  const std::string_view rest = this->rest();
  if (rest.empty())
    carry_.clear();
  else if (window_in_carry_)
    carry_.erase(0, at_);
  else
    carry_.assign(rest);
  window_ = {};
  at_ = 0;
  if (pending_.empty()) {
    wants_input_ = true;
    return false;
  }
  take(std::exchange(pending_, {}));
  return true;
}

void MultipartParser::take(std::string_view input) {
  at_ = 0;
  window_in_carry_ = !carry_.empty();
  if (!window_in_carry_) {
    window_ = input;
    return;
  }
  // Only as much of the input as tells what the carried bytes are (a delimiter or not, a
  // part's head): the rest is read in place, and carry_ stays small.
  const std::size_t room = state_ == State::Head ? kMaxPartHead + 4 : 2 * delimiter_.size();
  const std::size_t taken =
      std::min(input.size(), carry_.size() < room ? room - carry_.size() : std::size_t{1});
  carry_.append(input.substr(0, taken));
  pending_ = input.substr(taken);
  window_ = carry_;
}

void MultipartParser::feed(std::string_view input) {
  if (!wants_input_) throw std::logic_error("MultipartParser: input it did not ask for");
  wants_input_ = false;
  take(input);
}

void MultipartParser::finish() {
  feed({});
  finished_ = true;
}

MultipartReader::MultipartReader(const Request& request, RequestBody& body)
    : parser_([&request] {
        const std::string_view type = request.header("Content-Type").value_or(std::string_view());
        if (!iequals(detail::media_type(type), "multipart/form-data"))
          throw HttpError(415, "unsupported_media_type", "send multipart/form-data");
        return type;
      }()),
      body_(body) {}

boost::asio::awaitable<MultipartParser::Event> MultipartReader::pull() {
  if (held_) {
    const MultipartParser::Event event = *held_;
    held_.reset();
    co_return event;
  }
  if (failed_) std::rethrow_exception(failed_);
  while (true) {
    const MultipartParser::Event event = parser_.next();
    if (event != MultipartParser::Event::NeedInput) co_return event;
    std::optional<std::string_view> piece;
    try {
      piece = co_await body_.next();
    } catch (...) {
      failed_ = std::current_exception();  // a handler that catches it and reads on meets it again
      throw;
    }
    if (piece)
      parser_.feed(*piece);
    else
      parser_.finish();
  }
}

boost::asio::awaitable<std::optional<FormPart>> MultipartReader::next_part() {
  using Event = MultipartParser::Event;
  while (!done_) {
    const Event event = co_await pull();
    if (event == Event::Done) done_ = true;
    if (event != Event::Part) continue;  // the rest of the part before, unread
    if (++parts_ > kMaxParts)
      detail::form_malformed("more than " + std::to_string(kMaxParts) + " fields");
    const FormPart& part = parser_.part();
    if (part.filename && part.filename->empty()) {
      // A file input left empty: browsers send a part with no filename and no bytes.
      const Event first = co_await pull();
      if (first == Event::PartEnd) continue;
      held_ = first;
    }
    in_part_ = true;
    co_return part;
  }
  in_part_ = false;
  co_return std::nullopt;
}

boost::asio::awaitable<std::optional<std::string_view>> MultipartReader::read() {
  if (!in_part_) co_return std::nullopt;
  const MultipartParser::Event event = co_await pull();
  if (event == MultipartParser::Event::Data) co_return parser_.data();
  in_part_ = false;  // PartEnd: a part's events are its Data, then its end
  co_return std::nullopt;
}

boost::asio::awaitable<std::string> MultipartReader::text(std::size_t max_bytes) {
  const std::string name = in_part_ ? parser_.part().name : std::string();
  std::string out;
  while (auto piece = co_await read()) {
    if (piece->size() > max_bytes - out.size())
      throw HttpError(413, "payload_too_large",
                      "the form's field '" + codec::replace_invalid_utf8(name) + "' passes " +
                          std::to_string(max_bytes) + " bytes");
    out.append(*piece);
  }
  if (!codec::is_valid_utf8(out))
    detail::form_malformed("field '" + codec::replace_invalid_utf8(name) + "' is not UTF-8 text");
  co_return out;
}

}  // namespace molt::web
