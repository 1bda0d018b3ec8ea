#pragma once
// A command started with its stdin and stdout on pipes to us: the way molt_accel runs a worker.

#include <sys/resource.h>
#include <sys/types.h>

#include <string>
#include <vector>

namespace molt::bench {

struct ChildExit {
  int status = 0;  // as waitpid() reports it
  rusage usage{};  // the child's CPU time over its whole life
};

class ChildProcess {
 public:
  // Starts argv[0] (looked up in PATH) with argv. The child's stderr goes to ours when
  // `show_stderr`, else to /dev/null. Throws std::runtime_error when it cannot start.
  ChildProcess(const std::vector<std::string>& argv, bool show_stderr);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  int to_child() const { return to_child_; }      // the child's stdin; non-blocking
  int from_child() const { return from_child_; }  // the child's stdout; blocking

  // Closes the child's stdin (its signal to finish), discards what it still writes, and
  // reaps it.
  ChildExit finish();

 private:
  pid_t pid_ = -1;
  int to_child_ = -1;
  int from_child_ = -1;
};

// Splits a command line on spaces (no quoting: the commands here are paths and flags).
std::vector<std::string> split_command(const std::string& line);

}  // namespace molt::bench
