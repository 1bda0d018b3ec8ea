#include "child_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>
#include <stdexcept>

extern char** environ;

namespace molt::bench {

namespace {
[[noreturn]] void fail(const std::string& what, int error) {
  throw std::runtime_error(what + ": " + std::strerror(error));
}
}  // namespace

ChildProcess::ChildProcess(const std::vector<std::string>& argv, bool show_stderr) {
  if (argv.empty()) throw std::runtime_error("empty command");
  // O_CLOEXEC keeps these ends out of the child; dup2 below gives it the two it needs.
  int request_pipe[2], response_pipe[2];
  if (::pipe2(request_pipe, O_CLOEXEC) != 0) fail("pipe", errno);
  if (::pipe2(response_pipe, O_CLOEXEC) != 0) fail("pipe", errno);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, request_pipe[0], STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, response_pipe[1], STDOUT_FILENO);
  if (!show_stderr)
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);

  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const int rc = ::posix_spawnp(&pid_, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(request_pipe[0]);
  ::close(response_pipe[1]);
  to_child_ = request_pipe[1];
  from_child_ = response_pipe[0];
  if (rc != 0) {
    ::close(to_child_);
    ::close(from_child_);
    fail("cannot start " + argv[0], rc);
  }
  // Writes never block: with many requests in flight, a blocked write while the child is
  // blocked writing its answers to us would deadlock both.
  ::fcntl(to_child_, F_SETFL, ::fcntl(to_child_, F_GETFL) | O_NONBLOCK);
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0) finish();
}

ChildExit ChildProcess::finish() {
  if (to_child_ >= 0) ::close(to_child_);
  to_child_ = -1;
  // Bounded: a child that neither writes nor exits within 10 s is killed.
  char sink[64 * 1024];
  for (bool killed = false;;) {
    pollfd readable{from_child_, POLLIN, 0};
    if (::poll(&readable, 1, 10'000) == 0 && !killed) {
      ::kill(pid_, SIGKILL);
      killed = true;
      continue;
    }
    const ssize_t n = ::read(from_child_, sink, sizeof sink);
    if (n == 0 || (n < 0 && errno != EINTR)) break;
  }
  ::close(from_child_);
  from_child_ = -1;
  ChildExit exit;
  while (::wait4(pid_, &exit.status, 0, &exit.usage) < 0 && errno == EINTR) {
  }
  pid_ = -1;
  return exit;
}

std::vector<std::string> split_command(const std::string& line) {
  std::vector<std::string> words;
  std::istringstream in(line);
  for (std::string word; in >> word;) words.push_back(word);
  return words;
}

}  // namespace molt::bench
