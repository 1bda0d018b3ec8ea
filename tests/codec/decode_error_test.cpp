#include "molt/codec/decode_error.hpp"

#include <gtest/gtest.h>

namespace molt::codec {
namespace {

TEST(PathSegmentTest, RootAlone) {
  EXPECT_EQ(kRootPath.render(), "payload");
}

TEST(PathSegmentTest, FieldsAreDottedAndIndexesBracketed) {
  const PathSegment items = kRootPath.field("items");
  const PathSegment second = items.element(1);
  const PathSegment score = second.field("score");
  EXPECT_EQ(score.render(), "payload.items[1].score");
  EXPECT_EQ(kRootPath.element(0).element(12).render(), "payload[0][12]");
}

TEST(PathSegmentTest, IndexZeroAndAnEmptyMapKeyAreDifferentPlaces) {
  EXPECT_EQ(kRootPath.element(0).render(), "payload[0]");
  EXPECT_EQ(kRootPath.field("").render(), "payload.\"\"");
  EXPECT_EQ(kRootPath.field("").field("x").render(), "payload.\"\".x");
}

TEST(PathSegmentTest, AnotherRootName) {
  const PathSegment root{nullptr, "manifest", 0};
  EXPECT_EQ(root.field("exports").element(2).field("name").render(), "manifest.exports[2].name");
}

TEST(DecodeErrorTest, MessageAndParts) {
  // Segments point at their parents, so each one is kept alive by name.
  const PathSegment items = kRootPath.field("items");
  const PathSegment fourth = items.element(3);
  const PathSegment at = fourth.field("score");
  const DecodeError e(at, "number", "string");
  EXPECT_STREQ(e.what(), "payload.items[3].score: expected number, got string");
  EXPECT_EQ(e.path(), "payload.items[3].score");
  EXPECT_EQ(e.expected(), "number");
  EXPECT_EQ(e.got(), "string");
  EXPECT_EQ(e.code(), core::StatusCode::InvalidInput);
  const core::InvalidInput& as_invalid = e;
  EXPECT_EQ(as_invalid.status().message, e.what());
}

}  // namespace
}  // namespace molt::codec
