#include "pan/request_validation.h"

#include "absl/strings/str_cat.h"
#include "common/base/text_checks.h"
#include "common/mail/address_checks.h"
#include "common/rpc/status_grpc.h"
#include "pan/reminder_settings.h"

namespace mailroom::pan {
namespace {

// The PAN's errors carry their reason in-process too (the RPC edge adds INVALID_FIELD to
// every INVALID_ARGUMENT anyway).
absl::Status Result(const FieldErrors& errors) {
  return errors.empty() ? absl::OkStatus() : WithReason(errors.ToStatus(), "INVALID_FIELD");
}

// A request without its one required message: nothing else in it is worth checking.
absl::Status MissingField(absl::string_view field) {
  FieldErrors errors;
  errors.Add(field, "is required");
  return Result(errors);
}

void CheckId(FieldErrors* errors, absl::string_view field, const std::string& id) {
  CheckText(errors, field, id, Line(kMaxAccountIdChars, /*required=*/true));
}

void CheckPage(FieldErrors* errors, const mailroom::common::v1::PageRequest& page) {
  if (page.page_size() < 0) errors->Add("page.page_size", "must not be negative");
  CheckText(errors, "page.page_token", page.page_token(), Line(512));
}

void CheckPersonFields(FieldErrors* errors, const std::string& username,
                       const mailroom::common::v1::EmailAddress& email,
                       const std::string& first_name, const std::string& last_name) {
  CheckText(errors, "account.username", username, Line(kMaxNameChars, /*required=*/true));
  CheckEmailAddress(errors, "account.email", email, /*required=*/true);
  CheckText(errors, "account.first_name", first_name, Line(kMaxNameChars));
  CheckText(errors, "account.last_name", last_name, Line(kMaxNameChars));
}

}  // namespace

absl::Status ValidateRequest(const v1::UpsertGuestAccountRequest& request) {
  if (!request.has_account()) return MissingField("account");
  FieldErrors errors;
  const v1::GuestAccount& a = request.account();
  CheckId(&errors, "account.id", a.id());
  CheckPersonFields(&errors, a.username(), a.email(), a.first_name(), a.last_name());
  CheckText(&errors, "account.portal_id", a.portal_id(), Line(kMaxNameChars));
  CheckTimestamp(&errors, "account.expire_time", a.has_expire_time() ? &a.expire_time() : nullptr,
                 /*required=*/true);
  return Result(errors);
}

absl::Status ValidateRequest(const v1::UpsertUserAccountRequest& request) {
  if (!request.has_account()) return MissingField("account");
  FieldErrors errors;
  const v1::UserAccount& a = request.account();
  CheckId(&errors, "account.id", a.id());
  if (a.kind() == v1::USER_KIND_UNSPECIFIED) {
    errors.Add("account.kind", "is required (USER_KIND_ADMIN or USER_KIND_INTERNAL)");
  } else if (!v1::UserKind_IsValid(a.kind())) {
    errors.Add("account.kind", absl::StrCat("unknown value ", a.kind()));
  }
  CheckPersonFields(&errors, a.username(), a.email(), a.first_name(), a.last_name());
  CheckTimestamp(&errors, "account.password_expire_time",
                 a.has_password_expire_time() ? &a.password_expire_time() : nullptr,
                 /*required=*/false);
  return Result(errors);
}

absl::Status ValidateRequest(const v1::DeleteGuestAccountRequest& request) {
  FieldErrors errors;
  CheckId(&errors, "id", request.id());
  return Result(errors);
}

absl::Status ValidateRequest(const v1::DeleteUserAccountRequest& request) {
  FieldErrors errors;
  CheckId(&errors, "id", request.id());
  return Result(errors);
}

absl::Status ValidateRequest(const v1::ListAccountsRequest& request) {
  FieldErrors errors;
  for (int i = 0; i < request.kinds_size(); ++i) {
    const int kind = request.kinds(i);
    if (kind == v1::ACCOUNT_KIND_UNSPECIFIED || !v1::AccountKind_IsValid(kind)) {
      errors.Add(absl::StrCat("kinds[", i, "]"), absl::StrCat("invalid account kind ", kind));
    }
  }
  CheckTimestamp(&errors, "expire_before",
                 request.has_expire_before() ? &request.expire_before() : nullptr,
                 /*required=*/false);
  CheckText(&errors, "prefix", request.prefix(), Line(kMaxNameChars));
  CheckPage(&errors, request.page());
  return Result(errors);
}

absl::Status ValidateRequest(const v1::SetReminderSettingsRequest& request) {
  if (!request.has_settings()) return MissingField("settings");
  FieldErrors errors;
  CheckReminderSettings(&errors, "settings.", request.settings(), /*require_from=*/true);
  CheckText(&errors, "etag", request.etag(), Line(128));
  return Result(errors);
}

absl::Status ValidateRequest(const v1::ListPlannedRemindersRequest& request) {
  FieldErrors errors;
  if (!request.account_id().empty()) {
    CheckId(&errors, "account_id", request.account_id());
    if (request.account_kind() == v1::ACCOUNT_KIND_UNSPECIFIED) {
      errors.Add("account_kind", "is required when account_id is set");
    }
  }
  if (!v1::AccountKind_IsValid(request.account_kind())) {
    errors.Add("account_kind", absl::StrCat("unknown value ", request.account_kind()));
  }
  for (int i = 0; i < request.kinds_size(); ++i) {
    const int kind = request.kinds(i);
    if (kind == v1::REMINDER_KIND_UNSPECIFIED || !v1::ReminderKind_IsValid(kind)) {
      errors.Add(absl::StrCat("kinds[", i, "]"), absl::StrCat("invalid reminder kind ", kind));
    }
  }
  for (int i = 0; i < request.states_size(); ++i) {
    const int state = request.states(i);
    if (state == v1::REMINDER_STATE_UNSPECIFIED || !v1::ReminderState_IsValid(state)) {
      errors.Add(absl::StrCat("states[", i, "]"), absl::StrCat("invalid reminder state ", state));
    }
  }
  CheckTimestamp(&errors, "due_after", request.has_due_after() ? &request.due_after() : nullptr,
                 /*required=*/false);
  CheckTimestamp(&errors, "due_before", request.has_due_before() ? &request.due_before() : nullptr,
                 /*required=*/false);
  CheckPage(&errors, request.page());
  return Result(errors);
}

absl::Status ValidateRequest(const v1::GetNotificationStatusRequest& request) {
  FieldErrors errors;
  CheckNotificationId(&errors, "notification_id", request.notification_id(), /*required=*/true);
  return Result(errors);
}

}  // namespace mailroom::pan
