// Provides TokenCache, which keeps one access token fresh for the whole cluster so that the
// token endpoint sees about one request per half-lifetime however much mail flows, and no
// send waits for a fetch in steady state. Policy, as MSAL's: refresh at the endpoint's
// refresh_in if given, else at half the lifetime, and never later than the refresh margin
// before expiry; concurrent callers share one fetch (single flight); when a refresh fails the
// still-valid token keeps being served while retries back off exponentially with jitter,
// honouring Retry-After. Every margin scales with the token's lifetime
// (common/base/token_margins.h), so tokens of any lifetime work and a fresh token always
// qualifies: there is no fetch loop. The cache tells a listener how token acquisition fares
// (TokenHealth), for alarms. Thread-safe.
#ifndef MAILROOM_PAN_BROKER_TOKEN_CACHE_H_
#define MAILROOM_PAN_BROKER_TOKEN_CACHE_H_

#include <functional>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/base/background_loop.h"
#include "common/base/backoff.h"
#include "common/base/clock.h"
#include "common/base/token_margins.h"
#include "pan/broker/access_token.h"
#include "pan/broker/token_client.h"

namespace mailroom::broker {

struct TokenCachePolicy {
  // Without the endpoint's refresh_in, refresh when this fraction of the lifetime is gone.
  double refresh_fraction = 0.5;
  // A token is refreshed at least this long before it expires.
  absl::Duration refresh_margin = absl::Minutes(5);
  // A token is not handed out when it has less than this left, even if no caller asks
  // for more (role nodes need time to use it).
  absl::Duration min_validity = absl::Minutes(1);
  // Backoff after failed fetches: initial, cap, and the +/- fraction of jitter.
  absl::Duration initial_backoff = absl::Seconds(1);
  absl::Duration max_backoff = absl::Minutes(5);
  double jitter = 0.2;
  // A mailbox refusing a token this young is not the token's fault: do not refetch.
  absl::Duration min_age_to_invalidate = absl::Seconds(30);
};

// How getting tokens fares, as the cache last saw it.
struct TokenHealth {
  enum class State {
    kHealthy,         // the last fetch succeeded (or none has been made yet)
    kShortLived,      // it succeeded, but the token lives less than kMinSupportedTokenLifetime
    kRefreshFailing,  // the last fetch failed; a still-valid token is being served
    kNoValidToken,    // the last fetch failed and no token can be served
  };
  State state = State::kHealthy;
  // The last fetch failure, with its Diagnosis (failing states only).
  absl::Status error;
  // The token being served (InfinitePast if none) and the last token's lifetime.
  absl::Time expire_time = absl::InfinitePast();
  absl::Duration lifetime = absl::ZeroDuration();
};
absl::string_view TokenHealthStateName(TokenHealth::State state);

struct TokenCacheStats {
  int64_t fetches = 0;
  int64_t fetch_failures = 0;
  int64_t served = 0;
  absl::Time last_fetch_time = absl::InfinitePast();
};

class TokenCache {
 public:
  // `client` and `clock` must outlive the cache. `random_unit` returns a number in [0, 1)
  // for jitter; tests pass a constant.
  // `on_health` (may be empty) is called on the refresher's thread, without the cache's lock,
  // once at the first check and then whenever the state or the failure's cause changes.
  using HealthListener = std::function<void(const TokenHealth&)>;
  TokenCache(TokenClient* client, const Clock* clock, TokenCachePolicy policy,
             std::function<double()> random_unit, HealthListener on_health = nullptr);
  ~TokenCache();
  TokenCache(const TokenCache&) = delete;
  TokenCache& operator=(const TokenCache&) = delete;

  // Starts the background refresher, which fetches a first token at once.
  void Start();
  // Stops the refresher; blocks until it has exited.
  void Stop();

  // A token valid for at least `min_validity` (at least the policy's). Returns the cached
  // one when it qualifies; otherwise fetches, sharing one fetch among concurrent callers.
  // While fetches are backing off after a failure and no cached token qualifies, returns
  // the last failure (with its Diagnosis) instead of hammering the endpoint.
  absl::StatusOr<AccessToken> Get(absl::Duration min_validity = absl::ZeroDuration());

  // A mailbox refused the token with this fingerprint. Drops it (the next Get fetches a
  // new one) unless it is younger than min_age_to_invalidate or already replaced. Returns
  // whether it was dropped.
  bool Invalidate(const std::string& fingerprint);

  // When the current token will be refreshed; InfiniteFuture if none is held.
  absl::Time NextRefreshTime() const;
  TokenCacheStats stats() const;
  // The last fetch failure, OK if the last fetch succeeded.
  absl::Status last_error() const;
  TokenHealth health() const;

 private:
  // Fetches one token (the caller marked fetching_). Called without mu_.
  void FetchAndStore();
  absl::Time RefreshTimeLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool UsableLocked(absl::Time now, absl::Duration min_validity) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The refresher's step: fetches if a refresh is due, tells the listener about a change,
  // returns when to look again.
  absl::Time RefreshStep();
  TokenHealth HealthLocked(absl::Time now) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The least time left with which the current token is still handed out.
  absl::Duration ServeMarginLocked(absl::Duration min_validity) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Calls the listener if the health differs from what it was last told. Refresher only.
  void ReportHealth(const TokenHealth& health);

  TokenClient* client_;
  const Clock* clock_;
  const TokenCachePolicy policy_;

  mutable absl::Mutex mu_;
  absl::optional<AccessToken> token_ ABSL_GUARDED_BY(mu_);
  bool fetching_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status last_error_ ABSL_GUARDED_BY(mu_);
  // Failures in a row, and no fetch before its next_attempt() (backoff or Retry-After).
  RetryTimer retry_ ABSL_GUARDED_BY(mu_);
  TokenCacheStats stats_ ABSL_GUARDED_BY(mu_);
  const HealthListener on_health_;
  // What the listener was last told (refresher thread only); empty before the first report.
  absl::optional<std::pair<TokenHealth::State, std::string>> reported_;
  // Woken whenever it must recompute its wake-up time. Declared last: stopped first.
  BackgroundLoop refresher_;
};

}  // namespace mailroom::broker

#endif  // MAILROOM_PAN_BROKER_TOKEN_CACHE_H_
