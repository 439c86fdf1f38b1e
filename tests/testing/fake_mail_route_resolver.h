// Provides FakeMailRouteResolver, a MailRouteResolver (common/node/from_address_check.h) for
// the role services' unit tests: each purpose's route is set by the test (mailboxes and the
// From addresses they may send as), refusals are worded as the broker words them ("from: ..."),
// and SetUnanswered makes every call fail as a broker that cannot answer. Records each call.
// Thread-safe.
#ifndef MAILROOM_TESTS_TESTING_FAKE_MAIL_ROUTE_RESOLVER_H_
#define MAILROOM_TESTS_TESTING_FAKE_MAIL_ROUTE_RESOLVER_H_

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/node/from_address_check.h"

namespace mailroom::testing {

class FakeMailRouteResolver : public MailRouteResolver {
 public:
  // `purpose` goes through `mailboxes`, which may send as `send_as` (and nothing else). A
  // purpose without a route goes through "default@example.test", which may send as anything.
  void Route(MailPurpose purpose, std::vector<std::string> mailboxes,
             std::vector<std::string> send_as);
  // Every call answers `status` (e.g. UNAVAILABLE, UNIMPLEMENTED) until set back to OK.
  void SetUnanswered(absl::Status status);
  // (purpose, from) of each call so far.
  std::vector<std::pair<MailPurpose, std::string>> calls() const;

  absl::StatusOr<mailroom::broker::v1::ResolveMailRouteResponse> ResolveMailRoute(
      MailPurpose purpose, const std::string& from) override;

 private:
  struct Entry {
    std::vector<std::string> mailboxes;
    std::vector<std::string> send_as;
  };
  mutable absl::Mutex mu_;
  std::map<MailPurpose, Entry> routes_ ABSL_GUARDED_BY(mu_);
  absl::Status unanswered_ ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<MailPurpose, std::string>> calls_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mailroom::testing

#endif  // MAILROOM_TESTS_TESTING_FAKE_MAIL_ROUTE_RESOLVER_H_
