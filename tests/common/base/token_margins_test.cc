#include "common/base/token_margins.h"

#include "gtest/gtest.h"

namespace mailroom {
namespace {

TEST(ScaledMarginTest, AnHourLongTokenKeepsTheConfiguredMargin) {
  EXPECT_EQ(ScaledMargin(absl::Minutes(10), absl::Hours(1), kTokenServeFraction),
            absl::Minutes(10));
}

TEST(ScaledMarginTest, AShortTokenGetsAFractionOfItsLifetime) {
  EXPECT_EQ(ScaledMargin(absl::Minutes(10), absl::Minutes(10), kTokenServeFraction),
            absl::Seconds(150));
  EXPECT_EQ(ScaledMargin(absl::Minutes(5), absl::Minutes(3), kTokenUseFraction),
            absl::Seconds(22.5));
}

TEST(ScaledMarginTest, AFreshTokenAlwaysQualifies) {
  for (absl::Duration lifetime : {absl::Seconds(30), absl::Minutes(2), absl::Minutes(7),
                                  absl::Minutes(10), absl::Minutes(90)}) {
    EXPECT_LT(ScaledMargin(absl::Minutes(15), lifetime, kTokenServeFraction), lifetime);
    EXPECT_LE(ScaledMargin(absl::Minutes(15), lifetime, kTokenUseFraction),
              ScaledMargin(absl::Minutes(15), lifetime, kTokenServeFraction));
  }
}

TEST(ScaledMarginTest, EdgeLifetimes) {
  EXPECT_EQ(ScaledMargin(absl::Minutes(5), absl::ZeroDuration(), 0.25), absl::ZeroDuration());
  EXPECT_EQ(ScaledMargin(absl::Minutes(5), -absl::Seconds(1), 0.25), absl::ZeroDuration());
  EXPECT_EQ(ScaledMargin(absl::Minutes(5), absl::InfiniteDuration(), 0.25), absl::Minutes(5));
}

}  // namespace
}  // namespace mailroom
