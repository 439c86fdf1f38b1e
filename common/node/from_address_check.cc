#include "common/node/from_address_check.h"

#include "absl/strings/strip.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/base/logging.h"

namespace mailroom {

namespace bv1 = ::mailroom::broker::v1;

absl::StatusOr<bv1::ResolveMailRouteResponse> BrokerMailRouteResolver::ResolveMailRoute(
    MailPurpose purpose, const std::string& from) {
  return permits_->ResolveMailRoute(purpose, from);
}

absl::Status FromAddressCheck::Check(absl::string_view field, const std::string& from,
                                     const std::vector<MailPurpose>& purposes) const {
  if (resolver_ == nullptr || from.empty()) return absl::OkStatus();
  for (MailPurpose purpose : purposes) {
    absl::StatusOr<bv1::ResolveMailRouteResponse> route =
        resolver_->ResolveMailRoute(purpose, from);
    if (route.ok()) continue;
    if (route.status().code() == absl::StatusCode::kInvalidArgument) {
      // The broker names its own request field ("from: ..."); the admin saved `field`.
      absl::string_view why = route.status().message();
      if (!absl::ConsumePrefix(&why, "from: ")) {
        return absl::InvalidArgumentError(absl::StrCat(
            field, ": \"", from, "\" is refused by the broker for ", PurposeName(purpose), ": ",
            why));
      }
      return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
    }
    // Only the address, never more of the request: it is not a secret, and it is what the
    // admin needs to check by hand.
    MR_LOG(kWarn, kLogConfig) << field << " \"" << from
                              << "\" saved without checking it against the broker's mailbox "
                                 "pool (the broker could not answer: "
                              << route.status() << "); if no mailbox may send as it, its mail "
                              << "fails at Exchange with 550 5.7.60 (Send As denied)";
    return absl::OkStatus();
  }
  return absl::OkStatus();
}

}  // namespace mailroom
