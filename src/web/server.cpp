#include "molt/web/server.hpp"

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <thread>
#include <vector>

#include "connection.hpp"
#include "molt/core/blocking_pool.hpp"

namespace molt::web {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

struct Server::Impl {
  struct Worker {
    explicit Worker(std::size_t max_tasks) : tasks(io.get_executor(), max_tasks) {}
    asio::io_context io{1};
    tcp::acceptor acceptor{io};
    std::thread thread;
    detail::ConnectionSet connections;
    detail::TaskGroup tasks;  // ctx.spawn
    asio::steady_timer grace_timer{io};
  };

  App& app;
  ServerOptions options;
  std::vector<std::unique_ptr<Worker>> workers;
  std::uint16_t bound_port = 0;
  bool running = false;

  Impl(App& a, ServerOptions o) : app(a), options(std::move(o)) {
    if (options.threads == 0) options.threads = core::usable_cores();
  }

  void bind(Worker& worker, std::uint16_t port) {
    const tcp::endpoint endpoint(asio::ip::make_address(options.host), port);
    worker.acceptor.open(endpoint.protocol());
    worker.acceptor.set_option(tcp::acceptor::reuse_address(true));
    worker.acceptor.set_option(
        asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>(true));
    worker.acceptor.bind(endpoint);
    worker.acceptor.listen(asio::socket_base::max_listen_connections);
  }

  asio::awaitable<void> accept_loop(Worker& worker) {
    for (;;) {
      auto [ec, socket] =
          co_await worker.acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec) {
        if (ec == asio::error::operation_aborted || !worker.acceptor.is_open()) co_return;
        continue;  // a connection that failed while being accepted (reset, out of fds)
      }
      if (worker.connections.size() >= options.limits.max_connections) {
        detail::refuse_connection(std::move(socket));
        continue;
      }
      boost::system::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      detail::Connection::start(std::move(socket), app, options.limits, worker.connections,
                                worker.tasks);
    }
  }

  // On the worker's thread: stop accepting, drain connections and spawned tasks, and force
  // what is left after the grace.
  void drain(Worker& worker) {
    boost::system::error_code ignored;
    worker.acceptor.close(ignored);
    worker.connections.drain();
    worker.tasks.drain();
    worker.grace_timer.expires_after(options.shutdown_grace);
    worker.grace_timer.async_wait([&worker](boost::system::error_code ec) {
      if (ec) return;
      worker.connections.close_all();
      worker.tasks.cancel_all();
    });
    // Once the last connection and the last task are gone, nothing is left for the
    // io_context: run() returns.
    worker.connections.on_empty(
        [&worker] { worker.tasks.on_empty([&worker] { worker.grace_timer.cancel(); }); });
  }
};

Server::Server(App& app, ServerOptions options)
    : impl_(std::make_unique<Impl>(app, std::move(options))) {}

Server::~Server() {
  if (impl_->running) stop();
}

void Server::start() {
  impl_->app.freeze();
  for (unsigned i = 0; i < impl_->options.threads; ++i) {
    auto worker = std::make_unique<Impl::Worker>(impl_->options.limits.max_background_tasks);
    impl_->bind(*worker, i == 0 ? impl_->options.port : impl_->bound_port);
    if (i == 0) impl_->bound_port = worker->acceptor.local_endpoint().port();
    impl_->workers.push_back(std::move(worker));
  }
  for (auto& worker : impl_->workers) {
    asio::co_spawn(worker->io, impl_->accept_loop(*worker), asio::detached);
    worker->thread = std::thread([w = worker.get()] { w->io.run(); });
  }
  impl_->running = true;
}

std::uint16_t Server::port() const {
  return impl_->bound_port;
}
unsigned Server::threads() const {
  return impl_->options.threads;
}

void Server::stop() {
  if (!impl_->running) return;
  for (auto& worker : impl_->workers)
    asio::post(worker->io, [this, w = worker.get()] { impl_->drain(*w); });
  for (auto& worker : impl_->workers)
    if (worker->thread.joinable()) worker->thread.join();
  impl_->running = false;
}

void Server::wait_for_signal() {
  asio::io_context io(1);
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([](boost::system::error_code, int) {});
  io.run();
  stop();
}

std::size_t Server::open_connections() const {
  std::size_t total = 0;
  for (const auto& worker : impl_->workers) total += worker->connections.size();
  return total;
}

}  // namespace molt::web
