#include "common/node/mail_routes.h"

#include "common/base/logging.h"

namespace mailroom {

namespace bv1 = ::mailroom::broker::v1;
namespace cv1 = ::mailroom::common::v1;

MailRoutes::MailRoutes(BrokerPermits* permits, const Clock* clock, absl::Duration retry)
    : permits_(permits), clock_(clock), retry_(retry) {}

absl::optional<std::vector<std::string>> MailRoutes::Cached(MailPurpose purpose) {
  if (purpose == cv1::MAIL_PURPOSE_UNSPECIFIED) return std::vector<std::string>{""};
  absl::MutexLock lock(&mu_);
  if (clock_->Now() >= expire_at_) routes_.clear();
  auto it = routes_.find(purpose);
  if (it != routes_.end()) return it->second;
  if (clock_->Now() < retry_at_) return std::vector<std::string>{""};
  return absl::nullopt;
}

std::vector<std::string> MailRoutes::Of(MailPurpose purpose) {
  if (absl::optional<std::vector<std::string>> cached = Cached(purpose)) return *cached;
  absl::StatusOr<bv1::ResolveMailRouteResponse> resolved = permits_->ResolveMailRoute(purpose);
  absl::MutexLock lock(&mu_);
  if (!resolved.ok()) {
    // An older broker has no routes: everything goes through the default mailbox, and it is
    // asked again now and then (it may be upgraded). Otherwise the broker is away for now.
    const bool old_broker = absl::IsUnimplemented(resolved.status());
    MR_LOG(kInfo, kLogOutbox) << "cannot route " << PurposeName(purpose) << " ("
                              << resolved.status().message()
                              << "): the default mailbox carries it";
    retry_at_ = clock_->Now() + (old_broker ? absl::Minutes(10) : retry_);
    return {""};
  }
  std::vector<std::string> route;
  if (resolved->routed()) route.assign(resolved->mailboxes().begin(), resolved->mailboxes().end());
  if (route.empty()) route.push_back("");
  if (resolved->settings_etag() != etag_ || routes_.empty()) {
    routes_.clear();
    etag_ = resolved->settings_etag();
    expire_at_ = clock_->Now() + kRouteTtl;
  }
  routes_[purpose] = route;
  return route;
}

void MailRoutes::NoteSettingsEtag(const std::string& etag) {
  absl::MutexLock lock(&mu_);
  if (etag.empty() || etag_.empty() || etag == etag_ || etag == refreshed_for_) return;
  refreshed_for_ = etag;
  routes_.clear();
  retry_at_ = absl::InfinitePast();
}

void MailRoutes::Forget() {
  absl::MutexLock lock(&mu_);
  routes_.clear();
  retry_at_ = absl::InfinitePast();
}

}  // namespace mailroom
