#include "support/worker_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json/parse.hpp>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "molt/codec/msgpack.hpp"

extern char** environ;

namespace molt::testing {
namespace {
void check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string(what) + ": " + std::strerror(errno));
}
}  // namespace

WorkerProcess::WorkerProcess(const std::string& binary, const std::vector<std::string>& args,
                             const std::vector<std::string>& env) {
  int in[2], out[2], err[2];
  check(::pipe2(in, O_CLOEXEC) == 0 && ::pipe2(out, O_CLOEXEC) == 0 && ::pipe2(err, O_CLOEXEC) == 0,
        "pipe2");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in[0], STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err[1], STDERR_FILENO);

  std::vector<std::string> argv_text{binary};
  argv_text.insert(argv_text.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_text) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_text;
  for (char** e = environ; *e; ++e) env_text.emplace_back(*e);
  env_text.insert(env_text.end(), env.begin(), env.end());
  std::vector<char*> envp;
  for (auto& e : env_text) envp.push_back(e.data());
  envp.push_back(nullptr);

  const int rc = posix_spawn(&pid_, binary.c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  if (rc != 0) throw std::runtime_error("posix_spawn " + binary + ": " + std::strerror(rc));
  in_fd_ = in[1];
  out_fd_ = out[0];
  err_fd_ = err[0];
  ::fcntl(err_fd_, F_SETFL, O_NONBLOCK);
}

WorkerProcess::~WorkerProcess() {
  if (in_fd_ >= 0) ::close(in_fd_);
  if (!exit_code_ && pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  if (out_fd_ >= 0) ::close(out_fd_);
  if (err_fd_ >= 0) ::close(err_fd_);
}

void WorkerProcess::send_raw(std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(in_fd_, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    check(n > 0, "write to worker");
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
}

void WorkerProcess::send(const ipc::Request& request, ipc::Wire wire) {
  std::string frame;
  ipc::append_request_frame(frame, request, wire);
  send_raw(frame);
}

std::optional<std::string> WorkerProcess::receive_frame(std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (auto event = reader_.next()) return std::string(event->bytes);
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd p{out_fd_, POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return std::nullopt;
    auto room = reader_.prepare();
    const ssize_t n = ::read(out_fd_, room.data(), room.size());
    if (n <= 0) return std::nullopt;
    reader_.commit(static_cast<std::size_t>(n));
  }
}

std::optional<ipc::Response> WorkerProcess::receive(std::chrono::milliseconds timeout,
                                                    ipc::Wire* wire) {
  auto body = receive_frame(timeout);
  if (!body) return std::nullopt;
  return ipc::decode_response(*body, wire);
}

void WorkerProcess::close_stdin() {
  if (in_fd_ >= 0) ::close(in_fd_);
  in_fd_ = -1;
}

void WorkerProcess::signal(int sig) {
  ::kill(pid_, sig);
}

std::optional<int> WorkerProcess::wait_exit(std::chrono::milliseconds timeout) {
  if (exit_code_) return exit_code_;
  const auto until = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      return exit_code_;
    }
    if (std::chrono::steady_clock::now() >= until) return std::nullopt;
    ::usleep(2000);
  }
}

std::string WorkerProcess::stderr_text() {
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(err_fd_, buf, sizeof buf);
    if (n <= 0) break;
    stderr_.append(buf, static_cast<std::size_t>(n));
  }
  return stderr_;
}

ipc::Request make_request(std::uint64_t id, std::string entry, ipc::Codec codec,
                          std::string payload, std::uint64_t timeout_ms) {
  ipc::Request r;
  r.request_id = id;
  r.entry = std::move(entry);
  r.codec = codec;
  r.payload = std::move(payload);
  r.timeout_ms = timeout_ms;
  return r;
}

std::string msgpack_of(std::string_view json_text) {
  return codec::to_msgpack(boost::json::parse(json_text));
}

}  // namespace molt::testing
