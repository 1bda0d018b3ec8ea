#include "molt/worker/export_registry.hpp"

#include <gtest/gtest.h>

namespace molt::worker {
namespace {

using ipc::Codec;

struct Point {
  std::int64_t x = 0;
  std::optional<std::int64_t> y;
};
BOOST_DESCRIBE_STRUCT(Point, (), (x, y))

struct Sum {
  std::int64_t total = 0;
};
BOOST_DESCRIBE_STRUCT(Sum, (), (total))

Sum add(const Point& p, ExportContext&) {
  return {p.x + p.y.value_or(0)};
}

ExportContext context() {
  return ExportContext(core::CancelToken(), core::Deadline::none());
}

TEST(ExportRegistry, TypedExportDecodesCallsAndEncodesOnEitherCodec) {
  ExportRegistry registry;
  registry.add<Point, Sum>("add_json", Codec::Json, Codec::Json, &add);
  registry.add<Point, Sum>("add_mp", Codec::MsgPack, Codec::Json, &add);
  auto ctx = context();
  EXPECT_EQ(registry.find("add_json")->invoke(R"({"x": 2, "y": 3})", ctx), R"({"total":5})");
  EXPECT_EQ(registry.find("add_mp")->invoke(codec::to_msgpack(Point{4, std::nullopt}), ctx),
            R"({"total":4})");
}

TEST(ExportRegistry, TypedDecodeErrorIsInvalidInputNamingTheField) {
  ExportRegistry registry;
  registry.add<Point, Sum>("add", Codec::Json, Codec::Json, &add);
  auto ctx = context();
  try {
    registry.find("add")->invoke(R"({"y": 1})", ctx);
    FAIL() << "expected a decode error";
  } catch (const core::Error& e) {
    EXPECT_EQ(e.code(), core::StatusCode::InvalidInput);
    EXPECT_NE(std::string(e.what()).find("payload.x"), std::string::npos) << e.what();
  }
}

TEST(ExportRegistry, RejectsBadNamesDuplicatesAndTypedRawCodecs) {
  ExportRegistry registry;
  auto raw = [](std::string_view, ExportContext&) { return std::string(); };
  EXPECT_THROW(registry.add_raw("", Codec::Raw, Codec::Raw, raw), std::invalid_argument);
  EXPECT_THROW(registry.add_raw("__ping__", Codec::Raw, Codec::Raw, raw), std::invalid_argument);
  registry.add_raw("one", Codec::Raw, Codec::Raw, raw);
  EXPECT_THROW(registry.add_raw("one", Codec::Raw, Codec::Raw, raw), std::invalid_argument);
  EXPECT_THROW((registry.add<Point, Sum>("typed_raw", Codec::Raw, Codec::Json, &add)),
               std::invalid_argument);
}

TEST(ExportTable, ManifestLimitsTheExportsAndMustMatchTheImplementation) {
  ExportRegistry registry;
  registry.add<Point, Sum>("add", Codec::Json, Codec::Json, &add);
  registry.add_raw("raw", Codec::Raw, Codec::Raw,
                   [](std::string_view, ExportContext&) { return std::string(); });

  const auto only_add = ipc::parse_manifest(
      R"({"abi_version":"0.1","exports":[{"name":"add","codec_in":"json","codec_out":"json"}]})");
  const auto table = ExportTable::from_manifest(registry, only_add);
  EXPECT_NE(table.find("add"), nullptr);
  EXPECT_EQ(table.find("raw"), nullptr);

  const auto missing = ipc::parse_manifest(
      R"({"abi_version":"0.1","exports":[{"name":"gone","codec_in":"json","codec_out":"json"}]})");
  EXPECT_THROW(ExportTable::from_manifest(registry, missing), core::InvalidInput);
  const auto wrong_codec = ipc::parse_manifest(
      R"({"abi_version":"0.1","exports":[{"name":"add","codec_in":"msgpack","codec_out":"json"}]})");
  EXPECT_THROW(ExportTable::from_manifest(registry, wrong_codec), core::InvalidInput);
}

TEST(ExportRegistry, ManifestListsEverythingRegistered) {
  ExportRegistry registry;
  registry.add<Point, Sum>("add", Codec::MsgPack, Codec::Json, &add);
  const auto manifest = ipc::parse_manifest(ipc::to_json(registry.manifest()));
  ASSERT_EQ(manifest.exports.size(), 1u);
  EXPECT_EQ(manifest.exports[0].name, "add");
  EXPECT_EQ(manifest.exports[0].codec_in, Codec::MsgPack);
  EXPECT_EQ(manifest.exports[0].codec_out, Codec::Json);
}

TEST(ExportContext, CheckThrowsTimeoutPastTheDeadlineAndCancelledWhenCancelled) {
  ExportContext expired(core::CancelToken(), core::Deadline(core::Clock::now()));
  try {
    expired.check();
    FAIL();
  } catch (const core::Error& e) {
    EXPECT_EQ(e.code(), core::StatusCode::Timeout);
  }
  core::CancelSource source;
  ExportContext ctx(source.token(), core::Deadline::none());
  EXPECT_NO_THROW(ctx.check());
  source.cancel();
  try {
    ctx.check();
    FAIL();
  } catch (const core::Error& e) {
    EXPECT_EQ(e.code(), core::StatusCode::Cancelled);
  }
}

TEST(ExportContext, SleepWakesEarlyOnCancel) {
  core::CancelSource source;
  ExportContext ctx(source.token(), core::Deadline::none());
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    source.cancel();
  });
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THROW(ctx.sleep_for(std::chrono::seconds(10)), core::Error);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  canceller.join();
}

}  // namespace
}  // namespace molt::worker
