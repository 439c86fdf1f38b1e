// ParseTokenResponseBody and AccessTokenFromBody over Entra-shaped bodies: what makes a usable
// token, and the bounds on its lifetime and refresh hint.
#include "pan/broker/token_response.h"

#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace mailroom::broker {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1717405965);

absl::optional<AccessToken> TokenOf(absl::string_view json) {
  const absl::optional<internal::EntraTokenResponse> body = ParseTokenResponseBody(json);
  if (!body.has_value()) return absl::nullopt;
  return AccessTokenFromBody(*body, kNow);
}

TEST(TokenResponse, AnEntraSuccessBodyGivesItsToken) {
  const absl::optional<AccessToken> token = TokenOf(
      R"({"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"refresh_in":1799,)"
      R"("access_token":"abc","unknown_field":[1,2]})");
  ASSERT_TRUE(token.has_value());
  EXPECT_EQ(token->value, "abc");
  EXPECT_EQ(token->issue_time, kNow);
  EXPECT_EQ(token->expire_time, kNow + absl::Seconds(3599));
  EXPECT_EQ(token->refresh_hint, kNow + absl::Seconds(1799));
  EXPECT_EQ(token->fingerprint.size(), 64u);
}

TEST(TokenResponse, WhatIsNotAUsableToken) {
  EXPECT_FALSE(TokenOf("not json").has_value());
  EXPECT_FALSE(TokenOf(R"({"token_type":"Bearer","expires_in":3599})").has_value());
  EXPECT_FALSE(TokenOf(R"({"token_type":"mac","expires_in":3599,"access_token":"x"})").has_value());
  EXPECT_FALSE(TokenOf(R"({"token_type":"Bearer","expires_in":0,"access_token":"x"})").has_value());
  EXPECT_FALSE(TokenOf(R"({"token_type":"Bearer","expires_in":-5,"access_token":"x"})").has_value());
}

// An expires_in of 2^63 - 1 seconds made a token that expired at InfiniteFuture: never
// refreshed, served for ever.
TEST(TokenResponse, TheLifetimeIsAtMostADay) {
  const absl::optional<AccessToken> token = TokenOf(
      R"({"token_type":"Bearer","expires_in":9223372036854775807,)"
      R"("refresh_in":9223372036854775807,"access_token":"t"})");
  ASSERT_TRUE(token.has_value());
  EXPECT_EQ(token->expire_time, kNow + kMaxTokenLifetime);
  EXPECT_EQ(token->refresh_hint, token->expire_time);
}

}  // namespace
}  // namespace mailroom::broker
