// Beast's HTTP/1.1 request parser, fed from the connection's own buffer, filling a
// molt::web::Request without copying the header: the views it hands out point into that
// buffer, and RequestReader moves them along whenever it moves the bytes.
#pragma once

#include <array>
#include <boost/asio/buffer.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <utility>

#include "molt/web/app.hpp"
#include "molt/web/message.hpp"

namespace molt::web::detail {

// `Expect: 100-continue` on an HTTP/1.1 request: its client waits to be asked for the body.
inline bool expects_continue(const Request& request) {
  const auto expect = request.header("Expect");
  return expect && iequals(*expect, "100-continue") && request.version() >= 11;
}

// A host as the Host header or an absolute-form target may name it: `uri-host [":" port]`
// (RFC 3986 §3.2.2). Only its characters are checked: a reg-name, an IP literal in brackets,
// digits and colons; no user info (`@`), path, space or control character (RFC 9110 §4.2.4
// has user info treated as an error), which a gateway would otherwise pass on.
inline bool valid_host_text(std::string_view host) {
  static constexpr auto kHostByte = [] {
    std::array<bool, 256> allowed{};
    for (int c = 0; c < 256; ++c)
      allowed[c] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    for (const char c : std::string_view("-._~%!$&'()*+,;=:[]"))
      allowed[static_cast<unsigned char>(c)] = true;
    return allowed;
  }();
  for (const char c : host)
    if (!kHostByte[static_cast<unsigned char>(c)]) return false;
  return true;
}

class RequestParser : public boost::beast::http::basic_parser<true> {
 public:
  // With `app`, the body limit is the matched route's (RouteOptions::max_body_bytes): the
  // parser starts with the largest any route allows (Beast checks a Content-Length against it
  // before the header callback), and narrows it to the route's once the header is read. The
  // route also says whether its handler streams the body (RouteOptions::stream_body): then
  // the body's bytes are not collected but handed out one put() at a time (take_piece()).
  RequestParser(Request& request, std::uint32_t max_header_bytes, std::size_t max_headers,
                std::uint64_t max_body_bytes, const App* app = nullptr)
      : request_(request),
        max_header_bytes_(max_header_bytes),
        max_headers_(max_headers),
        max_body_bytes_(max_body_bytes),
        app_(app),
        route_options_(app != nullptr && app->has_route_body_options()) {
    header_limit(max_header_bytes);
    limit_body(route_options_ ? app_->body_limit_ceiling(max_body_bytes) : max_body_bytes);
    eager(true);  // parse the body along with the header when it is already buffered
  }

  // The most body bytes the request may have, for the 413 to say.
  std::uint64_t body_bytes_allowed() const { return body_bytes_allowed_; }
  // True when a header set a limit that was crossed (431 rather than 400).
  bool too_many_headers() const { return too_many_headers_; }
  // True when the request is framed by a transfer coding we do not decode (501).
  bool unsupported_coding() const { return unsupported_coding_; }
  // The request had no Host (HTTP/1.1) or more than one.
  bool bad_host() const { return bad_host_; }
  // The Host header, or the authority of an absolute-form target, is not a host.
  bool invalid_host() const { return invalid_host_; }
  // True when the route streams the body: it is left for take_piece(), put() by put().
  bool streams_body() const { return stream_; }
  // The body bytes the last put() gave (a view into its input), and forgets them.
  std::string_view take_piece() { return std::exchange(piece_, {}); }
  // A chunk's extensions or the trailer section were longer than the header may be.
  bool chunk_line_too_large() const { return chunk_line_too_large_; }
  // The request folded a header value over lines (obs-fold): refused (RFC 9112 §5.2).
  bool folded_header() const { return folded_header_; }
  // An HTTP/1.0 request with Transfer-Encoding: its framing cannot be trusted (§6.1).
  bool old_version_coding() const { return old_version_coding_; }

  // put(), remembering the input: the views the header hands out must lie inside it.
  std::size_t feed(std::string_view input, boost::beast::error_code& ec) {
    input_ = input;
    if (may_be_short_last_chunk(input)) {
      ec = boost::beast::http::error::need_more;
      return 0;
    }
    return put(boost::asio::const_buffer(input.data(), input.size()), ec);
  }

 private:
  void limit_body(std::uint64_t bytes) {
    body_limit(bytes);
    body_bytes_allowed_ = bytes;
  }
  std::uint64_t body_bytes_allowed_ = 0;
  using error_code = boost::beast::error_code;
  using string_view = boost::beast::string_view;

  // Beast's chunk parser, once it has seen the last chunk's size line but not the end of the
  // trailer, parses that line again on the next put() and asserts (without assertions, reads
  // past) that it has at least 5 bytes (found by fuzz_http). A whole last chunk is longer, so
  // such a piece is held back until more comes. Only a piece between chunks whose size starts
  // with 0 is held: a short piece of chunk data, or of another chunk's size line, goes on at
  // once, so that a client waiting for an answer to its small chunk is not kept waiting.
  bool may_be_short_last_chunk(std::string_view input) const {
    if (!chunked() || !is_header_done() || is_done() || chunk_left_ > 0 || input.size() >= 5)
      return false;
    const auto size_at = input.find_first_not_of("\r\n");
    return size_at == std::string_view::npos || input[size_at] == '0';
  }

  void on_request_impl(boost::beast::http::verb, string_view method, string_view target,
                       int version, error_code& ec) override {
    // A request target has no fragment (RFC 9112 §3.2): a `#` would become part of the path
    // or of the last query value.
    if (target.find('#') != string_view::npos) {
      ec = boost::beast::http::error::bad_target;
      return;
    }
    request_.set_start_line({method.data(), method.size()}, {target.data(), target.size()},
                            version);
    // An http URI must name a host (RFC 9110 §4.2.1); the absolute form's is the request's.
    if (request_.absolute_form() &&
        (request_.host().empty() || !valid_host_text(request_.host()))) {
      invalid_host_ = true;
      ec = boost::beast::http::error::bad_target;
    }
  }

  void on_response_impl(int, string_view, int, error_code&) override {}

  void on_field_impl(boost::beast::http::field field, string_view name, string_view value,
                     error_code& ec) override {
    // Trailer fields (after a chunked body) are not headers: a trailer must not change the
    // Host, the Content-Type or anything a handler or middleware already read. Dropped, but
    // held to the header's size limit.
    if (is_header_done()) {
      trailer_bytes_ += name.size() + value.size() + 4;
      if (trailer_bytes_ > max_header_bytes_) {
        chunk_line_too_large_ = true;
        ec = boost::beast::http::error::header_limit;
      }
      return;
    }
    // Folding is obsolete, and a proxy in front may read a folded Transfer-Encoding or
    // Content-Length otherwise: 400 (RFC 9112 §5.2).
    if (is_folded(value)) {
      folded_header_ = true;
      ec = boost::beast::http::error::bad_field;
      return;
    }
    // One Content-Length, one value: a repeat, even of the same length, is refused as a
    // framing a proxy may read differently (Beast accepts `2, 2` and a repeated `2`).
    if (field == boost::beast::http::field::content_length &&
        (++length_fields_ > 1 || value.find(',') != string_view::npos)) {
      ec = boost::beast::http::error::bad_content_length;
      return;
    }
    if (request_.headers().size() == max_headers_) {
      too_many_headers_ = true;
      ec = boost::beast::http::error::header_limit;
      return;
    }
    if (field == boost::beast::http::field::host) {
      ++host_fields_;
      if (!valid_host_text({value.data(), value.size()})) {
        invalid_host_ = true;
        ec = boost::beast::http::error::bad_field;
        return;
      }
    }
    request_.add_header({name.data(), name.size()}, {value.data(), value.size()});
  }

  // Whether Beast joined `value` over lines. It joins a fold in a buffer of its own (gone once
  // put() returns, so the request could not keep it), except when the first line is empty:
  // then the value is the continuation line's text, in the input, but after a line break and
  // not after the field's colon. An empty value pointing into the input is judged the same
  // way (a continuation of blanks only, `Host:\r\n \r\n`, is a fold too).
  bool is_folded(string_view value) const {
    const char* first = input_.data();
    const char* at = value.data();
    const bool inside = at != nullptr && at >= first && at + value.size() <= first + input_.size();
    if (!inside) return !value.empty();
    while (at > first && (at[-1] == ' ' || at[-1] == '\t')) --at;
    return at == first || at[-1] != ':';
  }

  // Only `chunked` is decoded. A request whose last coding is not chunked cannot be framed
  // (RFC 9112 §6.3: 400); chunked under another coding (gzip, ...) is not supported (501).
  void on_header_impl(error_code& ec) override {
    // RFC 9112 §3.2: an HTTP/1.1 request names exactly one Host; none or several is a 400.
    if (host_fields_ > 1 || (host_fields_ == 0 && request_.version() >= 11)) {
      bad_host_ = true;
      ec = boost::beast::http::error::bad_field;
      return;
    }
    // Only a request with a body needs its route's rule (and pays for the lookup): one whose
    // route has body options, or one whose client waits for `100 Continue` before sending it.
    const bool has_body = chunked() || content_length().value_or(0) > 0;
    const bool waits_for_continue = has_body && expects_continue(request_);
    if (app_ != nullptr && has_body && (route_options_ || waits_for_continue)) {
      // Chunked bodies are held to body_limit() chunk by chunk; a declared Content-Length
      // was only checked against the ceiling, so check it against the route's here.
      const App::BodyRule rule = app_->body_rule_for(request_, max_body_bytes_);
      limit_body(rule.limit);
      // A body no route takes is never read (404, 405): left as a stream nobody asks for,
      // a waiting client is not told to send it, and gets its answer at once.
      stream_ = rule.stream || (!rule.routed && waits_for_continue);
      if (const auto length = content_length(); length && *length > rule.limit) {
        ec = boost::beast::http::error::body_limit;
        return;
      }
    }
    const auto coding = request_.header("Transfer-Encoding");
    if (!coding) return;
    if (request_.version() < 11) {
      old_version_coding_ = true;
      ec = boost::beast::http::error::bad_transfer_encoding;
      return;
    }
    std::string_view value = *coding;
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    if (iequals(value, "chunked")) return;
    const bool ends_chunked =
        value.size() > 7 && iequals(value.substr(value.size() - 7), "chunked");
    unsupported_coding_ = ends_chunked;
    ec = boost::beast::http::error::bad_transfer_encoding;
  }

  void on_body_init_impl(const boost::optional<std::uint64_t>& length, error_code&) override {
    if (length && !stream_) request_.body().reserve(static_cast<std::size_t>(*length));
  }

  std::size_t on_body_impl(string_view body, error_code&) override {
    if (stream_) {
      piece_ = {body.data(), body.size()};
    } else {
      request_.body().append(body.data(), body.size());
    }
    return body.size();
  }

  // Beast reads a quoted extension value byte by byte, bare LF and all. A proxy in front that
  // ends lines at a bare LF would frame the body differently: control bytes are refused.
  void on_chunk_header_impl(std::uint64_t size, string_view extensions, error_code& ec) override {
    chunk_left_ = size;
    if (extensions.size() > max_header_bytes_) {
      chunk_line_too_large_ = true;
      ec = boost::beast::http::error::header_limit;
      return;
    }
    for (const char c : extensions) {
      const auto byte = static_cast<unsigned char>(c);
      if ((byte < 0x20 && byte != '\t') || byte == 0x7f) {
        ec = boost::beast::http::error::bad_chunk_extension;
        return;
      }
    }
  }

  std::size_t on_chunk_body_impl(std::uint64_t remain, string_view body, error_code&) override {
    chunk_left_ = remain - body.size();  // `remain` counts this piece too
    if (stream_) {
      piece_ = {body.data(), body.size()};
    } else {
      request_.body().append(body.data(), body.size());
    }
    return body.size();
  }

  void on_finish_impl(error_code&) override { request_.set_keep_alive(keep_alive()); }

  Request& request_;
  std::size_t max_header_bytes_;
  std::size_t max_headers_;
  std::uint64_t max_body_bytes_;
  const App* app_;
  bool route_options_;  // some route has its own body limit or streams its body
  bool too_many_headers_ = false;
  bool unsupported_coding_ = false;
  bool bad_host_ = false;
  bool invalid_host_ = false;
  bool folded_header_ = false;
  bool chunk_line_too_large_ = false;
  std::size_t trailer_bytes_ = 0;
  std::uint64_t chunk_left_ = 0;  // bytes of the current chunk's data not yet parsed
  bool old_version_coding_ = false;
  std::string_view input_;
  int host_fields_ = 0;
  int length_fields_ = 0;
  bool stream_ = false;
  std::string_view piece_;
};

}  // namespace molt::web::detail
