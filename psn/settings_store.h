// Provides GuestEmailSettingsStore, the seed's Guest Email Settings of one PSN ("enable email
// notifications to guests", "Default 'From' address"), saved in the node's data_dir as an
// atomically replaced protobuf file. Until an admin saves settings, the node uses the ones in
// its PsnConfig (notifications off when unset). Changes are checked against the etag the
// admin based them on, so two admins cannot silently overwrite each other. Thread-safe.
#ifndef MAILROOM_PSN_SETTINGS_STORE_H_
#define MAILROOM_PSN_SETTINGS_STORE_H_

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/base/clock.h"
#include "proto/mailroom/psn/v1/psn.pb.h"

namespace mailroom::psn {

using ::mailroom::psn::v1::GuestEmailSettings;

// INVALID_ARGUMENT naming the field under `prefix` (e.g. "settings."): default_from must be a
// valid address, and is required when notifications are enabled.
absl::Status ValidateGuestEmailSettings(const GuestEmailSettings& settings,
                                        absl::string_view prefix);

class GuestEmailSettingsStore {
 public:
  // Loads `path`; if it does not exist yet, starts from `initial` (validated; errors are
  // named under "psn.guest_email_settings."). A damaged file is DATA_LOSS: the node must not
  // start with settings the admin did not choose. `clock` must outlive the store.
  static absl::StatusOr<std::unique_ptr<GuestEmailSettingsStore>> Open(
      const std::string& path, const GuestEmailSettings& initial, const Clock* clock);

  // The current settings with their etag (and update_time once saved).
  GuestEmailSettings Get() const;

  // Validates, checks `etag` (empty skips the check; stale → ABORTED, reason ETAG_MISMATCH),
  // saves durably and returns what was saved. Output-only fields of `settings` are ignored.
  absl::StatusOr<GuestEmailSettings> Set(const GuestEmailSettings& settings,
                                         absl::string_view etag);

 private:
  GuestEmailSettingsStore(std::string path, const Clock* clock)
      : path_(std::move(path)), clock_(clock) {}

  const std::string path_;
  const Clock* const clock_;
  mutable absl::Mutex mu_;
  GuestEmailSettings settings_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mailroom::psn

#endif  // MAILROOM_PSN_SETTINGS_STORE_H_
