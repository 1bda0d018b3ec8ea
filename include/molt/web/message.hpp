// Request and Response of molt::web.
//
// A Request is a view: its method, target and header strings point into the connection's
// read buffer, which stays put until the response is written (so parsing a request copies
// nothing but its body). A Response owns what it sends.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace molt::web {

struct Header {
  std::string_view name;
  std::string_view value;
};

class Request {
 public:
  std::string_view method() const { return method_; }
  // The request target as sent: path and query, still percent-encoded.
  std::string_view target() const { return target_; }
  std::string_view path() const { return path_; }
  // The query string without '?', still percent-encoded ("" when absent).
  std::string_view query() const { return query_; }
  int version() const { return version_; }  // 10 or 11
  // The host the request is for: the authority of an absolute-form target
  // (`GET http://example.com/x`), which replaces the Host header (RFC 9112 §3.2.2); the Host
  // header otherwise; "" when neither names one (HTTP/1.0).
  std::string_view host() const;
  // Whether the target came in absolute form (`http://host/path`, as sent to a proxy).
  bool absolute_form() const { return absolute_form_; }
  const std::vector<Header>& headers() const { return headers_; }
  // The first header called `name` (case-insensitive).
  std::optional<std::string_view> header(std::string_view name) const;
  // Every header called `name` as one comma-separated list, as several lines of a list field
  // are (RFC 9110 §5.3): the one line itself, or the lines joined in `storage`.
  std::optional<std::string_view> header_list(std::string_view name, std::string& storage) const;
  // The decoded value of the query parameter called `name` (the last one of a repeated
  // parameter, as Django and Starlette read it); "" for `?flag`; std::nullopt when absent. A
  // value that is not valid percent-encoding, or not UTF-8 once decoded, is
  // core::InvalidInput (a 400 naming the parameter); pairs with a malformed name are
  // skipped.
  std::optional<std::string> query_param(std::string_view name) const;
  // Every value of a repeated parameter (`?tag=a&tag=b`), in order; empty when absent. The
  // same decoding and errors.
  std::vector<std::string> query_params(std::string_view name) const;
  // The body, read whole before the handler. Empty on a route that streams its body
  // (RouteOptions::stream_body): read that one with ctx.body() instead.
  const std::string& body() const { return body_; }
  // Whether the body is left on the connection for the handler to pull (ctx.body()).
  bool body_streamed() const { return body_streamed_; }
  bool keep_alive() const { return keep_alive_; }
  // The client's IP address as text: the socket's peer, or the client a trusted proxy named
  // (the proxy_headers middleware); "" when there is no socket, as in the TestClient.
  std::string_view remote_address() const {
    return client_address_.empty() ? peer_address_ : client_address_;
  }
  // The socket's peer, whatever a proxy said ("" without a socket).
  std::string_view peer_address() const { return peer_address_; }
  // "http", or "https" when a trusted proxy says the client came to it over TLS (molt::web
  // itself speaks plain HTTP, behind such a proxy).
  std::string_view scheme() const { return https_ ? "https" : "http"; }

  // For parsers and test clients: the fields of a request. A body's memory is kept for the
  // next request only up to kKeptBodyCapacity.
  static constexpr std::size_t kKeptBodyCapacity = 64 * 1024;
  void reset();
  void set_start_line(std::string_view method, std::string_view target, int version);
  void add_header(std::string_view name, std::string_view value) {
    headers_.push_back({name, value});
  }
  std::string& body() { return body_; }
  void set_keep_alive(bool keep_alive) { keep_alive_ = keep_alive; }
  void set_body_streamed(bool streamed) { body_streamed_ = streamed; }
  // The connection's, so reset() keeps it.
  void set_peer_address(std::string address) { peer_address_ = std::move(address); }
  // This request's, from a trusted proxy's headers; reset() forgets them.
  void set_client_address(std::string address) { client_address_ = std::move(address); }
  void set_https(bool https) { https_ = https; }
  // The buffer the views point into moved by `delta` bytes: move the views with it.
  void rebase(std::ptrdiff_t delta);

 private:
  std::string_view method_;
  std::string_view target_;
  std::string_view path_;
  std::string_view query_;
  std::string_view authority_;  // of an absolute-form target, else empty
  bool absolute_form_ = false;
  int version_ = 11;
  std::vector<Header> headers_;
  std::string body_;
  bool keep_alive_ = true;
  bool body_streamed_ = false;
  bool https_ = false;
  std::string peer_address_;
  std::string client_address_;
};

// A streamed body: each call gives the next piece, std::nullopt at the end. The server pulls
// the next piece only once the previous one is written, so a slow client slows the producer.
using BodyChunks = std::function<boost::asio::awaitable<std::optional<std::string>>()>;

namespace detail {
// std::invalid_argument for a content type with a CR, LF or NUL (response splitting).
void check_content_type(std::string_view content_type);
}  // namespace detail

class Response {
 public:
  Response() = default;
  explicit Response(int status) : status_(status) {}
  Response(int status, std::string body, std::string content_type)
      : status_(status), body_(std::move(body)), content_type_(std::move(content_type)) {
    detail::check_content_type(content_type_);
  }
  // A content type written as a string literal is kept as a view: no allocation.
  template <std::size_t N>
  Response(int status, std::string body, const char (&literal_content_type)[N])
      : status_(status), body_(std::move(body)), static_content_type_(literal_content_type) {}

  static Response text(std::string body, int status = 200) {
    return {status, std::move(body), "text/plain; charset=utf-8"};
  }
  // A body that is already JSON.
  static Response json_text(std::string body, int status = 200) {
    return {status, std::move(body), "application/json"};
  }
  // A body produced piece by piece, sent with chunked transfer coding (HTTP/1.1) or until
  // the connection closes (HTTP/1.0); with set_stream_length, as Content-Length bytes.
  static Response stream(BodyChunks chunks, std::string content_type, int status = 200) {
    Response response(status, {}, std::move(content_type));
    response.chunks_ = std::move(chunks);
    return response;
  }
  template <std::size_t N>
  static Response stream(BodyChunks chunks, const char (&literal_content_type)[N],
                         int status = 200) {
    Response response(status, {}, literal_content_type);
    response.chunks_ = std::move(chunks);
    return response;
  }
  // {"error":{"code":..,"message":..}}: the shape of every error molt::web answers.
  static Response error(int status, std::string_view code, std::string_view message);
  // The same naming the input that was wrong, for a client to point at it (a form field):
  // {"error":{"code","message","field":"body.tags[1]"}}.
  static Response error(int status, std::string_view code, std::string_view message,
                        std::string_view field);
  // ... and every input that was wrong, each as its field and message, when there were several:
  // {"error":{"code","message","field","errors":[{"field","message"},...]}}.
  struct FieldProblem {
    std::string_view field;
    std::string_view message;
  };
  static Response error(int status, std::string_view code, std::string_view message,
                        std::string_view field, const std::vector<FieldProblem>& problems);

  int status() const { return status_; }
  void set_status(int status) { status_ = status; }
  const std::string& body() const { return body_; }
  std::string& body() { return body_; }
  std::string_view content_type() const {
    return static_content_type_ != nullptr ? std::string_view(static_content_type_) : content_type_;
  }
  void set_content_type(std::string content_type) {
    detail::check_content_type(content_type);
    content_type_ = std::move(content_type);
    static_content_type_ = nullptr;
  }
  // The content type exactly as given: a text/* type without a charset stays without one
  // (a gateway passes the upstream's on; otherwise the server says utf-8).
  void set_content_type_verbatim(std::string content_type) {
    set_content_type(std::move(content_type));
    content_type_verbatim_ = true;
  }
  bool content_type_verbatim() const { return content_type_verbatim_; }
  // Headers beyond the ones the server writes (Date, Content-Length, Content-Type, ...).
  const std::vector<std::pair<std::string, std::string>>& headers() const { return headers_; }
  // Sets `name`, replacing a header of that name already there.
  void set_header(std::string name, std::string value);
  // Adds one more `name` line, beside any already there (Set-Cookie).
  void add_header(std::string name, std::string value);
  // Adds a request header name to `Vary`, keeping those already there ("Accept, Origin").
  void add_vary(std::string_view field);
  std::optional<std::string_view> header(std::string_view name) const;
  bool streaming() const { return static_cast<bool>(chunks_); }
  // The length of a streamed body, when known ahead (a file): sent as Content-Length, also
  // to HEAD, and its pieces go out as they are (an HTTP/1.0 connection stays open). A
  // producer that gives more or fewer bytes has its connection cut, and is logged. A body
  // that is not streamed has its own length: this is ignored there.
  void set_stream_length(std::uint64_t bytes) { stream_length_ = bytes; }
  std::optional<std::uint64_t> stream_length() const { return stream_length_; }
  void clear_stream_length() { stream_length_.reset(); }
  // While the producer of a streamed body works on its next piece for `interval`, the server
  // sends `piece` (a comment of an event stream), and again every `interval`: proxies and
  // clients that drop a silent connection keep it. A keep-alive piece that is written counts
  // as one of the stream's pieces for the route's request_timeout, so a quiet stream is not
  // cut by it. The piece goes out as it is, so compression() leaves such a stream alone; not
  // for a body of declared length (set_stream_length). At shutdown such a stream ends at its
  // producer's next wait (at once if it waits), with the stream's proper end. An interval of
  // 0 sends none; an empty piece is std::invalid_argument.
  struct StreamKeepalive {
    std::chrono::milliseconds interval;
    std::string piece;
  };
  void set_stream_keepalive(std::chrono::milliseconds interval, std::string piece);
  const StreamKeepalive* stream_keepalive() const { return keepalive_.get(); }
  const BodyChunks& chunks() const { return chunks_; }
  // Replaces a streamed answer's producer: for middleware that wraps it (access_log counts
  // what it produces and logs when it ends).
  void set_chunks(BodyChunks chunks) { chunks_ = std::move(chunks); }

 private:
  int status_ = 200;
  std::string body_;
  std::string content_type_;
  const char* static_content_type_ = nullptr;
  bool content_type_verbatim_ = false;
  std::vector<std::pair<std::string, std::string>> headers_;
  BodyChunks chunks_;
  std::optional<std::uint64_t> stream_length_;
  std::shared_ptr<const StreamKeepalive> keepalive_;
};

// Case-insensitive ASCII comparison, as header names compare.
bool iequals(std::string_view a, std::string_view b);
// `text` without the spaces and tabs around it (a header list element's OWS, RFC 9110 §5.6.3).
std::string_view trim_ows(std::string_view text);
// Takes the next element off a header's list ("gzip, br" or "q=0.5; level=1"): the text up to
// `separator`, without its OWS. `list` keeps what follows.
std::string_view next_list_element(std::string_view& list, char separator = ',');
// The weight in an element's parameters ("q=0.5; level=1", RFC 9110 §12.4.2): 1 when there
// is none, 0 when it is malformed (a bad weight accepts nothing rather than everything).
double list_quality(std::string_view params);
// Whether a header's comma-separated list names `token`, compared case-insensitively.
bool list_contains(std::string_view list, std::string_view token);

}  // namespace molt::web
