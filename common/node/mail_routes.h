// Provides MailRoutes: which mailboxes carry each MailPurpose's mail, most preferred first, as
// the broker's TokenBroker.ResolveMailRoute answers them, cached per settings etag and for at
// most kRouteTtl. "" stands for the default mailbox: unrouted mail, and all mail while the
// broker cannot say (UNIMPLEMENTED from an older broker is asked again after 10 minutes, any
// other failure after `retry`). Thread-safe.
#ifndef MAILROOM_COMMON_NODE_MAIL_ROUTES_H_
#define MAILROOM_COMMON_NODE_MAIL_ROUTES_H_

#include <map>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/optional.h"
#include "common/base/clock.h"
#include "common/mail/mail_purpose.h"
#include "common/node/broker_client.h"

namespace mailroom {

class MailRoutes {
 public:
  // Cached routes are asked for again this often, so a route changed without a grant naming
  // the new settings (pool mailboxes' tokens are refreshed only as they are needed) still takes
  // effect.
  static constexpr absl::Duration kRouteTtl = absl::Minutes(5);

  // `permits` and `clock` must outlive the routes.
  MailRoutes(BrokerPermits* permits, const Clock* clock, absl::Duration retry);
  MailRoutes(const MailRoutes&) = delete;
  MailRoutes& operator=(const MailRoutes&) = delete;

  // The route of `purpose`, asking the broker when it is not cached (one broker call).
  std::vector<std::string> Of(MailPurpose purpose);
  // The route without asking the broker: nullopt when Of would ask.
  absl::optional<std::vector<std::string>> Cached(MailPurpose purpose);
  // Settings the cached routes may predate (a grant's etag): they are asked for again.
  void NoteSettingsEtag(const std::string& etag);
  // Forgets the cached routes (a mailbox the broker no longer knows).
  void Forget();

 private:
  BrokerPermits* const permits_;
  const Clock* const clock_;
  const absl::Duration retry_;

  absl::Mutex mu_;
  // The routes the broker answered, by purpose, as of settings etag_; none are asked for
  // before retry_at_ (after a failure). refreshed_for_: the last grant etag that made them be
  // asked again (so a grant older than the routes cannot make them asked each round).
  std::map<int, std::vector<std::string>> routes_ ABSL_GUARDED_BY(mu_);
  std::string etag_ ABSL_GUARDED_BY(mu_);
  std::string refreshed_for_ ABSL_GUARDED_BY(mu_);
  absl::Time retry_at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  // When the cached routes are asked for again regardless (kRouteTtl after the first of them).
  absl::Time expire_at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace mailroom

#endif  // MAILROOM_COMMON_NODE_MAIL_ROUTES_H_
