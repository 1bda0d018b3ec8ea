#include "molt/core/deadline.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <limits>

namespace molt::core {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// A fixed, arbitrary "now" so that no assertion depends on the real clock.
const Clock::time_point kNow = Clock::time_point{} + std::chrono::hours(1000);

TEST(DeadlineTest, DefaultNeverExpires) {
  const Deadline d;
  EXPECT_FALSE(d.is_set());
  EXPECT_FALSE(d.expired(kNow));
  EXPECT_FALSE(d.expired(Clock::time_point::max()));
  EXPECT_EQ(d.at(), Clock::time_point::max());
  EXPECT_EQ(d.remaining(kNow), Clock::duration::max());
  EXPECT_FALSE(Deadline::none().is_set());
}

TEST(DeadlineTest, AfterExpiresExactlyAtItsTime) {
  const Deadline d = Deadline::after(seconds(2), kNow);
  EXPECT_TRUE(d.is_set());
  EXPECT_EQ(d.at(), kNow + seconds(2));
  EXPECT_FALSE(d.expired(kNow));
  EXPECT_FALSE(d.expired(kNow + seconds(2) - std::chrono::nanoseconds(1)));
  EXPECT_TRUE(d.expired(kNow + seconds(2)));
  EXPECT_TRUE(d.expired(kNow + seconds(3)));
}

TEST(DeadlineTest, RemainingCountsDownAndNeverGoesNegative) {
  const Deadline d = Deadline::after(seconds(2), kNow);
  EXPECT_EQ(d.remaining(kNow), seconds(2));
  EXPECT_EQ(d.remaining(kNow + milliseconds(1500)), milliseconds(500));
  EXPECT_EQ(d.remaining(kNow + seconds(2)), Clock::duration::zero());
  EXPECT_EQ(d.remaining(kNow + seconds(60)), Clock::duration::zero());
}

TEST(DeadlineTest, AfterMsZeroMeansNoDeadline) {
  EXPECT_FALSE(Deadline::after_ms(0, kNow).is_set());
}

TEST(DeadlineTest, AfterMsCountsMilliseconds) {
  const Deadline d = Deadline::after_ms(250, kNow);
  ASSERT_TRUE(d.is_set());
  EXPECT_EQ(d.at(), kNow + milliseconds(250));
}

TEST(DeadlineTest, AfterMsDefaultsToTheRealClock) {
  const auto before = Clock::now();
  const Deadline d = Deadline::after_ms(60'000);
  const auto after = Clock::now();
  EXPECT_GE(d.at(), before + seconds(60));
  EXPECT_LE(d.at(), after + seconds(60));
  EXPECT_FALSE(d.expired());
}

// timeout_ms comes from the client: any u64 must give a far-future deadline, never an overflow
// into the past.
TEST(DeadlineTest, HugeTimeoutMsSaturatesInsteadOfWrapping) {
  for (std::uint64_t ms : {std::uint64_t{1} << 53, std::uint64_t{9'300'000'000'000},
                           std::uint64_t{std::numeric_limits<std::int64_t>::max()},
                           std::uint64_t{1} << 63, std::numeric_limits<std::uint64_t>::max()}) {
    const Deadline d = Deadline::after_ms(ms, kNow);
    EXPECT_TRUE(d.is_set()) << ms;
    EXPECT_FALSE(d.expired(kNow)) << ms;
    EXPECT_FALSE(d.expired(kNow + std::chrono::hours(24 * 365 * 100))) << ms;
    EXPECT_GT(d.remaining(kNow), std::chrono::hours(24 * 365 * 100)) << ms;
  }
}

TEST(DeadlineTest, HugeDurationSaturatesInsteadOfWrapping) {
  const Deadline d = Deadline::after(Clock::duration::max(), kNow);
  EXPECT_TRUE(d.is_set());
  EXPECT_FALSE(d.expired(kNow));
  EXPECT_EQ(d.at(), Clock::time_point::max());
}

TEST(DeadlineTest, MinPicksTheEarlierAndIgnoresUnset) {
  const Deadline early = Deadline::after(seconds(1), kNow);
  const Deadline late = Deadline::after(seconds(5), kNow);
  EXPECT_EQ(early.min(late).at(), early.at());
  EXPECT_EQ(late.min(early).at(), early.at());
  EXPECT_EQ(early.min(Deadline::none()).at(), early.at());
  EXPECT_EQ(Deadline::none().min(late).at(), late.at());
  EXPECT_TRUE(Deadline::none().min(late).is_set());
  EXPECT_FALSE(Deadline::none().min(Deadline::none()).is_set());
}

TEST(DeadlineTest, AlreadyPassedDeadlineIsExpired) {
  const Deadline d(kNow - seconds(1));
  EXPECT_TRUE(d.expired(kNow));
  EXPECT_EQ(d.remaining(kNow), Clock::duration::zero());
}

}  // namespace
}  // namespace molt::core
