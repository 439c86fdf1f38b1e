#include "pan/broker/token_cache.h"

#include <algorithm>
#include <cmath>

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
      random_unit_(std::move(random_unit)) {}

TokenCache::~TokenCache() { Stop(); }

void TokenCache::Start() {
  absl::MutexLock lock(&mu_);
  if (refresher_ != nullptr) return;
  stopping_ = false;
  refresher_ = std::make_unique<std::thread>([this] { RefreshLoop(); });
}

void TokenCache::Stop() {
  std::unique_ptr<std::thread> refresher;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    ++generation_;
    refresher = std::move(refresher_);
  }
  if (refresher != nullptr) refresher->join();
}

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
  return std::max(RefreshTimeLocked(), next_attempt_);
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
    consecutive_failures_ = 0;
    next_attempt_ = absl::InfinitePast();
  } else {
    ++stats_.fetch_failures;
    last_error_ = fetched.status();
    ++consecutive_failures_;
    const double base = absl::ToDoubleSeconds(policy_.initial_backoff) *
                        std::pow(2.0, std::min(consecutive_failures_ - 1, 30));
    const double capped = std::min(base, absl::ToDoubleSeconds(policy_.max_backoff));
    const double jittered = capped * (1.0 + policy_.jitter * (2.0 * random_unit_() - 1.0));
    absl::Duration wait = absl::Seconds(jittered);
    if (absl::optional<Diagnosis> diagnosis = DiagnosisOf(fetched.status()); diagnosis.has_value()) {
      Metrics::Global().Increment(
          "mailroom_token_endpoint_errors_total", "Token endpoint failures by classified cause.",
          {{"cause", mailroom::common::v1::FailureCause_Name(diagnosis->cause())},
           {"http_status", absl::StrCat(diagnosis->http_status())}});
      if (diagnosis->has_retry_after()) {
        wait = std::max(wait, absl::Seconds(diagnosis->retry_after().seconds()));
      }
    }
    next_attempt_ = now + wait;
    MR_LOG(kWarn, kLogToken) << "token fetch failed (" << consecutive_failures_
                             << " in a row), next attempt in " << wait << ": "
                             << fetched.status().message()
                             << (token_.has_value() ? "; still serving the cached token" : "");
  }
  fetching_ = false;
  ++generation_;
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
    if (now < next_attempt_ && !last_error_.ok()) {
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
  ++generation_;
  return true;
}

void TokenCache::RefreshLoop() {
  mu_.Lock();
  while (!stopping_) {
    const absl::Time due = std::max(RefreshTimeLocked(), next_attempt_);
    if (clock_->Now() < due || fetching_) {
      const int64_t generation = generation_;
      struct Wake {
        TokenCache* cache;
        int64_t generation;
      } wake{this, generation};
      clock_->AwaitWithDeadline(
          &mu_,
          absl::Condition(
              +[](Wake* w) ABSL_NO_THREAD_SAFETY_ANALYSIS {
                return w->cache->stopping_ || w->cache->generation_ != w->generation;
              },
              &wake),
          fetching_ ? absl::InfiniteFuture() : due);
      continue;
    }
    fetching_ = true;
    mu_.Unlock();
    FetchAndStore();
    mu_.Lock();
  }
  mu_.Unlock();
}

}  // namespace mailroom::broker
