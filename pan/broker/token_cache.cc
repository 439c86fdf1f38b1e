#include "pan/broker/token_cache.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/base/diagnosis.h"
#include "common/base/logging.h"
#include "common/base/metrics.h"
#include "common/base/redactor.h"

namespace mailroom::broker {

absl::string_view TokenHealthStateName(TokenHealth::State state) {
  switch (state) {
    case TokenHealth::State::kHealthy:
      return "healthy";
    case TokenHealth::State::kShortLived:
      return "short-lived";
    case TokenHealth::State::kRefreshFailing:
      return "refresh-failing";
    case TokenHealth::State::kNoValidToken:
      return "no-valid-token";
  }
  return "unknown";
}

TokenCache::TokenCache(TokenClient* client, const Clock* clock, TokenCachePolicy policy,
                       std::function<double()> random_unit, HealthListener on_health)
    : client_(client),
      clock_(clock),
      policy_(policy),
      retry_(clock, BackoffPolicy{policy.initial_backoff, policy.max_backoff, policy.jitter},
             std::move(random_unit)),
      on_health_(std::move(on_health)),
      refresher_(clock, [this] { return RefreshStep(); }) {}

TokenCache::~TokenCache() { Stop(); }

void TokenCache::Start() { refresher_.Start(); }

void TokenCache::Stop() { refresher_.Stop(); }

absl::Duration TokenCache::ServeMarginLocked(absl::Duration min_validity) const {
  // A caller's wish (10 minutes by default) never exceeds a quarter of what the IdP grants:
  // a 10-minute token is served until 2.5 minutes are left, a fresh one always.
  return ScaledMargin(std::max(min_validity, policy_.min_validity),
                      token_->expire_time - token_->issue_time, kTokenServeFraction);
}

bool TokenCache::UsableLocked(absl::Time now, absl::Duration min_validity) const {
  return token_.has_value() && token_->expire_time > now &&
         token_->expire_time - now >= ServeMarginLocked(min_validity);
}

absl::Time TokenCache::RefreshTimeLocked() const {
  if (!token_.has_value()) return absl::InfinitePast();
  const absl::Duration lifetime = token_->expire_time - token_->issue_time;
  absl::Time refresh = token_->refresh_hint != absl::InfiniteFuture()
                           ? token_->refresh_hint
                           : token_->issue_time + lifetime * policy_.refresh_fraction;
  return std::min(refresh, token_->expire_time - ScaledMargin(policy_.refresh_margin, lifetime,
                                                              kTokenServeFraction));
}

TokenHealth TokenCache::HealthLocked(absl::Time now) const {
  TokenHealth health;
  health.error = last_error_;
  if (token_.has_value()) {
    health.lifetime = token_->expire_time - token_->issue_time;
    if (UsableLocked(now, absl::ZeroDuration())) health.expire_time = token_->expire_time;
  }
  if (!last_error_.ok()) {
    health.state = health.expire_time == absl::InfinitePast()
                       ? TokenHealth::State::kNoValidToken
                       : TokenHealth::State::kRefreshFailing;
  } else if (token_.has_value() && health.lifetime < kMinSupportedTokenLifetime) {
    health.state = TokenHealth::State::kShortLived;
  }
  return health;
}

TokenHealth TokenCache::health() const {
  absl::MutexLock lock(&mu_);
  return HealthLocked(clock_->Now());
}

void TokenCache::ReportHealth(const TokenHealth& health) {
  if (!on_health_) return;
  std::string cause;
  if (absl::optional<Diagnosis> diagnosis = DiagnosisOf(health.error); diagnosis.has_value()) {
    cause = mailroom::common::v1::FailureCause_Name(diagnosis->cause());
  } else if (!health.error.ok()) {
    cause = std::string(absl::StatusCodeToString(health.error.code()));
  }
  auto key = std::make_pair(health.state, cause);
  if (reported_.has_value() && *reported_ == key) return;
  reported_ = std::move(key);
  on_health_(health);
}

absl::Time TokenCache::NextRefreshTime() const {
  absl::MutexLock lock(&mu_);
  if (!token_.has_value()) return absl::InfiniteFuture();
  return std::max(RefreshTimeLocked(), retry_.next_attempt());
}

TokenCacheStats TokenCache::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

absl::Status TokenCache::last_error() const {
  absl::MutexLock lock(&mu_);
  return last_error_;
}

void TokenCache::FetchAndStore() {
  absl::StatusOr<AccessToken> fetched = client_->Fetch();
  // The refresher recomputes its wake-up time from the outcome.
  struct WakeOnExit {
    BackgroundLoop* loop;
    ~WakeOnExit() { loop->Wake(); }
  } wake_on_exit{&refresher_};
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_->Now();
  ++stats_.fetches;
  stats_.last_fetch_time = now;
  Metrics::Global().Increment("mailroom_token_fetches_total",
                              "Requests to the token endpoint, by result.",
                              {{"result", fetched.ok() ? "ok" : "error"}});
  if (fetched.ok()) {
    if (token_.has_value()) Redactor::Global().RemoveSecret(token_->value);
    token_ = *std::move(fetched);
    last_error_ = absl::OkStatus();
    retry_.RecordSuccess();
  } else {
    ++stats_.fetch_failures;
    last_error_ = fetched.status();
    absl::Duration retry_after = absl::ZeroDuration();
    if (absl::optional<Diagnosis> diagnosis = DiagnosisOf(fetched.status()); diagnosis.has_value()) {
      Metrics::Global().Increment(
          "mailroom_token_endpoint_errors_total", "Token endpoint failures by classified cause.",
          {{"cause", mailroom::common::v1::FailureCause_Name(diagnosis->cause())},
           {"http_status", absl::StrCat(diagnosis->http_status())}});
      if (diagnosis->has_retry_after()) {
        // Never wait longer than the backoff's own cap: a cached token is still being served
        // and must be replaced before it expires.
        retry_after =
            std::min(absl::Seconds(diagnosis->retry_after().seconds()), policy_.max_backoff);
      }
    }
    absl::Duration wait = retry_.RecordFailure(retry_after);
    if (UsableLocked(now, absl::ZeroDuration())) {
      // However long the backoff, try again while the token in hand still serves: halfway to
      // the moment it stops, so that a short outage never outlives a short-lived token.
      const absl::Time unusable = token_->expire_time - ServeMarginLocked(absl::ZeroDuration());
      retry_.Shorten(now + std::max(absl::Seconds(1), (unusable - now) / 2));
      wait = retry_.next_attempt() - now;
    }
    MR_LOG(kWarn, kLogToken) << "token fetch failed (" << retry_.consecutive_failures()
                             << " in a row), next attempt in " << wait << ": "
                             << fetched.status().message()
                             << (token_.has_value() ? "; still serving the cached token" : "");
  }
  fetching_ = false;
}

absl::StatusOr<AccessToken> TokenCache::Get(absl::Duration min_validity) {
  mu_.Lock();
  while (true) {
    const absl::Time now = clock_->Now();
    if (UsableLocked(now, min_validity)) {
      ++stats_.served;
      AccessToken token = *token_;
      mu_.Unlock();
      return token;
    }
    if (fetching_) {
      mu_.Await(absl::Condition(
          +[](bool* fetching) { return !*fetching; }, &fetching_));
      // Someone else's fetch finished: use its result, success or failure.
      if (UsableLocked(clock_->Now(), min_validity)) continue;
      absl::Status error = last_error_.ok()
                               ? absl::UnavailableError("no token valid for long enough")
                               : last_error_;
      mu_.Unlock();
      return error;
    }
    if (now < retry_.next_attempt() && !last_error_.ok()) {
      absl::Status error = last_error_;
      mu_.Unlock();
      return error;
    }
    fetching_ = true;
    mu_.Unlock();
    FetchAndStore();
    mu_.Lock();
    if (!UsableLocked(clock_->Now(), min_validity)) {
      absl::Status error = last_error_.ok()
                               ? absl::UnavailableError("fetched token is too short-lived")
                               : last_error_;
      mu_.Unlock();
      return error;
    }
  }
}

bool TokenCache::Invalidate(const std::string& fingerprint) {
  absl::MutexLock lock(&mu_);
  if (!token_.has_value() || token_->fingerprint != fingerprint) return false;
  if (clock_->Now() - token_->issue_time < policy_.min_age_to_invalidate) return false;
  MR_LOG(kInfo, kLogToken) << "dropping token " << fingerprint << " after a mailbox refused it";
  Redactor::Global().RemoveSecret(token_->value);
  token_.reset();
  refresher_.Wake();
  return true;
}

absl::Time TokenCache::RefreshStep() {
  absl::Time next;
  bool fetch = false;
  TokenHealth health;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = clock_->Now();
    health = HealthLocked(now);
    if (fetching_) {
      next = absl::InfiniteFuture();  // a caller's fetch wakes the refresher when it ends
    } else {
      next = std::max(RefreshTimeLocked(), retry_.next_attempt());
      if (next <= now) {
        fetching_ = fetch = true;
      } else if (health.state == TokenHealth::State::kRefreshFailing) {
        // Look again when the token still served stops qualifying (just past the last moment
        // it does), to say so at once.
        next = std::min(next, token_->expire_time - ServeMarginLocked(absl::ZeroDuration()) +
                                  absl::Nanoseconds(1));
      }
    }
  }
  ReportHealth(health);
  if (!fetch) return next;
  FetchAndStore();
  return absl::InfinitePast();  // look again at once, from the new state
}

}  // namespace mailroom::broker
