// Provides AlarmTestEnv, what the MnT's unit tests share: a FakeClock, a real outbox and a
// real alarm store (SQLite files in a per-test directory under TEST_TMPDIR), an AlarmManager
// over them, and helpers to build requests and read back the emails queued. Not thread-safe
// (the objects it owns are).
#ifndef MAILROOM_TESTS_MNT_ALARM_TEST_ENV_H_
#define MAILROOM_TESTS_MNT_ALARM_TEST_ENV_H_

#include <memory>
#include <string>
#include <vector>

#include "tests/testing/fake_clock.h"
#include "common/outbox/outbox.h"
#include "mnt/alarm_manager.h"
#include "mnt/alarm_store.h"
#include "proto/mailroom/mnt/v1/mnt.pb.h"
#include "tests/testing/mime_parse.h"

namespace mailroom::mnt::testing {

inline constexpr char kMntNode[] = "mnt1";
inline constexpr char kSender[] = "no-reply@example.test";
inline constexpr char kAdmin[] = "noc@example.test";

// Settings that email every type to kAdmin from kSender with a 5-minute window.
mailroom::mnt::v1::AlarmSettings EmailingSettings();

// A valid request from psn1: a generic alarm with `key` as idempotency key.
mailroom::mnt::v1::RaiseAlarmRequest Request(const std::string& key,
                                             const std::string& dedup_key = "disk/psn1",
                                             const std::string& text = "Disk almost full");

inline Caller Psn1() { return Caller{Role::kPsn, "psn1"}; }
inline Caller Admin() { return Caller{Role::kAdmin, "admin"}; }
inline Caller Broker() { return Caller{Role::kBroker, "broker"}; }

class AlarmTestEnv {
 public:
  // Fresh files in TEST_TMPDIR/<suite>-<test>; the manager is started with `settings`.
  explicit AlarmTestEnv(const mailroom::mnt::v1::AlarmSettings& settings = EmailingSettings());
  ~AlarmTestEnv();

  FakeClock& clock() { return clock_; }
  Outbox& outbox() { return *outbox_; }
  AlarmStore& store() { return *store_; }
  AlarmManager& manager() { return *manager_; }
  const std::string& dir() const { return dir_; }

  // Replaces the manager and store with new ones over the same files (a restart), started
  // with `initial` (used only if nothing was saved). `lose_store` deletes the alarm store's
  // files in between, as if its last commits had never happened.
  void Restart(const mailroom::mnt::v1::AlarmSettings& initial = EmailingSettings(),
               bool lose_store = false);

  // Every outbox entry, newest first.
  std::vector<mailroom::common::v1::OutboxEntry> Entries();
  // Claims every due message and parses it (each one only once).
  std::vector<mailroom::testing::MimeEntity> TakeMessages();

 private:
  std::string dir_;
  FakeClock clock_;
  std::unique_ptr<Outbox> outbox_;
  std::unique_ptr<AlarmStore> store_;
  std::unique_ptr<AlarmManager> manager_;
};

}  // namespace mailroom::mnt::testing

#endif  // MAILROOM_TESTS_MNT_ALARM_TEST_ENV_H_
