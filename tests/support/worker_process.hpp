#pragma once
// A real worker process on pipes, for end-to-end tests: spawn, send frames, read answers
// with a timeout, close stdin, signal, wait for the exit status.

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "molt/ipc/envelope.hpp"
#include "molt/ipc/frame.hpp"

namespace molt::testing {

class WorkerProcess {
 public:
  // `env` entries ("NAME=value") are added to the current environment.
  WorkerProcess(const std::string& binary, const std::vector<std::string>& args,
                const std::vector<std::string>& env = {});
  ~WorkerProcess();
  WorkerProcess(const WorkerProcess&) = delete;
  WorkerProcess& operator=(const WorkerProcess&) = delete;

  void send_raw(std::string_view bytes);
  void send(const ipc::Request& request, ipc::Wire wire = ipc::Wire::MsgPack);
  // The next frame body, or nullopt on timeout or end of output.
  std::optional<std::string> receive_frame(std::chrono::milliseconds timeout);
  // The next answer, decoded; nullopt on timeout or end of output.
  std::optional<ipc::Response> receive(std::chrono::milliseconds timeout = std::chrono::seconds(5),
                                       ipc::Wire* wire = nullptr);
  void close_stdin();
  void signal(int sig);
  // The exit code (or 128+signal), or nullopt when it did not exit in time.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout);
  // Everything written to stderr so far (non-blocking drain).
  std::string stderr_text();
  pid_t pid() const noexcept { return pid_; }

 private:
  pid_t pid_ = -1;
  int in_fd_ = -1;   // the worker's stdin
  int out_fd_ = -1;  // the worker's stdout
  int err_fd_ = -1;  // the worker's stderr
  ipc::FrameReader reader_;
  std::string stderr_;
  std::optional<int> exit_code_;
};

// A request envelope with an id, an entry and a payload.
ipc::Request make_request(std::uint64_t id, std::string entry, ipc::Codec codec,
                          std::string payload = {}, std::uint64_t timeout_ms = 0);

// A MsgPack payload written as JSON text, for readable tests: msgpack_of(R"({"user_id": 7})").
std::string msgpack_of(std::string_view json_text);

}  // namespace molt::testing
