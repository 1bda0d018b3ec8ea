// beast_hello: the floor for molt::web's benchmark. A bare Boost.Beast coroutine server, the
// way Beast's own examples write one: one thread, keep-alive, a flat_buffer per connection,
// http::request/response<string_body>, async_read and async_write. /json answers
// {"message":"Hello, World!"} written by hand, /plaintext "Hello, World!", anything else 404.
//
//   beast_hello <port>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <cstdio>
#include <cstdlib>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

asio::awaitable<void> session(tcp::socket socket) {
  beast::flat_buffer buffer;
  try {
    for (;;) {
      http::request<http::string_body> request;
      co_await http::async_read(socket, buffer, request, asio::use_awaitable);
      http::response<http::string_body> response{http::status::ok, request.version()};
      if (request.target() == "/json") {
        response.set(http::field::content_type, "application/json");
        response.body() = R"({"message":"Hello, World!"})";
      } else if (request.target() == "/plaintext") {
        response.set(http::field::content_type, "text/plain; charset=utf-8");
        response.body() = "Hello, World!";
      } else {
        response.result(http::status::not_found);
      }
      response.keep_alive(request.keep_alive());
      response.prepare_payload();
      co_await http::async_write(socket, response, asio::use_awaitable);
      if (!request.keep_alive()) break;
    }
  } catch (const std::exception&) {
  }
  beast::error_code ignored;
  socket.shutdown(tcp::socket::shutdown_send, ignored);
}

asio::awaitable<void> listen(tcp::acceptor acceptor) {
  for (;;) {
    tcp::socket socket = co_await acceptor.async_accept(asio::use_awaitable);
    socket.set_option(tcp::no_delay(true));
    asio::co_spawn(acceptor.get_executor(), session(std::move(socket)), asio::detached);
  }
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: beast_hello <port>\n");
    return 2;
  }
  asio::io_context io(1);
  tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(std::atoi(argv[1]))});
  asio::co_spawn(io, listen(std::move(acceptor)), asio::detached);
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](auto, auto) { io.stop(); });
  io.run();
  return 0;
}
