// Provides the one save-time check of a role node's From address against the broker's mailbox
// pool (issue 13, README "Mailbox pool"): when an admin saves a From address (PSN
// GuestEmailSettings.default_from, PAN ReminderSettings.from, MnT AlarmSettings.sender), the
// node asks the broker (TokenBroker.ResolveMailRoute with the From) whether a mailbox routed for
// each purpose of that mail may send as it, and refuses the save when the broker says none may.
//
// The rule when the broker cannot answer (unreachable, no leader, not configured yet, or older
// than the pool: UNIMPLEMENTED): the save goes through, with a warning in the node's log naming
// the field and that the From was not checked. An admin's settings save must not depend on the
// broker being up, and a From no mailbox may send as is not silent later: Exchange refuses it
// with 550 5.7.60 (Send As denied), which delivery diagnoses by name with its fix.
//
// MailRouteResolver is the interface over BrokerPermits::ResolveMailRoute, so the role
// services take a fake in their unit tests. FromAddressCheck is thread-safe when its resolver
// is (BrokerPermits is).
#ifndef MAILROOM_COMMON_NODE_FROM_ADDRESS_CHECK_H_
#define MAILROOM_COMMON_NODE_FROM_ADDRESS_CHECK_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/mail/mail_purpose.h"
#include "common/node/broker_client.h"
#include "proto/mailroom/broker/v1/broker.pb.h"

namespace mailroom {

// Which mailboxes carry a purpose's mail and, with a From address, which of them may send as
// it (INVALID_ARGUMENT naming `from` when none may), as TokenBroker.ResolveMailRoute answers.
class MailRouteResolver {
 public:
  virtual ~MailRouteResolver() = default;
  virtual absl::StatusOr<mailroom::broker::v1::ResolveMailRouteResponse> ResolveMailRoute(
      MailPurpose purpose, const std::string& from) = 0;
};

// The broker's answer, through a node's BrokerPermits (which must outlive it).
class BrokerMailRouteResolver : public MailRouteResolver {
 public:
  explicit BrokerMailRouteResolver(BrokerPermits* permits) : permits_(permits) {}
  absl::StatusOr<mailroom::broker::v1::ResolveMailRouteResponse> ResolveMailRoute(
      MailPurpose purpose, const std::string& from) override;

 private:
  BrokerPermits* const permits_;
};

class FromAddressCheck {
 public:
  // `resolver` may be null: nothing is checked (a node without a broker, tests of other
  // things). Not owned; must outlive the check.
  explicit FromAddressCheck(MailRouteResolver* resolver) : resolver_(resolver) {}

  // OK when `from` is empty (the node then sends as the broker's mailbox), when a mailbox of
  // each of `purposes`' routes may send as it, or when the broker cannot answer (logged as a
  // warning naming `field`; the rule above). INVALID_ARGUMENT "<field>: ..." naming the From,
  // the purpose and its route's mailboxes when the broker refuses it for any purpose. Asks the
  // broker once per purpose, and no more after the first time it cannot answer.
  absl::Status Check(absl::string_view field, const std::string& from,
                     const std::vector<MailPurpose>& purposes) const;

 private:
  MailRouteResolver* const resolver_;
};

}  // namespace mailroom

#endif  // MAILROOM_COMMON_NODE_FROM_ADDRESS_CHECK_H_
