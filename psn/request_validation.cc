#include "psn/request_validation.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/base/proto_time.h"
#include "common/base/text_checks.h"
#include "common/mail/address_checks.h"
#include "common/mail/notification_kinds.h"
#include "psn/template_text.h"

namespace mailroom::psn {
namespace {

namespace v1 = ::mailroom::psn::v1;
namespace cv1 = ::mailroom::common::v1;

constexpr size_t kMaxGuestIdChars = 128;
constexpr size_t kMaxUsernameChars = 256;
constexpr size_t kMaxPasswordChars = 256;
constexpr size_t kMaxNameChars = 256;
constexpr size_t kMaxRecipientFilterChars = 254;

std::string Path(absl::string_view prefix, absl::string_view field) {
  return absl::StrCat(prefix, ".", field);
}

// `username_required`: a password reset may name its sponsor by address only.
void CheckSponsor(FieldErrors* errors, const v1::Sponsor& sponsor, bool present,
                  absl::string_view prefix, bool username_required, bool email_required,
                  absl::string_view email_reason) {
  if (!present && (username_required || email_required)) {
    errors->Add(Path(prefix, username_required ? "username" : "email.address"),
                email_required && !username_required
                    ? absl::StrCat("is required for ", email_reason)
                    : "is required");
    return;
  }
  CheckText(errors, Path(prefix, "username"), sponsor.username(),
            Line(kMaxUsernameChars, username_required));
  if (email_required && sponsor.email().address().empty()) {
    errors->Add(Path(prefix, "email.address"), absl::StrCat("is required for ", email_reason));
  } else {
    CheckEmailAddress(errors, Path(prefix, "email"), sponsor.email(), /*required=*/false);
  }
}

void CheckPortalAndLanguage(FieldErrors* errors, absl::string_view portal_id,
                            absl::string_view language, bool portal_required) {
  CheckText(errors, "portal_id", portal_id, Line(kMaxPortalIdChars, portal_required));
  CheckLanguage(errors, "language", language);
}

void CheckGuest(FieldErrors* errors, const v1::Guest& guest, absl::string_view prefix,
                const GuestNeeds& needs) {
  CheckText(errors, Path(prefix, "guest_id"), guest.guest_id(), Line(kMaxGuestIdChars));
  CheckText(errors, Path(prefix, "username"), guest.username(),
            Line(kMaxUsernameChars, /*required=*/true));
  CheckText(errors, Path(prefix, "password"), guest.password(),
            Line(kMaxPasswordChars, needs.password));
  CheckText(errors, Path(prefix, "first_name"), guest.first_name(), Line(kMaxNameChars));
  CheckText(errors, Path(prefix, "last_name"), guest.last_name(), Line(kMaxNameChars));
  CheckEmailAddress(errors, Path(prefix, "email"), guest.email(), needs.email);
  const bool from_ok =
      CheckTimestamp(errors, Path(prefix, "valid_from"),
                     guest.has_valid_from() ? &guest.valid_from() : nullptr, needs.validity);
  const bool until_ok =
      CheckTimestamp(errors, Path(prefix, "valid_until"),
                     guest.has_valid_until() ? &guest.valid_until() : nullptr, needs.validity);
  if (from_ok && until_ok && guest.has_valid_from() && guest.has_valid_until() &&
      FromProto(guest.valid_until()) <= FromProto(guest.valid_from())) {
    errors->Add(Path(prefix, "valid_until"), "must be after valid_from");
  }
}

void CheckGuestList(FieldErrors* errors,
                    const google::protobuf::RepeatedPtrField<v1::Guest>& guests,
                    bool email_optional_with_summary, bool send_summary) {
  if (guests.empty()) {
    errors->Add("guests", "at least one guest is required");
    return;
  }
  if (static_cast<size_t>(guests.size()) > kMaxGuestsPerRequest) {
    errors->Add("guests", absl::StrCat("at most ", kMaxGuestsPerRequest,
                                       " guests per request (has ", guests.size(), ")"));
    return;
  }
  for (int i = 0; i < guests.size(); ++i) {
    const std::string prefix = absl::StrCat("guests[", i, "]");
    GuestNeeds needs;
    needs.email = !(email_optional_with_summary && send_summary);
    if (guests[i].email().address().empty() && email_optional_with_summary && !send_summary) {
      errors->Add(Path(prefix, "email.address"),
                  "is required unless send_summary (a guest without an address appears only "
                  "in the sponsor's summary)");
      needs.email = false;
    }
    CheckGuest(errors, guests[i], prefix, needs);
  }
}

void CheckTemplateKey(FieldErrors* errors, absl::string_view portal_id,
                      absl::string_view language, v1::TemplateKind kind) {
  CheckPortalAndLanguage(errors, portal_id, language, /*portal_required=*/false);
  if (kind == v1::TEMPLATE_KIND_UNSPECIFIED || !v1::TemplateKind_IsValid(kind)) {
    errors->Add("kind",
                "required (SELF_REGISTRATION, GUEST_CREDENTIALS, SPONSOR_SUMMARY or "
                "PASSWORD_RESET)");
  }
}

// A request that names one template (Get, Delete): its key is all there is to check.
template <typename TemplateKeyRequest>
absl::Status ValidateTemplateKey(const TemplateKeyRequest& request) {
  FieldErrors errors;
  CheckTemplateKey(&errors, request.portal_id(), request.language(), request.kind());
  return errors.ToStatus();
}

void CheckPageSize(FieldErrors* errors, const cv1::PageRequest& page) {
  if (page.page_size() < 0) errors->Add("page.page_size", "must not be negative");
}

// The checks NotifySponsorCreatedAccounts and Resend share: the guests, the sponsor (who
// needs an address when copied or sent the summary) and the portal and language.
template <typename SponsorRequest>
void CheckSponsorRequest(FieldErrors* errors, const SponsorRequest& request,
                         bool email_optional_with_summary) {
  CheckGuestList(errors, request.guests(), email_optional_with_summary, request.send_summary());
  CheckSponsor(errors, request.sponsor(), request.has_sponsor(), "sponsor",
               /*username_required=*/true, request.copy_me() || request.send_summary(),
               request.copy_me() ? "copy_me" : "send_summary");
  CheckPortalAndLanguage(errors, request.portal_id(), request.language(), true);
}

}  // namespace

bool IsPsnNotificationKind(int kind) {
  return cv1::NotificationKind_IsValid(kind) &&
         TraitsOf(static_cast<cv1::NotificationKind>(kind)).sender == cv1::ROLE_PSN;
}

absl::Status ValidateGuest(const v1::Guest& guest, absl::string_view prefix,
                           const GuestNeeds& needs) {
  FieldErrors errors;
  CheckGuest(&errors, guest, prefix, needs);
  return errors.ToStatus();
}

absl::Status ValidateRequest(const v1::NotifySelfRegistrationRequest& request) {
  FieldErrors errors;
  CheckGuest(&errors, request.guest(), "guest", GuestNeeds());
  CheckPortalAndLanguage(&errors, request.portal_id(), request.language(), true);
  CheckIdempotencyKey(&errors, "idempotency_key", request.idempotency_key());
  return errors.ToStatus();
}

absl::Status ValidateRequest(const v1::NotifySponsorCreatedAccountsRequest& request) {
  FieldErrors errors;
  CheckSponsorRequest(&errors, request, /*email_optional_with_summary=*/true);
  CheckIdempotencyKey(&errors, "idempotency_key", request.idempotency_key());
  return errors.ToStatus();
}

absl::Status ValidateRequest(const v1::ResendRequest& request) {
  FieldErrors errors;
  CheckSponsorRequest(&errors, request, /*email_optional_with_summary=*/false);
  if (request.delivery() != v1::DELIVERY_METHOD_UNSPECIFIED &&
      request.delivery() != v1::DELIVERY_METHOD_EMAIL) {
    errors.Add("delivery",
               "only DELIVERY_METHOD_EMAIL is supported (print and SMS stay in the portal)");
  }
  CheckIdempotencyKey(&errors, "idempotency_key", request.idempotency_key());
  return errors.ToStatus();
}

absl::Status ValidateRequest(const v1::SendPasswordResetRequest& request) {
  FieldErrors errors;
  GuestNeeds needs;
  needs.validity = false;
  CheckGuest(&errors, request.guest(), "guest", needs);
  CheckSponsor(&errors, request.sponsor(), request.has_sponsor(), "sponsor",
               /*username_required=*/false, request.copy_me(), "copy_me");
  CheckPortalAndLanguage(&errors, request.portal_id(), request.language(), true);
  CheckIdempotencyKey(&errors, "idempotency_key", request.idempotency_key());
  return errors.ToStatus();
}

absl::Status ValidateRequest(const v1::SendTestEmailRequest& request) {
  FieldErrors errors;
  CheckPortalAndLanguage(&errors, request.portal_id(), request.language(), true);
  if (!v1::TemplateKind_IsValid(request.kind())) errors.Add("kind", "not a TemplateKind");
  CheckEmailAddress(&errors, "to", request.to(), /*required=*/true);
  CheckIdempotencyKey(&errors, "idempotency_key", request.idempotency_key());
  return errors.ToStatus();
}

absl::Status ValidateRequest(const v1::GetNotificationStatusRequest& request) {
  FieldErrors errors;
  CheckNotificationLookup(&errors, request.notification_id(), request.idempotency_key());
  return errors.ToStatus();
}

absl::Status ValidateRequest(const v1::ListNotificationsRequest& request) {
  FieldErrors errors;
  for (int i = 0; i < request.states_size(); ++i) {
    if (!cv1::NotificationState_IsValid(request.states(i))) {
      errors.Add(absl::StrCat("states[", i, "]"), "not a NotificationState");
    }
  }
  for (int i = 0; i < request.kinds_size(); ++i) {
    if (request.kinds(i) != cv1::NOTIFICATION_KIND_UNSPECIFIED &&
        !IsPsnNotificationKind(request.kinds(i))) {
      errors.Add(absl::StrCat("kinds[", i, "]"), "not a kind of notification the PSN sends");
    }
  }
  CheckText(&errors, "recipient", request.recipient(), Line(kMaxRecipientFilterChars));
  CheckTimestamp(&errors, "create_time_after",
                 request.has_create_time_after() ? &request.create_time_after() : nullptr,
                 /*required=*/false);
  CheckPageSize(&errors, request.page());
  return errors.ToStatus();
}

absl::Status ValidateRequest(const v1::GetTemplateRequest& request) {
  return ValidateTemplateKey(request);
}

absl::Status ValidateRequest(const v1::ListTemplatesRequest& request) {
  FieldErrors errors;
  CheckText(&errors, "portal_id", request.portal_id(), Line(kMaxPortalIdChars));
  CheckPageSize(&errors, request.page());
  return errors.ToStatus();
}

absl::Status ValidateRequest(const v1::DeleteTemplateRequest& request) {
  return ValidateTemplateKey(request);
}

}  // namespace mailroom::psn
