// worker_load: a closed-loop load client for frame peers on pipes, the way molt_accel drives a
// worker. It starts the command, keeps K requests in flight (each answer is replaced by a new
// request at once), and reports calls/s and latency percentiles.
//
// Modes:
//   echo        4-byte frames against bench/echo_floor: the floor of the pipe round trip
//   ping        the worker's __ping__ (answered inline, outside the queue)
//   list_items  the worker's list_items with `--items` rows (msgpack in, json out)
//
//   worker_load --modes echo,ping,list_items --repeat 3 --echo <build>/bench/echo_floor
//               --worker <build>/apps/molt-worker/molt-worker
//
// Each run starts a fresh process. Output: one `run` line per run, then one `median` line per
// mode and the ratios to the echo floor (median of each round's ratio: the rounds interleave
// the modes, so a ratio compares runs made seconds apart on the same machine state).

#include <poll.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "child_process.hpp"
#include "molt/codec/json.hpp"
#include "molt/codec/msgpack.hpp"
#include "molt/ipc/envelope.hpp"
#include "molt/ipc/frame.hpp"

namespace {

using namespace molt;
using Clock = std::chrono::steady_clock;

struct Options {
  std::vector<std::string> modes{"echo", "ping", "list_items"};
  std::string worker_command;
  std::string echo_command;
  std::size_t inflight = 64;
  double seconds = 3.0;
  std::size_t calls = 0;  // 0: run for `seconds`
  double warmup = 0.5;
  int repeat = 1;
  int items = 50;
  std::string wire = "msgpack";
  bool show_child_stderr = false;
};

// Request ids carry the slot they occupy: id = generation << 16 | slot.
constexpr std::uint64_t kSlotBits = 16;
constexpr std::uint64_t kSlotMask = (1u << kSlotBits) - 1;

// How one mode writes a request and reads an answer.
class Protocol {
 public:
  Protocol(const std::string& mode, const Options& options) : mode_(mode) {
    wire_ = options.wire == "json" ? ipc::Wire::Json : ipc::Wire::MsgPack;
    if (mode == "ping") {
      request_.entry = ipc::kPingEntry;
      request_.codec = ipc::Codec::Raw;
    } else if (mode == "list_items") {
      request_.entry = "list_items";
      request_.codec = ipc::Codec::MsgPack;
      request_.payload =
          codec::to_msgpack(std::map<std::string, int>{{"user_id", 7}, {"limit", options.items}});
      expected_items_ = static_cast<std::size_t>(options.items);
    } else if (mode != "echo") {
      throw std::runtime_error("unknown mode '" + mode + "' (echo, ping or list_items)");
    }
  }

  void append_request(std::string& out, std::uint64_t id) {
    if (mode_ == "echo") {
      const std::uint32_t v = static_cast<std::uint32_t>(id);
      const char body[4] = {static_cast<char>(v), static_cast<char>(v >> 8),
                            static_cast<char>(v >> 16), static_cast<char>(v >> 24)};
      ipc::append_frame(out, std::string_view(body, 4));
      return;
    }
    request_.request_id = id;
    ipc::append_request_frame(out, request_, wire_);
  }

  // The answer's request id (as many low bits as the mode keeps); `ok` false on a non-Ok status.
  std::uint64_t read_answer(std::string_view body, bool& ok) {
    if (mode_ == "echo") {
      if (body.size() != 4) throw std::runtime_error("echo answer is not 4 bytes");
      const auto* b = reinterpret_cast<const unsigned char*>(body.data());
      ok = true;
      return b[0] | (b[1] << 8) | (b[2] << 16) | (static_cast<std::uint32_t>(b[3]) << 24);
    }
    const ipc::Response r = ipc::decode_response(body);
    ok = r.status == core::StatusCode::Ok;
    if (!ok && first_error_.empty())
      first_error_ = std::string(core::to_string(r.status)) + ": " + r.error;
    if (ok && expected_items_ > 0 && !checked_payload_) check_list_items(r.payload);
    return r.request_id;
  }

  const std::string& first_error() const { return first_error_; }

 private:
  // Once per run: the answer really is the list asked for, not a fast refusal.
  void check_list_items(std::string_view payload) {
    const auto doc = codec::parse_json(payload);
    const auto* items = doc.is_object() ? doc.get_object().if_contains("items") : nullptr;
    if (!items || !items->is_array() || items->get_array().size() != expected_items_)
      throw std::runtime_error("list_items answer does not hold " +
                               std::to_string(expected_items_) + " items");
    checked_payload_ = true;
  }

  std::string mode_;
  ipc::Wire wire_ = ipc::Wire::MsgPack;
  ipc::Request request_;
  std::size_t expected_items_ = 0;
  bool checked_payload_ = false;
  std::string first_error_;
};

struct RunResult {
  std::string mode;
  std::size_t calls = 0;  // answers inside the measured window
  double seconds = 0;
  double calls_per_s = 0;
  double p50_us = 0, p99_us = 0;
  std::size_t errors = 0;
  double child_cpu_us = 0;   // the peer's user+sys CPU per answer (whole run)
  double client_cpu_us = 0;  // ours, per answer
};

double percentile_us(std::vector<std::int64_t>& ns, double q) {
  if (ns.empty()) return 0;
  const auto at = static_cast<std::size_t>(q * static_cast<double>(ns.size() - 1));
  std::nth_element(ns.begin(), ns.begin() + static_cast<std::ptrdiff_t>(at), ns.end());
  return static_cast<double>(ns[at]) / 1000.0;
}

double cpu_us(const rusage& u) {
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e6 +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

// Writes what the pipe takes now; the rest waits for POLLOUT.
void flush(int fd, std::string& pending) {
  while (!pending.empty()) {
    const ssize_t n = ::write(fd, pending.data(), pending.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return;
      throw std::runtime_error("writing to the child failed (did it exit?)");
    }
    pending.erase(0, static_cast<std::size_t>(n));
  }
}

RunResult run_once(const std::string& mode, const Options& o) {
  const std::string& command = mode == "echo" ? o.echo_command : o.worker_command;
  if (command.empty())
    throw std::runtime_error("mode " + mode + " needs --" + (mode == "echo" ? "echo" : "worker"));
  Protocol protocol(mode, o);
  rusage self_before{};
  ::getrusage(RUSAGE_SELF, &self_before);
  bench::ChildProcess child(bench::split_command(command), o.show_child_stderr);

  const std::size_t k = o.inflight;
  std::vector<Clock::time_point> sent_at(k);
  std::vector<std::uint64_t> slot_id(k);
  std::vector<std::int64_t> latencies;
  latencies.reserve(1 << 20);
  std::uint64_t generation = 0;
  std::string pending;
  auto send = [&](std::size_t slot, Clock::time_point now) {
    slot_id[slot] = (++generation << kSlotBits) | slot;
    sent_at[slot] = now;
    protocol.append_request(pending, slot_id[slot]);
  };

  const Clock::time_point start = Clock::now();
  const auto measure_from =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.warmup));
  const auto stop_at = measure_from + std::chrono::duration_cast<Clock::duration>(
                                          std::chrono::duration<double>(o.seconds));
  Clock::time_point measure_to = stop_at;
  for (std::size_t slot = 0; slot < k; ++slot) send(slot, start);
  std::size_t in_flight = k, answered = 0, measured = 0, errors = 0;
  bool issuing = true;

  ipc::FrameReader reader;
  while (in_flight > 0) {
    flush(child.to_child(), pending);
    pollfd fds[2] = {{child.from_child(), POLLIN, 0}, {child.to_child(), POLLOUT, 0}};
    const int ready = ::poll(fds, pending.empty() ? 1 : 2, 10'000);
    if (ready == 0) throw std::runtime_error("no answer for 10 s");
    if (ready < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error("poll failed");
    }
    if (!(fds[0].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    auto room = reader.prepare();
    const ssize_t n = ::read(child.from_child(), room.data(), room.size());
    if (n == 0) throw std::runtime_error("the child closed its output (did it exit?)");
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error("reading from the child failed");
    }
    reader.commit(static_cast<std::size_t>(n));

    // One clock reading per read: answers that arrived together finished together.
    const Clock::time_point now = Clock::now();
    if (issuing && now >= stop_at) {
      issuing = false;
      measure_to = now;
    }
    while (auto event = reader.next()) {
      if (event->kind != ipc::FrameEvent::Kind::Frame)
        throw std::runtime_error("oversized answer frame");
      bool ok = false;
      const std::uint64_t id = protocol.read_answer(event->bytes, ok);
      const std::size_t slot = id & kSlotMask;
      // echo keeps 32 bits of the id; compare what both sides have.
      const std::uint64_t mask = mode == "echo" ? 0xffffffffu : ~std::uint64_t{0};
      if (slot >= k || (slot_id[slot] & mask) != id)
        throw std::runtime_error("answer for an id that is not in flight: " + std::to_string(id));
      slot_id[slot] = ~std::uint64_t{0};
      --in_flight;
      ++answered;
      if (!ok) ++errors;
      if (now >= measure_from && now <= measure_to) {
        ++measured;
        // Latency only of requests sent inside the window, so warm-up queues do not count.
        if (sent_at[slot] >= measure_from)
          latencies.push_back(
              std::chrono::duration_cast<std::chrono::nanoseconds>(now - sent_at[slot]).count());
        if (issuing && o.calls > 0 && measured >= o.calls) {
          issuing = false;
          measure_to = now;
        }
      }
      if (issuing) {
        send(slot, now);
        ++in_flight;
      }
    }
  }

  RunResult r;
  r.mode = mode;
  r.calls = measured;
  r.errors = errors;
  r.seconds = std::chrono::duration<double>(measure_to - measure_from).count();
  r.calls_per_s = r.seconds > 0 ? static_cast<double>(r.calls) / r.seconds : 0;
  r.p50_us = percentile_us(latencies, 0.50);
  r.p99_us = percentile_us(latencies, 0.99);

  rusage self_after{};
  ::getrusage(RUSAGE_SELF, &self_after);
  r.client_cpu_us = (cpu_us(self_after) - cpu_us(self_before)) / static_cast<double>(answered);
  const auto exit = child.finish();
  r.child_cpu_us = cpu_us(exit.usage) / static_cast<double>(answered);
  if (!WIFEXITED(exit.status) || WEXITSTATUS(exit.status) != 0)
    std::fprintf(stderr, "worker_load: %s: the child did not exit cleanly (status %d)\n",
                 mode.c_str(), exit.status);
  if (errors > 0)
    std::fprintf(stderr, "worker_load: %s: %zu answers were not Ok; first: %s\n", mode.c_str(),
                 errors, protocol.first_error().c_str());
  return r;
}

void print_run(const RunResult& r, std::size_t k) {
  std::printf(
      "run    mode=%-10s k=%zu calls=%zu seconds=%.2f calls_per_s=%.0f p50_us=%.1f p99_us=%.1f "
      "errors=%zu child_cpu_us_per_call=%.2f client_cpu_us_per_call=%.2f\n",
      r.mode.c_str(), k, r.calls, r.seconds, r.calls_per_s, r.p50_us, r.p99_us, r.errors,
      r.child_cpu_us, r.client_cpu_us);
  std::fflush(stdout);
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t mid = v.size() / 2;
  return v.size() % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("worker_load: closed-loop load on a frame peer over pipes", "worker_load");
  Options o;
  app.add_option("--modes", o.modes, "modes to run, in this order each round")
      ->delimiter(',')
      ->check(CLI::IsMember({"echo", "ping", "list_items"}));
  app.add_option("--worker", o.worker_command, "worker command line (split on spaces)");
  app.add_option("--echo", o.echo_command, "echo floor command line (split on spaces)");
  app.add_option("-k,--inflight", o.inflight, "requests kept in flight")
      ->check(CLI::Range(std::size_t{1}, std::size_t{kSlotMask + 1}));
  app.add_option("--seconds", o.seconds, "measured time per run")->check(CLI::Range(0.0, 3600.0));
  app.add_option("--calls", o.calls, "stop a run after this many measured calls (0: no limit)");
  app.add_option("--warmup", o.warmup, "seconds of each run not measured")
      ->check(CLI::Range(0.0, 60.0));
  app.add_option("--repeat", o.repeat, "rounds of all modes")->check(CLI::Range(1, 100));
  app.add_option("--items", o.items, "list_items limit")->check(CLI::Range(1, 500));
  app.add_option("--wire", o.wire, "envelope wire for ping and list_items")
      ->check(CLI::IsMember({"msgpack", "json"}));
  app.add_flag("--show-child-stderr", o.show_child_stderr, "let the child's stderr through");
  CLI11_PARSE(app, argc, argv);
  // Each mode once per round, in the order first given.
  std::vector<std::string> unique_modes;
  for (const auto& m : o.modes)
    if (std::find(unique_modes.begin(), unique_modes.end(), m) == unique_modes.end())
      unique_modes.push_back(m);
  o.modes = unique_modes;
  if (o.calls > 0 && !app.count("--seconds")) o.seconds = 3600;  // --calls alone: calls decide

  std::signal(SIGPIPE, SIG_IGN);  // a child that dies is an error message, not our death
  std::map<std::string, std::vector<RunResult>> by_mode;
  std::map<std::string, std::vector<double>> ratios;  // mode -> this round's rate / echo's
  try {
    for (int round = 0; round < o.repeat; ++round) {
      std::map<std::string, double> rate;
      for (const auto& mode : o.modes) {
        const RunResult r = run_once(mode, o);
        print_run(r, o.inflight);
        by_mode[mode].push_back(r);
        rate[mode] = r.calls_per_s;
      }
      if (rate.contains("echo") && rate["echo"] > 0)
        for (const auto& [mode, value] : rate)
          if (mode != "echo") ratios[mode].push_back(value / rate["echo"]);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "worker_load: %s\n", e.what());
    return 1;
  }

  for (const auto& mode : o.modes) {
    auto& runs = by_mode[mode];
    if (runs.empty()) continue;
    auto field = [&](auto member) {
      std::vector<double> v;
      for (const auto& r : runs) v.push_back(r.*member);
      return median(v);
    };
    std::printf(
        "median mode=%-10s k=%zu runs=%zu calls_per_s=%.0f p50_us=%.1f p99_us=%.1f "
        "child_cpu_us_per_call=%.2f\n",
        mode.c_str(), o.inflight, runs.size(), field(&RunResult::calls_per_s),
        field(&RunResult::p50_us), field(&RunResult::p99_us), field(&RunResult::child_cpu_us));
  }
  for (const auto& [mode, values] : ratios)
    std::printf("ratio  %s/echo=%.3f (median of %zu rounds)\n", mode.c_str(), median(values),
                values.size());
  return 0;
}
