#include "psn/settings_store.h"

#include "absl/strings/str_cat.h"
#include "common/base/logging.h"
#include "common/rpc/status_grpc.h"
#include "common/base/text_checks.h"
#include "common/mail/address_checks.h"
#include "psn/proto_file.h"

namespace mailroom::psn {
namespace {

// The etag covers the content only, so PSNs given the same settings agree on it.
std::string EtagOf(GuestEmailSettings settings) {
  settings.clear_etag();
  settings.clear_update_time();
  return ContentEtag(settings);
}

}  // namespace

absl::Status ValidateGuestEmailSettings(const GuestEmailSettings& settings,
                                        absl::string_view prefix) {
  const std::string field = absl::StrCat(prefix, "default_from");
  FieldErrors errors;
  if (settings.notifications_enabled() && settings.default_from().address().empty()) {
    errors.Add(absl::StrCat(field, ".address"),
               "required when notifications_enabled (normally the broker's mailbox)");
  } else {
    CheckEmailAddress(&errors, field, settings.default_from(), /*required=*/false);
  }
  return errors.ToStatus();
}

absl::StatusOr<std::unique_ptr<GuestEmailSettingsStore>> GuestEmailSettingsStore::Open(
    const std::string& path, const GuestEmailSettings& initial, const Clock* clock) {
  std::unique_ptr<GuestEmailSettingsStore> store(new GuestEmailSettingsStore(path, clock));
  GuestEmailSettings settings;
  absl::Status read = ReadProtoFile(path, &settings);
  if (absl::IsNotFound(read)) {
    if (absl::Status s = ValidateGuestEmailSettings(initial, "psn.guest_email_settings.");
        !s.ok()) {
      return s;
    }
    settings = initial;
    settings.clear_update_time();
    MR_LOG(kInfo, kLogPsn) << "guest email settings from the node config (notifications "
                           << (settings.notifications_enabled() ? "on" : "off") << ")";
  } else if (!read.ok()) {
    return read;
  } else {
    MR_LOG(kInfo, kLogPsn) << "guest email settings loaded from " << path << " (notifications "
                           << (settings.notifications_enabled() ? "on" : "off") << ")";
  }
  settings.set_etag(EtagOf(settings));
  absl::MutexLock lock(&store->mu_);
  store->settings_ = std::move(settings);
  return store;
}

GuestEmailSettings GuestEmailSettingsStore::Get() const {
  absl::MutexLock lock(&mu_);
  return settings_;
}

absl::StatusOr<GuestEmailSettings> GuestEmailSettingsStore::Set(
    const GuestEmailSettings& settings, absl::string_view etag) {
  if (absl::Status s = ValidateGuestEmailSettings(settings, "settings."); !s.ok()) return s;
  GuestEmailSettings next = settings;
  next.clear_etag();
  next.clear_update_time();
  const absl::Time now = clock_->Now();
  next.mutable_update_time()->set_seconds(absl::ToUnixSeconds(now));
  next.set_etag(EtagOf(next));
  absl::MutexLock lock(&mu_);
  if (!etag.empty() && etag != settings_.etag()) {
    return WithReason(absl::AbortedError(absl::StrCat(
                          "etag: \"", etag, "\" is stale; the settings were changed meanwhile "
                          "(current etag \"", settings_.etag(), "\"); read them again")),
                      "ETAG_MISMATCH");
  }
  if (absl::Status s = WriteProtoFileAtomically(path_, next); !s.ok()) return s;
  settings_ = next;
  MR_LOG(kInfo, kLogPsn) << "guest email settings saved: notifications "
                         << (next.notifications_enabled() ? "on" : "off") << ", from "
                         << next.default_from().address();
  return next;
}

}  // namespace mailroom::psn
