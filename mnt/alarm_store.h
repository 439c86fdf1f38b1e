// Provides AlarmStore, the MnT's durable record of alarms (SQLite 3, WAL, synchronous=FULL,
// file mode 0600 in data_dir): every alarm with its occurrence count, first and last time,
// state and suppression window; every RaiseAlarm idempotency key with the response it got;
// and the saved Alarm Settings. Each write returns only after its transaction has committed,
// so what RaiseAlarm acknowledges survives kill -9 and power loss. Alarms are never deleted
// (a cleared alarm stays for the record); idempotency keys are purged after the retention.
//
// The store only stores: deciding what an occurrence does (count, suppress, email) is
// AlarmManager's job, which also serializes the writes.
//
// Thread-safe: one connection, serialized by a mutex.
#ifndef MAILROOM_MNT_ALARM_STORE_H_
#define MAILROOM_MNT_ALARM_STORE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/optional.h"
#include "proto/mailroom/mnt/v1/mnt.pb.h"

namespace mailroom::sqlite {
class Database;
}  // namespace mailroom::sqlite

namespace mailroom::mnt {

// An alarm with the suppression state that is not part of its public view.
struct AlarmRecord {
  mailroom::mnt::v1::Alarm alarm;
  // When the last alarm email of the current (or last) window was queued, and until when
  // repeats are only counted. InfinitePast when no email window was ever opened.
  absl::Time window_start = absl::InfinitePast();
  absl::Time window_end = absl::InfinitePast();
};

// A RaiseAlarm request remembered by its idempotency key.
struct RaiseRecord {
  std::string idempotency_key;
  // SHA-256 of the request serialized deterministically without its key.
  std::string fingerprint;
  std::string alarm_id;
  // The response it got (duplicate = false), returned again for a duplicate.
  mailroom::mnt::v1::RaiseAlarmResponse response;
  absl::Time create_time;
};

class AlarmStore {
 public:
  // Opens (creating if needed) the store at `path`. UNAVAILABLE for I/O errors,
  // FAILED_PRECONDITION for a schema newer than this build.
  static absl::StatusOr<std::unique_ptr<AlarmStore>> Open(const std::string& path);
  ~AlarmStore();
  AlarmStore(const AlarmStore&) = delete;
  AlarmStore& operator=(const AlarmStore&) = delete;

  // The request remembered under `idempotency_key`, if any.
  absl::StatusOr<absl::optional<RaiseRecord>> FindRaise(absl::string_view idempotency_key) const;
  // The ACTIVE alarm that `source_node` raised under `dedup_key`, if any (there is at most
  // one): keys are scoped by the raising node, so no node can add to, take over or clear
  // another's alarm by naming its key.
  absl::StatusOr<absl::optional<AlarmRecord>> FindActive(absl::string_view source_node,
                                                         absl::string_view dedup_key) const;
  // The ACTIVE alarms under `dedup_key`, of every node, by node name (for an admin).
  absl::StatusOr<std::vector<AlarmRecord>> FindActiveOfAnyNode(absl::string_view dedup_key) const;
  // The alarm with `id`, if any.
  absl::StatusOr<absl::optional<AlarmRecord>> Get(absl::string_view id) const;
  // The id the next new alarm gets ("1", "2", ...); short, so that admins can type it.
  absl::StatusOr<std::string> NextAlarmId() const;

  // Inserts or updates `alarm` and remembers `raise`, in one transaction.
  absl::Status CommitRaise(const AlarmRecord& alarm, const RaiseRecord& raise);
  // Inserts or updates `alarm`.
  absl::Status Save(const AlarmRecord& alarm);

  // ListAlarms over the store: filters, most recent occurrence first, keyset paging. The
  // request must be valid (alarm_validation.h); a page token from another listing is
  // INVALID_ARGUMENT.
  absl::StatusOr<mailroom::mnt::v1::ListAlarmsResponse> List(
      const mailroom::mnt::v1::ListAlarmsRequest& request) const;

  // Alarms with suppressed repeats whose window ended at or before `now`, oldest end first.
  absl::StatusOr<std::vector<AlarmRecord>> DueSummaries(absl::Time now, int max) const;
  // The earliest window end among alarms with suppressed repeats; nullopt if none.
  absl::StatusOr<absl::optional<absl::Time>> NextSummaryTime() const;

  // The saved Alarm Settings; nullopt before the first save.
  absl::StatusOr<absl::optional<mailroom::mnt::v1::AlarmSettings>> LoadSettings() const;
  absl::Status SaveSettings(const mailroom::mnt::v1::AlarmSettings& settings);

  // Forgets idempotency keys remembered before `before`; returns how many.
  absl::StatusOr<int64_t> PurgeRaises(absl::Time before);

 private:
  explicit AlarmStore(std::unique_ptr<sqlite::Database> db);
  absl::Status SaveLocked(const AlarmRecord& alarm) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::unique_ptr<sqlite::Database> db_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mailroom::mnt

#endif  // MAILROOM_MNT_ALARM_STORE_H_
