// TestClient: drives an App through the whole HTTP stack in-process, with no sockets: the
// bytes of a request go through the server's own parser, limits, router, middleware and
// handler, and the answer through its serializer.
//
//   molt::web::TestClient client(app);
//   auto response = client.get("/users/42");
//   EXPECT_EQ(response.status, 200);
//   auto raw = client.raw("GET / HTTP/1.1\r\nHost: x\r\n\r\n");   // exact bytes, for protocol
//   tests
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "molt/codec/json.hpp"
#include "molt/web/app.hpp"
#include "molt/web/limits.hpp"
#include "molt/web/websocket.hpp"

namespace molt::web {

struct TestResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::optional<std::string> header(std::string_view name) const;
  // The body read as JSON into T (a described struct, a vector, boost::json::value, ...):
  // a codec::DecodeError naming the field ("body.items[0].id") when it does not fit.
  template <typename T = boost::json::value>
  T json() const {
    return codec::decode_json<T>(body, "body");
  }
};

// Thrown by TestClient::websocket_connect when the server answers the handshake with anything
// but 101: its answer, as Starlette's client raises at a refused connect.
class WebSocketRefused : public std::runtime_error {
 public:
  explicit WebSocketRefused(TestResponse response);
  const TestResponse& response() const { return response_; }

 private:
  TestResponse response_;
};

// A WebSocket to the app, from TestClient::websocket_connect. The server's session runs
// in-process with the client: each call below runs both until the call is done. A call the
// server never completes (a receive it never sends to) fails after timeout() instead of hanging
// the test. The destructor closes the socket (1000) if it is open, and waits for the handler.
class TestWebSocket {
 public:
  TestWebSocket(TestWebSocket&&) noexcept;
  TestWebSocket& operator=(TestWebSocket&&) noexcept;
  ~TestWebSocket();

  // The handshake's answer: its 101 and headers.
  const TestResponse& handshake() const;
  void send_text(std::string_view text);
  void send_bytes(std::string_view bytes);
  template <typename T>
  void send_json(const T& value) {
    send_text(codec::to_json(value));
  }
  // The server's next message; WebSocketClosed with its code and reason once it closed.
  WebSocketMessage receive();
  // std::runtime_error if the message is binary.
  std::string receive_text();
  // std::runtime_error if the message is text.
  std::string receive_bytes();
  template <typename T = boost::json::value>
  T receive_json() {
    return codec::decode_json<T>(receive().data, "message");
  }
  // The client's close, then the closing handshake, and the server's handler ends.
  void close(std::uint16_t code = close_code::normal, std::string_view reason = {});
  // Waits (up to timeout()) until the server's side has ended: its handler returned and the
  // socket closed; for tests of what the handler does after the client left.
  void wait_server_done();
  std::chrono::milliseconds timeout() const;
  void set_timeout(std::chrono::milliseconds timeout);

  struct State;

 private:
  friend class TestClient;
  explicit TestWebSocket(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

class TestClient {
 public:
  using Headers = std::vector<std::pair<std::string, std::string>>;

  explicit TestClient(App& app, Limits limits = {});

  TestResponse get(std::string_view target, const Headers& headers = {});
  TestResponse request(std::string_view method, std::string_view target, std::string_view body = {},
                       const Headers& headers = {});
  // `value` written as JSON (codec::to_json: a described struct, a map, boost::json::value)
  // with `Content-Type: application/json`, as FastAPI's client.post(url, json=...).
  template <typename T>
  TestResponse request_json(std::string_view method, std::string_view target, const T& value,
                            Headers headers = {}) {
    headers.emplace_back("Content-Type", "application/json");
    return request(method, target, codec::to_json(value), headers);
  }
  template <typename T>
  TestResponse post_json(std::string_view target, const T& value, Headers headers = {}) {
    return request_json("POST", target, value, std::move(headers));
  }
  // A form, as a browser posts one (Starlette's client.post(url, data=..., files=...)):
  // urlencoded fields, or with files a multipart/form-data body.
  struct FormFile {
    std::string field;
    std::string filename;
    std::string data;
    std::string content_type = "application/octet-stream";
  };
  using FormFields = std::vector<std::pair<std::string, std::string>>;
  TestResponse post_form(std::string_view target, const FormFields& fields, Headers headers = {});
  TestResponse post_multipart(std::string_view target, const FormFields& fields,
                              const std::vector<FormFile>& files, Headers headers = {});

  // Opens a WebSocket to `target` (Starlette's client.websocket_connect): the handshake goes
  // through the server's parser, middleware and route as any request's, with the cookie jar's
  // cookies and `headers`, offering `subprotocols`. WebSocketRefused when it is not a 101.
  TestWebSocket websocket_connect(std::string_view target, const Headers& headers = {},
                                  const std::vector<std::string>& subprotocols = {});

  // Input arrives in reads of at most `bytes` (by default: as much as the server's buffer
  // takes), as from a socket: a streamed body (RouteOptions::stream_body) then reaches the
  // handler's ctx.body().next() in pieces of that size.
  void set_read_size(std::size_t bytes) { read_size_ = bytes == 0 ? 1 : bytes; }
  // The address requests come from, as a socket's peer (request.peer_address()); none by
  // default. For proxy_headers and what reads request.remote_address().
  void set_peer_address(std::string address) { peer_address_ = std::move(address); }

  // Cookies, kept as httpx's and Starlette's test clients keep them: a Set-Cookie in an
  // answer stores one (Max-Age=0, or an Expires gone by, drops it), and the later requests
  // to its Path send it, the longer paths first, unless given a Cookie header of their own. A
  // Secure cookie is kept but not sent (the client speaks plain http, as theirs do); Domain
  // is not looked at (there is one host). raw() neither sends nor keeps them.
  struct StoredCookie {
    std::string name;
    std::string value;
    std::string path = "/";
    bool secure = false;
  };
  const std::vector<StoredCookie>& cookies() const { return cookies_; }
  void set_cookie(std::string name, std::string value, std::string path = "/", bool secure = false);
  void clear_cookies() { cookies_.clear(); }

  // Feeds `bytes` as one connection's input (then end of input) and returns every byte the
  // server wrote back: several requests give several answers, in order.
  std::string raw(std::string_view bytes);
  // The answers in a byte stream, in order (HEAD answers have no body).
  static std::vector<TestResponse> parse_responses(std::string_view bytes, bool head = false);

 private:
  void keep_cookies(const TestResponse& response, std::string_view target);
  std::string cookie_header(std::string_view target) const;

  App& app_;
  Limits limits_;
  std::size_t read_size_;
  std::string peer_address_;
  std::vector<StoredCookie> cookies_;
};

}  // namespace molt::web
