// Provides PsnNotifier, the logic behind every GuestNotifications RPC (the gRPC class in
// psn/psn_service.h only authorizes and converts statuses). A send RPC is: validate the whole
// request (INVALID_ARGUMENT naming the field, nothing queued), check the Guest Email Settings
// (FAILED_PRECONDITION NOTIFICATIONS_DISABLED), resolve each mail's template, render it into a
// MIME message, and commit every notification of the request to the outbox in one transaction
// (all or none), returning only after the commit. Idempotency: notification i of a request
// with key K is queued under the outbox key "K#i", with the request (key cleared, RPC name
// prepended) as fingerprint, so a retry returns the original ids and queues nothing, and a
// reused key with other content is ALREADY_EXISTS. Passwords are never logged. Thread-safe.
#ifndef MAILROOM_PSN_PSN_NOTIFIER_H_
#define MAILROOM_PSN_PSN_NOTIFIER_H_

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/base/clock.h"
#include "common/mail/mime_message.h"
#include "common/node/from_address_check.h"
#include "common/outbox/outbox.h"
#include "common/rpc/rpc_method.h"
#include "proto/mailroom/psn/v1/psn.pb.h"
#include "psn/settings_store.h"
#include "psn/template_store.h"

namespace mailroom::psn {

struct NotifierOptions {
  // Largest rendered message (DeliveryConfig.max_message_size_bytes).
  size_t max_message_bytes = kDefaultMaxMessageBytes;
  // The broker's sending mailbox, for "Send Test Email" while the settings name no From
  // address; may be empty (unknown). May block briefly (it asks the broker).
  std::function<std::string()> sending_mailbox;
  // The broker's mailbox pool, asked whether default_from may be used when an admin saves it
  // (common/node/from_address_check.h); null: not checked.
  MailRouteResolver* mail_routes = nullptr;
};

class PsnNotifier {
 public:
  // None owned; all must outlive the notifier.
  PsnNotifier(Outbox* outbox, GuestEmailSettingsStore* settings, TemplateStore* templates,
              const Clock* clock, NotifierOptions options);

  MAILROOM_RPC_METHOD(v1, NotifySelfRegistration);
  MAILROOM_RPC_METHOD(v1, NotifySponsorCreatedAccounts);
  MAILROOM_RPC_METHOD(v1, Resend);
  MAILROOM_RPC_METHOD(v1, SendPasswordReset);
  MAILROOM_RPC_METHOD(v1, SendTestEmail);

  MAILROOM_RPC_METHOD(v1, GetNotificationStatus);
  MAILROOM_RPC_METHOD(v1, ListNotifications);

  v1::GetGuestEmailSettingsResponse GetGuestEmailSettings();
  MAILROOM_RPC_METHOD(v1, SetGuestEmailSettings);

  MAILROOM_RPC_METHOD(v1, PutTemplate);
  MAILROOM_RPC_METHOD(v1, GetTemplate);
  MAILROOM_RPC_METHOD(v1, ListTemplates);
  absl::Status DeleteTemplate(const v1::DeleteTemplateRequest& request);

  // The outbox idempotency key of notification `index` of a request with key `key`.
  static std::string NotificationKey(absl::string_view key, size_t index);

 private:
  struct Draft;
  // The drafts of a sponsor's request (NotifySponsorCreatedAccounts, Resend).
  template <typename Request>
  static std::vector<Draft> SponsorDrafts(const Request& request,
                                          mailroom::common::v1::NotificationKind guest_kind);
  // Renders every draft and commits them all in one transaction.
  absl::StatusOr<std::vector<mailroom::common::v1::QueuedNotification>> Queue(
      absl::string_view method, const google::protobuf::Message& request,
      absl::string_view idempotency_key, const std::vector<Draft>& drafts, bool* duplicate);
  // Queues `drafts` for `request` and answers with what was queued (one notification or
  // several, as `Response` has them) and whether the request repeated an earlier one.
  template <typename Response, typename Request>
  absl::StatusOr<Response> QueueAndAnswer(absl::string_view method, const Request& request,
                                          const std::vector<Draft>& drafts);
  absl::StatusOr<NewNotification> Render(const Draft& draft,
                                         const mailroom::common::v1::EmailAddress& from,
                                         absl::Time now);
  // FAILED_PRECONDITION NOTIFICATIONS_DISABLED when notifications are off; else the From.
  absl::StatusOr<mailroom::common::v1::EmailAddress> EnabledFrom();

  Outbox* const outbox_;
  GuestEmailSettingsStore* const settings_;
  TemplateStore* const templates_;
  const Clock* const clock_;
  const NotifierOptions options_;
};

}  // namespace mailroom::psn

#endif  // MAILROOM_PSN_PSN_NOTIFIER_H_
