#include "molt/core/status.hpp"

#include <gtest/gtest.h>

#include <string>

namespace molt::core {
namespace {

TEST(StatusCodeTest, NamesAreTheWireNames) {
  EXPECT_EQ(to_string(StatusCode::Ok), "Ok");
  EXPECT_EQ(to_string(StatusCode::InvalidInput), "InvalidInput");
  EXPECT_EQ(to_string(StatusCode::Busy), "Busy");
  EXPECT_EQ(to_string(StatusCode::Timeout), "Timeout");
  EXPECT_EQ(to_string(StatusCode::Cancelled), "Cancelled");
  EXPECT_EQ(to_string(StatusCode::InternalError), "InternalError");
}

TEST(StatusCodeTest, ParseIsTheInverseOfToString) {
  for (StatusCode code : {StatusCode::Ok, StatusCode::InvalidInput, StatusCode::Busy,
                          StatusCode::Timeout, StatusCode::Cancelled, StatusCode::InternalError}) {
    const auto parsed = parse_status_code(to_string(code));
    ASSERT_TRUE(parsed.has_value()) << to_string(code);
    EXPECT_EQ(*parsed, code);
  }
}

TEST(StatusCodeTest, ParseRejectsUnknownAndDifferentlyCasedNames) {
  EXPECT_FALSE(parse_status_code("").has_value());
  EXPECT_FALSE(parse_status_code("ok").has_value());
  EXPECT_FALSE(parse_status_code("OK").has_value());
  EXPECT_FALSE(parse_status_code("Ok ").has_value());
  EXPECT_FALSE(parse_status_code("NotFound").has_value());
}

TEST(StatusTest, DefaultIsSuccess) {
  const Status status;
  EXPECT_TRUE(status.ok());
  EXPECT_EQ(status.code, StatusCode::Ok);
  EXPECT_TRUE(status.message.empty());
  EXPECT_TRUE(Status::success().ok());
}

TEST(StatusTest, AnyOtherCodeIsNotOk) {
  EXPECT_FALSE((Status{StatusCode::Busy, "full"}).ok());
  EXPECT_FALSE((Status{StatusCode::InternalError, ""}).ok());
}

TEST(ErrorTest, CarriesCodeAndMessage) {
  const Error error(StatusCode::Timeout, "deadline exceeded");
  EXPECT_EQ(error.code(), StatusCode::Timeout);
  EXPECT_STREQ(error.what(), "deadline exceeded");
  const Status status = error.status();
  EXPECT_EQ(status.code, StatusCode::Timeout);
  EXPECT_EQ(status.message, "deadline exceeded");
}

TEST(ErrorTest, InvalidInputIsAnErrorWithItsCode) {
  try {
    throw InvalidInput("bad field");
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::InvalidInput);
    EXPECT_STREQ(e.what(), "bad field");
    return;
  }
  FAIL() << "InvalidInput was not caught as Error";
}

TEST(ErrorTest, IsCaughtAsStdException) {
  try {
    throw Error(StatusCode::Busy, "queue full");
  } catch (const std::exception& e) {
    EXPECT_STREQ(e.what(), "queue full");
    return;
  }
  FAIL() << "Error was not caught as std::exception";
}

}  // namespace
}  // namespace molt::core

// Found by a review: libpq's messages ("...unexpectedly\n\tThis probably means...") split the
// worker's log entries over several lines.
TEST(OneLineTest, LineBreaksAndTabsBecomeSingleSpaces) {
  using molt::core::one_line;
  EXPECT_EQ(one_line("server closed the connection unexpectedly\n\tThis probably means\n"),
            "server closed the connection unexpectedly This probably means");
  EXPECT_EQ(one_line("  a\r\n\r\nb  "), "a b");
  EXPECT_EQ(one_line(""), "");
  EXPECT_EQ(one_line("caf\xc3\xa9 ok"), "caf\xc3\xa9 ok");
}
