#include "tests/testing/fake_mail_route_resolver.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace mailroom::testing {

namespace bv1 = ::mailroom::broker::v1;

void FakeMailRouteResolver::Route(MailPurpose purpose, std::vector<std::string> mailboxes,
                                  std::vector<std::string> send_as) {
  absl::MutexLock lock(&mu_);
  routes_[purpose] = {std::move(mailboxes), std::move(send_as)};
}

void FakeMailRouteResolver::SetUnanswered(absl::Status status) {
  absl::MutexLock lock(&mu_);
  unanswered_ = std::move(status);
}

std::vector<std::pair<MailPurpose, std::string>> FakeMailRouteResolver::calls() const {
  absl::MutexLock lock(&mu_);
  return calls_;
}

absl::StatusOr<bv1::ResolveMailRouteResponse> FakeMailRouteResolver::ResolveMailRoute(
    MailPurpose purpose, const std::string& from) {
  absl::MutexLock lock(&mu_);
  calls_.emplace_back(purpose, from);
  if (!unanswered_.ok()) return unanswered_;
  bv1::ResolveMailRouteResponse response;
  auto route = routes_.find(purpose);
  if (route == routes_.end()) {
    response.add_mailboxes("default@example.test");
    if (!from.empty()) response.set_from_mailbox("default@example.test");
    return response;
  }
  response.set_routed(true);
  for (const std::string& mailbox : route->second.mailboxes) response.add_mailboxes(mailbox);
  if (from.empty()) return response;
  const std::vector<std::string>& send_as = route->second.send_as;
  if (std::find(send_as.begin(), send_as.end(), from) == send_as.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat("from: \"", from, "\" is not an address that any of the mailboxes carrying ",
                     PurposeName(purpose), " (", absl::StrJoin(route->second.mailboxes, ", "),
                     ") may send as"));
  }
  response.set_from_mailbox(route->second.mailboxes.front());
  return response;
}

}  // namespace mailroom::testing
