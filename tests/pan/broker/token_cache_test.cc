// TokenCache with a fake clock and a fake token endpoint: refresh timing, single flight,
// behaviour under 429 and 5xx, and serving the still-valid token while refreshes fail.
#include "pan/broker/token_cache.h"

#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/testing/fake_clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_http_transport.h"

namespace mailroom::broker {
namespace {

namespace fc = ::mailroom::common::v1;
using ::mailroom::testing::FakeHttpTransport;

std::string TokenJson(const std::string& token, int expires_in, int refresh_in = 0) {
  return absl::StrCat(R"({"token_type":"Bearer","expires_in":)", expires_in,
                      refresh_in > 0 ? absl::StrCat(R"(,"refresh_in":)", refresh_in) : "",
                      R"(,"access_token":")", token, R"("})");
}

class TokenCacheTest : public ::testing::Test {
 protected:
  TokenCacheTest()
      : client_(TokenEndpointConfig{"https://idp.test/t/oauth2/v2.0/token", "app",
                                    "https://outlook.office365.com/.default"},
                std::make_unique<ClientSecret>("s3cret-value"), &transport_, &clock_),
        cache_(&client_, &clock_, TokenCachePolicy{}, [] { return 0.5; }) {}

  // Waits (in real time) until the fake endpoint has seen `count` requests.
  bool WaitForRequests(int count) {
    for (int i = 0; i < 2000; ++i) {
      if (transport_.request_count() >= count) return true;
      absl::SleepFor(absl::Milliseconds(1));
    }
    return false;
  }

  // Waits until `count` fetches have completed and been recorded (not merely started): the
  // backoff is computed from the clock when a failure is stored, so the test must not move
  // the clock before that.
  bool WaitForFetches(int count) {
    for (int i = 0; i < 5000; ++i) {
      if (cache_.stats().fetches >= count) return true;
      absl::SleepFor(absl::Milliseconds(1));
    }
    return false;
  }

  // Waits until the refresher has looked at the clock's new time and gone back to waiting,
  // so a check that no request followed is not a race with it.
  void Settle() { ASSERT_TRUE(clock_.AwaitWaiters(1, absl::Seconds(10))); }

  FakeClock clock_{absl::FromUnixSeconds(1800000000)};
  FakeHttpTransport transport_;
  EntraTokenClient client_;
  TokenCache cache_;
};

TEST_F(TokenCacheTest, FirstGetFetchesThenServesFromCache) {
  transport_.EnqueueJson(200, TokenJson("t1", 3600));
  for (int i = 0; i < 1000; ++i) {
    absl::StatusOr<AccessToken> token = cache_.Get();
    ASSERT_TRUE(token.ok()) << token.status();
    EXPECT_EQ(token->value, "t1");
  }
  EXPECT_EQ(transport_.request_count(), 1);
  EXPECT_EQ(cache_.stats().served, 1000);
}

TEST_F(TokenCacheTest, RefreshesAtHalfLifetime) {
  transport_.EnqueueJson(200, TokenJson("t1", 3600));
  transport_.EnqueueJson(200, TokenJson("t2", 3600));
  ASSERT_TRUE(cache_.Get().ok());
  EXPECT_EQ(cache_.NextRefreshTime(), clock_.Now() + absl::Minutes(30));
  cache_.Start();
  clock_.Advance(absl::Minutes(29));
  Settle();
  EXPECT_EQ(transport_.request_count(), 1);
  clock_.Advance(absl::Minutes(1));
  ASSERT_TRUE(WaitForRequests(2));
  Settle();
  EXPECT_EQ(cache_.Get()->value, "t2");
  cache_.Stop();
}

TEST_F(TokenCacheTest, RefreshInFromTheEndpointWins) {
  transport_.EnqueueJson(200, TokenJson("t1", 5400, /*refresh_in=*/600));
  ASSERT_TRUE(cache_.Get().ok());
  EXPECT_EQ(cache_.NextRefreshTime(), clock_.Now() + absl::Minutes(10));
}

TEST_F(TokenCacheTest, NeverLaterThanFiveMinutesBeforeExpiry) {
  transport_.EnqueueJson(200, TokenJson("t1", 3600, /*refresh_in=*/3500));
  ASSERT_TRUE(cache_.Get().ok());
  EXPECT_EQ(cache_.NextRefreshTime(), clock_.Now() + absl::Minutes(55));
}

// A short-lived token's margins shrink with it: the 5-minute refresh margin of an 8-minute
// token would refresh it after 3 minutes; it is refreshed at half its life.
TEST_F(TokenCacheTest, MarginsScaleWithTheTokensLifetime) {
  transport_.EnqueueJson(200, TokenJson("t1", 8 * 60));
  ASSERT_TRUE(cache_.Get().ok());
  EXPECT_EQ(cache_.NextRefreshTime(), clock_.Now() + absl::Minutes(4));
}

// Entra ID's shortest policy lifetime is 10 minutes; other IdPs issue less. Whatever the
// lifetime, callers asking for the broker's default 10 minutes of validity are served, and the
// endpoint sees one request per half-lifetime (before, each Get fetched a token that was again
// too short for the 10 minutes asked for: a fetch loop).
TEST_F(TokenCacheTest, ShortLifetimesAreServedWithOneFetchPerHalfLife) {
  for (int lifetime_s : {600, 180, 120}) {
    FakeHttpTransport transport;
    EntraTokenClient client(TokenEndpointConfig{"https://idp.test/t/oauth2/v2.0/token", "app",
                                                "https://outlook.office365.com/.default"},
                            std::make_unique<ClientSecret>("s3cret-value"), &transport, &clock_);
    TokenCache cache(&client, &clock_, TokenCachePolicy{}, [] { return 0.5; });
    transport.EnqueueJson(200, TokenJson("t", lifetime_s));  // repeats for every fetch
    cache.Start();
    // Ten lifetimes of steady demand, in steps of a twentieth of the lifetime.
    for (int step = 0; step < 200; ++step) {
      for (int i = 0; i < 20; ++i) {
        absl::StatusOr<AccessToken> token = cache.Get(absl::Minutes(10));
        ASSERT_TRUE(token.ok()) << lifetime_s << " s tokens, step " << step << ": "
                                << token.status();
      }
      clock_.Advance(absl::Seconds(lifetime_s) / 20);
      ASSERT_TRUE(clock_.AwaitWaiters(1, absl::Seconds(10)));
    }
    cache.Stop();
    // The first fetch, then one per half-lifetime: 20 more over ten lifetimes.
    EXPECT_EQ(transport.request_count(), 21) << lifetime_s << " s tokens";
  }
}

TEST_F(TokenCacheTest, TheListenerHearsFailureEscalationAndRecovery) {
  std::vector<TokenHealth> heard;
  absl::Mutex mu;
  TokenCache cache(&client_, &clock_, TokenCachePolicy{}, [] { return 0.5; },
                   [&](const TokenHealth& health) {
                     absl::MutexLock lock(&mu);
                     heard.push_back(health);
                   });
  auto heard_count = [&] {
    absl::MutexLock lock(&mu);
    return heard.size();
  };
  auto wait_heard = [&](size_t n) {
    for (int i = 0; i < 5000 && heard_count() < n; ++i) absl::SleepFor(absl::Milliseconds(1));
    return heard_count() >= n;
  };
  transport_.EnqueueJson(200, TokenJson("t1", 3600));
  cache.Start();
  ASSERT_TRUE(wait_heard(1));  // the first check tells the state, whatever it is
  ASSERT_TRUE(WaitForRequests(1));
  // The secret was revoked: every refresh is refused with AADSTS7000222 (expired secret).
  transport_.EnqueueJson(401, R"({"error":"invalid_client","error_codes":[7000222],)"
                              R"("error_description":"AADSTS7000222: The provided client )"
                              R"(secret keys for app 'app' are expired."})");
  clock_.Advance(absl::Minutes(30));
  ASSERT_TRUE(wait_heard(2));
  {
    absl::MutexLock lock(&mu);
    EXPECT_EQ(heard.back().state, TokenHealth::State::kRefreshFailing);
    EXPECT_EQ(DiagnosisOf(heard.back().error)->cause(), fc::FAILURE_CAUSE_CLIENT_SECRET_EXPIRED);
    EXPECT_EQ(heard.back().expire_time, absl::FromUnixSeconds(1800000000) + absl::Hours(1));
  }
  // Retries go on failing; once the token left is below the one-minute minimum, nothing can
  // be served.
  for (int i = 0; i < 40 && heard_count() < 3; ++i) {
    clock_.Advance(absl::Minutes(1));
    ASSERT_TRUE(clock_.AwaitWaiters(1, absl::Seconds(10)));
  }
  ASSERT_TRUE(wait_heard(3));
  {
    absl::MutexLock lock(&mu);
    EXPECT_EQ(heard.back().state, TokenHealth::State::kNoValidToken);
    EXPECT_EQ(heard.back().expire_time, absl::InfinitePast());
  }
  EXPECT_GE(clock_.Now(), absl::FromUnixSeconds(1800000000) + absl::Minutes(59));
  // A new secret works again.
  transport_.EnqueueJson(200, TokenJson("t2", 3600));
  clock_.Advance(absl::Minutes(5));  // past any backoff
  ASSERT_TRUE(wait_heard(4));
  {
    absl::MutexLock lock(&mu);
    EXPECT_EQ(heard.back().state, TokenHealth::State::kHealthy);
    EXPECT_TRUE(heard.back().error.ok());
  }
  cache.Stop();
}

// A 2-minute token and an endpoint down from its refresh on: however the backoff grows, the
// cache keeps trying while the token still serves (until 30 s before expiry), so an outage
// shorter than the token's life never stops mail.
TEST_F(TokenCacheTest, RetriesKeepComingWhileTheTokenInHandStillServes) {
  transport_.EnqueueJson(200, TokenJson("t1", 120));
  ASSERT_TRUE(cache_.Get().ok());
  const absl::Time unusable = clock_.Now() + absl::Seconds(90);
  transport_.EnqueueJson(503, "{}");  // repeats for every later fetch
  cache_.Start();
  std::vector<absl::Time> attempts;
  while (clock_.Now() < unusable) {
    const int before = transport_.request_count();
    clock_.Advance(absl::Milliseconds(250));
    ASSERT_TRUE(clock_.AwaitWaiters(1, absl::Seconds(10)));
    if (transport_.request_count() > before) attempts.push_back(clock_.Now());
  }
  cache_.Stop();
  ASSERT_FALSE(attempts.empty());
  // The last attempt came within the last few seconds the token served, although the plain
  // backoff (1, 2, 4, 8, 16, 32 s from t=60 s) would have waited until t=123 s.
  EXPECT_GE(attempts.back(), unusable - absl::Seconds(3));
  EXPECT_LE(attempts.size(), 12u);
}

TEST_F(TokenCacheTest, ATokenShorterThanTwoMinutesIsReportedButStillUsed) {
  transport_.EnqueueJson(200, TokenJson("t1", 90));
  ASSERT_TRUE(cache_.Get().ok());
  EXPECT_EQ(cache_.health().state, TokenHealth::State::kShortLived);
  EXPECT_EQ(cache_.health().lifetime, absl::Seconds(90));
  EXPECT_EQ(cache_.NextRefreshTime(), clock_.Now() + absl::Seconds(45));
}

TEST_F(TokenCacheTest, OneFetchPerLifetimeUnderLoad) {
  transport_.EnqueueJson(200, TokenJson("t1", 3600));
  transport_.EnqueueJson(200, TokenJson("t2", 3600));
  transport_.EnqueueJson(200, TokenJson("t3", 3600));
  cache_.Start();
  ASSERT_TRUE(WaitForRequests(1));
  // Two hours of steady demand, a minute at a time.
  for (int minute = 0; minute < 120; ++minute) {
    for (int i = 0; i < 50; ++i) ASSERT_TRUE(cache_.Get().ok());
    clock_.Advance(absl::Minutes(1));
    Settle();
  }
  Settle();
  cache_.Stop();
  // Initial fetch, then one at each half-life: t=0, 30, 60, 90 and 120 minutes.
  EXPECT_EQ(transport_.request_count(), 5);
}

TEST_F(TokenCacheTest, HundredConcurrentCallersShareOneFetch) {
  transport_.EnqueueJson(200, TokenJson("t1", 3600));
  transport_.Hold();
  std::vector<std::thread> callers;
  std::atomic<int> ok{0};
  for (int i = 0; i < 100; ++i) {
    callers.emplace_back([&] {
      if (cache_.Get().ok()) ++ok;
    });
  }
  ASSERT_TRUE(WaitForRequests(1));
  absl::SleepFor(absl::Milliseconds(50));  // everyone is now waiting on the one fetch
  transport_.Release();
  for (std::thread& caller : callers) caller.join();
  EXPECT_EQ(ok.load(), 100);
  EXPECT_EQ(transport_.request_count(), 1);
}

TEST_F(TokenCacheTest, FailedRefreshKeepsServingValidTokenAndBacksOff) {
  transport_.EnqueueJson(200, TokenJson("t1", 3600));
  ASSERT_TRUE(cache_.Get().ok());
  transport_.EnqueueJson(503, "{}");  // repeats for every later fetch
  cache_.Start();
  clock_.Advance(absl::Minutes(30));  // refresh due
  ASSERT_TRUE(WaitForFetches(2));
  Settle();
  // The refresh failed, the token is still good: callers don't notice.
  absl::StatusOr<AccessToken> token = cache_.Get();
  ASSERT_TRUE(token.ok());
  EXPECT_EQ(token->value, "t1");
  EXPECT_EQ(DiagnosisOf(cache_.last_error())->cause(),
            fc::FAILURE_CAUSE_TOKEN_ENDPOINT_UNAVAILABLE);
  // Backoff (jitter pinned to 0): 1 s, then 2 s, then 4 s.
  clock_.Advance(absl::Milliseconds(900));
  Settle();
  EXPECT_EQ(transport_.request_count(), 2);
  clock_.Advance(absl::Milliseconds(100));
  ASSERT_TRUE(WaitForFetches(3));
  clock_.Advance(absl::Seconds(2));
  ASSERT_TRUE(WaitForFetches(4));
  clock_.Advance(absl::Seconds(3));
  Settle();
  EXPECT_EQ(transport_.request_count(), 4);
  clock_.Advance(absl::Seconds(1));
  ASSERT_TRUE(WaitForFetches(5));
  cache_.Stop();
}

TEST_F(TokenCacheTest, ThrottlingHonoursRetryAfter) {
  transport_.EnqueueJson(429, R"({"error":"temporarily_unavailable"})", "120");
  absl::StatusOr<AccessToken> token = cache_.Get();
  ASSERT_FALSE(token.ok());
  EXPECT_EQ(DiagnosisOf(token.status())->cause(), fc::FAILURE_CAUSE_TOKEN_ENDPOINT_THROTTLED);
  // Within Retry-After, callers get the failure without a new request.
  clock_.Advance(absl::Seconds(119));
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(cache_.Get().ok());
  EXPECT_EQ(transport_.request_count(), 1);
  transport_.EnqueueJson(200, TokenJson("t1", 3600));
  clock_.Advance(absl::Seconds(1));
  EXPECT_TRUE(cache_.Get().ok());
  EXPECT_EQ(transport_.request_count(), 2);
}

// L6: the cache never waits longer than its backoff cap (5 minutes), whatever Retry-After says.
TEST_F(TokenCacheTest, RetryAfterIsCappedAtTheMaximumBackoff) {
  transport_.EnqueueJson(429, R"({"error":"temporarily_unavailable"})", "600");
  ASSERT_FALSE(cache_.Get().ok());
  clock_.Advance(absl::Minutes(5) - absl::Seconds(1));
  EXPECT_FALSE(cache_.Get().ok());
  EXPECT_EQ(transport_.request_count(), 1);
  transport_.EnqueueJson(200, TokenJson("t1", 3600));
  clock_.Advance(absl::Seconds(1));
  EXPECT_TRUE(cache_.Get().ok());
  EXPECT_EQ(transport_.request_count(), 2);
}

TEST_F(TokenCacheTest, ExpiredTokenIsNotServed) {
  transport_.EnqueueJson(200, TokenJson("t1", 3600));
  ASSERT_TRUE(cache_.Get().ok());
  transport_.EnqueueJson(503, "{}");
  clock_.Advance(absl::Minutes(59) + absl::Seconds(30));  // 30 s left < 1 min minimum
  absl::StatusOr<AccessToken> token = cache_.Get();
  EXPECT_FALSE(token.ok());
  EXPECT_EQ(transport_.request_count(), 2);
}

TEST_F(TokenCacheTest, MinValidityForcesAFresherToken) {
  transport_.EnqueueJson(200, TokenJson("t1", 3600));
  transport_.EnqueueJson(200, TokenJson("t2", 3600));
  ASSERT_TRUE(cache_.Get().ok());
  clock_.Advance(absl::Minutes(50));
  EXPECT_EQ(cache_.Get(absl::Minutes(5))->value, "t1");
  EXPECT_EQ(cache_.Get(absl::Minutes(15))->value, "t2");
}

TEST_F(TokenCacheTest, InvalidateDropsAnOldTokenButNotAFreshOne) {
  transport_.EnqueueJson(200, TokenJson("t1", 3600));
  transport_.EnqueueJson(200, TokenJson("t2", 3600));
  const AccessToken t1 = *cache_.Get();
  EXPECT_FALSE(cache_.Invalidate(t1.fingerprint));  // 0 s old: the mailbox is at fault
  EXPECT_FALSE(cache_.Invalidate("0000000000000000"));
  clock_.Advance(absl::Minutes(10));
  EXPECT_TRUE(cache_.Invalidate(t1.fingerprint));
  EXPECT_EQ(cache_.Get()->value, "t2");
  EXPECT_EQ(transport_.request_count(), 2);
}

}  // namespace
}  // namespace mailroom::broker
