// AlarmManager over a real outbox and a real alarm store (SQLite files under TEST_TMPDIR),
// with a fake clock: the alarm email (from the Alarm Settings sender, to the admin recipients,
// with the diagnosis' title and fix), suppression windows and their one summary, idempotent
// raises (also across a crash between the outbox and the store), clearing, settings, the loop
// guard for the MnT's own delivery alarms, and bad input that stores and queues nothing.
#include "mnt/alarm_manager.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/base/diagnosis.h"
#include "common/rpc/status_grpc.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/mnt/alarm_test_env.h"
#include "tests/testing/fake_mail_route_resolver.h"
#include "tests/testing/mime_parse.h"

namespace mailroom::mnt {
namespace {

namespace cv1 = ::mailroom::common::v1;
namespace mv1 = ::mailroom::mnt::v1;
using ::mailroom::mnt::testing::Admin;
using ::mailroom::mnt::testing::AlarmTestEnv;
using ::mailroom::mnt::testing::Broker;
using ::mailroom::mnt::testing::EmailingSettings;
using ::mailroom::mnt::testing::kAdmin;
using ::mailroom::mnt::testing::kSender;
using ::mailroom::mnt::testing::Psn1;
using ::mailroom::mnt::testing::Request;
using ::mailroom::testing::DecodeHeaderText;
using ::mailroom::testing::MimeEntity;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;
using ::testing::StartsWith;

mv1::RaiseAlarmResponse MustRaise(AlarmManager& manager, const mv1::RaiseAlarmRequest& request,
                                  const Caller& caller = Psn1()) {
  absl::StatusOr<mv1::RaiseAlarmResponse> response = manager.RaiseAlarm(request, caller);
  EXPECT_TRUE(response.ok()) << response.status();
  return response.value_or(mv1::RaiseAlarmResponse());
}

mv1::ListAlarmsResponse ListAll(AlarmManager& manager) {
  absl::StatusOr<mv1::ListAlarmsResponse> list = manager.ListAlarms(mv1::ListAlarmsRequest());
  EXPECT_TRUE(list.ok()) << list.status();
  return list.value_or(mv1::ListAlarmsResponse());
}

std::string Subject(const MimeEntity& message) {
  return DecodeHeaderText(message.Header("Subject")).value_or("");
}

TEST(AlarmManagerTest, FirstOccurrenceIsEmailedToTheAdminsFromTheSender) {
  AlarmTestEnv env;
  mv1::RaiseAlarmRequest request = Request("k1");
  request.set_type(mv1::ALARM_TYPE_SMTP_AUTHENTICATION_FAILED);
  *request.mutable_diagnosis() = MakeDiagnosis(cv1::FAILURE_CAUSE_MAILBOX_AUTH_REJECTED,
                                               "535 5.7.3 Authentication unsuccessful");
  const mv1::RaiseAlarmResponse response = MustRaise(env.manager(), request);

  EXPECT_EQ(response.disposition(), mv1::ALARM_DISPOSITION_EMAILED);
  EXPECT_FALSE(response.duplicate());
  EXPECT_THAT(response.notification_id(), StartsWith("mnt1/"));
  const mv1::Alarm& alarm = response.alarm();
  EXPECT_EQ(alarm.id(), "1");
  EXPECT_EQ(alarm.state(), mv1::ALARM_STATE_ACTIVE);
  EXPECT_EQ(alarm.severity(), mv1::ALARM_SEVERITY_CRITICAL);  // the type's default
  EXPECT_EQ(alarm.source_node(), "psn1");
  EXPECT_EQ(alarm.source_role(), cv1::ROLE_PSN);
  EXPECT_EQ(alarm.occurrence_count(), 1);
  EXPECT_EQ(alarm.suppressed_count(), 0);
  EXPECT_EQ(alarm.notification_ids_size(), 1);
  EXPECT_EQ(alarm.last_email_time().seconds(), absl::ToUnixSeconds(env.clock().Now()));

  const std::vector<cv1::OutboxEntry> entries = env.Entries();
  ASSERT_THAT(entries, SizeIs(1));
  const cv1::Notification& n = entries[0].notification();
  EXPECT_EQ(n.id(), response.notification_id());
  EXPECT_EQ(n.kind(), cv1::NOTIFICATION_KIND_ALARM);
  EXPECT_EQ(n.idempotency_key(), "k1");
  EXPECT_EQ(n.from().address(), kSender);
  ASSERT_THAT(n.recipients(), SizeIs(1));
  EXPECT_EQ(n.recipients(0).address().address(), kAdmin);

  const std::vector<MimeEntity> messages = env.TakeMessages();
  ASSERT_THAT(messages, SizeIs(1));
  EXPECT_THAT(Subject(messages[0]),
              HasSubstr("CRITICAL alarm on psn1: SMTP authentication failed"));
  EXPECT_THAT(messages[0].Header("From"), HasSubstr(kSender));
  EXPECT_THAT(messages[0].Header("To"), HasSubstr(kAdmin));
  EXPECT_EQ(messages[0].Header("Auto-Submitted"), "auto-generated");
  const std::string& body = messages[0].body;
  EXPECT_THAT(body, HasSubstr("Disk almost full"));
  EXPECT_THAT(body, HasSubstr(std::string(FailureTitle(cv1::FAILURE_CAUSE_MAILBOX_AUTH_REJECTED))));
  EXPECT_THAT(body, HasSubstr(MakeDiagnosis(cv1::FAILURE_CAUSE_MAILBOX_AUTH_REJECTED).fix()));
  EXPECT_THAT(body, HasSubstr("535 5.7.3 Authentication unsuccessful"));
  EXPECT_THAT(body, HasSubstr("next 5m"));
}

TEST(AlarmManagerTest, SecretExpiryWithoutDiagnosisCarriesItsGuidance) {
  AlarmTestEnv env;
  mv1::RaiseAlarmRequest request = Request("secret-expiry/app/1/30", "client-secret-expiry/app",
                                           "Client secret of app app expires in 29 days");
  request.set_type(mv1::ALARM_TYPE_CLIENT_SECRET_EXPIRY);
  request.set_source_node("broker");
  EXPECT_EQ(MustRaise(env.manager(), request, Broker()).alarm().severity(),
            mv1::ALARM_SEVERITY_WARNING);
  const std::vector<MimeEntity> messages = env.TakeMessages();
  ASSERT_THAT(messages, SizeIs(1));
  EXPECT_THAT(Subject(messages[0]), HasSubstr("SMTP OAuth Client Secret expiry"));
  EXPECT_THAT(messages[0].body, HasSubstr("expires in 29 days"));
  EXPECT_THAT(messages[0].body, HasSubstr("Create a new client secret"));
}

TEST(AlarmManagerTest, FiftyRepeatsGiveOneAlarmEmailAndOneSummaryAtTheEndOfTheWindow) {
  AlarmTestEnv env;
  const absl::Time start = env.clock().Now();
  int emailed = 0;
  int suppressed = 0;
  for (int i = 0; i < 50; ++i) {
    const mv1::RaiseAlarmResponse response =
        MustRaise(env.manager(), Request(absl::StrCat("repeat-", i)));
    emailed += response.disposition() == mv1::ALARM_DISPOSITION_EMAILED;
    suppressed += response.disposition() == mv1::ALARM_DISPOSITION_SUPPRESSED;
    EXPECT_EQ(response.alarm().id(), "1");
    env.clock().Advance(absl::Seconds(5));  // 50 × 5 s = 250 s, inside the 300 s window
  }
  EXPECT_EQ(emailed, 1);
  EXPECT_EQ(suppressed, 49);
  ASSERT_THAT(env.Entries(), SizeIs(1));

  // Not before the window ends...
  EXPECT_EQ(env.manager().NextSummaryTime(), start + absl::Minutes(5));
  EXPECT_EQ(env.manager().SendDueSummaries().queued, 0);
  ASSERT_THAT(env.Entries(), SizeIs(1));
  // ...then exactly one summary with the count.
  env.clock().SetTime(start + absl::Minutes(5));
  const AlarmManager::SummaryRound round = env.manager().SendDueSummaries();
  EXPECT_EQ(round.queued, 1);
  EXPECT_EQ(round.failed, 0);
  EXPECT_EQ(env.manager().SendDueSummaries().queued, 0);
  EXPECT_EQ(env.manager().NextSummaryTime(), absl::nullopt);

  const std::vector<cv1::OutboxEntry> entries = env.Entries();
  ASSERT_THAT(entries, SizeIs(2));
  EXPECT_EQ(entries[0].notification().kind(), cv1::NOTIFICATION_KIND_ALARM_SUMMARY);
  EXPECT_EQ(entries[0].notification().idempotency_key(), "");
  const std::vector<MimeEntity> messages = env.TakeMessages();
  ASSERT_THAT(messages, SizeIs(2));
  EXPECT_THAT(Subject(messages[1]), HasSubstr("repeated 49 times"));
  EXPECT_THAT(messages[1].body, HasSubstr("occurred 49 times more"));

  const mv1::ListAlarmsResponse list = ListAll(env.manager());
  ASSERT_THAT(list.alarms(), SizeIs(1));
  EXPECT_EQ(list.alarms(0).occurrence_count(), 50);
  EXPECT_EQ(list.alarms(0).suppressed_count(), 0);
  EXPECT_EQ(list.alarms(0).notification_ids_size(), 2);

  // The next occurrence after the window is emailed at once and opens a new window.
  EXPECT_EQ(MustRaise(env.manager(), Request("after")).disposition(),
            mv1::ALARM_DISPOSITION_EMAILED);
  EXPECT_EQ(MustRaise(env.manager(), Request("after-2")).disposition(),
            mv1::ALARM_DISPOSITION_SUPPRESSED);
}

TEST(AlarmManagerTest, WindowsArePerDedupKey) {
  AlarmTestEnv env;
  EXPECT_EQ(MustRaise(env.manager(), Request("a1", "disk/psn1")).disposition(),
            mv1::ALARM_DISPOSITION_EMAILED);
  EXPECT_EQ(MustRaise(env.manager(), Request("b1", "cpu/psn1")).disposition(),
            mv1::ALARM_DISPOSITION_EMAILED);
  EXPECT_EQ(MustRaise(env.manager(), Request("a2", "disk/psn1")).disposition(),
            mv1::ALARM_DISPOSITION_SUPPRESSED);
  EXPECT_THAT(ListAll(env.manager()).alarms(), SizeIs(2));
}

TEST(AlarmManagerTest, NoSummaryWhenNothingWasSuppressed) {
  AlarmTestEnv env;
  MustRaise(env.manager(), Request("only"));
  env.clock().Advance(absl::Hours(1));
  EXPECT_EQ(env.manager().SendDueSummaries().queued, 0);
  EXPECT_THAT(env.Entries(), SizeIs(1));
}

TEST(AlarmManagerTest, ZeroWindowEmailsEveryOccurrence) {
  mv1::AlarmSettings settings = EmailingSettings();
  settings.mutable_suppression_window()->set_seconds(0);
  AlarmTestEnv env(settings);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(MustRaise(env.manager(), Request(absl::StrCat("k", i))).disposition(),
              mv1::ALARM_DISPOSITION_EMAILED);
  }
  EXPECT_THAT(env.Entries(), SizeIs(3));
}

TEST(AlarmManagerTest, UnsetWindowMeansFifteenMinutes) {
  mv1::AlarmSettings settings = EmailingSettings();
  settings.clear_suppression_window();
  AlarmTestEnv env(settings);
  MustRaise(env.manager(), Request("k1"));
  env.clock().Advance(absl::Minutes(14));
  EXPECT_EQ(MustRaise(env.manager(), Request("k2")).disposition(),
            mv1::ALARM_DISPOSITION_SUPPRESSED);
  env.clock().Advance(absl::Minutes(1));
  EXPECT_EQ(env.manager().SendDueSummaries().queued, 1);
}

TEST(AlarmManagerTest, RetryWithTheSameKeyCountsOnceAndSendsOnce) {
  AlarmTestEnv env;
  const mv1::RaiseAlarmResponse first = MustRaise(env.manager(), Request("same"));
  env.clock().Advance(absl::Seconds(1));
  const mv1::RaiseAlarmResponse retry = MustRaise(env.manager(), Request("same"));
  EXPECT_TRUE(retry.duplicate());
  EXPECT_EQ(retry.disposition(), mv1::ALARM_DISPOSITION_EMAILED);
  EXPECT_EQ(retry.notification_id(), first.notification_id());
  EXPECT_EQ(retry.alarm().occurrence_count(), 1);
  EXPECT_EQ(ListAll(env.manager()).alarms(0).occurrence_count(), 1);
  EXPECT_EQ(ListAll(env.manager()).alarms(0).suppressed_count(), 0);
  EXPECT_THAT(env.Entries(), SizeIs(1));
}

TEST(AlarmManagerTest, SameKeyWithOtherContentIsAlreadyExists) {
  AlarmTestEnv env;
  MustRaise(env.manager(), Request("reused"));
  const absl::StatusOr<mv1::RaiseAlarmResponse> other =
      env.manager().RaiseAlarm(Request("reused", "disk/psn1", "Another text"), Psn1());
  ASSERT_EQ(other.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(other.status().message()), StartsWith("idempotency_key:"));
  EXPECT_EQ(ReasonOf(other.status()), "IDEMPOTENCY_KEY_REUSED");
  EXPECT_EQ(ListAll(env.manager()).alarms(0).occurrence_count(), 1);
  EXPECT_THAT(env.Entries(), SizeIs(1));
}

TEST(AlarmManagerTest, RetryAfterACrashBetweenOutboxAndStoreDoesNotSendTwice) {
  AlarmTestEnv env;
  const mv1::RaiseAlarmResponse first = MustRaise(env.manager(), Request("crash"));
  // The store loses the commit (as if the process died right after the outbox's commit).
  env.Restart(EmailingSettings(), /*lose_store=*/true);
  const mv1::RaiseAlarmResponse retry = MustRaise(env.manager(), Request("crash"));
  EXPECT_EQ(retry.disposition(), mv1::ALARM_DISPOSITION_EMAILED);
  EXPECT_EQ(retry.notification_id(), first.notification_id());
  EXPECT_THAT(env.Entries(), SizeIs(1));
}

TEST(AlarmManagerTest, AlarmsAndWindowsSurviveARestart) {
  AlarmTestEnv env;
  MustRaise(env.manager(), Request("k1"));
  MustRaise(env.manager(), Request("k2"));
  env.Restart();
  const mv1::RaiseAlarmResponse third = MustRaise(env.manager(), Request("k3"));
  EXPECT_EQ(third.disposition(), mv1::ALARM_DISPOSITION_SUPPRESSED);
  EXPECT_EQ(third.alarm().occurrence_count(), 3);
  EXPECT_EQ(third.alarm().suppressed_count(), 2);
  EXPECT_TRUE(MustRaise(env.manager(), Request("k1")).duplicate());
  env.clock().Advance(absl::Minutes(5));
  EXPECT_EQ(env.manager().SendDueSummaries().queued, 1);
}

TEST(AlarmManagerTest, NotEmailedWhenOffWhenTheTypeIsNotEnabledOrWithoutRecipients) {
  struct Case {
    const char* name;
    void (*change)(mv1::AlarmSettings*);
  };
  const Case cases[] = {
      {"off", [](mv1::AlarmSettings* s) { s->set_include_system_alarms_in_emails(false); }},
      {"type",
       [](mv1::AlarmSettings* s) { s->add_enabled_types(mv1::ALARM_TYPE_CLIENT_SECRET_EXPIRY); }},
      {"recipients", [](mv1::AlarmSettings* s) { s->clear_admin_recipients(); }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    mv1::AlarmSettings settings = EmailingSettings();
    c.change(&settings);
    AlarmTestEnv env(settings);
    const mv1::RaiseAlarmResponse response = MustRaise(env.manager(), Request("k"));
    EXPECT_EQ(response.disposition(), mv1::ALARM_DISPOSITION_NOT_EMAILED);
    EXPECT_EQ(response.notification_id(), "");
    EXPECT_EQ(response.alarm().occurrence_count(), 1);  // still recorded
    EXPECT_THAT(env.Entries(), IsEmpty());
  }
}

TEST(AlarmManagerTest, EnabledTypesAreEmailed) {
  mv1::AlarmSettings settings = EmailingSettings();
  settings.add_enabled_types(mv1::ALARM_TYPE_GENERIC);
  AlarmTestEnv env(settings);
  EXPECT_EQ(MustRaise(env.manager(), Request("k")).disposition(), mv1::ALARM_DISPOSITION_EMAILED);
}

TEST(AlarmManagerTest, TheMntsOwnDeliveryAlarmsAreRecordedButNotEmailed) {
  AlarmTestEnv env;
  const Caller mnt{Role::kMnt, "mnt1"};
  mv1::RaiseAlarmRequest own = Request("delivery-failed/mnt1/x", "delivery-failed/mnt1",
                                       "Notification mnt1/x could not be delivered");
  own.set_type(mv1::ALARM_TYPE_DELIVERY_FAILED);
  own.set_source_node("mnt1");
  EXPECT_EQ(MustRaise(env.manager(), own, mnt).disposition(), mv1::ALARM_DISPOSITION_NOT_EMAILED);
  // The same type from another node is emailed, and the MnT's other alarms are too.
  mv1::RaiseAlarmRequest other = own;
  other.set_source_node("psn1");
  other.set_dedup_key("delivery-failed/psn1");
  other.set_idempotency_key("delivery-failed/psn1/y");
  EXPECT_EQ(MustRaise(env.manager(), other).disposition(), mv1::ALARM_DISPOSITION_EMAILED);
  mv1::RaiseAlarmRequest generic = Request("mnt-generic", "", "Disk almost full");
  generic.set_source_node("mnt1");
  EXPECT_EQ(MustRaise(env.manager(), generic, mnt).disposition(), mv1::ALARM_DISPOSITION_EMAILED);
  EXPECT_THAT(env.Entries(), SizeIs(2));
}

TEST(AlarmManagerTest, EmptyDedupKeyMeansTypeAndNode) {
  AlarmTestEnv env;
  EXPECT_EQ(MustRaise(env.manager(), Request("k", "")).alarm().dedup_key(), "generic/psn1");
}

TEST(AlarmManagerTest, AdminsMayLeaveSourceNodeEmptyNodesMayNot) {
  AlarmTestEnv env;
  mv1::RaiseAlarmRequest request = Request("k", "");
  request.clear_source_node();
  const mv1::RaiseAlarmResponse response = MustRaise(env.manager(), request, Admin());
  EXPECT_EQ(response.alarm().source_node(), "admin");
  EXPECT_EQ(response.alarm().source_role(), cv1::ROLE_ADMIN);
  request.set_idempotency_key("k2");
  const absl::StatusOr<mv1::RaiseAlarmResponse> node = env.manager().RaiseAlarm(request, Psn1());
  EXPECT_EQ(node.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(node.status().message()), StartsWith("source_node:"));
}

TEST(AlarmManagerTest, ANodeCannotRaiseInAnotherNodesName) {
  AlarmTestEnv env;
  mv1::RaiseAlarmRequest request = Request("k");
  request.set_source_node("psn2");
  const absl::StatusOr<mv1::RaiseAlarmResponse> response =
      env.manager().RaiseAlarm(request, Psn1());
  EXPECT_EQ(response.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(ListAll(env.manager()).alarms(), IsEmpty());
}

TEST(AlarmManagerTest, FutureOccurTimeIsRecordedAsNow) {
  AlarmTestEnv env;
  mv1::RaiseAlarmRequest request = Request("k");
  request.mutable_occur_time()->set_seconds(absl::ToUnixSeconds(env.clock().Now()) + 3600);
  EXPECT_EQ(MustRaise(env.manager(), request).alarm().last_occur_time().seconds(),
            absl::ToUnixSeconds(env.clock().Now()));
  request = Request("k2");
  request.mutable_occur_time()->set_seconds(absl::ToUnixSeconds(env.clock().Now()) - 60);
  const mv1::Alarm alarm = MustRaise(env.manager(), request).alarm();
  EXPECT_EQ(alarm.first_occur_time().seconds(), absl::ToUnixSeconds(env.clock().Now()) - 60);
  EXPECT_EQ(alarm.last_occur_time().seconds(), absl::ToUnixSeconds(env.clock().Now()));
}

TEST(AlarmManagerTest, BadInputIsRejectedNamingTheFieldAndNothingIsStoredOrQueued) {
  AlarmTestEnv env;
  struct Case {
    const char* field;
    void (*change)(mv1::RaiseAlarmRequest*);
  };
  const Case cases[] = {
      {"type", [](mv1::RaiseAlarmRequest* r) { r->clear_type(); }},
      {"type", [](mv1::RaiseAlarmRequest* r) { r->set_type(static_cast<mv1::AlarmType>(77)); }},
      {"severity",
       [](mv1::RaiseAlarmRequest* r) { r->set_severity(static_cast<mv1::AlarmSeverity>(9)); }},
      {"text", [](mv1::RaiseAlarmRequest* r) { r->clear_text(); }},
      {"text", [](mv1::RaiseAlarmRequest* r) { r->set_text("Disk\r\nBcc: victim@example.com"); }},
      {"text", [](mv1::RaiseAlarmRequest* r) { r->set_text("bad \xC3\x28 utf-8"); }},
      {"text", [](mv1::RaiseAlarmRequest* r) { r->set_text(std::string(4097, 'x')); }},
      {"text", [](mv1::RaiseAlarmRequest* r) { r->set_text(std::string("nul\0here", 8)); }},
      {"dedup_key", [](mv1::RaiseAlarmRequest* r) { r->set_dedup_key(std::string(257, 'k')); }},
      {"dedup_key", [](mv1::RaiseAlarmRequest* r) { r->set_dedup_key("a\nb"); }},
      {"idempotency_key", [](mv1::RaiseAlarmRequest* r) { r->clear_idempotency_key(); }},
      {"idempotency_key", [](mv1::RaiseAlarmRequest* r) { r->set_idempotency_key("has space"); }},
      {"idempotency_key",
       [](mv1::RaiseAlarmRequest* r) { r->set_idempotency_key(std::string(129, 'k')); }},
      {"diagnosis.title",
       [](mv1::RaiseAlarmRequest* r) { r->mutable_diagnosis()->set_title("a\rb"); }},
      {"diagnosis.fix", [](mv1::RaiseAlarmRequest* r) { r->mutable_diagnosis()->set_fix("\xFF"); }},
      {"diagnosis.codes[1]",
       [](mv1::RaiseAlarmRequest* r) {
         r->mutable_diagnosis()->add_codes("5.7.3");
         r->mutable_diagnosis()->add_codes("bad code");
       }},
      {"occur_time", [](mv1::RaiseAlarmRequest* r) { r->mutable_occur_time()->set_nanos(-1); }},
  };
  for (const Case& c : cases) {
    mv1::RaiseAlarmRequest request = Request("bad");
    c.change(&request);
    SCOPED_TRACE(request.ShortDebugString());
    const absl::StatusOr<mv1::RaiseAlarmResponse> response =
        env.manager().RaiseAlarm(request, Psn1());
    ASSERT_EQ(response.status().code(), absl::StatusCode::kInvalidArgument) << response.status();
    EXPECT_THAT(std::string(response.status().message()), StartsWith(absl::StrCat(c.field, ": ")));
  }
  EXPECT_THAT(ListAll(env.manager()).alarms(), IsEmpty());
  EXPECT_THAT(env.Entries(), IsEmpty());
  // The key of a refused request was not taken.
  EXPECT_FALSE(MustRaise(env.manager(), Request("bad")).duplicate());
}

TEST(AlarmManagerTest, ClearByIdAndByDedupKey) {
  AlarmTestEnv env;
  const std::string id = MustRaise(env.manager(), Request("k1")).alarm().id();
  mv1::ClearAlarmRequest clear;
  clear.set_id(id);
  clear.set_reason("disk cleaned up");
  absl::StatusOr<mv1::ClearAlarmResponse> cleared = env.manager().ClearAlarm(clear, Admin());
  ASSERT_TRUE(cleared.ok()) << cleared.status();
  EXPECT_EQ(cleared->alarm().state(), mv1::ALARM_STATE_CLEARED);
  EXPECT_EQ(cleared->alarm().cleared_by(), "admin");
  EXPECT_EQ(cleared->alarm().clear_reason(), "disk cleaned up");
  EXPECT_EQ(cleared->alarm().clear_time().seconds(), absl::ToUnixSeconds(env.clock().Now()));
  // Clearing again is OK; a later occurrence opens a new alarm, emailed at once.
  EXPECT_TRUE(env.manager().ClearAlarm(clear, Admin()).ok());
  const mv1::RaiseAlarmResponse reopened = MustRaise(env.manager(), Request("k2"));
  EXPECT_NE(reopened.alarm().id(), id);
  EXPECT_EQ(reopened.alarm().occurrence_count(), 1);
  EXPECT_EQ(reopened.disposition(), mv1::ALARM_DISPOSITION_EMAILED);

  mv1::ClearAlarmRequest by_key;
  by_key.set_dedup_key("disk/psn1");
  cleared = env.manager().ClearAlarm(by_key, Psn1());  // a node clears its own alarm
  ASSERT_TRUE(cleared.ok()) << cleared.status();
  EXPECT_EQ(cleared->alarm().id(), reopened.alarm().id());
  EXPECT_EQ(cleared->alarm().cleared_by(), "psn1");
  cleared = env.manager().ClearAlarm(by_key, Psn1());  // none active: OK, no alarm
  ASSERT_TRUE(cleared.ok());
  EXPECT_FALSE(cleared->has_alarm());

  mv1::ListAlarmsRequest active;
  active.add_states(mv1::ALARM_STATE_ACTIVE);
  EXPECT_THAT(env.manager().ListAlarms(active)->alarms(), IsEmpty());
}

TEST(AlarmManagerTest, ANodeMayNotClearAnotherNodesAlarm) {
  AlarmTestEnv env;
  const std::string id = MustRaise(env.manager(), Request("k1")).alarm().id();
  mv1::ClearAlarmRequest clear;
  clear.set_id(id);
  const absl::StatusOr<mv1::ClearAlarmResponse> refused = env.manager().ClearAlarm(clear, Broker());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ListAll(env.manager()).alarms(0).state(), mv1::ALARM_STATE_ACTIVE);
}

// M4: a dedup key is scoped by the raising node. A PSN that names the broker's key gets an
// alarm of its own; it cannot add to, take over, silence or clear the broker's.
TEST(AlarmManagerTest, ANodeCannotTakeOverAnotherNodesAlarmByItsKey) {
  AlarmTestEnv env;
  mv1::RaiseAlarmRequest expiry = Request("b1", "client-secret-expiry/app", "Secret expires");
  expiry.set_source_node("broker");
  const mv1::Alarm broker_alarm = MustRaise(env.manager(), expiry, Broker()).alarm();

  mv1::RaiseAlarmRequest forged = Request("p1", "client-secret-expiry/app", "ignore this");
  const mv1::RaiseAlarmResponse psn = MustRaise(env.manager(), forged, Psn1());
  EXPECT_NE(psn.alarm().id(), broker_alarm.id());
  EXPECT_EQ(psn.alarm().source_node(), "psn1");
  EXPECT_EQ(psn.disposition(), mv1::ALARM_DISPOSITION_EMAILED);

  mv1::ClearAlarmRequest by_key;
  by_key.set_dedup_key("client-secret-expiry/app");
  ASSERT_TRUE(env.manager().ClearAlarm(by_key, Psn1()).ok());  // its own alarm
  EXPECT_EQ(env.manager().ClearAlarm(by_key, Psn1()).status().code(),
            absl::StatusCode::kPermissionDenied);  // the broker's: refused
  absl::StatusOr<absl::optional<AlarmRecord>> kept = env.store().Get(broker_alarm.id());
  ASSERT_TRUE(kept.ok() && kept->has_value());
  EXPECT_EQ((*kept)->alarm.state(), mv1::ALARM_STATE_ACTIVE);
  EXPECT_EQ((*kept)->alarm.source_node(), "broker");
  EXPECT_EQ((*kept)->alarm.occurrence_count(), 1);
  EXPECT_EQ((*kept)->alarm.text(), "Secret expires");
  by_key.set_source_node("broker");
  EXPECT_EQ(env.manager().ClearAlarm(by_key, Psn1()).status().code(),
            absl::StatusCode::kPermissionDenied);

  // With the PSN's alarm raised again, an admin clearing by key alone must say whose.
  MustRaise(env.manager(), Request("p2", "client-secret-expiry/app", "again"), Psn1());
  by_key.clear_source_node();
  absl::StatusOr<mv1::ClearAlarmResponse> ambiguous = env.manager().ClearAlarm(by_key, Admin());
  EXPECT_EQ(ambiguous.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(ambiguous.status().message()), HasSubstr("(broker, psn1)"));
  by_key.set_source_node("broker");
  absl::StatusOr<mv1::ClearAlarmResponse> cleared = env.manager().ClearAlarm(by_key, Admin());
  ASSERT_TRUE(cleared.ok()) << cleared.status();
  EXPECT_EQ(cleared->alarm().id(), broker_alarm.id());
  EXPECT_EQ(cleared->alarm().state(), mv1::ALARM_STATE_CLEARED);
}

// L11: a delivery alarm carries the server's reply; a long one was refused and the alarm lost.
TEST(AlarmManagerTest, AnAlarmWithALongServerReplyIsAccepted) {
  AlarmTestEnv env;
  mv1::RaiseAlarmRequest request = Request("long", "delivery-failed/psn1", "Could not deliver");
  request.set_type(mv1::ALARM_TYPE_DELIVERY_FAILED);
  *request.mutable_diagnosis() = MakeDiagnosis(
      ::mailroom::common::v1::FAILURE_CAUSE_UNKNOWN, std::string(100000, 'r'));
  const mv1::RaiseAlarmResponse response = MustRaise(env.manager(), request);
  EXPECT_EQ(response.alarm().diagnosis().cause(), ::mailroom::common::v1::FAILURE_CAUSE_UNKNOWN);
}

TEST(AlarmManagerTest, ClearValidatesAndUnknownIdIsNotFound) {
  AlarmTestEnv env;
  mv1::ClearAlarmRequest both;
  both.set_id("1");
  both.set_dedup_key("disk/psn1");
  EXPECT_THAT(std::string(env.manager().ClearAlarm(both, Admin()).status().message()),
              StartsWith("id:"));
  EXPECT_EQ(env.manager().ClearAlarm(mv1::ClearAlarmRequest(), Admin()).status().code(),
            absl::StatusCode::kInvalidArgument);
  mv1::ClearAlarmRequest reason;
  reason.set_id("1");
  reason.set_reason("a\nb");
  EXPECT_THAT(std::string(env.manager().ClearAlarm(reason, Admin()).status().message()),
              StartsWith("reason:"));
  mv1::ClearAlarmRequest unknown;
  unknown.set_id("42");
  EXPECT_EQ(env.manager().ClearAlarm(unknown, Admin()).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(AlarmManagerTest, SuppressedRepeatsOfAClearedAlarmAreStillSummarized) {
  AlarmTestEnv env;
  MustRaise(env.manager(), Request("k1"));
  MustRaise(env.manager(), Request("k2"));
  mv1::ClearAlarmRequest clear;
  clear.set_dedup_key("disk/psn1");
  ASSERT_TRUE(env.manager().ClearAlarm(clear, Admin()).ok());
  env.clock().Advance(absl::Minutes(5));
  EXPECT_EQ(env.manager().SendDueSummaries().queued, 1);
}

TEST(AlarmManagerTest, ListFiltersAndPages) {
  AlarmTestEnv env;
  for (int i = 0; i < 5; ++i) {
    MustRaise(env.manager(), Request(absl::StrCat("p", i), absl::StrCat("key", i)));
    env.clock().Advance(absl::Seconds(1));
  }
  mv1::RaiseAlarmRequest broker = Request("b", "client-secret-expiry/app", "expires");
  broker.set_type(mv1::ALARM_TYPE_CLIENT_SECRET_EXPIRY);
  broker.set_source_node("broker");
  MustRaise(env.manager(), broker, Broker());

  mv1::ListAlarmsRequest request;
  request.mutable_page()->set_page_size(2);
  std::vector<std::string> ids;
  for (int pages = 0; pages < 10; ++pages) {
    absl::StatusOr<mv1::ListAlarmsResponse> page = env.manager().ListAlarms(request);
    ASSERT_TRUE(page.ok()) << page.status();
    EXPECT_EQ(page->page().total_size(), 6);
    for (const mv1::Alarm& alarm : page->alarms()) ids.push_back(alarm.id());
    if (page->page().next_page_token().empty()) break;
    request.mutable_page()->set_page_token(page->page().next_page_token());
  }
  EXPECT_EQ(ids, (std::vector<std::string>{"6", "5", "4", "3", "2", "1"}));  // most recent first

  mv1::ListAlarmsRequest by_type;
  by_type.add_types(mv1::ALARM_TYPE_CLIENT_SECRET_EXPIRY);
  ASSERT_THAT(env.manager().ListAlarms(by_type)->alarms(), SizeIs(1));
  mv1::ListAlarmsRequest by_node;
  by_node.set_source_node("psn1");
  EXPECT_EQ(env.manager().ListAlarms(by_node)->page().total_size(), 5);
  mv1::ListAlarmsRequest recent;
  recent.mutable_occur_after()->set_seconds(absl::ToUnixSeconds(env.clock().Now()) - 1);
  EXPECT_EQ(env.manager().ListAlarms(recent)->page().total_size(), 2);
  mv1::ListAlarmsRequest critical;
  critical.add_severities(mv1::ALARM_SEVERITY_CRITICAL);
  EXPECT_THAT(env.manager().ListAlarms(critical)->alarms(), IsEmpty());

  // A token only works with the filters it came from.
  mv1::ListAlarmsRequest first;
  first.mutable_page()->set_page_size(1);
  const std::string token = env.manager().ListAlarms(first)->page().next_page_token();
  by_node.mutable_page()->set_page_token(token);
  EXPECT_THAT(std::string(env.manager().ListAlarms(by_node).status().message()),
              StartsWith("page.page_token:"));
  mv1::ListAlarmsRequest bad;
  bad.add_states(mv1::ALARM_STATE_UNSPECIFIED);
  EXPECT_THAT(std::string(env.manager().ListAlarms(bad).status().message()),
              StartsWith("states[0]:"));
}

TEST(AlarmManagerTest, SettingsAreSeededFromTheConfigOnceThenSavedOnesWin) {
  AlarmTestEnv env;
  const mv1::AlarmSettings seeded = env.manager().GetSettings();
  EXPECT_TRUE(seeded.include_system_alarms_in_emails());
  EXPECT_EQ(seeded.sender().address(), kSender);
  EXPECT_THAT(seeded.etag(), SizeIs(16));
  EXPECT_EQ(seeded.update_time().seconds(), absl::ToUnixSeconds(env.clock().Now()));

  mv1::SetAlarmSettingsRequest set;
  *set.mutable_settings() = seeded;
  set.mutable_settings()->add_admin_recipients()->set_address("oncall@example.test");
  set.mutable_settings()->mutable_suppression_window()->set_seconds(60);
  set.set_etag(seeded.etag());
  env.clock().Advance(absl::Seconds(10));
  absl::StatusOr<mv1::AlarmSettings> saved = env.manager().SetSettings(set, Admin());
  ASSERT_TRUE(saved.ok()) << saved.status();
  EXPECT_NE(saved->etag(), seeded.etag());
  EXPECT_EQ(saved->admin_recipients_size(), 2);

  // The same etag again is stale now.
  const absl::StatusOr<mv1::AlarmSettings> stale = env.manager().SetSettings(set, Admin());
  EXPECT_EQ(stale.status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(ReasonOf(stale.status()), "ETAG_MISMATCH");

  // A restart with other initial settings keeps the saved ones.
  mv1::AlarmSettings other = EmailingSettings();
  other.set_include_system_alarms_in_emails(false);
  env.Restart(other);
  EXPECT_EQ(env.manager().GetSettings().etag(), saved->etag());
  EXPECT_EQ(env.manager().GetSettings().admin_recipients_size(), 2);

  // The new recipients and window are used.
  MustRaise(env.manager(), Request("k1"));
  const std::vector<cv1::OutboxEntry> entries = env.Entries();
  ASSERT_THAT(entries, SizeIs(1));
  EXPECT_THAT(entries[0].notification().recipients(), SizeIs(2));
  env.clock().Advance(absl::Seconds(61));
  EXPECT_EQ(MustRaise(env.manager(), Request("k2")).disposition(), mv1::ALARM_DISPOSITION_EMAILED);
}

TEST(AlarmManagerTest, BadSettingsAreRejectedNamingTheFieldAndNotSaved) {
  AlarmTestEnv env;
  const std::string etag = env.manager().GetSettings().etag();
  struct Case {
    const char* field;
    void (*change)(mv1::AlarmSettings*);
  };
  const Case cases[] = {
      {"settings.sender.address", [](mv1::AlarmSettings* s) { s->clear_sender(); }},
      {"settings.sender.address",
       [](mv1::AlarmSettings* s) { s->mutable_sender()->set_address("not an address"); }},
      {"settings.sender.display_name",
       [](mv1::AlarmSettings* s) { s->mutable_sender()->set_display_name("x\r\nBcc: y@z.test"); }},
      {"settings.admin_recipients[1].address",
       [](mv1::AlarmSettings* s) { s->add_admin_recipients()->set_address("a@b\nc.test"); }},
      {"settings.admin_recipients[1].address",
       [](mv1::AlarmSettings* s) { s->add_admin_recipients(); }},
      {"settings.admin_recipients",
       [](mv1::AlarmSettings* s) {
         for (int i = 0; i < 100; ++i) s->add_admin_recipients()->set_address("a@example.test");
       }},
      {"settings.suppression_window",
       [](mv1::AlarmSettings* s) { s->mutable_suppression_window()->set_seconds(8 * 86400); }},
      {"settings.suppression_window",
       [](mv1::AlarmSettings* s) { s->mutable_suppression_window()->set_seconds(-1); }},
      {"settings.enabled_types[0]",
       [](mv1::AlarmSettings* s) { s->add_enabled_types(mv1::ALARM_TYPE_UNSPECIFIED); }},
  };
  for (const Case& c : cases) {
    mv1::SetAlarmSettingsRequest set;
    *set.mutable_settings() = EmailingSettings();
    c.change(set.mutable_settings());
    SCOPED_TRACE(set.ShortDebugString());
    const absl::StatusOr<mv1::AlarmSettings> saved = env.manager().SetSettings(set, Admin());
    ASSERT_EQ(saved.status().code(), absl::StatusCode::kInvalidArgument) << saved.status();
    EXPECT_THAT(std::string(saved.status().message()), StartsWith(absl::StrCat(c.field, ": ")));
  }
  EXPECT_EQ(env.manager().GetSettings().etag(), etag);
}

TEST(AlarmManagerTest, InvalidInitialSettingsStopTheStartNamingTheConfigField) {
  AlarmTestEnv env;
  absl::StatusOr<std::unique_ptr<AlarmStore>> store =
      AlarmStore::Open(absl::StrCat(env.dir(), "/fresh-alarms.db"));
  ASSERT_TRUE(store.ok());
  AlarmManager manager(store->get(), &env.outbox(), &env.clock(), AlarmManagerOptions{"mnt1"});
  mv1::AlarmSettings initial = EmailingSettings();
  initial.mutable_sender()->set_address("no-reply@");
  const absl::Status status = manager.Start(initial);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), StartsWith("mnt.alarm_settings.sender.address: "));
}

TEST(AlarmManagerTest, ASenderNoAlarmMailboxMaySendAsIsRefusedAndNotSaved) {
  AlarmTestEnv env;
  absl::StatusOr<std::unique_ptr<AlarmStore>> store =
      AlarmStore::Open(absl::StrCat(env.dir(), "/checked-alarms.db"));
  ASSERT_TRUE(store.ok());
  ::mailroom::testing::FakeMailRouteResolver routes;
  routes.Route(cv1::MAIL_PURPOSE_ALARMS, {"alerts@example.test"}, {kSender});
  AlarmManagerOptions options{"mnt1"};
  options.mail_routes = &routes;
  AlarmManager manager(store->get(), &env.outbox(), &env.clock(), options);
  ASSERT_TRUE(manager.Start(EmailingSettings()).ok());
  const std::string etag = manager.GetSettings().etag();

  mv1::SetAlarmSettingsRequest set;
  *set.mutable_settings() = EmailingSettings();
  set.mutable_settings()->mutable_sender()->set_address("x@fabrikam.test");
  absl::StatusOr<mv1::AlarmSettings> saved = manager.SetSettings(set, Admin());
  EXPECT_EQ(saved.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(saved.status().message()),
              StartsWith("settings.sender: \"x@fabrikam.test\" is not an address that any of "
                         "the mailboxes carrying alarms (alerts@example.test)"));
  EXPECT_EQ(manager.GetSettings().etag(), etag);

  // While the broker cannot answer, the same save goes through (unchecked, logged).
  routes.SetUnanswered(absl::UnavailableError("no broker leads"));
  saved = manager.SetSettings(set, Admin());
  ASSERT_TRUE(saved.ok()) << saved.status();
  EXPECT_EQ(manager.GetSettings().sender().address(), "x@fabrikam.test");
}

TEST(AlarmManagerTest, NotificationStatusByIdAndByRaiseKey) {
  AlarmTestEnv env;
  const std::string id = MustRaise(env.manager(), Request("k1")).notification_id();
  MustRaise(env.manager(), Request("k2"));  // suppressed: no email of its own

  mv1::GetNotificationStatusRequest by_key;
  by_key.set_idempotency_key("k1");
  absl::StatusOr<mv1::GetNotificationStatusResponse> status =
      env.manager().GetNotificationStatus(by_key);
  ASSERT_TRUE(status.ok()) << status.status();
  ASSERT_THAT(status->notifications(), SizeIs(1));
  EXPECT_EQ(status->notifications(0).id(), id);
  EXPECT_EQ(status->notifications(0).state(), cv1::NOTIFICATION_STATE_QUEUED);

  by_key.set_idempotency_key("k2");
  EXPECT_THAT(env.manager().GetNotificationStatus(by_key)->notifications(), IsEmpty());
  by_key.set_idempotency_key("unknown");
  EXPECT_EQ(env.manager().GetNotificationStatus(by_key).status().code(),
            absl::StatusCode::kNotFound);

  mv1::GetNotificationStatusRequest by_id;
  by_id.set_notification_id(id);
  EXPECT_EQ(env.manager().GetNotificationStatus(by_id)->notifications(0).kind(),
            cv1::NOTIFICATION_KIND_ALARM);
  by_id.set_notification_id("mnt1/nope");
  EXPECT_THAT(std::string(env.manager().GetNotificationStatus(by_id).status().message()),
              StartsWith("notification_id:"));
  EXPECT_EQ(
      env.manager().GetNotificationStatus(mv1::GetNotificationStatusRequest()).status().code(),
      absl::StatusCode::kInvalidArgument);
}

TEST(AlarmManagerTest, PurgeForgetsKeysAfterTheRetention) {
  AlarmTestEnv env;
  MustRaise(env.manager(), Request("old"));
  env.clock().Advance(absl::Hours(24 * 7 + 1));
  env.manager().Purge();
  mv1::GetNotificationStatusRequest by_key;
  by_key.set_idempotency_key("old");
  EXPECT_EQ(env.manager().GetNotificationStatus(by_key).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(ListAll(env.manager()).alarms(0).occurrence_count(), 1);  // the alarm stays
}

}  // namespace
}  // namespace mailroom::mnt
