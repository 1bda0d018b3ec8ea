#include "response_writer.hpp"

#include <array>
#include <boost/beast/http/status.hpp>
#include <charconv>
#include <chrono>
#include <ctime>

namespace molt::web::detail {
namespace {

// "Date: <IMF-fixdate>\r\n", formatted at most once a second per thread.
std::string_view date_line() {
  thread_local std::time_t cached_second = -1;
  thread_local std::array<char, 64> line{};
  thread_local std::size_t length = 0;
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  if (now != cached_second) {
    std::tm utc{};
    gmtime_r(&now, &utc);
    length = std::strftime(line.data(), line.size(), "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &utc);
    cached_second = now;
  }
  return {line.data(), length};
}

void append_number(std::string& out, std::size_t value) {
  char digits[24];
  const auto [end, ec] = std::to_chars(digits, digits + sizeof(digits), value);
  (void)ec;
  out.append(digits, end);
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

void write_response(std::string& out, const Response& response, const WriteOptions& options) {
  const int status = response.status();
  out += options.version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  append_number(out, static_cast<std::size_t>(status));
  out.push_back(' ');
  out += reason_phrase(status);
  out += "\r\n";
  out += date_line();
  out += "X-Content-Type-Options: nosniff\r\n";
  const bool bodiless = has_no_body(status);
  if (!bodiless) {
    if (!response.content_type().empty()) {
      out += "Content-Type: ";
      out += response.content_type();
      out += "\r\n";
    }
    if (!response.streaming()) {
      out += "Content-Length: ";
      append_number(out, response.body().size());
      out += "\r\n";
    } else if (options.version >= 11) {
      out += "Transfer-Encoding: chunked\r\n";
    }  // HTTP/1.0: the end of the connection ends the body
  }
  for (const auto& [name, value] : response.headers()) {
    out += name;
    out += ": ";
    out += value;
    out += "\r\n";
  }
  if (!options.keep_alive) {
    out += "Connection: close\r\n";
  } else if (options.version == 10) {
    out += "Connection: keep-alive\r\n";
  }
  out += "\r\n";
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
