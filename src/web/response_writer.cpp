#include "response_writer.hpp"

#include <array>
#include <boost/beast/http/status.hpp>
#include <charconv>
#include <chrono>
#include <cstring>
#include <ctime>
#include <string>

#include "http_date.hpp"

namespace molt::web::detail {
namespace {

// "Date: <IMF-fixdate>\r\n", formatted at most once a second per thread.
std::string_view date_line() {
  thread_local std::time_t cached_second = -1;
  thread_local std::array<char, 64> line{};
  thread_local std::size_t length = 0;
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  if (now != cached_second) {
    const std::string text = "Date: " + http_date(now) + "\r\n";
    length = text.copy(line.data(), line.size());
    cached_second = now;
  }
  return {line.data(), length};
}

bool has_no_body(int status) {
  return status < 200 || status == 204 || status == 304;
}

}  // namespace

std::string_view reason_phrase(int status) {
  const auto text =
      boost::beast::http::obsolete_reason(static_cast<boost::beast::http::status>(status));
  return {text.data(), text.size()};
}

namespace {

char* put(char* p, std::string_view text) {
  std::memcpy(p, text.data(), text.size());
  return p + text.size();
}

// Every fixed piece a head can have, plus room for a status and a length in digits.
constexpr std::size_t kFixedHeadRoom = 160;

// Text without a declared charset would leave the client to guess (and guess Latin-1):
// text/* types say UTF-8 unless the handler named a charset itself.
constexpr std::string_view kCharset = "; charset=utf-8";

bool lacks_charset(std::string_view content_type) {
  return content_type.size() >= 5 && iequals(content_type.substr(0, 5), "text/") &&
         content_type.find("charset") == std::string_view::npos;
}

}  // namespace

// The head is written through a pointer into room sized once, rather than grown piece by
// piece: a dozen appends, each checking capacity, were a visible part of a small answer.
void write_response(std::string& out, const Response& response, const WriteOptions& options) {
  const int status = response.status();
  const bool bodiless = has_no_body(status);
  const std::string_view reason = reason_phrase(status);
  const std::string_view date = date_line();
  const std::string_view content_type = response.content_type();
  std::size_t room =
      kFixedHeadRoom + reason.size() + date.size() + content_type.size() + kCharset.size();
  for (const auto& [name, value] : response.headers()) room += name.size() + value.size() + 4;
  const std::size_t start = out.size();
  out.resize(start + room);
  char* const first = out.data();
  char* p = first + start;

  p = put(p, options.version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ");
  p = std::to_chars(p, p + 12, status).ptr;
  *p++ = ' ';
  p = put(p, reason);
  p = put(p, "\r\n");
  p = put(p, date);
  p = put(p, "X-Content-Type-Options: nosniff\r\n");
  if (!bodiless) {
    if (!content_type.empty()) {
      p = put(p, "Content-Type: ");
      p = put(p, content_type);
      if (!response.content_type_verbatim() && lacks_charset(content_type)) p = put(p, kCharset);
      p = put(p, "\r\n");
    }
    const bool sized_stream = response.streaming() && response.stream_length();
    if (!response.streaming() || sized_stream) {
      p = put(p, "Content-Length: ");
      p = std::to_chars(p, p + 20,
                        sized_stream ? *response.stream_length() : response.body().size())
              .ptr;
      p = put(p, "\r\n");
    } else if (options.version >= 11) {
      p = put(p, "Transfer-Encoding: chunked\r\n");
    }  // HTTP/1.0: the end of the connection ends the body
  }
  for (const auto& [name, value] : response.headers()) {
    p = put(p, name);
    p = put(p, ": ");
    p = put(p, value);
    p = put(p, "\r\n");
  }
  if (!options.keep_alive) {
    p = put(p, "Connection: close\r\n");
  } else if (options.version == 10) {
    p = put(p, "Connection: keep-alive\r\n");
  }
  p = put(p, "\r\n");
  out.resize(static_cast<std::size_t>(p - first));
  if (!bodiless && !options.head_only && !response.streaming()) out += response.body();
}

void append_chunk(std::string& out, std::string_view data) {
  if (data.empty()) return;  // an empty chunk would end the body
  char size[20];
  const auto [end, ec] = std::to_chars(size, size + sizeof(size), data.size(), 16);
  (void)ec;
  out.append(size, end);
  out += "\r\n";
  out += data;
  out += "\r\n";
}

}  // namespace molt::web::detail
