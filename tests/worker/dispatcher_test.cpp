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
