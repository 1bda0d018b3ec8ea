// TestClient::websocket_connect: a Beast WebSocket client and the server's session on the two
// ends of a socket pair, run together on one io_context by each call.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/connect_pair.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <cstdio>

#include "exchange.hpp"
#include "molt/web/test_client.hpp"
#include "request_reader.hpp"
#include "task_group.hpp"
#include "websocket_session.hpp"

namespace molt::web {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace ws = boost::beast::websocket;
using LocalSocket = asio::local::stream_protocol::socket;

WebSocketRefused::WebSocketRefused(TestResponse response)
    : std::runtime_error("the server refused the WebSocket with " +
                         std::to_string(response.status)),
      response_(std::move(response)) {}

namespace {

// The server's side of the pair: one request read as a connection reads it, through the app,
// then the WebSocket session if the answer upgrades, else the answer and the end.
asio::awaitable<void> serve_upgrade(const App& app, const Limits& limits, std::string peer_address,
                                    LocalSocket socket, detail::TaskGroup* tasks,
                                    asio::cancellation_signal& interrupt) {
  detail::RequestReader reader(limits, &app);
  reader.request().set_peer_address(std::move(peer_address));
  for (;;) {
    const auto state = reader.parse();
    if (state == detail::RequestReader::State::Ready) break;
    if (state == detail::RequestReader::State::Failed) {
      std::string out;
      detail::write_read_error(out, reader.error());
      co_await asio::async_write(socket, asio::buffer(out), asio::as_tuple(asio::use_awaitable));
      co_return;
    }
    if (state == detail::RequestReader::State::HeaderReady) continue;
    const auto space = reader.read_space();
    auto [ec, n] = co_await socket.async_read_some(asio::buffer(space.data(), space.size()),
                                                   asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
    reader.commit(n);
  }
  core::CancelSource cancel;
  Ctx ctx(app, cancel.token(), tasks);
  Response response = co_await app.handle(reader.request(), ctx);
  if (response.status() == 101 && ctx.websocket_upgrade() != nullptr) {
    const auto session = detail::WebSocketSession::start(
        detail::WebSocketTransport(std::move(socket)), reader.request(), std::move(response), ctx,
        [&cancel, &interrupt](core::CancelReason reason, bool interrupting) {
          cancel.cancel(reason);
          if (interrupting) interrupt.emit(asio::cancellation_type::terminal);
        });
    co_await session->run();
    co_return;
  }
  std::string out;
  detail::write_answer(out, reader.request(), response, true);
  co_await asio::async_write(socket, asio::buffer(out), asio::as_tuple(asio::use_awaitable));
  boost::system::error_code ignored;
  socket.shutdown(asio::socket_base::shutdown_send, ignored);
}

TestResponse test_response(const ws::response_type& answer) {
  TestResponse out;
  out.status = static_cast<int>(answer.result_int());
  for (const auto& field : answer)
    out.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  out.body = answer.body();
  return out;
}

WebSocketClosed closed_by(const boost::system::error_code& ec,
                          const ws::stream<LocalSocket>& client) {
  if (ec == ws::error::closed) {
    const ws::close_reason& reason = client.reason();
    return WebSocketClosed(
        reason.code == ws::close_code::none ? close_code::no_status : reason.code,
        std::string(reason.reason.data(), reason.reason.size()));
  }
  return WebSocketClosed(close_code::abnormal, "the connection was lost: " + ec.message());
}

}  // namespace

struct TestWebSocket::State {
  State(const App& app, const Limits& limits, std::string peer_address)
      : tasks(io.get_executor(), limits.max_background_tasks), client(io) {
    LocalSocket server(io);
    asio::local::connect_pair(client.next_layer(), server);
    asio::co_spawn(
        io,
        serve_upgrade(app, limits, std::move(peer_address), std::move(server), &tasks, interrupt),
        asio::bind_cancellation_slot(interrupt.slot(), [this](std::exception_ptr failure) {
          server_done = true;
          if (!failure) return;
          try {
            std::rethrow_exception(failure);
          } catch (const std::exception& e) {
            std::fprintf(stderr, "TestWebSocket: the server's side failed: %s\n", e.what());
          }
        }));
  }

  // Runs the client's `operation` and the server until the operation is done: its result, or
  // its exception. std::runtime_error when it is not done in time.
  template <typename T>
  T run(asio::awaitable<T> operation) {
    // Shared with the completion: an operation that times out completes later, after this
    // frame is gone (the destructor runs the io_context again).
    struct Outcome {
      std::optional<T> result;
      std::exception_ptr failure;
      bool done = false;
    };
    auto outcome = std::make_shared<Outcome>();
    asio::co_spawn(io, std::move(operation), [outcome](std::exception_ptr e, T value) {
      outcome->done = true;
      outcome->failure = e;
      if (!e) outcome->result.emplace(std::move(value));
    });
    run_until([&] { return outcome->done; }, "the operation");
    if (outcome->failure) std::rethrow_exception(outcome->failure);
    return std::move(*outcome->result);
  }

  template <typename Done>
  void run_until(Done done, std::string_view what) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    io.restart();
    while (!done()) {
      const auto left = deadline - std::chrono::steady_clock::now();
      if (left <= std::chrono::steady_clock::duration::zero() || io.run_one_for(left) == 0) {
        if (done()) break;
        broken = true;
        throw std::runtime_error("TestWebSocket: " + std::string(what) +
                                 " did not complete within " + std::to_string(timeout.count()) +
                                 " ms (the server sent nothing, or its handler never ended)");
      }
    }
  }

  void send(std::string_view data, bool binary);

  void check_usable() const {
    if (broken)
      throw std::logic_error("TestWebSocket: an earlier call timed out; the socket is unusable");
  }

  asio::io_context io;
  // Interrupts what the server's handler awaits, as a connection's signal does.
  asio::cancellation_signal interrupt;
  detail::TaskGroup tasks;
  ws::stream<LocalSocket> client;
  TestResponse handshake;
  std::chrono::milliseconds timeout{5'000};
  bool server_done = false;
  bool broken = false;
};

TestWebSocket::TestWebSocket(std::unique_ptr<State> state) : state_(std::move(state)) {}
TestWebSocket::TestWebSocket(TestWebSocket&&) noexcept = default;
TestWebSocket& TestWebSocket::operator=(TestWebSocket&&) noexcept = default;

TestWebSocket::~TestWebSocket() {
  if (!state_) return;
  try {
    if (!state_->broken && state_->client.is_open()) close();
    if (!state_->server_done) wait_server_done();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "TestWebSocket: closing: %s\n", e.what());
  }
  // What still waits (a handler that never ended) is destroyed with the io_context.
  boost::system::error_code ignored;
  state_->client.next_layer().close(ignored);
}

const TestResponse& TestWebSocket::handshake() const {
  return state_->handshake;
}

std::chrono::milliseconds TestWebSocket::timeout() const {
  return state_->timeout;
}

void TestWebSocket::set_timeout(std::chrono::milliseconds timeout) {
  state_->timeout = timeout;
}

void TestWebSocket::State::send(std::string_view data, bool binary) {
  check_usable();
  run([this, data, binary]() -> asio::awaitable<bool> {
    client.binary(binary);
    auto [ec, n] =
        co_await client.async_write(asio::buffer(data), asio::as_tuple(asio::use_awaitable));
    if (ec) throw closed_by(ec, client);
    co_return true;
  }());
}

void TestWebSocket::send_text(std::string_view text) {
  state_->send(text, false);
}

void TestWebSocket::send_bytes(std::string_view bytes) {
  state_->send(bytes, true);
}

WebSocketMessage TestWebSocket::receive() {
  state_->check_usable();
  State& s = *state_;
  return s.run([&s]() -> asio::awaitable<WebSocketMessage> {
    beast::flat_buffer buffer;
    auto [ec, n] = co_await s.client.async_read(buffer, asio::as_tuple(asio::use_awaitable));
    if (ec) throw closed_by(ec, s.client);
    co_return WebSocketMessage{beast::buffers_to_string(buffer.data()), !s.client.got_text()};
  }());
}

std::string TestWebSocket::receive_text() {
  WebSocketMessage message = receive();
  if (message.binary)
    throw std::runtime_error("TestWebSocket: expected text, got a binary message");
  return std::move(message.data);
}

std::string TestWebSocket::receive_bytes() {
  WebSocketMessage message = receive();
  if (!message.binary)
    throw std::runtime_error("TestWebSocket: expected bytes, got a text message");
  return std::move(message.data);
}

void TestWebSocket::close(std::uint16_t code, std::string_view reason) {
  state_->check_usable();
  State& s = *state_;
  if (s.client.is_open()) {
    s.run([&s, code, reason]() -> asio::awaitable<bool> {
      ws::close_reason frame(code);
      frame.reason.assign(reason.data(), std::min<std::size_t>(reason.size(), 123));
      auto [ec] = co_await s.client.async_close(frame, asio::as_tuple(asio::use_awaitable));
      (void)ec;  // closed already by the server: nothing more to do
      co_return true;
    }());
  }
  wait_server_done();
}

void TestWebSocket::wait_server_done() {
  state_->run_until([this] { return state_->server_done; }, "the server's WebSocket handler");
}

TestWebSocket TestClient::websocket_connect(std::string_view target, const Headers& headers,
                                            const std::vector<std::string>& subprotocols) {
  auto state = std::make_unique<TestWebSocket::State>(app_, limits_, peer_address_);
  TestWebSocket::State& s = *state;
  std::string cookie = cookie_header(target);
  for (const auto& [name, value] : headers)
    if (iequals(name, "Cookie")) cookie.clear();
  s.client.set_option(ws::stream_base::decorator([&](ws::request_type& request) {
    for (const auto& [name, value] : headers) request.insert(name, value);
    if (!cookie.empty()) request.set(beast::http::field::cookie, cookie);
    std::string offered;
    for (const std::string& protocol : subprotocols)
      offered.append(offered.empty() ? "" : ", ").append(protocol);
    if (!offered.empty()) request.set(beast::http::field::sec_websocket_protocol, offered);
  }));
  ws::response_type answer;
  const std::string path(target);
  const bool opened = s.run([&s, &answer, &path]() -> asio::awaitable<bool> {
    auto [ec] = co_await s.client.async_handshake(answer, "testserver", path,
                                                  asio::as_tuple(asio::use_awaitable));
    co_return !ec;
  }());
  s.client.set_option(ws::stream_base::decorator([](ws::request_type&) {}));
  s.handshake = test_response(answer);
  keep_cookies(s.handshake, target);
  if (!opened) {
    // The server's side has ended (it answered and closed) or ends with the socket.
    boost::system::error_code ignored;
    s.client.next_layer().close(ignored);
    throw WebSocketRefused(s.handshake);
  }
  return TestWebSocket(std::move(state));
}

}  // namespace molt::web
