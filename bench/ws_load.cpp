// ws_load: WebSocket load on 127.0.0.1 for bench/run_ws_bench.py. Each of CONNECTIONS sockets
// sends a message and waits for its echo, again and again, for SECONDS; the round trips are
// printed. With --idle, the sockets are opened and held without a message for SECONDS (for the
// server's memory per socket), and "open N" is printed once they are all open.
//
//   ws_load PORT PATH CONNECTIONS SECONDS [--bytes 32] [--idle]
#include <CLI/CLI.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <chrono>
#include <cstdio>
#include <string>

namespace asio = boost::asio;
namespace ws = boost::beast::websocket;
using tcp = asio::ip::tcp;

struct Load {
  std::uint16_t port = 0;
  std::string path;
  std::chrono::steady_clock::time_point end;
  std::string message;
  bool idle = false;
  std::uint64_t round_trips = 0;
  std::uint64_t failures = 0;
  std::size_t open = 0;
  std::size_t connections = 0;
};

asio::awaitable<void> one_socket(Load& load) {
  auto executor = co_await asio::this_coro::executor;
  ws::stream<tcp::socket> socket(executor);
  auto [connect_error] = co_await socket.next_layer().async_connect(
      {asio::ip::make_address("127.0.0.1"), load.port}, asio::as_tuple(asio::use_awaitable));
  if (connect_error) {
    ++load.failures;
    co_return;
  }
  socket.next_layer().set_option(tcp::no_delay(true));
  auto [handshake_error] =
      co_await socket.async_handshake("127.0.0.1", load.path, asio::as_tuple(asio::use_awaitable));
  if (handshake_error) {
    ++load.failures;
    co_return;
  }
  if (++load.open == load.connections && load.idle) std::printf("open %zu\n", load.open);
  std::fflush(stdout);
  if (load.idle) {
    asio::steady_timer timer(executor, load.end);
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  boost::beast::flat_buffer buffer;
  while (!load.idle && std::chrono::steady_clock::now() < load.end) {
    auto [write_error, written] = co_await socket.async_write(asio::buffer(load.message),
                                                              asio::as_tuple(asio::use_awaitable));
    if (write_error) {
      ++load.failures;
      co_return;
    }
    buffer.clear();
    auto [read_error, read] =
        co_await socket.async_read(buffer, asio::as_tuple(asio::use_awaitable));
    if (read_error || read != load.message.size()) {
      ++load.failures;
      co_return;
    }
    ++load.round_trips;
  }
  auto [close_error] =
      co_await socket.async_close(ws::close_code::normal, asio::as_tuple(asio::use_awaitable));
  (void)close_error;
}

int main(int argc, char** argv) {
  CLI::App cli{"ws_load: WebSocket echo load on 127.0.0.1"};
  Load load;
  double seconds = 5;
  std::size_t bytes = 32;
  cli.add_option("port", load.port)->required();
  cli.add_option("path", load.path)->required();
  cli.add_option("connections", load.connections)->required();
  cli.add_option("seconds", seconds)->required();
  cli.add_option("--bytes", bytes);
  cli.add_flag("--idle", load.idle);
  CLI11_PARSE(cli, argc, argv);
  load.message.assign(bytes, 'x');
  load.end = std::chrono::steady_clock::now() +
             std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                 std::chrono::duration<double>(seconds));
  asio::io_context io;
  for (std::size_t i = 0; i < load.connections; ++i)
    asio::co_spawn(io, one_socket(load), asio::detached);
  io.run();
  std::printf("round_trips %llu failures %llu\n", static_cast<unsigned long long>(load.round_trips),
              static_cast<unsigned long long>(load.failures));
  return load.failures == 0 ? 0 : 1;
}
