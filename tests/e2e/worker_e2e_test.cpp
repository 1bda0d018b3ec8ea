// End-to-end: the real molt-worker binary over pipes, on both wires.

#include <gtest/gtest.h>
#include <signal.h>

#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "molt/codec/base64.hpp"
#include "molt/codec/json.hpp"
#include "molt/codec/msgpack.hpp"
#include "molt/codec/utf8.hpp"
#include "support/worker_process.hpp"

namespace molt::ipc {
// Names the wire in test output instead of printing its bytes.
void PrintTo(Wire wire, std::ostream* os) {
  *os << to_string(wire);
}
}  // namespace molt::ipc

namespace {

using namespace std::chrono_literals;
using molt::core::StatusCode;
using molt::ipc::Codec;
using molt::ipc::Response;
using molt::ipc::Wire;
using molt::testing::make_request;
using molt::testing::msgpack_of;
using molt::testing::WorkerProcess;
namespace json = boost::json;

constexpr auto kAnswerWait = 5s;

json::value msgpack_payload_as_json(const Response& r) {
  return molt::codec::decode_msgpack<json::value>(r.payload);
}

Response expect_answer(WorkerProcess& worker, std::chrono::milliseconds wait = kAnswerWait) {
  auto r = worker.receive(wait);
  if (!r) {
    ADD_FAILURE() << "no answer within " << wait.count() << " ms; stderr: " << worker.stderr_text();
    return {};
  }
  return *r;
}

std::int64_t metric(const Response& r, std::string_view key) {
  for (const auto& [k, v] : r.metrics)
    if (k == key && std::holds_alternative<std::int64_t>(v)) return std::get<std::int64_t>(v);
  ADD_FAILURE() << "metric " << key << " missing";
  return -1;
}

// Waits until the worker's stderr shows `text` (test exports announce that they started).
void wait_for_stderr(WorkerProcess& worker, std::string_view text) {
  const auto give_up = std::chrono::steady_clock::now() + kAnswerWait;
  while (worker.stderr_text().find(text) == std::string::npos) {
    ASSERT_LT(std::chrono::steady_clock::now(), give_up) << "never saw: " << text;
    std::this_thread::sleep_for(2ms);
  }
}

class WireTest : public ::testing::TestWithParam<Wire> {};
INSTANTIATE_TEST_SUITE_P(BothWires, WireTest, ::testing::Values(Wire::MsgPack, Wire::Json),
                         [](const auto& info) {
                           return std::string(molt::ipc::to_string(info.param));
                         });

// The payload codec that goes with a wire for entries that take "the wire's" encoding.
Codec payload_codec(Wire wire) {
  return wire == Wire::Json ? Codec::Json : Codec::MsgPack;
}

TEST_P(WireTest, PingIsAnsweredOkOnTheSameWire) {
  WorkerProcess worker(MOLT_WORKER_BINARY, {"--threads", "1"});
  worker.send(make_request(7, "__ping__", Codec::Raw), GetParam());
  Wire wire;
  auto r = worker.receive(kAnswerWait, &wire);
  ASSERT_TRUE(r);
  EXPECT_EQ(wire, GetParam());
  EXPECT_EQ(r->request_id, 7u);
  EXPECT_EQ(r->status, StatusCode::Ok);
  EXPECT_TRUE(r->payload.empty());
}

TEST_P(WireTest, ListItemsFakeDbAnswersThePythonJson) {
  WorkerProcess worker(MOLT_WORKER_BINARY, {"--threads", "2"});
  const std::string payload = msgpack_of(R"({"user_id": 7, "q": "ab", "limit": 3})");
  worker.send(make_request(1, "list_items", Codec::MsgPack, payload, 1000), GetParam());
  const Response r = expect_answer(worker);
  ASSERT_EQ(r.status, StatusCode::Ok) << r.error;
  EXPECT_EQ(r.codec, Codec::Json);
  // base = 7*1000 + len("ab") = 7002; score 0.0, 0.01, 0.02 in Python's notation.
  EXPECT_EQ(
      r.payload,
      R"({"items":[)"
      R"({"id":7002,"created_at":"2026-01-01T00:00:00Z","status":"open","title":"Item 7002","score":0.0,"unread":true},)"
      R"({"id":7003,"created_at":"2026-01-02T00:00:01Z","status":"closed","title":"Item 7003","score":0.01,"unread":false},)"
      R"({"id":7004,"created_at":"2026-01-03T00:00:02Z","status":"open","title":"Item 7004","score":0.02,"unread":false}],)"
      R"("next_cursor":"7:3","counts":{"open":2,"closed":1}})");
  for (auto key : {"queue_us", "exec_us", "handler_us", "decode_us", "queue_depth"})
    EXPECT_GE(metric(r, key), 0) << key;
}

TEST(WorkerE2E, ListItemsDefaultsAndClampsTheLimit) {
  WorkerProcess worker(MOLT_WORKER_BINARY, {});
  worker.send(make_request(1, "list_items", Codec::MsgPack, msgpack_of(R"({"user_id": -3})")));
  worker.send(make_request(2, "list_items", Codec::MsgPack,
                           msgpack_of(R"({"user_id": 3, "limit": 100000, "status": null})")));
  worker.send(
      make_request(3, "list_items", Codec::MsgPack, msgpack_of(R"({"user_id": 3, "limit": -5})")));
  std::map<std::uint64_t, json::value> answers;
  for (int i = 0; i < 3; ++i) {
    const Response r = expect_answer(worker);
    ASSERT_EQ(r.status, StatusCode::Ok) << r.error;
    answers[r.request_id] = json::parse(r.payload);
  }
  EXPECT_EQ(answers[1].at("items").as_array().size(), 50u);
  EXPECT_EQ(answers[1].at("next_cursor"), "-3:50");
  EXPECT_EQ(answers[1].at("items").at(0).at("id"), 3000);
  EXPECT_EQ(answers[2].at("items").as_array().size(), 500u);
  EXPECT_EQ(answers[3].at("items").as_array().size(), 1u);
}

TEST(WorkerE2E, ListItemsWithoutUserIdIsInvalidInputNamingTheField) {
  WorkerProcess worker(MOLT_WORKER_BINARY, {});
  worker.send(make_request(4, "list_items", Codec::MsgPack, msgpack_of(R"({"limit": 5})")));
  worker.send(make_request(5, "list_items", Codec::MsgPack, msgpack_of(R"({"user_id": "x"})")));
  std::map<std::uint64_t, Response> answers;
  for (int i = 0; i < 2; ++i) {
    Response r = expect_answer(worker);
    answers[r.request_id] = r;
  }
  EXPECT_EQ(answers[4].status, StatusCode::InvalidInput);
  EXPECT_NE(answers[4].error.find("payload.user_id"), std::string::npos) << answers[4].error;
  EXPECT_EQ(answers[5].status, StatusCode::InvalidInput);
  EXPECT_NE(answers[5].error.find("expected integer, got string"), std::string::npos)
      << answers[5].error;
}

TEST_P(WireTest, ComputeScalesAndSums) {
  WorkerProcess worker(MOLT_WORKER_BINARY, {});
  worker.send(make_request(9, "compute", Codec::MsgPack,
                           msgpack_of(R"({"values": [1, 2.5, -4], "scale": 2, "offset": 0.5})")),
              GetParam());
  const Response r = expect_answer(worker);
  ASSERT_EQ(r.status, StatusCode::Ok) << r.error;
  EXPECT_EQ(r.codec, Codec::MsgPack);
  const json::value out = msgpack_payload_as_json(r);
  EXPECT_EQ(out.at("count"), 3);
  EXPECT_DOUBLE_EQ(out.at("sum").as_double(), -0.5);
  EXPECT_EQ(molt::codec::to_json(out.at("scaled")), "[2.5,5.5,-7.5]");
}

// From a resource review: 48 MiB of small integers made compute build a 430 MB answer (29x
// the payload in memory), only for it to be refused as over the frame limit.
TEST_P(WireTest, ComputeRefusesAnAnswerOverTheFrameLimitBeforeBuildingIt) {
  WorkerProcess worker(MOLT_WORKER_BINARY, {"--max-frame-size", "8192"});
  std::string values = R"({"values": [0)";
  for (int i = 1; i < 2000; ++i) values += ",0";
  values += "]}";
  worker.send(make_request(9, "compute", Codec::MsgPack, msgpack_of(values)), GetParam());
  const Response r = expect_answer(worker);
  EXPECT_EQ(r.status, StatusCode::InvalidInput) << r.error;
  EXPECT_NE(r.error.find("values: 2000 values make an answer over the"), std::string::npos)
      << r.error;
}

TEST_P(WireTest, OffloadTableGroupsFiltersAndAggregates) {
  WorkerProcess worker(MOLT_WORKER_BINARY, {});
  const std::string input = R"({"rows": [
      {"status": "open", "score": 1, "unread": true},
      {"status": "closed", "score": 2.5, "unread": true},
      {"status": "open", "score": 3, "unread": false},
      {"status": "open", "score": 5, "unread": true}],
    "group_by": "status", "value": "score",
    "where": {"column": "unread", "op": "eq", "value": true}})";
  worker.send(make_request(3, "offload_table", Codec::Json, input), GetParam());
  const Response r = expect_answer(worker);
  ASSERT_EQ(r.status, StatusCode::Ok) << r.error;
  EXPECT_EQ(r.payload, R"({"row_count":4,"matched":3,"groups":[)"
                       R"({"key":"closed","count":1,"sum":2.5,"mean":2.5,"min":2.5,"max":2.5},)"
                       R"({"key":"open","count":2,"sum":6.0,"mean":3.0,"min":1.0,"max":5.0}]})");
}

TEST_P(WireTest, HealthSaysOk) {
  WorkerProcess worker(MOLT_WORKER_BINARY, {});
  worker.send(make_request(2, "health", Codec::Json, "{}"), GetParam());
  const Response r = expect_answer(worker);
  ASSERT_EQ(r.status, StatusCode::Ok) << r.error;
  const json::value out = json::parse(r.payload);
  EXPECT_EQ(out.at("ok"), true);
  EXPECT_EQ(out.at("version"), "0.1.0");
  EXPECT_GE(out.at("uptime_s").to_number<double>(), 0.0);
}

TEST(WorkerE2E, FullQueueAnswersBusyAtOnce) {
  WorkerProcess worker(MOLT_WORKER_BINARY, {"--threads", "1", "--max-queue", "1"},
                       {"MOLT_FAKE_DB_DELAY_MS=1500"});
  const std::string payload = msgpack_of(R"({"user_id": 1, "limit": 1})");
  for (std::uint64_t id = 1; id <= 3; ++id)
    worker.send(make_request(id, "list_items", Codec::MsgPack, payload));
  // One runs, one waits, the third is refused before either finishes.
  const auto sent = std::chrono::steady_clock::now();
  Response first = expect_answer(worker);
  EXPECT_EQ(first.request_id, 3u);
  EXPECT_EQ(first.status, StatusCode::Busy);
  EXPECT_LT(std::chrono::steady_clock::now() - sent, 1200ms);
  EXPECT_NE(first.error.find("queue is full"), std::string::npos) << first.error;
  EXPECT_EQ(expect_answer(worker).status, StatusCode::Ok);
  EXPECT_EQ(expect_answer(worker).status, StatusCode::Ok);
}

TEST(WorkerE2E, PendingPayloadBytesOverTheLimitAnswerBusy) {
  const std::string payload = msgpack_of(R"({"user_id": 1, "limit": 1})");
  WorkerProcess worker(MOLT_WORKER_BINARY,
                       {"--threads", "2", "--max-pending-bytes", std::to_string(payload.size())},
                       {"MOLT_FAKE_DB_DELAY_MS=1500"});
  worker.send(make_request(1, "list_items", Codec::MsgPack, payload));
  worker.send(make_request(2, "list_items", Codec::MsgPack, payload));
  // A thread is free, but the first request holds all the bytes allowed.
  Response first = expect_answer(worker);
  EXPECT_EQ(first.request_id, 2u);
  EXPECT_EQ(first.status, StatusCode::Busy);
  EXPECT_NE(first.error.find("--max-pending-bytes"), std::string::npos) << first.error;
  EXPECT_EQ(expect_answer(worker).status, StatusCode::Ok);
}

TEST(WorkerE2E, DeadlinePassedWhileRunningAnswersTimeoutPromptly) {
  WorkerProcess worker(MOLT_TEST_WORKER_BINARY, {"--threads", "1"});
  const auto sent = std::chrono::steady_clock::now();
  // A deadline long enough for the request to leave the queue even on a loaded machine (at
  // 100 ms it was sometimes still queued, a different answer), far shorter than the sleep.
  worker.send(make_request(11, "sleep", Codec::Raw, "10000", /*timeout_ms=*/1000));
  const Response r = expect_answer(worker);
  EXPECT_EQ(r.request_id, 11u);
  EXPECT_EQ(r.status, StatusCode::Timeout);
  EXPECT_NE(r.error.find("running"), std::string::npos) << r.error;
  EXPECT_LT(std::chrono::steady_clock::now() - sent, 5s);
  // The handler really stopped: the single thread is free long before the sleep would end.
  worker.send(make_request(12, "echo", Codec::Raw, "hi"));
  const Response next = expect_answer(worker);
  EXPECT_LT(std::chrono::steady_clock::now() - sent, 8s);
  EXPECT_EQ(next.status, StatusCode::Ok);
  EXPECT_EQ(next.payload, "hi");
}

TEST(WorkerE2E, DeadlinePassedWhileQueuedAnswersTimeout) {
  WorkerProcess worker(MOLT_TEST_WORKER_BINARY, {"--threads", "1"});
  worker.send(make_request(1, "sleep", Codec::Raw, "600"));
  worker.send(make_request(2, "echo", Codec::Raw, "late", /*timeout_ms=*/50));
  const Response r = expect_answer(worker);
  EXPECT_EQ(r.request_id, 2u);
  EXPECT_EQ(r.status, StatusCode::Timeout);
  EXPECT_NE(r.error.find("queued"), std::string::npos) << r.error;
  EXPECT_EQ(expect_answer(worker).request_id, 1u);
}

TEST_P(WireTest, CancelOfAQueuedRequest) {
  WorkerProcess worker(MOLT_TEST_WORKER_BINARY, {"--threads", "1"});
  worker.send(make_request(1, "sleep", Codec::Raw, "500"), GetParam());
  worker.send(make_request(2, "echo", Codec::Raw, "never"), GetParam());
  const std::string target = GetParam() == Wire::Json ? std::string(R"({"request_id":2})")
                                                      : msgpack_of(R"({"request_id":2})");
  worker.send(make_request(2, "__cancel__", payload_codec(GetParam()), target), GetParam());
  const Response cancelled = expect_answer(worker);
  EXPECT_EQ(cancelled.request_id, 2u);
  EXPECT_EQ(cancelled.status, StatusCode::Cancelled);
  EXPECT_TRUE(cancelled.entry.empty());
  const Response ack = expect_answer(worker);
  EXPECT_EQ(ack.request_id, 2u);
  EXPECT_EQ(ack.entry, "__cancel__");
  EXPECT_EQ(ack.status, StatusCode::Ok);
  const Response slept = expect_answer(worker);
  EXPECT_EQ(slept.request_id, 1u);
  EXPECT_EQ(slept.status, StatusCode::Ok);
}

TEST(WorkerE2E, CancelOfARunningRequestStopsIt) {
  WorkerProcess worker(MOLT_TEST_WORKER_BINARY, {"--threads", "1"});
  worker.send(make_request(5, "sleep", Codec::Raw, "10000"));
  wait_for_stderr(worker, "sleep: started");
  const auto sent = std::chrono::steady_clock::now();
  worker.send(make_request(5, "__cancel__", Codec::MsgPack, msgpack_of(R"({"request_id":5})")));
  const Response r = expect_answer(worker);
  EXPECT_EQ(r.request_id, 5u);
  EXPECT_EQ(r.status, StatusCode::Cancelled);
  EXPECT_NE(r.error.find("running"), std::string::npos) << r.error;
  EXPECT_LT(std::chrono::steady_clock::now() - sent, 3s);
  EXPECT_EQ(expect_answer(worker).entry, "__cancel__");
  // The thread is free again well before the 10 s sleep would have ended.
  worker.send(make_request(6, "echo", Codec::Raw, "x"));
  EXPECT_EQ(expect_answer(worker).status, StatusCode::Ok);
  EXPECT_LT(std::chrono::steady_clock::now() - sent, 8s);
}

TEST(WorkerE2E, CancelOfAnUnknownRequestIsOnlyAcknowledged) {
  WorkerProcess worker(MOLT_TEST_WORKER_BINARY, {});
  worker.send(make_request(99, "__cancel__", Codec::MsgPack, msgpack_of(R"({"request_id":99})")));
  const Response ack = expect_answer(worker);
  EXPECT_EQ(ack.entry, "__cancel__");
  EXPECT_EQ(ack.status, StatusCode::Ok);
}

TEST(WorkerE2E, HandlerExceptionIsInternalErrorWithASafeMessage) {
  WorkerProcess worker(MOLT_TEST_WORKER_BINARY, {});
  worker.send(make_request(8, "boom", Codec::Raw));
  const Response r = expect_answer(worker);
  EXPECT_EQ(r.status, StatusCode::InternalError);
  EXPECT_EQ(r.error, "export 'boom' failed (the worker's log says why)");
  EXPECT_EQ(r.error.find("hunter2"), std::string::npos);
  // The details go to the log instead, and the worker goes on.
  worker.send(make_request(9, "__ping__", Codec::Raw));
  EXPECT_EQ(expect_answer(worker).status, StatusCode::Ok);
  EXPECT_NE(worker.stderr_text().find("secret internals"), std::string::npos);
}

TEST(WorkerE2E, EndOfInputAnswersEverythingInFlightAndExitsZero) {
  WorkerProcess worker(MOLT_TEST_WORKER_BINARY, {"--threads", "1"});
  worker.send(make_request(1, "sleep", Codec::Raw, "3000"));
  worker.send(make_request(2, "sleep", Codec::Raw, "3000"));
  worker.send(make_request(3, "echo", Codec::Raw, "q"));
  wait_for_stderr(worker, "sleep: started");
  worker.close_stdin();
  std::map<std::uint64_t, StatusCode> statuses;
  for (int i = 0; i < 3; ++i) {
    const Response r = expect_answer(worker, 2s);
    statuses[r.request_id] = r.status;
  }
  EXPECT_EQ(statuses[1], StatusCode::Cancelled);
  EXPECT_EQ(statuses[2], StatusCode::Cancelled);
  EXPECT_EQ(statuses[3], StatusCode::Cancelled);
  EXPECT_EQ(worker.wait_exit(2s), 0);
}

TEST(WorkerE2E, SigtermStopsRunningWorkAnswersAndExitsZero) {
  WorkerProcess worker(MOLT_TEST_WORKER_BINARY, {"--threads", "1"});
  worker.send(make_request(1, "sleep", Codec::Raw, "5000"));
  wait_for_stderr(worker, "sleep: started");
  worker.signal(SIGTERM);
  const Response r = expect_answer(worker, 2s);
  EXPECT_EQ(r.request_id, 1u);
  EXPECT_EQ(r.status, StatusCode::Cancelled);
  EXPECT_EQ(worker.wait_exit(2s), 0);
}

TEST(WorkerE2E, AHandlerThatIgnoresCancellationCannotHoldShutdownPastItsGrace) {
  WorkerProcess worker(MOLT_TEST_WORKER_BINARY, {"--threads", "1", "--shutdown-grace-ms", "100"});
  worker.send(make_request(1, "spin", Codec::Raw, "10000"));
  wait_for_stderr(worker, "spin: started");
  worker.close_stdin();
  const Response r = expect_answer(worker, 2s);
  EXPECT_EQ(r.status, StatusCode::Cancelled);
  EXPECT_EQ(worker.wait_exit(2s), 0);
}

TEST(WorkerE2E, OversizedFrameIsRefusedSkippedAndTheNextRequestServed) {
  WorkerProcess worker(MOLT_WORKER_BINARY, {"--max-frame-size", "1024"});
  std::string big(4 + 5000, 'x');
  big[0] = static_cast<char>(5000 & 0xff);
  big[1] = static_cast<char>(5000 >> 8);
  big[2] = big[3] = 0;
  worker.send_raw(big);
  worker.send(make_request(2, "__ping__", Codec::Raw));
  const Response refused = expect_answer(worker);
  EXPECT_EQ(refused.request_id, 0u);
  EXPECT_EQ(refused.status, StatusCode::InvalidInput);
  EXPECT_NE(refused.error.find("5000 bytes exceeds the limit of 1024"), std::string::npos);
  const Response pong = expect_answer(worker);
  EXPECT_EQ(pong.request_id, 2u);
  EXPECT_EQ(pong.status, StatusCode::Ok);
}

// Each malformed frame gets InvalidInput; a ping after all of them proves the stream is in sync.
TEST(WorkerE2E, BadInputIsAnsweredAndTheWorkerKeepsServing) {
  WorkerProcess worker(MOLT_WORKER_BINARY, {});
  std::vector<std::string> bodies = {
      "\xc1\x00garbage",                                               // neither map nor object
      "{\"request_id\": 4, \"entry\": ",                               // truncated JSON
      "{\"entry\": \"__ping__\"}",                                     // no request_id
      "{\"request_id\": 6, \"entry\": 17}",                            // mistyped entry
      "{\"request_id\": 7, \"entry\": \"nope\", \"codec\": \"raw\"}",  // unknown entry
      "{\"request_id\": 8, \"entry\": \"list_items\", \"codec\": \"json\"}",  // wrong codec
      "{\"request_id\": 9, \"entry\": \"list_items\", \"codec\": \"msgpack\", \"payload_b64\": "
      "\"//8=\"}",
      "{\"request_id\": 10, \"entry\": \"compute\", \"codec\": \"zip\"}",        // unknown codec
      "{\"request_id\": 11, \"entry\": \"compute\", \"payload_b64\": \"***\"}",  // bad base64
      "[1, 2, 3]",
      "",
  };
  for (const auto& body : bodies) {
    std::string frame;
    molt::ipc::append_frame(frame, body);
    worker.send_raw(frame);
  }
  std::string undecodable;
  molt::ipc::append_request_frame(
      undecodable, make_request(12, "compute", Codec::MsgPack, "\x93\x01"), Wire::MsgPack);
  worker.send_raw(undecodable);
  // Envelope errors are answered inline, payload errors by a pool thread: compare as a set.
  const std::multiset<std::uint64_t> expected_ids = {0, 0, 0, 6, 7, 8, 9, 10, 11, 0, 0, 12};
  std::multiset<std::uint64_t> ids;
  for (std::size_t i = 0; i < expected_ids.size(); ++i) {
    const Response r = expect_answer(worker);
    ids.insert(r.request_id);
    EXPECT_EQ(r.status, StatusCode::InvalidInput) << "id " << r.request_id;
    EXPECT_FALSE(r.error.empty());
  }
  EXPECT_EQ(ids, expected_ids);
  worker.send(make_request(13, "__ping__", Codec::Raw));
  const Response pong = expect_answer(worker);
  EXPECT_EQ(pong.request_id, 13u);
  EXPECT_EQ(pong.status, StatusCode::Ok);
  worker.close_stdin();
  EXPECT_EQ(worker.wait_exit(2s), 0);
}

TEST(WorkerE2E, TruncatedFrameAtEndOfInputIsReportedThenExitZero) {
  WorkerProcess worker(MOLT_WORKER_BINARY, {});
  worker.send_raw(std::string("\x10\x00\x00\x00\x81\xa1", 6));
  worker.close_stdin();
  const Response r = expect_answer(worker);
  EXPECT_EQ(r.status, StatusCode::InvalidInput);
  EXPECT_NE(r.error.find("inside a frame"), std::string::npos) << r.error;
  EXPECT_EQ(worker.wait_exit(2s), 0);
}

TEST(WorkerE2E, ManifestIsTheAllowlist) {
  const std::string path = ::testing::TempDir() + "/only_compute.json";
  std::ofstream(path)
      << R"({"abi_version":"0.1","exports":[{"name":"compute","codec_in":"msgpack","codec_out":"msgpack"}]})";
  WorkerProcess worker(MOLT_WORKER_BINARY, {"--exports", path});
  worker.send(make_request(1, "health", Codec::Json, "{}"));
  const Response r = expect_answer(worker);
  EXPECT_EQ(r.status, StatusCode::InvalidInput);
  EXPECT_NE(r.error.find("unknown entry 'health'"), std::string::npos);
  worker.send(make_request(2, "compute", Codec::MsgPack, msgpack_of(R"({"values": []})")));
  EXPECT_EQ(expect_answer(worker).status, StatusCode::Ok);
}

TEST(WorkerE2E, BuiltManifestMatchesPrintExports) {
  WorkerProcess worker(MOLT_WORKER_BINARY, {"--exports", MOLT_WORKER_MANIFEST});
  worker.send(make_request(1, "health", Codec::Json, "{}"));
  EXPECT_EQ(expect_answer(worker).status, StatusCode::Ok);
}

// The checked-in default manifest (what clients ship) must not drift from the binary.
TEST(WorkerE2E, CheckedInDefaultManifestIsWhatTheBinaryImplements) {
  std::ifstream built(MOLT_WORKER_MANIFEST), checked_in(MOLT_WORKER_DEFAULT_MANIFEST);
  ASSERT_TRUE(built && checked_in);
  std::stringstream a, b;
  a << built.rdbuf();
  b << checked_in.rdbuf();
  EXPECT_EQ(a.str(), b.str()) << "update apps/molt-worker/molt_exports.json from --print-exports";
}

TEST(WorkerE2E, ManifestEntryNotImplementedIsAStartupError) {
  const std::string path = ::testing::TempDir() + "/missing_entry.json";
  std::ofstream(path)
      << R"({"abi_version":"0.1","exports":[{"name":"reports","codec_in":"json","codec_out":"json"}]})";
  WorkerProcess worker(MOLT_WORKER_BINARY, {"--exports", path});
  EXPECT_EQ(worker.wait_exit(5s), 2);
  EXPECT_NE(worker.stderr_text().find("'reports', which this worker does not implement"),
            std::string::npos)
      << worker.stderr_text();
}

TEST(WorkerE2E, ManifestWithMismatchedCodecIsAStartupError) {
  const std::string path = ::testing::TempDir() + "/wrong_codec.json";
  std::ofstream(path)
      << R"({"abi_version":"0.1","exports":[{"name":"list_items","codec_in":"json","codec_out":"json"}]})";
  WorkerProcess worker(MOLT_WORKER_BINARY, {"--exports", path});
  EXPECT_EQ(worker.wait_exit(5s), 2);
  EXPECT_NE(worker.stderr_text().find("codec_in=msgpack"), std::string::npos);
}

TEST(WorkerE2E, InvalidSettingIsAStartupError) {
  WorkerProcess worker(MOLT_WORKER_BINARY, {}, {"MOLT_FAKE_DB_DELAY_MS=soon"});
  EXPECT_EQ(worker.wait_exit(5s), 2);
  EXPECT_NE(worker.stderr_text().find("MOLT_FAKE_DB_DELAY_MS"), std::string::npos);
}

// Flags and MOLT_WORKER_* settings are refused like the others: exit 2, naming the setting.
TEST(WorkerE2E, AMalformedFlagOrWorkerSettingIsAStartupError) {
  {
    WorkerProcess worker(MOLT_WORKER_BINARY, {"--max-queue", "many"});
    EXPECT_EQ(worker.wait_exit(5s), 2);
    EXPECT_NE(worker.stderr_text().find("max-queue"), std::string::npos) << worker.stderr_text();
  }
  {
    // The variable the user set is named, not only the flag it stands for.
    WorkerProcess worker(MOLT_WORKER_BINARY, {}, {"MOLT_WORKER_THREADS=x"});
    EXPECT_EQ(worker.wait_exit(5s), 2);
    EXPECT_NE(worker.stderr_text().find("--threads took its value from MOLT_WORKER_THREADS=x"),
              std::string::npos)
        << worker.stderr_text();
  }
  {
    // Given on the command line, the flag overrides the variable: nothing to point at.
    WorkerProcess worker(MOLT_WORKER_BINARY, {"--threads", "0"}, {"MOLT_WORKER_THREADS=x"});
    EXPECT_EQ(worker.wait_exit(5s), 2);
    EXPECT_EQ(worker.stderr_text().find("MOLT_WORKER_THREADS"), std::string::npos)
        << worker.stderr_text();
  }
  {
    WorkerProcess worker(MOLT_WORKER_BINARY, {"--no-such-flag"});
    EXPECT_EQ(worker.wait_exit(5s), 2);
  }
}

TEST(WorkerE2E, LogRequestsWritesOneJsonLinePerRequestToStderr) {
  WorkerProcess worker(MOLT_TEST_WORKER_BINARY, {"--log-requests"});
  worker.send(make_request(21, "echo", Codec::Raw, "a"));
  ASSERT_EQ(expect_answer(worker).status, StatusCode::Ok);
  worker.close_stdin();
  ASSERT_EQ(worker.wait_exit(2s), 0);
  const std::string log = worker.stderr_text();
  const auto at = log.find("{\"event\":\"request\"");
  ASSERT_NE(at, std::string::npos) << log;
  const json::value line = json::parse(log.substr(at, log.find('\n', at) - at));
  EXPECT_EQ(line.at("request_id"), 21);
  EXPECT_EQ(line.at("entry"), "echo");
  EXPECT_EQ(line.at("status"), "Ok");
}

TEST(WorkerE2E, ManyConcurrentRequestsAreEachAnsweredOnce) {
  WorkerProcess worker(MOLT_WORKER_BINARY, {"--threads", "2", "--max-queue", "1000"});
  const std::string payload = msgpack_of(R"({"user_id": 5, "limit": 10})");
  std::string burst;
  constexpr int kCount = 500;
  for (int i = 1; i <= kCount; ++i) {
    molt::ipc::append_request_frame(
        burst, make_request(i, i % 5 ? "list_items" : "__ping__", Codec::MsgPack, payload),
        i % 2 ? Wire::MsgPack : Wire::Json);
  }
  worker.send_raw(burst);
  std::set<std::uint64_t> seen;
  for (int i = 0; i < kCount; ++i) {
    const Response r = expect_answer(worker);
    EXPECT_EQ(r.status, StatusCode::Ok) << r.error;
    EXPECT_TRUE(seen.insert(r.request_id).second) << "answered twice: " << r.request_id;
  }
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(kCount));
}

}  // namespace

namespace {
TEST(WorkerE2E, ErrorQuotingInvalidUtf8IsStillAValidString) {
  WorkerProcess worker(MOLT_WORKER_BINARY, {});
  worker.send(make_request(3,
                           "bad\xff\xfe"
                           "entry",
                           Codec::Raw));
  const Response r = expect_answer(worker);
  EXPECT_EQ(r.status, StatusCode::InvalidInput);
  EXPECT_TRUE(molt::codec::is_valid_utf8(r.error)) << r.error;
  EXPECT_NE(r.error.find("bad\xef\xbf\xbd\xef\xbf\xbd"
                         "entry"),
            std::string::npos)
      << r.error;
}
}  // namespace
