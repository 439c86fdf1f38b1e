#include "pan/broker/token_cache.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/base/diagnosis.h"
#include "common/base/logging.h"
#include "common/base/metrics.h"
#include "common/base/redactor.h"

namespace mailroom::broker {

TokenCache::TokenCache(TokenClient* client, const Clock* clock, TokenCachePolicy policy,
                       std::function<double()> random_unit)
    : client_(client),
      clock_(clock),
      policy_(policy),
      retry_(clock, BackoffPolicy{policy.initial_backoff, policy.max_backoff, policy.jitter},
             std::move(random_unit)),
      refresher_(clock, [this] { return RefreshStep(); }) {}

TokenCache::~TokenCache() { Stop(); }

void TokenCache::Start() { refresher_.Start(); }

void TokenCache::Stop() { refresher_.Stop(); }

bool TokenCache::UsableLocked(absl::Time now, absl::Duration min_validity) const {
  return token_.has_value() &&
         token_->expire_time - now >= std::max(min_validity, policy_.min_validity);
}

absl::Time TokenCache::RefreshTimeLocked() const {
  if (!token_.has_value()) return absl::InfinitePast();
  const absl::Duration lifetime = token_->expire_time - token_->issue_time;
  absl::Time refresh = token_->refresh_hint != absl::InfiniteFuture()
                           ? token_->refresh_hint
                           : token_->issue_time + lifetime * policy_.refresh_fraction;
  return std::min(refresh, token_->expire_time - policy_.refresh_margin);
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
    const absl::Duration wait = retry_.RecordFailure(retry_after);
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
  {
    absl::MutexLock lock(&mu_);
    // A fetch in progress (a caller's) wakes the refresher when it ends.
    if (fetching_) return absl::InfiniteFuture();
    const absl::Time due = std::max(RefreshTimeLocked(), retry_.next_attempt());
    if (clock_->Now() < due) return due;
    fetching_ = true;
  }
  FetchAndStore();
  return absl::InfinitePast();  // look again at once, from the new state
}

}  // namespace mailroom::broker
