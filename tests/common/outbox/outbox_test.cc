// The durable outbox against real SQLite files under TEST_TMPDIR, with a fake clock: the state
// machine, idempotency, backoff and lifetime, crash recovery (including kill -9 of a process in
// the middle of enqueuing, and a file-size limit standing in for a full disk), listing,
// admin retry, retention, erasure of sent bodies, and concurrent producers and consumers.
#include "common/outbox/outbox.h"

#include <signal.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "common/base/diagnosis.h"
#include "tests/testing/fake_clock.h"
#include "common/base/logging.h"
#include "common/outbox/outbox_schema.h"
#include "common/rpc/status_grpc.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mailroom {
namespace {

namespace cv1 = ::mailroom::common::v1;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

#define ASSERT_OK(expr)                                      \
  do {                                                       \
    const absl::Status assert_ok_status = (expr);            \
    ASSERT_TRUE(assert_ok_status.ok()) << assert_ok_status;  \
  } while (false)

constexpr char kPassword[] = "GuestPass-7Qx!zK2";

absl::Time FromProto(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}

std::string TempDir() {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const std::string dir =
      absl::StrCat(tmp ? tmp : "/tmp", "/outbox-", info->test_suite_name(), "-", info->name());
  EXPECT_EQ(std::system(absl::StrCat("rm -rf '", dir, "' && mkdir -p '", dir, "'").c_str()), 0);
  return dir;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

OutboxOptions TestOptions() {
  OutboxOptions options;
  options.node_name = "psn-1";
  options.random_unit = [] { return 0.5; };  // no jitter
  return options;
}

// A guest-credentials notification; the body carries the guest's password.
NewNotification Guest(const std::string& key, const std::string& fingerprint = "request-A",
                      NotificationKind kind = cv1::NOTIFICATION_KIND_GUEST_CREDENTIALS) {
  NewNotification n;
  n.idempotency_key = key;
  n.request_fingerprint = key.empty() ? "" : fingerprint;
  n.kind = kind;
  n.from.set_address("no-reply@contoso.com");
  n.from.set_display_name("Guest Portal");
  Recipient to;
  to.mutable_address()->set_address("guest@example.com");
  to.mutable_address()->set_display_name("李小龙");
  to.set_type(cv1::RECIPIENT_TYPE_TO);
  Recipient bcc;
  bcc.mutable_address()->set_address("audit@contoso.com");
  bcc.set_type(cv1::RECIPIENT_TYPE_BCC);
  n.recipients = {to, bcc};
  n.subject = "Your guest account";
  n.message_id = absl::StrCat("psn-1.test-", key.empty() ? "nokey" : key, "@mailroom");
  n.message = absl::StrCat("From: Guest Portal <no-reply@contoso.com>\r\n",
                           "To: guest@example.com\r\nSubject: Your guest account\r\n",
                           "Message-ID: <", n.message_id, ">\r\n\r\nPassword: ", kPassword,
                           "\r\n");
  return n;
}

Diagnosis Transient() {
  return MakeDiagnosis(cv1::FAILURE_CAUSE_CONCURRENT_CONNECTION_LIMIT,
                       "451 4.3.2 Concurrent connections limit exceeded");
}

class OutboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TempDir();
    path_ = dir_ + "/outbox.db";
    Logging::SetDefaultLevel(LogLevel::kOff);
  }
  void TearDown() override { Logging::Reset(); }

  std::unique_ptr<Outbox> OpenOutbox(OutboxOptions options = TestOptions()) {
    absl::StatusOr<std::unique_ptr<Outbox>> outbox = Outbox::Open(path_, &clock_, options);
    EXPECT_TRUE(outbox.ok()) << outbox.status();
    return outbox.ok() ? *std::move(outbox) : nullptr;
  }

  // Enqueues and claims one notification; returns its id.
  std::string EnqueueAndClaim(Outbox& outbox, const std::string& key) {
    absl::StatusOr<EnqueueResult> queued = outbox.Enqueue(Guest(key));
    EXPECT_TRUE(queued.ok()) << queued.status();
    absl::StatusOr<std::vector<ClaimedNotification>> claimed = outbox.ClaimDue(10);
    EXPECT_TRUE(claimed.ok()) << claimed.status();
    EXPECT_THAT(*claimed, SizeIs(1));
    return queued->notification_id;
  }

  cv1::Notification Status(Outbox& outbox, const std::string& id) {
    absl::StatusOr<OutboxEntry> entry = outbox.Get(id);
    EXPECT_TRUE(entry.ok()) << entry.status();
    return entry->notification();
  }

  FakeClock clock_;
  std::string dir_;
  std::string path_;
};

// --- The happy path ---------------------------------------------------------------------------

TEST_F(OutboxTest, EnqueueClaimSend) {
  std::unique_ptr<Outbox> outbox = OpenOutbox();
  const absl::Time t0 = clock_.Now();
  absl::StatusOr<EnqueueResult> queued = outbox->Enqueue(Guest("k1"));
  ASSERT_TRUE(queued.ok()) << queued.status();
  EXPECT_FALSE(queued->duplicate);
  EXPECT_THAT(queued->notification_id, ::testing::MatchesRegex("psn-1/[0-9A-HJKMNP-TV-Z]{26}"));
  EXPECT_EQ(queued->message_id, "psn-1.test-k1@mailroom");

  absl::StatusOr<OutboxEntry> entry = outbox->Get(queued->notification_id);
  ASSERT_TRUE(entry.ok()) << entry.status();
  const cv1::Notification& n = entry->notification();
  EXPECT_EQ(n.state(), cv1::NOTIFICATION_STATE_QUEUED);
  EXPECT_EQ(n.idempotency_key(), "k1");
  EXPECT_EQ(n.kind(), cv1::NOTIFICATION_KIND_GUEST_CREDENTIALS);
  EXPECT_EQ(n.node(), "psn-1");
  EXPECT_EQ(n.from().display_name(), "Guest Portal");
  ASSERT_EQ(n.recipients_size(), 2);
  EXPECT_EQ(n.recipients(0).address().display_name(), "李小龙");
  EXPECT_EQ(n.recipients(1).type(), cv1::RECIPIENT_TYPE_BCC);
  EXPECT_EQ(n.size_bytes(), static_cast<int64_t>(Guest("k1").message.size()));
  EXPECT_EQ(n.attempts(), 0);
  EXPECT_EQ(FromProto(n.create_time()), t0);
  EXPECT_EQ(FromProto(n.next_attempt_time()), t0);
  EXPECT_EQ(FromProto(n.expire_time()), t0 + absl::Hours(24));
  EXPECT_THAT(entry->wait_reason(), IsEmpty());  // due
  // The status view never carries the body.
  EXPECT_THAT(entry->DebugString(), Not(HasSubstr(kPassword)));

  clock_.Advance(absl::Seconds(1));
  absl::StatusOr<std::vector<ClaimedNotification>> claimed = outbox->ClaimDue(10);
  ASSERT_TRUE(claimed.ok()) << claimed.status();
  ASSERT_THAT(*claimed, SizeIs(1));
  const ClaimedNotification& c = (*claimed)[0];
  EXPECT_EQ(c.id, queued->notification_id);
  EXPECT_EQ(c.message, Guest("k1").message);
  EXPECT_EQ(c.message_id, "psn-1.test-k1@mailroom");
  EXPECT_EQ(c.from.address(), "no-reply@contoso.com");
  ASSERT_THAT(c.recipients, SizeIs(2));
  EXPECT_EQ(c.recipients[1].address().address(), "audit@contoso.com");
  EXPECT_EQ(c.attempt, 1);
  EXPECT_EQ(c.expire_time, t0 + absl::Hours(24));
  EXPECT_EQ(Status(*outbox, c.id).state(), cv1::NOTIFICATION_STATE_SENDING);
  EXPECT_THAT(*outbox->ClaimDue(10), IsEmpty());  // claimed once only

  clock_.Advance(absl::Seconds(2));
  ASSERT_OK(outbox->MarkSent(
      c.id, {250, "2.0.0 OK queued as 4Bf", "permit-9", "alerts@contoso.com"}));
  entry = outbox->Get(c.id);
  ASSERT_TRUE(entry.ok());
  EXPECT_EQ(entry->notification().state(), cv1::NOTIFICATION_STATE_SENT);
  EXPECT_EQ(entry->notification().attempts(), 1);
  EXPECT_EQ(entry->notification().last_reply_code(), 250);
  EXPECT_EQ(entry->notification().last_reply_text(), "2.0.0 OK queued as 4Bf");
  EXPECT_EQ(FromProto(entry->notification().send_time()), t0 + absl::Seconds(3));
  EXPECT_FALSE(entry->notification().has_next_attempt_time());
  EXPECT_FALSE(entry->notification().has_diagnosis());
  EXPECT_EQ(entry->sending_mailbox(), "alerts@contoso.com");
  ASSERT_EQ(entry->attempts_size(), 1);
  EXPECT_EQ(entry->attempts(0).number(), 1);
  EXPECT_EQ(FromProto(entry->attempts(0).start_time()), t0 + absl::Seconds(1));
  EXPECT_EQ(FromProto(entry->attempts(0).end_time()), t0 + absl::Seconds(3));
  EXPECT_EQ(entry->attempts(0).reply_code(), 250);
  EXPECT_EQ(entry->attempts(0).permit_id(), "permit-9");
  EXPECT_FALSE(entry->attempts(0).has_diagnosis());

  // A finished entry accepts no further outcome.
  EXPECT_EQ(outbox->MarkSent(c.id, {250, "again"}).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(outbox->MarkSent(c.id, {250, "again"}).message(),
            absl::StrCat("outbox: notification ", c.id, " is SENT, not SENDING"));
  EXPECT_EQ(outbox->MarkSent("psn-1/nope", {250, ""}).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(outbox->Get("psn-1/nope").status().code(), absl::StatusCode::kNotFound);
}

// The rendered message may hold a guest password: once the server has it, it is gone from the
// database file (secure_delete zeroes its pages), and only its size is kept.
TEST_F(OutboxTest, SentMessageBodyIsErased) {
  std::string sent_id;
  std::string queued_id;
  {
    std::unique_ptr<Outbox> outbox = OpenOutbox();
    sent_id = EnqueueAndClaim(*outbox, "erase-me");
    ASSERT_OK(outbox->MarkSent(sent_id, {250, "2.0.0 OK"}));
    EXPECT_GT(Status(*outbox, sent_id).size_bytes(), 0);
  }
  // Closing checkpoints the WAL into the database file and removes it.
  EXPECT_EQ(ReadFile(path_).find(kPassword), std::string::npos);

  {
    // Control: an unsent message is in the file.
    std::unique_ptr<Outbox> outbox = OpenOutbox();
    NewNotification n = Guest("kept");
    absl::StatusOr<EnqueueResult> queued = outbox->Enqueue(n);
    ASSERT_TRUE(queued.ok());
  }
  EXPECT_NE(ReadFile(path_).find(kPassword), std::string::npos);
}

TEST_F(OutboxTest, FilesArePrivate) {
  std::unique_ptr<Outbox> outbox = OpenOutbox();
  ASSERT_TRUE(outbox->Enqueue(Guest("k")).ok());
  struct stat st;
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  for (const char* suffix : {"-wal", "-shm"}) {
    ASSERT_EQ(stat((path_ + suffix).c_str(), &st), 0) << suffix;
    EXPECT_EQ(st.st_mode & 0777, 0600) << suffix;
  }
}

// Checkpoints keep the WAL bounded: it is copied into the database file while the
// outbox is open and enqueues go on, and then the WAL is restarted (reused from its start)
// instead of growing. A restart increments the WAL header's checkpoint sequence number
// (bytes 12..15, big-endian; SQLite file format, section 4.1).
TEST_F(OutboxTest, WalIsCheckpointedAndReusedWhileOpen) {
  std::unique_ptr<Outbox> outbox = OpenOutbox();
  auto size_of = [](const std::string& path) -> int64_t {
    struct stat st;
    return stat(path.c_str(), &st) == 0 ? st.st_size : -1;
  };
  auto wal_restarts = [&]() -> uint32_t {
    const std::string header = ReadFile(path_ + "-wal").substr(0, 32);
    if (header.size() < 16) return 0;
    return static_cast<uint32_t>(static_cast<unsigned char>(header[12])) << 24 |
           static_cast<uint32_t>(static_cast<unsigned char>(header[13])) << 16 |
           static_cast<uint32_t>(static_cast<unsigned char>(header[14])) << 8 |
           static_cast<uint32_t>(static_cast<unsigned char>(header[15]));
  };
  const std::string padding(16 * 1024, 'x');
  int enqueued = 0;
  auto enqueue = [&] {
    NewNotification n = Guest(absl::StrCat("ckpt-", enqueued++));
    n.message += padding;
    ASSERT_TRUE(outbox->Enqueue(n).ok());
  };
  enqueue();
  const uint32_t initial = wal_restarts();
  const int64_t initial_size = size_of(path_);
  for (int i = 0; i < 120; ++i) enqueue();  // ~5 MB through the WAL
  for (int i = 0; i < 1000 && wal_restarts() == initial; ++i) {
    enqueue();
    absl::SleepFor(absl::Milliseconds(2));
  }
  EXPECT_GT(wal_restarts(), initial);
  EXPECT_GT(size_of(path_), initial_size + 1'000'000);  // copied while open
  EXPECT_LT(size_of(path_ + "-wal"), 12 * 1024 * 1024);
  EXPECT_EQ(outbox->Counts()->queued(), enqueued);
}

TEST_F(OutboxTest, IdsAreSortableAndMessageIdsWellFormed) {
  std::unique_ptr<Outbox> outbox = OpenOutbox();
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    ids.push_back(outbox->Enqueue(Guest(""))->notification_id);  // same millisecond
    if (i == 2) clock_.Advance(absl::Milliseconds(5));
  }
  EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), ids.size());
  EXPECT_THAT(outbox->NewMessageId(),
              ::testing::MatchesRegex("psn-1\\.[0-9A-HJKMNP-TV-Z]{26}@mailroom"));
  EXPECT_NE(outbox->NewMessageId(), outbox->NewMessageId());
}

TEST_F(OutboxTest, WakeCallbackRunsAfterNewWork) {
  std::unique_ptr<Outbox> outbox = OpenOutbox();
  int wakes = 0;
  outbox->SetWakeCallback([&] { ++wakes; });
  ASSERT_TRUE(outbox->Enqueue(Guest("w")).ok());
  EXPECT_EQ(wakes, 1);
  ASSERT_TRUE(outbox->Enqueue(Guest("w")).ok());  // duplicate: nothing new
  EXPECT_EQ(wakes, 1);
  const std::string id = outbox->ClaimDue(1)->at(0).id;
  ASSERT_TRUE(outbox->MarkRetry(id, Transient(), {451, "4.3.2 busy"}).ok());
  EXPECT_EQ(wakes, 2);
  outbox->SetWakeCallback(nullptr);
  ASSERT_TRUE(outbox->Retry(id).ok());
  EXPECT_EQ(wakes, 2);
}

// --- Validation and idempotency ---------------------------------------------------------------

TEST_F(OutboxTest, InvalidRequestsNameTheFieldAndQueueNothing) {
  std::unique_ptr<Outbox> outbox = OpenOutbox();
  struct Case {
    const char* field;
    std::function<void(NewNotification&)> mutate;
  };
  const std::vector<Case> cases = {
      {"request_fingerprint", [](NewNotification& n) { n.request_fingerprint.clear(); }},
      {"idempotency_key", [](NewNotification& n) { n.idempotency_key = "has space"; }},
      {"idempotency_key", [](NewNotification& n) { n.idempotency_key = std::string(257, 'k'); }},
      {"kind", [](NewNotification& n) { n.kind = cv1::NOTIFICATION_KIND_UNSPECIFIED; }},
      {"from.address", [](NewNotification& n) { n.from.clear_address(); }},
      {"recipients", [](NewNotification& n) { n.recipients.clear(); }},
      {"recipients[1].address.address",
       [](NewNotification& n) { n.recipients[1].mutable_address()->set_address("a@b\r\nX: y"); }},
      {"subject", [](NewNotification& n) { n.subject = "Hi\nBcc: evil@example.com"; }},
      {"message_id", [](NewNotification& n) { n.message_id.clear(); }},
      {"message_id", [](NewNotification& n) { n.message_id = "<x@y>"; }},
      {"message", [](NewNotification& n) { n.message.clear(); }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.field);
    NewNotification n = Guest("key");
    c.mutate(n);
    absl::StatusOr<EnqueueResult> result = outbox->Enqueue(n);
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(result.status().message()), HasSubstr(c.field));
  }
  EXPECT_EQ(outbox->Counts()->queued(), 0);

  // In a batch the index is named, and nothing of the batch is queued.
  std::vector<NewNotification> batch = {Guest("b0"), Guest("b1")};
  batch[1].message.clear();
  absl::StatusOr<std::vector<EnqueueResult>> results = outbox->EnqueueBatch(batch);
  EXPECT_EQ(results.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(results.status().message()), HasSubstr("notifications[1].message"));
  EXPECT_EQ(outbox->Counts()->queued(), 0);
}

TEST_F(OutboxTest, SameKeySameContentIsTheSameNotification) {
  std::unique_ptr<Outbox> outbox = OpenOutbox();
  absl::StatusOr<EnqueueResult> first = outbox->Enqueue(Guest("user-action-1"));
  ASSERT_TRUE(first.ok());
  clock_.Advance(absl::Minutes(5));
  NewNotification again = Guest("user-action-1");
  again.message_id = "psn-1.rerendered@mailroom";  // re-rendered: a new Message-ID
  absl::StatusOr<EnqueueResult> second = outbox->Enqueue(again);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_TRUE(second->duplicate);
  EXPECT_EQ(second->notification_id, first->notification_id);
  EXPECT_EQ(second->message_id, first->message_id);  // the original one
  EXPECT_EQ(outbox->Counts()->queued(), 1);

  // Even after it was sent: nothing is sent twice.
  ASSERT_THAT(*outbox->ClaimDue(10), SizeIs(1));
  ASSERT_OK(outbox->MarkSent(first->notification_id, {250, "OK"}));
  second = outbox->Enqueue(Guest("user-action-1"));
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(second->duplicate);
  EXPECT_THAT(*outbox->ClaimDue(10), IsEmpty());

  absl::StatusOr<OutboxEntry> by_key = outbox->GetByIdempotencyKey("user-action-1");
  ASSERT_TRUE(by_key.ok());
  EXPECT_EQ(by_key->notification().id(), first->notification_id);
  EXPECT_EQ(outbox->GetByIdempotencyKey("unknown").status().code(), absl::StatusCode::kNotFound);

  // Without a key, every request is new.
  EXPECT_NE(outbox->Enqueue(Guest(""))->notification_id,
            outbox->Enqueue(Guest(""))->notification_id);
}

TEST_F(OutboxTest, SameKeyDifferentContentIsAlreadyExists) {
  std::unique_ptr<Outbox> outbox = OpenOutbox();
  absl::StatusOr<EnqueueResult> first = outbox->Enqueue(Guest("user-action-2", "request-A"));
  ASSERT_TRUE(first.ok());
  absl::StatusOr<EnqueueResult> other = outbox->Enqueue(Guest("user-action-2", "request-B"));
  EXPECT_EQ(other.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(other.status().message()), HasSubstr("idempotency_key"));
  EXPECT_THAT(std::string(other.status().message()), HasSubstr(first->notification_id));
  EXPECT_EQ(ReasonOf(other.status()), "IDEMPOTENCY_KEY_REUSED");
  EXPECT_EQ(outbox->Counts()->queued(), 1);

  // A batch with one reused key queues none of its notifications.
  absl::StatusOr<std::vector<EnqueueResult>> batch =
      outbox->EnqueueBatch({Guest("fresh-1"), Guest("user-action-2", "request-C")});
  EXPECT_EQ(batch.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(batch.status().message()),
              HasSubstr("notifications[1].idempotency_key"));
  EXPECT_EQ(outbox->GetByIdempotencyKey("fresh-1").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(outbox->Counts()->queued(), 1);
}

TEST_F(OutboxTest, BatchCommitsAllTogether) {
  std::unique_ptr<Outbox> outbox = OpenOutbox();
  ASSERT_TRUE(outbox->Enqueue(Guest("summary/0")).ok());
  absl::StatusOr<std::vector<EnqueueResult>> results =
      outbox->EnqueueBatch({Guest("summary/0"), Guest("summary/1"), Guest("summary/2")});
  ASSERT_TRUE(results.ok()) << results.status();
  ASSERT_THAT(*results, SizeIs(3));
  EXPECT_TRUE((*results)[0].duplicate);
  EXPECT_FALSE((*results)[1].duplicate);
  EXPECT_FALSE((*results)[2].duplicate);
  EXPECT_EQ(outbox->Counts()->queued(), 3);
}

// --- Retries ------------------------------------------------------------------------------------

TEST_F(OutboxTest, BackoffDoublesUpToTheCap) {
  std::unique_ptr<Outbox> outbox = OpenOutbox();  // 30 s initial, 15 min cap, no jitter
  const std::string id = EnqueueAndClaim(*outbox, "k");
  const std::vector<absl::Duration> expected = {
      absl::Seconds(30),  absl::Seconds(60),  absl::Seconds(120), absl::Seconds(240),
      absl::Seconds(480), absl::Minutes(15),  absl::Minutes(15)};
  for (size_t i = 0; i < expected.size(); ++i) {
    SCOPED_TRACE(i);
    const absl::Time now = clock_.Now();
    absl::StatusOr<RetryDecision> decision =
        outbox->MarkRetry(id, Transient(), {451, "4.3.2 Concurrent connections limit exceeded"});
    ASSERT_TRUE(decision.ok()) << decision.status();
    EXPECT_EQ(decision->state, cv1::NOTIFICATION_STATE_QUEUED);
    EXPECT_EQ(decision->next_attempt_time, now + expected[i]);
    ASSERT_EQ(*outbox->NextDueTime(), now + expected[i]);

    absl::StatusOr<OutboxEntry> entry = outbox->Get(id);
    EXPECT_EQ(entry->notification().state(), cv1::NOTIFICATION_STATE_QUEUED);
    EXPECT_EQ(entry->notification().attempts(), static_cast<int>(i) + 1);
    EXPECT_EQ(entry->notification().last_reply_code(), 451);
    EXPECT_EQ(entry->notification().diagnosis().cause(),
              cv1::FAILURE_CAUSE_CONCURRENT_CONNECTION_LIMIT);
    EXPECT_THAT(entry->wait_reason(), HasSubstr("backoff after 451 4.3.2 until "));
    EXPECT_EQ(entry->attempts(i).diagnosis().cause(),
              cv1::FAILURE_CAUSE_CONCURRENT_CONNECTION_LIMIT);

    // Not due before its time.
    clock_.Advance(expected[i] - absl::Seconds(1));
    EXPECT_THAT(*outbox->ClaimDue(10), IsEmpty());
    clock_.Advance(absl::Seconds(1));
    EXPECT_THAT(outbox->Get(id)->wait_reason(), IsEmpty());  // due now
    absl::StatusOr<std::vector<ClaimedNotification>> claimed = outbox->ClaimDue(10);
    ASSERT_THAT(*claimed, SizeIs(1));
    EXPECT_EQ((*claimed)[0].attempt, static_cast<int>(i) + 2);
  }
}

TEST_F(OutboxTest, JitterSpreadsDelaysWithinBounds) {
  std::vector<double> draws = {0.0, 0.999999, 0.25};
  size_t next = 0;
  OutboxOptions options = TestOptions();
  options.random_unit = [&] { return draws[next++ % draws.size()]; };
  std::unique_ptr<Outbox> outbox = OpenOutbox(options);
  const std::string id = EnqueueAndClaim(*outbox, "k");
  const absl::Time now = clock_.Now();
  // Attempt 1: 30 s × 0.8.
  EXPECT_EQ(outbox->MarkRetry(id, Transient(), {451, "4.3.2"})->next_attempt_time,
            now + absl::Seconds(24));
  ASSERT_THAT(*outbox->ClaimDue(1), IsEmpty());
  ASSERT_OK(outbox->Retry(id).status());
  ASSERT_THAT(*outbox->ClaimDue(1), SizeIs(1));
  // Attempt 2: 60 s × ~1.2.
  const absl::Duration second =
      outbox->MarkRetry(id, Transient(), {451, "4.3.2"})->next_attempt_time - now;
  EXPECT_GT(second, absl::Seconds(71));
  EXPECT_LE(second, absl::Seconds(72));
  ASSERT_OK(outbox->Retry(id).status());
  ASSERT_THAT(*outbox->ClaimDue(1), SizeIs(1));
  // Attempt 3: 120 s × 0.9.
  EXPECT_EQ(outbox->MarkRetry(id, Transient(), {451, "4.3.2"})->next_attempt_time,
            now + absl::Seconds(108));

  // At the cap, jitter never goes above it.
  options.random_unit = [] { return 0.999999; };
  options.backoff_max = absl::Seconds(30);
  clock_.Advance(absl::Hours(1));
  path_ = dir_ + "/capped.db";
  std::unique_ptr<Outbox> capped = OpenOutbox(options);
  const std::string id2 = EnqueueAndClaim(*capped, "k2");
  EXPECT_EQ(capped->MarkRetry(id2, Transient(), {451, "4.3.2"})->next_attempt_time,
            clock_.Now() + absl::Seconds(30));
}

TEST_F(OutboxTest, RetryLifetimeRunsOutIntoFailedWithTheDiagnosis) {
  OutboxOptions options = TestOptions();
  options.retry_lifetime = absl::Hours(1);
  options.backoff_initial = absl::Minutes(10);
  options.backoff_max = absl::Minutes(20);
  std::unique_ptr<Outbox> outbox = OpenOutbox(options);
  const absl::Time t0 = clock_.Now();
  const std::string id = EnqueueAndClaim(*outbox, "k");
  // Attempts at 0, 10, 30, 50 min; the next would be at 70 min > 60 min.
  int attempts = 0;
  RetryDecision decision;
  while (true) {
    ++attempts;
    ASSERT_LT(attempts, 10);
    absl::StatusOr<RetryDecision> d =
        outbox->MarkRetry(id, Transient(), {451, "4.3.2 Concurrent connections limit exceeded"});
    ASSERT_TRUE(d.ok()) << d.status();
    decision = *d;
    if (decision.state != cv1::NOTIFICATION_STATE_QUEUED) break;
    clock_.SetTime(decision.next_attempt_time);
    ASSERT_THAT(*outbox->ClaimDue(10), SizeIs(1));
  }
  EXPECT_EQ(attempts, 4);
  EXPECT_EQ(clock_.Now(), t0 + absl::Minutes(50));
  EXPECT_EQ(decision.state, cv1::NOTIFICATION_STATE_FAILED);
  absl::StatusOr<OutboxEntry> entry = outbox->Get(id);
  const cv1::Notification& n = entry->notification();
  EXPECT_EQ(n.state(), cv1::NOTIFICATION_STATE_FAILED);
  EXPECT_EQ(n.diagnosis().cause(), cv1::FAILURE_CAUSE_CONCURRENT_CONNECTION_LIMIT);
  EXPECT_EQ(n.diagnosis().raw_reply(), "451 4.3.2 Concurrent connections limit exceeded");
  EXPECT_EQ(n.last_reply_code(), 451);
  EXPECT_FALSE(n.has_next_attempt_time());
  EXPECT_EQ(FromProto(n.expire_time()), t0 + absl::Hours(1));
  EXPECT_THAT(entry->wait_reason(), IsEmpty());
  EXPECT_THAT(entry->attempts(), SizeIs(4));
  EXPECT_EQ(*outbox->NextDueTime(), absl::nullopt);
  EXPECT_EQ(outbox->Counts()->failed(), 1);
}

TEST_F(OutboxTest, NotBeforeIsHonoured) {
  std::unique_ptr<Outbox> outbox = OpenOutbox();
  const std::string id = EnqueueAndClaim(*outbox, "k");
  const absl::Time now = clock_.Now();
  // The mailbox is paused for 3 hours (submission quota): that beats the 30 s backoff.
  const Diagnosis quota = MakeDiagnosis(cv1::FAILURE_CAUSE_SUBMISSION_QUOTA_EXCEEDED,
                                        "554 5.2.0 SubmissionQuotaExceededException");
  absl::StatusOr<RetryDecision> decision = outbox->MarkRetry(
      id, quota, {554, "5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException"},
      now + absl::Hours(3));
  ASSERT_TRUE(decision.ok());
  EXPECT_EQ(decision->next_attempt_time, now + absl::Hours(3));
  absl::StatusOr<OutboxEntry> entry = outbox->Get(id);
  EXPECT_THAT(entry->wait_reason(), HasSubstr("held after 554 5.2.0 until "));
  EXPECT_THAT(entry->wait_reason(), HasSubstr(quota.title()));
  clock_.Advance(absl::Hours(3) - absl::Seconds(1));
  EXPECT_THAT(*outbox->ClaimDue(10), IsEmpty());
  clock_.Advance(absl::Seconds(1));
  ASSERT_THAT(*outbox->ClaimDue(10), SizeIs(1));

  // A Retry-After shorter than the backoff does not shorten it.
  decision = outbox->MarkRetry(id, Transient(), {451, "4.3.2"}, clock_.Now() + absl::Seconds(5));
  EXPECT_EQ(decision->next_attempt_time, clock_.Now() + absl::Seconds(60));

  // A wait past the retry lifetime fails the notification now.
  clock_.Advance(absl::Seconds(60));
  ASSERT_THAT(*outbox->ClaimDue(10), SizeIs(1));
  decision = outbox->MarkRetry(id, quota, {554, "5.2.0"}, clock_.Now() + absl::Hours(48));
  EXPECT_EQ(decision->state, cv1::NOTIFICATION_STATE_FAILED);
  EXPECT_EQ(Status(*outbox, id).diagnosis().cause(), cv1::FAILURE_CAUSE_SUBMISSION_QUOTA_EXCEEDED);
}

TEST_F(OutboxTest, ReleaseDoesNotCountAnAttempt) {
  std::unique_ptr<Outbox> outbox = OpenOutbox();
  const std::string id = EnqueueAndClaim(*outbox, "k");
  EXPECT_EQ(Status(*outbox, id).attempts(), 1);
  const absl::Time now = clock_.Now();
  ASSERT_OK(outbox->Release(id, "waiting for send permit: 30 messages/minute reached",
                            now + absl::Seconds(20)));
  absl::StatusOr<OutboxEntry> entry = outbox->Get(id);
  EXPECT_EQ(entry->notification().state(), cv1::NOTIFICATION_STATE_QUEUED);
  EXPECT_EQ(entry->notification().attempts(), 0);
  EXPECT_THAT(entry->attempts(), IsEmpty());
  EXPECT_EQ(FromProto(entry->notification().next_attempt_time()), now + absl::Seconds(20));
  EXPECT_EQ(entry->wait_reason(), "waiting for send permit: 30 messages/minute reached");
  EXPECT_THAT(*outbox->ClaimDue(10), IsEmpty());
  clock_.Advance(absl::Seconds(20));
  absl::StatusOr<std::vector<ClaimedNotification>> claimed = outbox->ClaimDue(10);
  ASSERT_THAT(*claimed, SizeIs(1));
  EXPECT_EQ((*claimed)[0].attempt, 1);

  // Without not_before it is due at once.
  ASSERT_OK(outbox->Release(id));
  EXPECT_THAT(*outbox->ClaimDue(10), SizeIs(1));
  ASSERT_OK(outbox->MarkSent(id, {250, "OK"}));
  EXPECT_EQ(Status(*outbox, id).attempts(), 1);
  EXPECT_EQ(outbox->Release(id).code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(OutboxTest, PermanentFailure) {
  std::unique_ptr<Outbox> outbox = OpenOutbox();
  const std::string id = EnqueueAndClaim(*outbox, "k");
  const Diagnosis rejected = MakeDiagnosis(cv1::FAILURE_CAUSE_RECIPIENT_REJECTED,
                                           "550 5.1.1 User unknown");
  ASSERT_OK(outbox->MarkFailed(id, rejected, {550, "5.1.1 User unknown", "permit-1"}));
  absl::StatusOr<OutboxEntry> entry = outbox->Get(id);
  EXPECT_EQ(entry->notification().state(), cv1::NOTIFICATION_STATE_FAILED);
  EXPECT_EQ(entry->notification().diagnosis().cause(), cv1::FAILURE_CAUSE_RECIPIENT_REJECTED);
  ASSERT_EQ(entry->attempts_size(), 1);
  EXPECT_EQ(entry->attempts(0).reply_code(), 550);
  EXPECT_EQ(entry->attempts(0).diagnosis().cause(), cv1::FAILURE_CAUSE_RECIPIENT_REJECTED);
  EXPECT_EQ(outbox->MarkRetry(id, rejected, {550, ""}).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(OutboxTest, KeepsTheLastFiftyAttempts) {
  OutboxOptions options = TestOptions();
  options.sync_every_commit = false;  // 165 commits; durability is not what this tests
  std::unique_ptr<Outbox> outbox = OpenOutbox(options);
  const std::string id = EnqueueAndClaim(*outbox, "k");
  for (int i = 1; i <= 55; ++i) {
    ASSERT_TRUE(outbox->MarkRetry(id, Transient(), {451, absl::StrCat("attempt ", i)}).ok());
    ASSERT_TRUE(outbox->Retry(id).ok());
    ASSERT_THAT(*outbox->ClaimDue(1), SizeIs(1));
  }
  absl::StatusOr<OutboxEntry> entry = outbox->Get(id);
  EXPECT_EQ(entry->notification().attempts(), 56);
  ASSERT_EQ(entry->attempts_size(), 50);
  EXPECT_EQ(entry->attempts(0).number(), 6);
  EXPECT_EQ(entry->attempts(49).number(), 55);
  EXPECT_EQ(entry->attempts(49).reply_text(), "attempt 55");
}

// --- Admin retry, listing, counts, retention ---------------------------------------------------

TEST_F(OutboxTest, AdminRetry) {
  std::unique_ptr<Outbox> outbox = OpenOutbox();
  // FAILED → QUEUED with a fresh lifetime, history kept.
  const std::string failed = EnqueueAndClaim(*outbox, "f");
  ASSERT_OK(outbox->MarkFailed(failed, MakeDiagnosis(cv1::FAILURE_CAUSE_SEND_AS_DENIED),
                               {550, "5.7.60 SMTP; Client does not have permissions"}));
  clock_.Advance(absl::Hours(30));
  absl::StatusOr<OutboxEntry> retried = outbox->Retry(failed);
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_EQ(retried->notification().state(), cv1::NOTIFICATION_STATE_QUEUED);
  EXPECT_EQ(FromProto(retried->notification().next_attempt_time()), clock_.Now());
  EXPECT_EQ(FromProto(retried->notification().expire_time()), clock_.Now() + absl::Hours(24));
  EXPECT_THAT(retried->attempts(), SizeIs(1));
  EXPECT_EQ(retried->notification().attempts(), 1);

  // QUEUED in backoff → due now.
  absl::StatusOr<std::vector<ClaimedNotification>> claimed = outbox->ClaimDue(10);
  ASSERT_THAT(*claimed, SizeIs(1));
  ASSERT_TRUE(outbox->MarkRetry(failed, Transient(), {451, "4.3.2"}).ok());
  const absl::Time expire = FromProto(Status(*outbox, failed).expire_time());
  retried = outbox->Retry(failed);
  ASSERT_TRUE(retried.ok());
  EXPECT_EQ(FromProto(retried->notification().next_attempt_time()), clock_.Now());
  EXPECT_EQ(FromProto(retried->notification().expire_time()), expire);
  EXPECT_THAT(retried->wait_reason(), IsEmpty());

  // SENDING and SENT are refused; a sent message is never re-sent.
  ASSERT_THAT(*outbox->ClaimDue(10), SizeIs(1));
  EXPECT_EQ(outbox->Retry(failed).status().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_OK(outbox->MarkSent(failed, {250, "OK"}));
  absl::StatusOr<OutboxEntry> refused = outbox->Retry(failed);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("never re-sent"));
  EXPECT_EQ(outbox->Retry("psn-1/unknown").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(OutboxTest, ListPagesNewestFirstWithFilters) {
  std::unique_ptr<Outbox> outbox = OpenOutbox();
  const absl::Time t0 = clock_.Now();
  std::vector<std::string> ids;  // oldest first
  for (int i = 0; i < 7; ++i) {
    const NotificationKind kind = i % 2 == 0 ? cv1::NOTIFICATION_KIND_GUEST_CREDENTIALS
                                             : cv1::NOTIFICATION_KIND_PASSWORD_RESET;
    ids.push_back(outbox->Enqueue(Guest(absl::StrCat("l", i), "x", kind))->notification_id);
    clock_.Advance(absl::Minutes(1));
  }
  // ids[0] sent, ids[1] failed, the rest queued. The resets (URGENT) are claimed before the
  // credentials (NORMAL, ranked 10 minutes later) queued before them; ids[3] and ids[5] go back.
  ASSERT_THAT(*outbox->ClaimDue(4), SizeIs(4));
  ASSERT_OK(outbox->Release(ids[3]));
  ASSERT_OK(outbox->Release(ids[5]));
  ASSERT_OK(outbox->MarkSent(ids[0], {250, "OK"}));
  ASSERT_OK(outbox->MarkFailed(ids[1], MakeDiagnosis(cv1::FAILURE_CAUSE_RECIPIENT_REJECTED),
                               {550, "5.1.1"}));

  // All, three per page.
  std::vector<std::string> listed;
  ListOutboxRequest request;
  request.mutable_page()->set_page_size(3);
  int pages = 0;
  while (true) {
    absl::StatusOr<ListOutboxResponse> page = outbox->List(request);
    ASSERT_TRUE(page.ok()) << page.status();
    ++pages;
    EXPECT_EQ(page->page().total_size(), 7);
    EXPECT_EQ(page->counts().queued(), 5);
    EXPECT_EQ(page->counts().sent(), 1);
    EXPECT_EQ(page->counts().failed(), 1);
    for (const OutboxEntry& e : page->entries()) {
      EXPECT_THAT(e.attempts(), IsEmpty());
      listed.push_back(e.notification().id());
    }
    if (page->page().next_page_token().empty()) break;
    request.mutable_page()->set_page_token(page->page().next_page_token());
  }
  EXPECT_EQ(pages, 3);
  EXPECT_THAT(listed, ElementsAre(ids[6], ids[5], ids[4], ids[3], ids[2], ids[1], ids[0]));

  // Filters: state, kind, creation time; counts ignore them.
  auto list = [&](const ListOutboxRequest& r) {
    std::vector<std::string> out;
    absl::StatusOr<ListOutboxResponse> page = outbox->List(r);
    EXPECT_TRUE(page.ok()) << page.status();
    for (const OutboxEntry& e : page->entries()) out.push_back(e.notification().id());
    EXPECT_EQ(page->page().total_size(), static_cast<int64_t>(out.size()));
    EXPECT_EQ(page->counts().queued(), 5);
    return out;
  };
  ListOutboxRequest by_state;
  by_state.add_states(cv1::NOTIFICATION_STATE_SENT);
  by_state.add_states(cv1::NOTIFICATION_STATE_FAILED);
  EXPECT_THAT(list(by_state), ElementsAre(ids[1], ids[0]));
  ListOutboxRequest by_kind;
  by_kind.add_kinds(cv1::NOTIFICATION_KIND_PASSWORD_RESET);
  EXPECT_THAT(list(by_kind), ElementsAre(ids[5], ids[3], ids[1]));
  ListOutboxRequest both = by_kind;
  both.add_states(cv1::NOTIFICATION_STATE_QUEUED);
  EXPECT_THAT(list(both), ElementsAre(ids[5], ids[3]));
  ListOutboxRequest recent;
  recent.mutable_create_time_after()->set_seconds(absl::ToUnixSeconds(t0 + absl::Minutes(5)));
  EXPECT_THAT(list(recent), ElementsAre(ids[6], ids[5]));
  ListOutboxRequest any;
  any.add_states(cv1::NOTIFICATION_STATE_UNSPECIFIED);
  EXPECT_THAT(list(any), SizeIs(7));
  ListOutboxRequest queued_page;
  queued_page.add_states(cv1::NOTIFICATION_STATE_QUEUED);
  queued_page.mutable_page()->set_page_size(2);
  absl::StatusOr<ListOutboxResponse> first = outbox->List(queued_page);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->page().total_size(), 5);

  // A token is only good for the listing that made it.
  ListOutboxRequest other_filters;
  other_filters.mutable_page()->set_page_token(first->page().next_page_token());
  EXPECT_EQ(outbox->List(other_filters).status().code(), absl::StatusCode::kInvalidArgument);
  ListOutboxRequest garbage;
  garbage.mutable_page()->set_page_token("not-a-token");
  EXPECT_EQ(outbox->List(garbage).status().code(), absl::StatusCode::kInvalidArgument);
  ListOutboxRequest negative;
  negative.mutable_page()->set_page_size(-1);
  EXPECT_EQ(outbox->List(negative).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(OutboxTest, Counts) {
  std::unique_ptr<Outbox> outbox = OpenOutbox();
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(outbox->Enqueue(Guest(absl::StrCat("c", i))).ok());
  absl::StatusOr<std::vector<ClaimedNotification>> claimed = outbox->ClaimDue(3);
  ASSERT_THAT(*claimed, SizeIs(3));
  ASSERT_OK(outbox->MarkSent((*claimed)[0].id, {250, "OK"}));
  ASSERT_OK(outbox->MarkFailed((*claimed)[1].id, MakeDiagnosis(cv1::FAILURE_CAUSE_UNKNOWN), {}));
  absl::StatusOr<OutboxCounts> counts = outbox->Counts();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts->queued(), 1);
  EXPECT_EQ(counts->sending(), 1);
  EXPECT_EQ(counts->sent(), 1);
  EXPECT_EQ(counts->failed(), 1);
}

TEST_F(OutboxTest, UnsentCountsQueuedAndSendingAndNamesTheOldestWithItsReason) {
  std::unique_ptr<Outbox> outbox = OpenOutbox();
  absl::StatusOr<UnsentSummary> unsent = outbox->Unsent();
  ASSERT_TRUE(unsent.ok()) << unsent.status();
  EXPECT_EQ(unsent->count, 0);
  EXPECT_FALSE(unsent->oldest.has_value());

  const std::string first = EnqueueAndClaim(*outbox, "u0");
  clock_.Advance(absl::Seconds(10));
  for (int i = 1; i < 4; ++i) {
    ASSERT_TRUE(outbox->Enqueue(Guest(absl::StrCat("u", i))).ok());
    clock_.Advance(absl::Seconds(1));
  }
  // The first one's attempt failed and waits for its retry; a sent one is not unsent.
  ASSERT_TRUE(outbox->MarkRetry(first, Transient(), {451, "4.3.2 busy"}).ok());
  absl::StatusOr<std::vector<ClaimedNotification>> claimed = outbox->ClaimDue(1);
  ASSERT_THAT(*claimed, SizeIs(1));
  ASSERT_OK(outbox->MarkSent((*claimed)[0].id, {250, "OK"}));  // u1
  claimed = outbox->ClaimDue(1);
  ASSERT_THAT(*claimed, SizeIs(1));
  ASSERT_OK(outbox->Release((*claimed)[0].id, "waiting for send permit",  // u2
                            clock_.Now() + absl::Minutes(1)));
  claimed = outbox->ClaimDue(1);
  ASSERT_THAT(*claimed, SizeIs(1));  // u3, SENDING

  unsent = outbox->Unsent();
  ASSERT_TRUE(unsent.ok()) << unsent.status();
  EXPECT_EQ(unsent->count, 3);  // u0 waiting for its retry, u2 released, u3 sending
  ASSERT_TRUE(unsent->oldest.has_value());
  EXPECT_EQ(unsent->oldest->notification().id(), first);
  EXPECT_EQ(unsent->oldest->notification().diagnosis().cause(),
            cv1::FAILURE_CAUSE_CONCURRENT_CONNECTION_LIMIT);
  EXPECT_EQ(FromProto(unsent->oldest->notification().create_time()),
            clock_.Now() - absl::Seconds(13));
}

TEST_F(OutboxTest, PurgeDropsFinishedEntriesPastRetentionAndTheirKeys) {
  std::unique_ptr<Outbox> outbox = OpenOutbox();  // retention 7 days
  const std::string sent = EnqueueAndClaim(*outbox, "sent");
  ASSERT_OK(outbox->MarkSent(sent, {250, "OK"}));
  const std::string failed = EnqueueAndClaim(*outbox, "failed");
  ASSERT_OK(outbox->MarkFailed(failed, MakeDiagnosis(cv1::FAILURE_CAUSE_UNKNOWN), {554, "no"}));
  // A notification still queued is never purged, however old.
  const std::string queued = outbox->Enqueue(Guest("queued"))->notification_id;

  clock_.Advance(absl::Hours(24 * 7) - absl::Seconds(1));
  EXPECT_EQ(*outbox->Purge(), 0);
  clock_.Advance(absl::Seconds(2));
  EXPECT_EQ(*outbox->Purge(), 2);
  EXPECT_EQ(outbox->Get(sent).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(outbox->Get(failed).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(outbox->Get(queued).ok());
  EXPECT_EQ(outbox->Counts()->sent(), 0);
  // The purged key is forgotten: the same key now queues a new notification.
  absl::StatusOr<EnqueueResult> again = outbox->Enqueue(Guest("sent", "something else"));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(again->duplicate);
  EXPECT_NE(again->notification_id, sent);
}

// --- Crashes, full disks, exclusivity -----------------------------------------------------------

TEST_F(OutboxTest, InterruptedSendsAreRequeuedOnOpen) {
  std::string a, b, c;
  {
    std::unique_ptr<Outbox> outbox = OpenOutbox();
    a = outbox->Enqueue(Guest("a"))->notification_id;
    b = outbox->Enqueue(Guest("b"))->notification_id;
    c = outbox->Enqueue(Guest("c"))->notification_id;
    ASSERT_THAT(*outbox->ClaimDue(2), SizeIs(2));  // a and b were being sent ...
    EXPECT_EQ(outbox->requeued_on_open(), 0);
  }  // ... when the process went away.
  clock_.Advance(absl::Minutes(3));
  std::unique_ptr<Outbox> outbox = OpenOutbox();
  EXPECT_EQ(outbox->requeued_on_open(), 2);
  for (const std::string& id : {a, b}) {
    absl::StatusOr<OutboxEntry> entry = outbox->Get(id);
    EXPECT_EQ(entry->notification().state(), cv1::NOTIFICATION_STATE_QUEUED);
    EXPECT_EQ(FromProto(entry->notification().next_attempt_time()), clock_.Now());
    EXPECT_EQ(entry->notification().attempts(), 1);  // it may have reached the server
    ASSERT_EQ(entry->attempts_size(), 1);
    EXPECT_THAT(entry->attempts(0).reply_text(), HasSubstr("interrupted"));
  }
  absl::StatusOr<std::vector<ClaimedNotification>> claimed = outbox->ClaimDue(10);
  ASSERT_THAT(*claimed, SizeIs(3));
  // In queue order (one class): a and b, re-queued at the restart, keep their places.
  EXPECT_EQ((*claimed)[0].id, a);
  EXPECT_EQ((*claimed)[0].attempt, 2);
  EXPECT_EQ((*claimed)[0].message, Guest("a").message);
  EXPECT_EQ((*claimed)[1].id, b);
  EXPECT_EQ((*claimed)[1].attempt, 2);
  EXPECT_EQ((*claimed)[2].id, c);
  EXPECT_EQ((*claimed)[2].attempt, 1);
}

TEST_F(OutboxTest, ASecondOpenOfTheSameFileIsRefused) {
  std::unique_ptr<Outbox> outbox = OpenOutbox();
  absl::StatusOr<std::unique_ptr<Outbox>> second = Outbox::Open(path_, &clock_, TestOptions());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(second.status().message()), HasSubstr("already open in this process"));
  // The refused Open did not disturb the first one.
  EXPECT_TRUE(outbox->Enqueue(Guest("still-fine")).ok());
  outbox.reset();
  EXPECT_TRUE(Outbox::Open(path_, &clock_, TestOptions()).ok());
}

// Another process holding the outbox keeps it; its lock goes when it dies.
TEST_F(OutboxTest, AnotherProcessHoldingTheFileKeepsIt) {
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(ready[0]);
    FakeClock clock;
    absl::StatusOr<std::unique_ptr<Outbox>> outbox = Outbox::Open(path_, &clock, TestOptions());
    if (!outbox.ok() || !(*outbox)->Enqueue(Guest("from-child")).ok()) _exit(2);
    if (write(ready[1], "r", 1) != 1) _exit(3);
    while (true) pause();
  }
  close(ready[1]);
  char byte = 0;
  ASSERT_EQ(read(ready[0], &byte, 1), 1);
  close(ready[0]);
  absl::StatusOr<std::unique_ptr<Outbox>> refused = Outbox::Open(path_, &clock_, TestOptions());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("in use by another process"));
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  ASSERT_EQ(waitpid(pid, nullptr, 0), pid);
  std::unique_ptr<Outbox> outbox = OpenOutbox();
  ASSERT_NE(outbox, nullptr);
  EXPECT_TRUE(outbox->GetByIdempotencyKey("from-child").ok());
}

// A claim reads the rows it returns, not the whole backlog: the claim query walks the rank
// index, and SQLite sorts nothing (a "TEMP B-TREE" would mean every due row, body included, is
// read and sorted at each claim).
TEST_F(OutboxTest, AClaimWalksTheRankIndexAndSortsNothing) {
  std::unique_ptr<Outbox> outbox = OpenOutbox();
  ASSERT_NE(outbox, nullptr);
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(outbox->Enqueue(Guest(absl::StrCat("backlog-", i))).ok());
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* plan = nullptr;
  const std::string explain = absl::StrCat("EXPLAIN QUERY PLAN ", outbox_schema::kClaimDueSql);
  ASSERT_EQ(sqlite3_prepare_v2(db, explain.c_str(), -1, &plan, nullptr), SQLITE_OK)
      << sqlite3_errmsg(db);
  std::string steps;
  while (sqlite3_step(plan) == SQLITE_ROW) {
    absl::StrAppend(&steps, reinterpret_cast<const char*>(sqlite3_column_text(plan, 3)), "\n");
  }
  sqlite3_finalize(plan);
  sqlite3_close(db);
  EXPECT_THAT(steps, HasSubstr("USING INDEX entries_by_state_rank"));
  EXPECT_THAT(steps, Not(HasSubstr("TEMP B-TREE")));
  absl::StatusOr<std::vector<ClaimedNotification>> claimed = outbox->ClaimDue(5);
  ASSERT_TRUE(claimed.ok()) << claimed.status();
  EXPECT_THAT(*claimed, SizeIs(5));
}

TEST_F(OutboxTest, NewerSchemaIsRefused) {
  OpenOutbox().reset();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version=99", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  absl::StatusOr<std::unique_ptr<Outbox>> outbox = Outbox::Open(path_, &clock_, TestOptions());
  EXPECT_EQ(outbox.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(outbox.status().message()), HasSubstr("schema version 99"));
}

TEST_F(OutboxTest, BadOptionsAreRefused) {
  OutboxOptions no_node = TestOptions();
  no_node.node_name = "";
  EXPECT_EQ(Outbox::Open(path_, &clock_, no_node).status().code(),
            absl::StatusCode::kInvalidArgument);
  OutboxOptions slash = TestOptions();
  slash.node_name = "a/b";
  EXPECT_EQ(Outbox::Open(path_, &clock_, slash).status().code(),
            absl::StatusCode::kInvalidArgument);
  OutboxOptions backoff = TestOptions();
  backoff.backoff_max = absl::Seconds(1);
  EXPECT_EQ(Outbox::Open(path_, &clock_, backoff).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Outbox::Open(dir_ + "/no/such/dir/outbox.db", &clock_, TestOptions()).status().code(),
            absl::StatusCode::kUnavailable);
}

// Reads the lines a child writes to `fd` until `enough` complete lines have arrived (or, with
// enough = 0, until end of file). Returns the complete lines; a partial last line is dropped.
std::vector<std::string> ReadLines(int fd, size_t enough, std::string* buffer) {
  std::vector<std::string> lines;
  char chunk[4096];
  while (true) {
    size_t newline;
    while ((newline = buffer->find('\n')) != std::string::npos) {
      lines.push_back(buffer->substr(0, newline));
      buffer->erase(0, newline + 1);
    }
    if (enough != 0 && lines.size() >= enough) return lines;
    const ssize_t n = read(fd, chunk, sizeof(chunk));
    if (n <= 0) return lines;
    buffer->append(chunk, n);
  }
}

// The durability promise: a child process enqueues in a loop and reports each id on a pipe only
// after Enqueue returned; it is killed with SIGKILL mid-stream. Every reported id must be in
// the outbox afterwards, with its message intact.
TEST_F(OutboxTest, EveryAcknowledgedEnqueueSurvivesKill9) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    FakeClock clock;
    absl::StatusOr<std::unique_ptr<Outbox>> outbox = Outbox::Open(path_, &clock, TestOptions());
    if (!outbox.ok()) _exit(2);
    // Three threads, so that group commits are among what is killed. Each line is written
    // with one write(2) of less than PIPE_BUF bytes: lines never interleave.
    std::vector<std::thread> threads;
    for (int t = 0; t < 3; ++t) {
      threads.emplace_back([&, t] {
        for (int i = t;; i += 3) {
          absl::StatusOr<EnqueueResult> r = (*outbox)->Enqueue(Guest(absl::StrCat("kill-", i)));
          if (!r.ok()) _exit(3);
          const std::string line = absl::StrCat(i, " ", r->notification_id, "\n");
          if (write(fds[1], line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
            _exit(4);
          }
          clock.Advance(absl::Microseconds(500));
        }
      });
    }
    for (std::thread& t : threads) t.join();
    _exit(5);
  }
  close(fds[1]);
  std::string buffer;
  std::vector<std::string> acked = ReadLines(fds[0], 150, &buffer);
  ASSERT_GE(acked.size(), 150u) << "the child stopped early";
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  for (std::string& line : ReadLines(fds[0], 0, &buffer)) acked.push_back(std::move(line));
  close(fds[0]);

  std::unique_ptr<Outbox> outbox = OpenOutbox();
  ASSERT_NE(outbox, nullptr);
  for (const std::string& line : acked) {
    std::vector<std::string> parts = absl::StrSplit(line, ' ');
    ASSERT_EQ(parts.size(), 2u) << line;
    absl::StatusOr<OutboxEntry> entry = outbox->Get(parts[1]);
    ASSERT_TRUE(entry.ok()) << "acknowledged but lost: " << line << ": " << entry.status();
    EXPECT_EQ(entry->notification().idempotency_key(), absl::StrCat("kill-", parts[0]));
  }
  absl::StatusOr<OutboxCounts> counts = outbox->Counts();
  // At most the ones in flight (one per thread) were committed without being reported.
  EXPECT_GE(counts->queued(), static_cast<int64_t>(acked.size()));
  EXPECT_LE(counts->queued(), static_cast<int64_t>(acked.size()) + 3);
  absl::StatusOr<std::vector<ClaimedNotification>> claimed = outbox->ClaimDue(100000);
  ASSERT_TRUE(claimed.ok());
  for (const ClaimedNotification& c : *claimed) {
    EXPECT_THAT(c.message, HasSubstr(c.message_id)) << c.id;
  }
}

// A full disk (here: a file-size limit the WAL runs into) must never be acknowledged: every
// Enqueue that returned OK is stored, and every one that failed says UNAVAILABLE and is not.
TEST_F(OutboxTest, AFullDiskIsNeverAcknowledged) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    signal(SIGXFSZ, SIG_IGN);  // writes past the limit fail with EFBIG instead
    FakeClock clock;
    absl::StatusOr<std::unique_ptr<Outbox>> outbox = Outbox::Open(path_, &clock, TestOptions());
    if (!outbox.ok()) _exit(2);
    const rlim_t limit = 256 * 1024;
    const struct rlimit rl = {limit, limit};
    if (setrlimit(RLIMIT_FSIZE, &rl) != 0) _exit(5);
    for (int i = 0; i < 60; ++i) {
      NewNotification n = Guest(absl::StrCat("full-", i));
      n.message.append(16 * 1024, 'x');
      absl::StatusOr<EnqueueResult> r = (*outbox)->Enqueue(n);
      const std::string line =
          r.ok() ? absl::StrCat("OK ", i, " ", r->notification_id, "\n")
                 : absl::StrCat("ERR ", i, " ", static_cast<int>(r.status().code()), "\n");
      if (write(fds[1], line.data(), line.size()) != static_cast<ssize_t>(line.size())) _exit(4);
    }
    _exit(0);  // no orderly close: as if the process died with the disk full
  }
  close(fds[1]);
  std::string buffer;
  const std::vector<std::string> lines = ReadLines(fds[0], 0, &buffer);
  close(fds[0]);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  ASSERT_THAT(lines, SizeIs(60));

  std::unique_ptr<Outbox> outbox = OpenOutbox();
  ASSERT_NE(outbox, nullptr);
  int ok = 0;
  int failed = 0;
  for (const std::string& line : lines) {
    std::vector<std::string> parts = absl::StrSplit(line, ' ');
    ASSERT_EQ(parts.size(), 3u) << line;
    const std::string key = absl::StrCat("full-", parts[1]);
    absl::StatusOr<OutboxEntry> entry = outbox->GetByIdempotencyKey(key);
    if (parts[0] == "OK") {
      ++ok;
      ASSERT_TRUE(entry.ok()) << "acknowledged but lost: " << line;
      EXPECT_EQ(entry->notification().id(), parts[2]);
    } else {
      ++failed;
      EXPECT_EQ(parts[2], absl::StrCat(static_cast<int>(absl::StatusCode::kUnavailable))) << line;
      EXPECT_EQ(entry.status().code(), absl::StatusCode::kNotFound)
          << "failed but stored: " << line;
    }
  }
  EXPECT_GT(ok, 0);
  EXPECT_GT(failed, 0);
  EXPECT_EQ(outbox->Counts()->queued(), ok);
}

// --- Concurrency ---------------------------------------------------------------------------------

TEST_F(OutboxTest, ConcurrentProducersAndConsumersClaimEachEntryExactlyOnce) {
  OutboxOptions options = TestOptions();
  std::unique_ptr<Outbox> outbox = OpenOutbox(options);
  constexpr int kProducers = 4;
  constexpr int kPerProducer = 40;
  constexpr int kTotal = kProducers * kPerProducer;
  std::atomic<int> produced{0};
  std::atomic<int> sent{0};
  absl::Mutex mu;
  std::map<std::string, int> claims;  // id → times claimed
  std::set<std::string> enqueued;

  std::vector<std::thread> threads;
  for (int p = 0; p < kProducers; ++p) {
    threads.emplace_back([&, p] {
      for (int i = 0; i < kPerProducer; ++i) {
        absl::StatusOr<EnqueueResult> r = outbox->Enqueue(Guest(absl::StrCat("p", p, "-", i)));
        ASSERT_TRUE(r.ok()) << r.status();
        {
          absl::MutexLock lock(&mu);
          enqueued.insert(r->notification_id);
        }
        ++produced;
      }
    });
  }
  for (int c = 0; c < 3; ++c) {
    threads.emplace_back([&] {
      while (sent.load() < kTotal) {
        absl::StatusOr<std::vector<ClaimedNotification>> batch = outbox->ClaimDue(7);
        ASSERT_TRUE(batch.ok()) << batch.status();
        if (batch->empty()) {
          std::this_thread::yield();
          continue;
        }
        for (const ClaimedNotification& n : *batch) {
          {
            absl::MutexLock lock(&mu);
            ++claims[n.id];
          }
          ASSERT_OK(outbox->MarkSent(n.id, {250, "OK"}));
          ++sent;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(produced.load(), kTotal);
  EXPECT_EQ(enqueued.size(), static_cast<size_t>(kTotal));
  EXPECT_EQ(claims.size(), static_cast<size_t>(kTotal));
  for (const auto& [id, times] : claims) {
    EXPECT_EQ(times, 1) << id;
    EXPECT_EQ(enqueued.count(id), 1u) << id;
  }
  EXPECT_EQ(outbox->Counts()->sent(), kTotal);
}

// Racing requests with one idempotency key: with the same content they all get the one
// notification; with different contents exactly one wins and the others are ALREADY_EXISTS.
TEST_F(OutboxTest, ConcurrentRequestsWithOneKey) {
  std::unique_ptr<Outbox> outbox = OpenOutbox();
  constexpr int kThreads = 8;
  std::vector<absl::StatusOr<EnqueueResult>> same(kThreads);
  std::vector<absl::StatusOr<EnqueueResult>> different(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      same[t] = outbox->Enqueue(Guest("same-key"));
      different[t] = outbox->Enqueue(Guest("racy-key", absl::StrCat("content-", t)));
    });
  }
  for (std::thread& t : threads) t.join();
  int originals = 0;
  int winners = 0;
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_TRUE(same[t].ok()) << same[t].status();
    EXPECT_EQ(same[t]->notification_id, same[0]->notification_id);
    originals += !same[t]->duplicate;
    if (different[t].ok()) {
      ++winners;
    } else {
      EXPECT_EQ(different[t].status().code(), absl::StatusCode::kAlreadyExists);
    }
  }
  EXPECT_EQ(originals, 1);
  EXPECT_EQ(winners, 1);
  EXPECT_EQ(outbox->Counts()->queued(), 2);
}


// --- Priorities --------------------------------------------------------------------------------

std::vector<std::string> Keys(const std::vector<ClaimedNotification>& claimed) {
  std::vector<std::string> keys;
  for (const ClaimedNotification& c : claimed) {
    keys.push_back(std::string(absl::StripSuffix(absl::StripPrefix(c.message_id, "psn-1.test-"),
                                                 "@mailroom")));
  }
  return keys;
}

TEST_F(OutboxTest, DueMailIsClaimedMostUrgentFirstAndOldMailAgesPastNewerUrgentMail) {
  std::unique_ptr<Outbox> outbox = OpenOutbox();
  ASSERT_TRUE(outbox->Enqueue(Guest("reminder-old", "r", cv1::NOTIFICATION_KIND_PASSWORD_EXPIRY_REMINDER)).ok());
  clock_.Advance(absl::Minutes(1));
  ASSERT_TRUE(outbox->Enqueue(Guest("reminder", "r", cv1::NOTIFICATION_KIND_GUEST_EXPIRY_WARNING)).ok());
  ASSERT_TRUE(outbox->Enqueue(Guest("credentials", "c", cv1::NOTIFICATION_KIND_GUEST_CREDENTIALS)).ok());
  ASSERT_TRUE(outbox->Enqueue(Guest("reset", "p", cv1::NOTIFICATION_KIND_PASSWORD_RESET)).ok());
  // 20.5 minutes after the first reminder, which has waited longer than two aging steps, but
  // less than that after the second one.
  clock_.Advance(absl::Minutes(19) + absl::Seconds(30));
  ASSERT_TRUE(outbox->Enqueue(Guest("alarm", "a", cv1::NOTIFICATION_KIND_ALARM)).ok());

  absl::StatusOr<std::vector<ClaimedNotification>> claimed = outbox->ClaimDue(10);
  ASSERT_TRUE(claimed.ok()) << claimed.status();
  EXPECT_THAT(Keys(*claimed),
              ElementsAre("reset", "credentials", "reminder-old", "alarm", "reminder"));
}

TEST_F(OutboxTest, ABatchIsOneClassAndNeverPutsAResetBehindReminders) {
  std::unique_ptr<Outbox> outbox = OpenOutbox();
  for (const char* key : {"r1", "r2", "r3"}) {
    ASSERT_TRUE(outbox->Enqueue(Guest(key, "r", cv1::NOTIFICATION_KIND_PASSWORD_EXPIRY_REMINDER)).ok());
  }
  clock_.Advance(absl::Seconds(5));
  ASSERT_TRUE(outbox->Enqueue(Guest("reset", "p", cv1::NOTIFICATION_KIND_PASSWORD_RESET)).ok());
  ASSERT_TRUE(outbox->Enqueue(Guest("r4", "r", cv1::NOTIFICATION_KIND_PASSWORD_EXPIRY_REMINDER)).ok());

  absl::StatusOr<std::vector<ClaimedNotification>> first = outbox->ClaimBatch(10);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_THAT(Keys(*first), ElementsAre("reset"));
  absl::StatusOr<std::vector<ClaimedNotification>> second = outbox->ClaimBatch(2);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_THAT(Keys(*second), ElementsAre("r1", "r2"));
  // A reminder sent back to wait (no permit) keeps its place once it is due again.
  ASSERT_OK(outbox->Release((*second)[0].id, "waiting for send permit", clock_.Now() + absl::Seconds(3)));
  ASSERT_OK(outbox->Release((*second)[1].id));
  EXPECT_THAT(Keys(*outbox->ClaimBatch(10)), ElementsAre("r2", "r3", "r4"));
  clock_.Advance(absl::Seconds(3));
  EXPECT_THAT(Keys(*outbox->ClaimBatch(10)), ElementsAre("r1"));
}

}  // namespace
}  // namespace mailroom
