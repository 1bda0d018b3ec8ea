// The HTTP/1.1 server of molt::web: one io_context per thread, each with its own
// SO_REUSEPORT acceptor, so a connection lives on one thread and needs no locks.
//
//   molt::web::Server server(app, {.port = 8080});
//   Server::block_stop_signals();  // a SIGTERM before wait_for_signal() waits for it
//   server.start();             // binds, or throws naming the address
//   server.wait_for_signal();   // SIGTERM/SIGINT: drain in-flight requests, then return
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "molt/web/app.hpp"
#include "molt/web/limits.hpp"

namespace molt::web {

struct ServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;  // 0: any free port, see Server::port()
  unsigned threads = 0;       // 0: one per core
  Limits limits;
  // How long in-flight requests get to finish at shutdown before they are cancelled.
  std::chrono::milliseconds shutdown_grace{10'000};
};

class Server {
 public:
  Server(App& app, ServerOptions options);
  ~Server();  // stops (gracefully) if still running
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds every thread's acceptor and starts serving. Throws std::runtime_error naming the
  // address on failure.
  void start();
  std::uint16_t port() const;
  unsigned threads() const;
  // Stops accepting, closes idle connections, lets in-flight requests finish within the
  // grace period, cancels what is left, and returns once every thread has finished.
  void stop();
  // Blocks until SIGTERM or SIGINT, then stop().
  void wait_for_signal();
  // Blocks SIGTERM and SIGINT in the calling thread, and so in every thread it starts later
  // (start()'s among them). Called before the program starts any thread, a signal sent before
  // wait_for_signal() listens is held for it, instead of ending the process by default.
  static void block_stop_signals();
  // Connections open right now, over all threads.
  std::size_t open_connections() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace molt::web
