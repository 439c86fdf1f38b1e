// Provides the rules of the broker's pool of sending mailboxes (issue 13, README "Mailbox
// pool"), in one place:
// - The pool: the default mailbox (SmtpSettings.username, limits from the broker's config,
//   transport SmtpSettings.transport) and the pool mailboxes (SmtpSettings.mailboxes), each
//   with its own transport, limits (a zero field takes the broker's configured limit) and Send
//   As addresses. Settings saved before the pool have no pool mailboxes: a pool of one. Every
//   mailbox gets its tokens from the broker's one credential (the credential reference:
//   PoolMailbox.credential empty or "default").
// - Lookup: a mailbox is named by its address, compared without regard to case; an empty
//   name is the default mailbox; anything else is NOT_FOUND naming the field.
// - Routing: each purpose (common/mail/mail_purpose.h) with a route (SmtpSettings.routes)
//   goes through its route's mailboxes, most preferred first; a purpose without one goes
//   through the default mailbox.
// - Send As: a mailbox may send as its own address, each address of its send_as, and every
//   address of each "@domain" there; the default mailbox with no send_as at all is not
//   checked (settings saved before the pool: Exchange alone decides). A From address is
//   allowed for a purpose when every mailbox of the purpose's route may send as it, since any
//   of them may carry the mail (the next one while those before it are paused after a 5.2.0)
//   (CheckFrom, what a role node asks at its own save time through
//   TokenBroker.ResolveMailRoute).
// - Validation: INVALID_ARGUMENT naming each bad field ("settings.mailboxes[1].send_as[0]:
//   \"x\" is not an address or @domain"): addresses, duplicates (the default mailbox
//   included), credential references, transports, limits out of range, routes naming unknown
//   mailboxes or a purpose twice.
// Immutable once built; thread-safe.
#ifndef MAILROOM_PAN_BROKER_MAILBOX_POOL_H_
#define MAILROOM_PAN_BROKER_MAILBOX_POOL_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/mail/mail_purpose.h"
#include "pan/broker/send_quota.h"
#include "proto/mailroom/broker/v1/settings.pb.h"

namespace mailroom::broker {

inline constexpr int kMaxPoolMailboxes = 32;
inline constexpr int kMaxSendAsEntries = 64;
inline constexpr int kMaxRouteMailboxes = 8;

// One mailbox of the pool.
struct PoolMember {
  std::string address;  // as configured
  // How its mail goes out as configured: SMTP (for UNSPECIFIED too), GRAPH or
  // SMTP_WITH_GRAPH_FALLBACK (its state then in the broker's MailboxFallbacks).
  ::mailroom::broker::v1::MailTransport transport = ::mailroom::broker::v1::MAIL_TRANSPORT_SMTP;
  SendLimitValues limits;
  bool is_default = false;
  // Lower-case addresses and "@domain"s it may send as, besides its own address.
  std::vector<std::string> send_as;
  // False for the default mailbox without send_as (not checked).
  bool checks_send_as = true;
};

// Checks the pool fields of settings (mailboxes, routes, send_as), the rest of them resolved
// (ResolveDefaults). INVALID_ARGUMENT naming each bad field as "<prefix>.<field>".
absl::Status ValidateMailboxPool(const ::mailroom::broker::v1::SmtpSettings& settings,
                                 const std::string& prefix);

// `resolved` (the pool's settings) as `member` sends with them: username its address (the
// XOAUTH2 user, the envelope sender and Graph's users/{mailbox}) and transport its own. What
// Test Connection of a pool mailbox tests.
::mailroom::broker::v1::SmtpSettings SettingsOfMailbox(
    const ::mailroom::broker::v1::SmtpSettings& resolved, const PoolMember& member);

// Whether the default mailbox or any pool mailbox sends through Microsoft Graph (then
// graph_endpoint is needed).
bool PoolUsesGraph(const ::mailroom::broker::v1::SmtpSettings& settings);

class MailboxPool {
 public:
  // From settings that passed ValidateMailboxPool; `defaults` (the broker's configured
  // limits) are the default mailbox's limits and fill each pool mailbox's zero fields.
  MailboxPool(const ::mailroom::broker::v1::SmtpSettings& settings,
              const SendLimitValues& defaults);

  const PoolMember& default_mailbox() const { return members_.front(); }
  // The default mailbox first, then the pool mailboxes in configured order.
  const std::vector<PoolMember>& members() const { return members_; }

  // The mailbox named `address` (without regard to case), or null.
  const PoolMember* Find(absl::string_view address) const;
  // As Find, with "" for the default mailbox; NOT_FOUND "<field>: ..." for any other name.
  absl::StatusOr<const PoolMember*> Resolve(absl::string_view address,
                                            absl::string_view field) const;

  // The mailboxes that carry `purpose`'s mail, most preferred first; the default mailbox
  // alone when the purpose has no route.
  std::vector<const PoolMember*> Route(MailPurpose purpose) const;
  // Whether `purpose` has a route of its own.
  bool IsRouted(MailPurpose purpose) const;

  // Whether `mailbox` may send as `from` (see the rules above). False for a malformed `from`.
  static bool CanSendAs(const PoolMember& mailbox, absl::string_view from);
  // The first of `purpose`'s mailboxes, when each of them may send as `from`; INVALID_ARGUMENT
  // "<field>: ..." when `from` is not an address or one of them may not send as it (the error
  // names those and the fix).
  absl::StatusOr<const PoolMember*> CheckFrom(MailPurpose purpose, absl::string_view from,
                                              absl::string_view field) const;

  // Each mailbox's limits, by configured address, for SendQuota::SetMailboxLimits.
  std::map<std::string, SendLimitValues> Limits() const;

 private:
  std::vector<PoolMember> members_;
  // Per routed purpose, indexes into members_.
  std::map<int, std::vector<size_t>> routes_;
};

}  // namespace mailroom::broker

#endif  // MAILROOM_PAN_BROKER_MAILBOX_POOL_H_
