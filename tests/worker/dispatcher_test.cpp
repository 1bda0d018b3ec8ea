#include "molt/worker/dispatcher.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <latch>
#include <thread>

#include "collecting_sink.hpp"

namespace molt::worker {
namespace {

using namespace std::chrono_literals;
using core::StatusCode;
using ipc::Codec;
using testing::CollectingSink;

// A gate the test opens to let blocked handlers finish.
struct Gate {
  std::mutex mutex;
  std::condition_variable cv;
  bool open = false;
  std::atomic<int> waiting{0};
  void wait(ExportContext& ctx) {
    ++waiting;
    std::unique_lock lock(mutex);
    while (!open) {
      cv.wait_for(lock, 1ms);
      lock.unlock();
      ctx.check();
      lock.lock();
    }
  }
  void release() {
    std::lock_guard lock(mutex);
    open = true;
    cv.notify_all();
  }
};

class DispatcherTest : public ::testing::Test {
 protected:
  DispatcherTest() {
    registry.add_raw("echo", Codec::Raw, Codec::Raw,
                     [](std::string_view p, ExportContext&) { return std::string(p); });
    registry.add_raw("gate", Codec::Raw, Codec::Raw, [this](std::string_view, ExportContext& ctx) {
      gate.wait(ctx);
      return std::string("through");
    });
    registry.add_raw("metric", Codec::Raw, Codec::Raw, [](std::string_view, ExportContext& ctx) {
      ctx.add_metric("db_rows", std::int64_t{42});
      return std::string();
    });
    registry.add_raw("unreachable", Codec::Raw, Codec::Raw, [](std::string_view, ExportContext&) {
      throw core::Error(StatusCode::InternalError,
                        "cannot connect to db.internal:5432 as app_owner");
      return std::string();
    });
    table = ExportTable::all_of(registry);
  }

  std::unique_ptr<Dispatcher> make(std::size_t threads, std::size_t max_queue) {
    return std::make_unique<Dispatcher>(*table, DispatcherOptions{threads, max_queue}, sink);
  }

  static ipc::Request request(std::uint64_t id, std::string entry, std::uint64_t timeout_ms = 0,
                              Codec codec = Codec::Raw) {
    ipc::Request r;
    r.request_id = id;
    r.entry = std::move(entry);
    r.codec = codec;
    r.timeout_ms = timeout_ms;
    return r;
  }

  void wait_until_running(int n) {
    for (int i = 0; i < 2000 && gate.waiting.load() < n; ++i) std::this_thread::sleep_for(1ms);
    ASSERT_EQ(gate.waiting.load(), n);
  }

  ExportRegistry registry;
  std::optional<ExportTable> table;
  CollectingSink sink;
  Gate gate;
};

TEST_F(DispatcherTest, AnswersThroughTheSinkWithTimingMetrics) {
  auto d = make(1, 4);
  auto req = request(1, "echo");
  req.payload = "abc";
  EXPECT_FALSE(d->submit(req, ipc::Wire::MsgPack, core::Clock::now()));
  auto answers = sink.wait_for(1);
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].status, StatusCode::Ok);
  EXPECT_EQ(answers[0].payload, "abc");
  std::set<std::string> keys;
  for (const auto& [k, v] : answers[0].metrics) keys.insert(k);
  for (auto key :
       {"queue_us", "exec_us", "handler_us", "decode_us", "queue_ms", "exec_ms", "queue_depth"})
    EXPECT_TRUE(keys.contains(key)) << key;
}

TEST_F(DispatcherTest, HandlerMetricsTravelWithTheAnswer) {
  auto d = make(1, 4);
  d->submit(request(1, "metric"), ipc::Wire::Json, core::Clock::now());
  auto answers = sink.wait_for(1);
  ASSERT_EQ(answers.size(), 1u);
  bool found = false;
  for (const auto& [k, v] : answers[0].metrics)
    found |= k == "db_rows" && std::get<std::int64_t>(v) == 42;
  EXPECT_TRUE(found);
}

// An answer larger than the frame limit would make the peer refuse the frame (and kill the
// worker, as molt_accel does): an InternalError saying so goes instead.
TEST_F(DispatcherTest, AnAnswerOverTheFrameLimitBecomesAnError) {
  DispatcherOptions options{1, 4};
  options.max_frame = 4096;
  Dispatcher d(*table, options, sink);
  auto big = request(1, "echo");
  big.payload = std::string(8192, 'x');
  auto small = request(2, "echo");
  small.payload = std::string(1024, 'y');
  d.submit(big, ipc::Wire::MsgPack, core::Clock::now());
  d.submit(small, ipc::Wire::MsgPack, core::Clock::now());
  auto answers = sink.wait_for(2);
  ASSERT_EQ(answers.size(), 2u);
  for (const auto& answer : answers) {
    if (answer.request_id == 1) {
      EXPECT_EQ(answer.status, StatusCode::InternalError);
      EXPECT_NE(answer.error.find("exceeds the frame limit of 4096 bytes"), std::string::npos)
          << answer.error;
    } else {
      EXPECT_EQ(answer.status, StatusCode::Ok);
      EXPECT_EQ(answer.payload.size(), 1024u);
    }
  }
}

// Payload bytes are held from admission until the handler lets go, also after an answer (a
// cancelled handler may still run); past the limit a request is Busy unless it is alone.
TEST_F(DispatcherTest, PendingPayloadBytesAreBoundedUntilTheHandlerLetsGo) {
  std::atomic<bool> let_go{false};
  registry.add_raw("stubborn", Codec::Raw, Codec::Raw, [&](std::string_view, ExportContext&) {
    ++gate.waiting;
    while (!let_go) std::this_thread::sleep_for(1ms);  // ignores its token
    return std::string();
  });
  table = ExportTable::all_of(registry);
  DispatcherOptions options{2, 4};
  options.max_pending_bytes = 1000;
  Dispatcher d(*table, options, sink);
  auto sized = [](std::uint64_t id, std::string entry, std::size_t bytes) {
    auto r = request(id, std::move(entry));
    r.payload.assign(bytes, 'x');
    return r;
  };

  EXPECT_FALSE(d.submit(sized(1, "stubborn", 600), ipc::Wire::MsgPack, core::Clock::now()));
  wait_until_running(1);
  const auto over = d.submit(sized(2, "echo", 500), ipc::Wire::MsgPack, core::Clock::now());
  ASSERT_TRUE(over);
  EXPECT_EQ(over->status, StatusCode::Busy);
  EXPECT_NE(over->error.find("worker holds 600 bytes of requests; this one's 500 would pass its "
                             "limit of 1000 (--max-pending-bytes)"),
            std::string::npos)
      << over->error;
  EXPECT_EQ(d.pending_bytes(), 600u);

  // Answered, but its handler still runs: its bytes stay held.
  EXPECT_TRUE(d.cancel(1));
  ASSERT_EQ(sink.wait_for(1).size(), 1u);
  EXPECT_EQ(d.pending_bytes(), 600u);
  EXPECT_FALSE(d.submit(sized(3, "echo", 400), ipc::Wire::MsgPack, core::Clock::now()));
  ASSERT_EQ(sink.wait_for(2).size(), 2u);
  for (int i = 0; i < 2000 && d.pending_bytes() > 600; ++i) std::this_thread::sleep_for(1ms);
  EXPECT_EQ(d.pending_bytes(), 600u);
  const auto still = d.submit(sized(4, "echo", 500), ipc::Wire::MsgPack, core::Clock::now());
  ASSERT_TRUE(still);
  EXPECT_EQ(still->status, StatusCode::Busy);

  let_go = true;
  for (int i = 0; i < 2000 && d.pending_bytes() > 0; ++i) std::this_thread::sleep_for(1ms);
  EXPECT_EQ(d.pending_bytes(), 0u);
  // Alone, a request larger than the limit is admitted: the frame limit bounds it.
  EXPECT_FALSE(d.submit(sized(5, "echo", 5000), ipc::Wire::MsgPack, core::Clock::now()));
  const auto answers = sink.wait_for(3);
  ASSERT_EQ(answers.size(), 3u);
  EXPECT_EQ(answers[2].request_id, 5u);
  EXPECT_EQ(answers[2].status, StatusCode::Ok);
  EXPECT_EQ(answers[2].payload.size(), 5000u);
}

// The bytes are let go before the answer leaves: a caller that sends one request at a time,
// each on reading the previous answer, never finds the last one still held.
TEST_F(DispatcherTest, OneRequestAtATimeNeverFindsThePreviousOneHeld) {
  DispatcherOptions options{2, 4};
  options.max_pending_bytes = 1000;
  Dispatcher d(*table, options, sink);
  for (std::uint64_t id = 1; id <= 300; ++id) {
    auto r = request(id, "echo");
    r.payload.assign(600, 'x');
    const auto refused = d.submit(r, ipc::Wire::MsgPack, core::Clock::now());
    ASSERT_FALSE(refused) << "request " << id << ": " << refused->error;
    ASSERT_EQ(sink.wait_for(id).size(), id);
  }
}

// An InternalError's own text (hosts, users, files) is for the log; the caller learns which
// export failed and where to look. Other statuses keep their text: it is the caller's to act on.
TEST_F(DispatcherTest, AnInternalErrorsTextStaysInTheLog) {
  auto d = make(1, 4);
  d->submit(request(1, "unreachable"), ipc::Wire::MsgPack, core::Clock::now());
  auto answers = sink.wait_for(1);
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].status, StatusCode::InternalError);
  EXPECT_EQ(answers[0].error, "export 'unreachable' failed (the worker's log says why)");
}

TEST_F(DispatcherTest, UnknownEntryAndWrongCodecAreImmediateInvalidInput) {
  auto d = make(1, 4);
  auto unknown = d->submit(request(1, "nope"), ipc::Wire::MsgPack, core::Clock::now());
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, StatusCode::InvalidInput);
  auto wrong =
      d->submit(request(2, "echo", 0, Codec::Json), ipc::Wire::MsgPack, core::Clock::now());
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, StatusCode::InvalidInput);
  EXPECT_NE(wrong->error.find("takes codec 'raw', not 'json'"), std::string::npos) << wrong->error;
}

TEST_F(DispatcherTest, BusyWhenThreadsAndQueueAreFullAndFreedSlotsAreReused) {
  auto d = make(1, 1);
  EXPECT_FALSE(d->submit(request(1, "gate"), ipc::Wire::MsgPack, core::Clock::now()));
  wait_until_running(1);
  EXPECT_FALSE(d->submit(request(2, "echo"), ipc::Wire::MsgPack, core::Clock::now()));
  auto busy = d->submit(request(3, "echo"), ipc::Wire::MsgPack, core::Clock::now());
  ASSERT_TRUE(busy);
  EXPECT_EQ(busy->status, StatusCode::Busy);
  // Cancelling the queued request frees its slot at once.
  EXPECT_TRUE(d->cancel(2));
  EXPECT_FALSE(d->submit(request(4, "echo"), ipc::Wire::MsgPack, core::Clock::now()));
  gate.release();
  sink.wait_for(3);
  EXPECT_EQ(sink.answer_for(1)->status, StatusCode::Ok);
  EXPECT_EQ(sink.answer_for(2)->status, StatusCode::Cancelled);
  EXPECT_EQ(sink.answer_for(4)->status, StatusCode::Ok);
  EXPECT_FALSE(sink.answer_for(3));  // Busy was returned to the caller, not sent
}

TEST_F(DispatcherTest, DuplicateInFlightIdIsRefusedButMayBeReusedAfterTheAnswer) {
  auto d = make(1, 4);
  d->submit(request(7, "gate"), ipc::Wire::MsgPack, core::Clock::now());
  auto dup = d->submit(request(7, "echo"), ipc::Wire::MsgPack, core::Clock::now());
  ASSERT_TRUE(dup);
  EXPECT_EQ(dup->status, StatusCode::InvalidInput);
  gate.release();
  sink.wait_for(1);
  EXPECT_FALSE(d->submit(request(7, "echo"), ipc::Wire::MsgPack, core::Clock::now()));
  EXPECT_EQ(sink.wait_for(2).size(), 2u);
}

TEST_F(DispatcherTest, CancelOfRunningRequestAnswersOnceAndStopsTheHandler) {
  auto d = make(1, 4);
  d->submit(request(1, "gate"), ipc::Wire::MsgPack, core::Clock::now());
  wait_until_running(1);
  EXPECT_TRUE(d->cancel(1));
  EXPECT_FALSE(d->cancel(1));  // already answered
  auto answers = sink.wait_for(1);
  EXPECT_EQ(answers[0].status, StatusCode::Cancelled);
  // The handler saw the cancellation: the pool thread is free for new work.
  d->submit(request(2, "echo"), ipc::Wire::MsgPack, core::Clock::now());
  EXPECT_EQ(sink.wait_for(2).size(), 2u);
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(sink.size(), 2u);  // no second answer for request 1
}

TEST_F(DispatcherTest, DeadlineCountsFromArrivalNotFromSubmission) {
  auto d = make(1, 4);
  const auto long_ago = core::Clock::now() - 1s;
  d->submit(request(1, "echo", /*timeout_ms=*/100), ipc::Wire::MsgPack, long_ago);
  auto answers = sink.wait_for(1);
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].status, StatusCode::Timeout);
}

// From a fault review: a write answered Timeout at its deadline that went on and committed
// left no trace; the operator looking into the Timeout finds its end in the log.
TEST_F(DispatcherTest, AHandlerThatEndsAfterItsAnswerSaysHowInTheLog) {
  registry.add_raw("late", Codec::Raw, Codec::Raw, [](std::string_view p, ExportContext&) {
    std::this_thread::sleep_for(150ms);  // past its deadline, not looking
    if (p == "committed")
      throw core::Error(StatusCode::Timeout,
                        "query deadline exceeded; the statement had been committed before it "
                        "could be stopped");
    if (p == "stopped") throw core::Error(StatusCode::Timeout, "query deadline exceeded");
    return std::string("written");
  });
  table = ExportTable::all_of(registry);
  auto d = make(1, 4);
  ::testing::internal::CaptureStderr();
  std::uint64_t id = 0;
  for (const char* payload : {"done", "committed", "stopped"}) {
    auto req = request(++id, "late", /*timeout_ms=*/50);
    req.payload = payload;
    d->submit(req, ipc::Wire::MsgPack, core::Clock::now());
    const auto answers = sink.wait_for(id);
    ASSERT_EQ(answers.size(), id);
    EXPECT_EQ(answers.back().status, StatusCode::Timeout);
    EXPECT_TRUE(d->shutdown(2s));  // waits for the handler's end
    d = make(1, 4);
  }
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(log.find("export 'late' (request 1) ended after its caller was answered: Ok, its "
                     "work is done"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("ended after its caller was answered: query deadline exceeded; the "
                     "statement had been committed"),
            std::string::npos)
      << log;
  EXPECT_EQ(log.find("answered: query deadline exceeded\n"), std::string::npos) << log;
}

TEST_F(DispatcherTest, ShutdownCancelsQueuedAndRunningWorkAndRefusesNewWork) {
  auto d = make(1, 4);
  d->submit(request(1, "gate"), ipc::Wire::MsgPack, core::Clock::now());
  wait_until_running(1);
  d->submit(request(2, "echo"), ipc::Wire::MsgPack, core::Clock::now());
  EXPECT_TRUE(d->shutdown(2s));
  sink.wait_for(2);
  EXPECT_EQ(sink.answer_for(1)->status, StatusCode::Cancelled);
  EXPECT_EQ(sink.answer_for(2)->status, StatusCode::Cancelled);
  auto late = d->submit(request(3, "echo"), ipc::Wire::MsgPack, core::Clock::now());
  ASSERT_TRUE(late);
  EXPECT_EQ(late->status, StatusCode::Cancelled);
  EXPECT_EQ(d->pending(), 0u);
}

// A handler answered for (here cancelled) that ignores its token keeps its thread: shutdown
// gives up on it when the grace ends, rather than join it for as long as it runs.
TEST_F(DispatcherTest, ShutdownKeepsItsGraceForAHandlerThatIgnoresCancellation) {
  std::atomic<bool> started{false}, release{false};
  registry.add_raw("stubborn", Codec::Raw, Codec::Raw, [&](std::string_view, ExportContext&) {
    started = true;
    for (int i = 0; i < 5000 && !release; ++i) std::this_thread::sleep_for(1ms);
    return std::string();
  });
  table = ExportTable::all_of(registry);
  auto d = make(1, 4);
  d->submit(request(1, "stubborn"), ipc::Wire::MsgPack, core::Clock::now());
  for (int i = 0; i < 2000 && !started; ++i) std::this_thread::sleep_for(1ms);
  ASSERT_TRUE(started);
  EXPECT_TRUE(d->cancel(1));
  const auto answers = sink.wait_for(1);
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].status, StatusCode::Cancelled);
  const auto begin = std::chrono::steady_clock::now();
  EXPECT_FALSE(d->shutdown(200ms));
  EXPECT_LT(std::chrono::steady_clock::now() - begin, 2s);
  release = true;  // the thread ends, so the pool can be joined when `d` goes
}

TEST_F(DispatcherTest, ConcurrentCancelsTimeoutsAndCompletionsAnswerEachRequestExactlyOnce) {
  auto d = make(2, 10000);
  constexpr std::uint64_t kCount = 2000;
  std::thread canceller([&] {
    for (std::uint64_t id = 1; id <= kCount; id += 3) d->cancel(id);
  });
  for (std::uint64_t id = 1; id <= kCount; ++id)
    d->submit(request(id, "echo", id % 5 == 0 ? 1 : 0), ipc::Wire::MsgPack, core::Clock::now());
  canceller.join();
  auto answers = sink.wait_for(kCount);
  std::this_thread::sleep_for(20ms);
  answers = sink.wait_for(kCount);
  ASSERT_EQ(answers.size(), kCount);
  std::set<std::uint64_t> ids;
  for (const auto& r : answers) EXPECT_TRUE(ids.insert(r.request_id).second) << r.request_id;
}

}  // namespace
}  // namespace molt::worker
