#include "molt/web/server.hpp"

#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>

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
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "connection.hpp"
#include "molt/core/blocking_pool.hpp"

namespace {
// How long the acceptor waits after running out of file descriptors before it tries again.
constexpr std::chrono::milliseconds kAcceptPause{50};
// How long past the shutdown grace wait_for_signal lets the process run before it ends it:
// the handlers cancelled at the grace have one second to answer and close, and the rest is
// margin (a handler that blocks its I/O thread delays everything on it).
constexpr std::chrono::seconds kHardStop{5};
// Stop signals this close together are one (delivered to the process and its group).
constexpr std::chrono::seconds kSameSignal{1};
// At most this many connections are taken from the listen backlog at shutdown.
constexpr std::size_t kBacklogTaken = 4096;

// Now plus a time that may be max() ("no end"): the clock's end rather than an overflow
// (milliseconds::max() in the clock's nanoseconds alone overflows).
std::chrono::steady_clock::time_point after(std::chrono::milliseconds time) {
  const auto now = std::chrono::steady_clock::now();
  const auto room = std::chrono::floor<std::chrono::milliseconds>(
      std::chrono::steady_clock::time_point::max() - now);
  return time >= room ? std::chrono::steady_clock::time_point::max() : now + time;
}
}  // namespace

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
    bool draining = false;
    std::chrono::steady_clock::time_point last_accept_warning{};
  };

  App& app;
  ServerOptions options;
  std::vector<std::unique_ptr<Worker>> workers;
  std::uint16_t bound_port = 0;
  bool running = false;

  Impl(App& a, ServerOptions o) : app(a), options(std::move(o)) {
    if (options.threads == 0) options.threads = core::usable_cores();
  }

  // The first thread's acceptor also checks that nobody else listens on the port: with
  // SO_REUSEPORT a second server (another instance, an old one still running) would bind
  // beside this one and take half its connections, without an error.
  void bind(Worker& worker, std::uint16_t port, bool first) {
    const std::string where = options.host + ":" + std::to_string(port);
    try {
      const tcp::endpoint endpoint(asio::ip::make_address(options.host), port);
      if (first && port != 0) {
        tcp::acceptor probe(worker.io, endpoint.protocol());
        probe.set_option(tcp::acceptor::reuse_address(true));
        boost::system::error_code ec;
        probe.bind(endpoint, ec);
        if (ec == asio::error::address_in_use)
          throw std::runtime_error("cannot listen on " + where +
                                   ": the address is in use (is another server running there?)");
      }
      worker.acceptor.open(endpoint.protocol());
      worker.acceptor.set_option(tcp::acceptor::reuse_address(true));
      worker.acceptor.set_option(
          asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>(true));
      worker.acceptor.bind(endpoint);
      worker.acceptor.listen(asio::socket_base::max_listen_connections);
    } catch (const boost::system::system_error& error) {
      throw std::runtime_error("cannot listen on " + where + ": " + error.code().message());
    }
  }

  // Out of file descriptors (or kernel memory) the pending connection stays queued, and
  // accepting again at once would fail again at once: a busy loop. Wait a moment instead, and
  // say so on stderr (at most once a minute).
  static bool out_of_resources(const boost::system::error_code& ec) {
    return ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space ||
           ec == asio::error::no_memory || ec.value() == ENFILE;
  }

  asio::awaitable<void> pause_accepting(Worker& worker, const boost::system::error_code& ec) {
    const auto now = std::chrono::steady_clock::now();
    if (worker.last_accept_warning == std::chrono::steady_clock::time_point{} ||
        now - worker.last_accept_warning > std::chrono::minutes(1)) {
      worker.last_accept_warning = now;
      std::fprintf(stderr, "molt::web: cannot accept connections (%s); retrying every %d ms\n",
                   ec.message().c_str(), static_cast<int>(kAcceptPause.count()));
    }
    asio::steady_timer pause(worker.io, kAcceptPause);
    co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
  }

  // Accepts until drain() says to stop, then hands over to the shutdown (stop_accepting).
  // Only this loop ends the accepting: an accept that completed just before drain() ran, its
  // handler queued behind it, is served before the grace's wait begins, not after (when
  // nothing else was open, that wait would have ended already, and it had no bound).
  asio::awaitable<void> accept_loop(Worker& worker) {
    while (!worker.draining) {
      auto [ec, socket] =
          co_await worker.acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
      if (!ec) {
        serve(worker, std::move(socket));
      } else if (out_of_resources(ec) && !worker.draining) {
        co_await pause_accepting(worker, ec);
      }  // otherwise a connection that failed while being accepted (reset), or drain()
    }
    stop_accepting(worker);
  }

  // A connection just accepted: served, or refused when the thread has enough of them.
  void serve(Worker& worker, tcp::socket socket) {
    if (worker.connections.size() >= options.limits.max_connections) {
      detail::refuse_connection(std::move(socket));
      return;
    }
    boost::system::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    detail::Connection::start(std::move(socket), app, options.limits, worker.connections,
                              worker.tasks);
  }

  // On the worker's thread: drain connections and spawned tasks, stop accepting, and force
  // what is left after the grace.
  void drain(Worker& worker) {
    worker.draining = true;
    worker.connections.drain();
    worker.tasks.drain();
    boost::system::error_code ignored;
    worker.acceptor.cancel(ignored);  // the accept loop goes on in stop_accepting()
  }

  void stop_accepting(Worker& worker) {
    // Connections the kernel completed that nobody accepted yet would be reset by closing
    // the acceptor: they are taken, and drained with the others (a request they already
    // sent is answered, with Connection: close).
    // (Asio's blocking accept would wait for the next connection after one the peer aborted,
    // unless told to report those.) Bounded: new ones may keep coming.
    boost::system::error_code ec;
    worker.acceptor.set_option(asio::socket_base::enable_connection_aborted(true), ec);
    worker.acceptor.non_blocking(true, ec);
    for (std::size_t taken = 0; !ec && taken < kBacklogTaken; ++taken) {
      tcp::socket socket(worker.io);
      worker.acceptor.accept(socket, ec);
      if (!ec) {
        serve(worker, std::move(socket));
      } else if (ec != asio::error::would_block && !out_of_resources(ec)) {
        ec = {};  // that connection failed (aborted, its network gone): the next one may not
      }
    }
    worker.acceptor.close(ec);
    worker.grace_timer.expires_at(after(options.shutdown_grace));
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
    impl_->bind(*worker, i == 0 ? impl_->options.port : impl_->bound_port, i == 0);
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

namespace {
sigset_t stop_signal_set() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

// Ends the process at once. The connections still open are reset, not closed: an answer cut
// short must not look whole to its client (an HTTP/1.0 body ends with the close).
[[noreturn]] void exit_now(const char* why) {
  std::fprintf(stderr, "molt::web: %s\n", why);
  std::error_code ec;
  for (std::filesystem::directory_iterator fds("/proc/self/fd", ec), end; !ec && fds != end;
       fds.increment(ec)) {
    const int fd = std::atoi(fds->path().filename().c_str());
    struct stat status {};
    if (::fstat(fd, &status) != 0 || !S_ISSOCK(status.st_mode)) continue;
    const linger reset{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
  }
  std::_Exit(1);
}
}  // namespace

void Server::wait_for_signal() {
  asio::io_context io(1);
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([](boost::system::error_code, int) {});
  // A program that blocked these before start() (block_stop_signals) did so that one sent
  // before this point waits instead of ending the process: it is delivered here, now.
  const sigset_t stop_signals = stop_signal_set();
  pthread_sigmask(SIG_UNBLOCK, &stop_signals, nullptr);
  io.run();
  // Draining. What ignores its cancellation (a task that catches it, blocking work no token
  // reaches) could hold the process for ever: a second signal, or the grace passed by
  // kHardStop, ends it at once, as a second Ctrl-C does for uvicorn or gunicorn.
  // A signal delivered twice at once (a wrapper that forwards Ctrl-C to the process group
  // too) is one request to stop: a second counts from a second on.
  io.restart();
  const auto first_signal = std::chrono::steady_clock::now();
  std::function<void(boost::system::error_code, int)> on_second;
  on_second = [&](boost::system::error_code ec, int) {
    if (ec) return;
    if (std::chrono::steady_clock::now() - first_signal < kSameSignal)
      return signals.async_wait(on_second);
    exit_now("a second stop signal: exiting without waiting");
  };
  signals.async_wait(on_second);
  const auto grace = impl_->options.shutdown_grace;
  asio::steady_timer hard_stop(io);
  if (grace < std::chrono::milliseconds::max() - kHardStop) {  // a grace of max(): no end
    hard_stop.expires_at(after(grace + kHardStop));
    hard_stop.async_wait([](boost::system::error_code ec) {
      if (!ec) exit_now("work still running long after the shutdown grace: exiting");
    });
  }
  struct Watch {
    asio::io_context& io;
    std::thread thread{[this] { io.run(); }};
    ~Watch() {
      io.stop();
      thread.join();
    }
  };
  {
    const Watch watch{io};
    stop();
  }
  // Stopped. A stop signal still to come (a second copy of the first) is held rather than
  // ending the process by default while the program cleans up.
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
}

void Server::block_stop_signals() {
  const sigset_t stop_signals = stop_signal_set();
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
}

std::size_t Server::open_connections() const {
  std::size_t total = 0;
  for (const auto& worker : impl_->workers) total += worker->connections.size();
  return total;
}

}  // namespace molt::web
