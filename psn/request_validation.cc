#include "psn/request_validation.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/base/proto_time.h"
#include "common/base/status_macros.h"
#include "psn/field_checks.h"

namespace mailroom::psn {
namespace {

namespace v1 = ::mailroom::psn::v1;
namespace cv1 = ::mailroom::common::v1;

constexpr size_t kMaxGuestIdChars = 128;
constexpr size_t kMaxUsernameChars = 256;
constexpr size_t kMaxPasswordChars = 256;
constexpr size_t kMaxNameChars = 256;
constexpr size_t kMaxRecipientFilterChars = 254;
constexpr size_t kMaxNotificationIdChars = 256;

std::string Path(absl::string_view prefix, absl::string_view field) {
  return absl::StrCat(prefix, ".", field);
}

// `username_required`: a password reset may name its sponsor by address only.
absl::Status ValidateSponsor(const v1::Sponsor& sponsor, bool present, absl::string_view prefix,
                             bool username_required, bool email_required,
                             absl::string_view email_reason) {
  if (!present && (username_required || email_required)) {
    return FieldError(Path(prefix, username_required ? "username" : "email.address"),
                      email_required && !username_required
                          ? absl::StrCat("required for ", email_reason)
                          : "required");
  }
  MR_RETURN_IF_ERROR(CheckText(Path(prefix, "username"), sponsor.username(),
                               SingleLine(kMaxUsernameChars, username_required)));
  if (email_required && sponsor.email().address().empty()) {
    return FieldError(Path(prefix, "email.address"), absl::StrCat("required for ", email_reason));
  }
  return CheckEmailAddress(Path(prefix, "email"), sponsor.email(), /*required=*/false);
}

absl::Status ValidateCommon(absl::string_view portal_id, absl::string_view language) {
  MR_RETURN_IF_ERROR(CheckPortalId("portal_id", portal_id, /*allow_empty=*/false));
  return CheckLanguage("language", language);
}

absl::Status ValidateGuestList(const google::protobuf::RepeatedPtrField<v1::Guest>& guests,
                               bool email_optional_with_summary, bool send_summary) {
  if (guests.empty()) return FieldError("guests", "at least one guest is required");
  if (static_cast<size_t>(guests.size()) > kMaxGuestsPerRequest) {
    return FieldError("guests", absl::StrCat("at most ", kMaxGuestsPerRequest,
                                             " guests per request (has ", guests.size(), ")"));
  }
  for (int i = 0; i < guests.size(); ++i) {
    const std::string prefix = absl::StrCat("guests[", i, "]");
    const bool has_email = !guests[i].email().address().empty();
    if (!has_email && email_optional_with_summary && !send_summary) {
      return FieldError(Path(prefix, "email.address"),
                        "required unless send_summary (a guest without an address appears only "
                        "in the sponsor's summary)");
    }
    GuestNeeds needs;
    needs.email = !(email_optional_with_summary && send_summary);
    MR_RETURN_IF_ERROR(ValidateGuest(guests[i], prefix, needs));
  }
  return absl::OkStatus();
}

}  // namespace

bool IsPsnNotificationKind(int kind) {
  switch (kind) {
    case cv1::NOTIFICATION_KIND_GUEST_SELF_REGISTRATION:
    case cv1::NOTIFICATION_KIND_GUEST_CREDENTIALS:
    case cv1::NOTIFICATION_KIND_GUEST_CREDENTIALS_RESEND:
    case cv1::NOTIFICATION_KIND_SPONSOR_SUMMARY:
    case cv1::NOTIFICATION_KIND_PASSWORD_RESET:
    case cv1::NOTIFICATION_KIND_PORTAL_TEST_EMAIL:
      return true;
    default:
      return false;
  }
}

absl::Status ValidateGuest(const v1::Guest& guest, absl::string_view prefix,
                           const GuestNeeds& needs) {
  MR_RETURN_IF_ERROR(
      CheckText(Path(prefix, "guest_id"), guest.guest_id(), SingleLine(kMaxGuestIdChars)));
  MR_RETURN_IF_ERROR(CheckText(Path(prefix, "username"), guest.username(),
                               SingleLine(kMaxUsernameChars, /*required=*/true)));
  MR_RETURN_IF_ERROR(CheckText(Path(prefix, "password"), guest.password(),
                               SingleLine(kMaxPasswordChars, needs.password)));
  MR_RETURN_IF_ERROR(
      CheckText(Path(prefix, "first_name"), guest.first_name(), SingleLine(kMaxNameChars)));
  MR_RETURN_IF_ERROR(
      CheckText(Path(prefix, "last_name"), guest.last_name(), SingleLine(kMaxNameChars)));
  MR_RETURN_IF_ERROR(CheckEmailAddress(Path(prefix, "email"), guest.email(), needs.email));
  MR_RETURN_IF_ERROR(CheckTimestamp(Path(prefix, "valid_from"), guest.has_valid_from(),
                                    guest.valid_from(), needs.validity));
  MR_RETURN_IF_ERROR(CheckTimestamp(Path(prefix, "valid_until"), guest.has_valid_until(),
                                    guest.valid_until(), needs.validity));
  if (guest.has_valid_from() && guest.has_valid_until() &&
      FromProto(guest.valid_until()) <= FromProto(guest.valid_from())) {
    return FieldError(Path(prefix, "valid_until"), "must be after valid_from");
  }
  return absl::OkStatus();
}

absl::Status ValidateRequest(const v1::NotifySelfRegistrationRequest& request) {
  MR_RETURN_IF_ERROR(ValidateGuest(request.guest(), "guest", GuestNeeds()));
  MR_RETURN_IF_ERROR(ValidateCommon(request.portal_id(), request.language()));
  return CheckIdempotencyKey("idempotency_key", request.idempotency_key());
}

absl::Status ValidateRequest(const v1::NotifySponsorCreatedAccountsRequest& request) {
  MR_RETURN_IF_ERROR(ValidateGuestList(request.guests(), /*email_optional_with_summary=*/true,
                                       request.send_summary()));
  MR_RETURN_IF_ERROR(ValidateSponsor(request.sponsor(), request.has_sponsor(), "sponsor",
                                     /*username_required=*/true,
                                     request.copy_me() || request.send_summary(),
                                     request.copy_me() ? "copy_me" : "send_summary"));
  MR_RETURN_IF_ERROR(ValidateCommon(request.portal_id(), request.language()));
  return CheckIdempotencyKey("idempotency_key", request.idempotency_key());
}

absl::Status ValidateRequest(const v1::ResendRequest& request) {
  MR_RETURN_IF_ERROR(ValidateGuestList(request.guests(), /*email_optional_with_summary=*/false,
                                       request.send_summary()));
  MR_RETURN_IF_ERROR(ValidateSponsor(request.sponsor(), request.has_sponsor(), "sponsor",
                                     /*username_required=*/true,
                                     request.copy_me() || request.send_summary(),
                                     request.copy_me() ? "copy_me" : "send_summary"));
  MR_RETURN_IF_ERROR(ValidateCommon(request.portal_id(), request.language()));
  if (request.delivery() != v1::DELIVERY_METHOD_UNSPECIFIED &&
      request.delivery() != v1::DELIVERY_METHOD_EMAIL) {
    return FieldError("delivery",
                      "only DELIVERY_METHOD_EMAIL is supported (print and SMS stay in the portal)");
  }
  return CheckIdempotencyKey("idempotency_key", request.idempotency_key());
}

absl::Status ValidateRequest(const v1::SendPasswordResetRequest& request) {
  GuestNeeds needs;
  needs.validity = false;
  MR_RETURN_IF_ERROR(ValidateGuest(request.guest(), "guest", needs));
  MR_RETURN_IF_ERROR(ValidateSponsor(request.sponsor(), request.has_sponsor(), "sponsor",
                                     /*username_required=*/false, request.copy_me(), "copy_me"));
  MR_RETURN_IF_ERROR(ValidateCommon(request.portal_id(), request.language()));
  return CheckIdempotencyKey("idempotency_key", request.idempotency_key());
}

absl::Status ValidateRequest(const v1::SendTestEmailRequest& request) {
  MR_RETURN_IF_ERROR(ValidateCommon(request.portal_id(), request.language()));
  if (!v1::TemplateKind_IsValid(request.kind())) {
    return FieldError("kind", "not a TemplateKind");
  }
  MR_RETURN_IF_ERROR(CheckEmailAddress("to", request.to(), /*required=*/true));
  return CheckIdempotencyKey("idempotency_key", request.idempotency_key());
}

absl::Status ValidateRequest(const v1::GetNotificationStatusRequest& request) {
  const bool by_id = !request.notification_id().empty();
  const bool by_key = !request.idempotency_key().empty();
  if (by_id == by_key) {
    return FieldError("notification_id",
                      "exactly one of notification_id and idempotency_key is required");
  }
  if (by_id) {
    return CheckText("notification_id", request.notification_id(),
                     SingleLine(kMaxNotificationIdChars));
  }
  return CheckIdempotencyKey("idempotency_key", request.idempotency_key());
}

absl::Status ValidateRequest(const v1::ListNotificationsRequest& request) {
  for (int i = 0; i < request.states_size(); ++i) {
    if (!cv1::NotificationState_IsValid(request.states(i))) {
      return FieldError(absl::StrCat("states[", i, "]"), "not a NotificationState");
    }
  }
  for (int i = 0; i < request.kinds_size(); ++i) {
    if (request.kinds(i) != cv1::NOTIFICATION_KIND_UNSPECIFIED &&
        !IsPsnNotificationKind(request.kinds(i))) {
      return FieldError(absl::StrCat("kinds[", i, "]"), "not a kind of notification the PSN sends");
    }
  }
  MR_RETURN_IF_ERROR(
      CheckText("recipient", request.recipient(), SingleLine(kMaxRecipientFilterChars)));
  MR_RETURN_IF_ERROR(CheckTimestamp("create_time_after", request.has_create_time_after(),
                                    request.create_time_after(), /*required=*/false));
  if (request.page().page_size() < 0) {
    return FieldError("page.page_size", "must not be negative");
  }
  return absl::OkStatus();
}

namespace {

absl::Status ValidateTemplateKey(absl::string_view portal_id, absl::string_view language,
                                 v1::TemplateKind kind) {
  MR_RETURN_IF_ERROR(CheckPortalId("portal_id", portal_id, /*allow_empty=*/true));
  MR_RETURN_IF_ERROR(CheckLanguage("language", language));
  if (kind == v1::TEMPLATE_KIND_UNSPECIFIED || !v1::TemplateKind_IsValid(kind)) {
    return FieldError("kind",
                      "required (SELF_REGISTRATION, GUEST_CREDENTIALS, SPONSOR_SUMMARY or "
                      "PASSWORD_RESET)");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateRequest(const v1::GetTemplateRequest& request) {
  return ValidateTemplateKey(request.portal_id(), request.language(), request.kind());
}

absl::Status ValidateRequest(const v1::ListTemplatesRequest& request) {
  MR_RETURN_IF_ERROR(CheckPortalId("portal_id", request.portal_id(), /*allow_empty=*/true));
  if (request.page().page_size() < 0) {
    return FieldError("page.page_size", "must not be negative");
  }
  return absl::OkStatus();
}

absl::Status ValidateRequest(const v1::DeleteTemplateRequest& request) {
  return ValidateTemplateKey(request.portal_id(), request.language(), request.kind());
}

}  // namespace mailroom::psn
