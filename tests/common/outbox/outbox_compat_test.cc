// An outbox file written by the code before common/sqlite (commit 139c7bb) opens and works with
// this one: the file is made with that code's schema SQL, pragmas and user_version, and rows
// are inserted with its INSERT statements through the raw SQLite API; then Outbox::Open
// recovers, lists, claims, sends, retries, enqueues and purges on it.
#include <sqlite3.h>

#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/base/diagnosis.h"
#include "common/outbox/outbox.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"

namespace mailroom {
namespace {

namespace cv1 = ::mailroom::common::v1;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;

// The schema exactly as outbox.cc at 139c7bb created it (PRAGMA user_version = 1).
constexpr char kOldSchema[] = R"sql(
CREATE TABLE entries (
  id                TEXT PRIMARY KEY NOT NULL,   -- "<node>/<ulid>"
  idempotency_key   TEXT UNIQUE,                 -- NULL when the caller gave none
  fingerprint       BLOB,                        -- SHA-256 of request_fingerprint; NULL without key
  kind              INTEGER NOT NULL,            -- NotificationKind
  state             INTEGER NOT NULL,            -- NotificationState
  node              TEXT NOT NULL,
  from_address      TEXT NOT NULL,
  from_name         TEXT NOT NULL,
  recipients        BLOB NOT NULL,               -- Notification{recipients} serialized
  subject           TEXT NOT NULL,
  message_id        TEXT NOT NULL,
  size_bytes        INTEGER NOT NULL,
  attempts          INTEGER NOT NULL DEFAULT 0,
  last_reply_code   INTEGER NOT NULL DEFAULT 0,
  last_reply_text   TEXT NOT NULL DEFAULT '',
  diagnosis         BLOB,                        -- Diagnosis serialized; NULL if none
  wait_reason       TEXT NOT NULL DEFAULT '',
  sending_mailbox   TEXT NOT NULL DEFAULT '',
  create_us         INTEGER NOT NULL,
  update_us         INTEGER NOT NULL,
  next_attempt_us   INTEGER,                     -- QUEUED only
  attempt_start_us  INTEGER,                     -- SENDING only
  send_us           INTEGER,                     -- SENT only
  expire_us         INTEGER NOT NULL
);
CREATE INDEX entries_by_state_due ON entries(state, next_attempt_us);
CREATE INDEX entries_by_create ON entries(create_us, id);
CREATE TABLE messages (
  entry_id          TEXT PRIMARY KEY NOT NULL,
  message           BLOB NOT NULL
);
CREATE TABLE attempts (
  entry_id          TEXT NOT NULL,
  number            INTEGER NOT NULL,
  start_us          INTEGER NOT NULL,
  end_us            INTEGER NOT NULL,
  reply_code        INTEGER NOT NULL,
  reply_text        TEXT NOT NULL,
  diagnosis         BLOB,
  permit_id         TEXT NOT NULL,
  PRIMARY KEY (entry_id, number)
) WITHOUT ROWID;
)sql";

const absl::Time kT0 = absl::FromUnixSeconds(1'800'000'000);

int64_t Us(absl::Time t) { return absl::ToUnixMicros(t); }

void Exec(sqlite3* db, const std::string& sql) {
  char* error = nullptr;
  ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error), SQLITE_OK)
      << (error ? error : "") << " in " << sql;
}

std::string RecipientsBlob(const std::string& address) {
  cv1::Notification holder;
  cv1::Recipient* r = holder.add_recipients();
  r->mutable_address()->set_address(address);
  r->set_type(cv1::RECIPIENT_TYPE_TO);
  return holder.SerializeAsString();
}

// Inserts an entry (and its message unless SENT) the way the old EnqueueLocked/ClaimDue/
// MarkSent left it.
void InsertOldEntry(sqlite3* db, const std::string& id, const std::string& key, int state,
                    absl::Time created, const std::string& message) {
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(
                db,
                "INSERT INTO entries (id, idempotency_key, fingerprint, kind, state, node, "
                "from_address, from_name, recipients, subject, message_id, size_bytes, create_us, "
                "update_us, next_attempt_us, expire_us, attempts, attempt_start_us, send_us) "
                "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?13, ?14, ?15, "
                "?16, ?17, ?18)",
                -1, &stmt, nullptr),
            SQLITE_OK);
  const std::string recipients = RecipientsBlob(id + "@example.test");
  const std::string fingerprint(32, '\x5a');
  sqlite3_bind_text(stmt, 1, id.c_str(), -1, SQLITE_TRANSIENT);
  if (key.empty()) {
    sqlite3_bind_null(stmt, 2);
    sqlite3_bind_null(stmt, 3);
  } else {
    sqlite3_bind_text(stmt, 2, key.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_blob(stmt, 3, fingerprint.data(), 32, SQLITE_TRANSIENT);
  }
  sqlite3_bind_int64(stmt, 4, cv1::NOTIFICATION_KIND_GUEST_CREDENTIALS);
  sqlite3_bind_int64(stmt, 5, state);
  sqlite3_bind_text(stmt, 6, "psn-1", -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(stmt, 7, "noreply@example.test", -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(stmt, 8, "Guest WLAN", -1, SQLITE_TRANSIENT);
  sqlite3_bind_blob(stmt, 9, recipients.data(), static_cast<int>(recipients.size()),
                    SQLITE_TRANSIENT);
  sqlite3_bind_text(stmt, 10, ("Subject " + id).c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(stmt, 11, ("psn-1." + id + "@mailroom").c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(stmt, 12, static_cast<int64_t>(message.size()));
  sqlite3_bind_int64(stmt, 13, Us(created));
  if (state == cv1::NOTIFICATION_STATE_QUEUED) {
    sqlite3_bind_int64(stmt, 14, Us(created));
  } else {
    sqlite3_bind_null(stmt, 14);
  }
  sqlite3_bind_int64(stmt, 15, Us(created + absl::Hours(24)));
  sqlite3_bind_int64(stmt, 16, state == cv1::NOTIFICATION_STATE_QUEUED ? 0 : 1);
  if (state == cv1::NOTIFICATION_STATE_SENDING) {
    sqlite3_bind_int64(stmt, 17, Us(created));
  } else {
    sqlite3_bind_null(stmt, 17);
  }
  if (state == cv1::NOTIFICATION_STATE_SENT) {
    sqlite3_bind_int64(stmt, 18, Us(created + absl::Seconds(1)));
  } else {
    sqlite3_bind_null(stmt, 18);
  }
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_DONE) << sqlite3_errmsg(db);
  sqlite3_finalize(stmt);
  if (state == cv1::NOTIFICATION_STATE_SENT) return;
  ASSERT_EQ(sqlite3_prepare_v2(db, "INSERT INTO messages (entry_id, message) VALUES (?, ?)", -1,
                               &stmt, nullptr),
            SQLITE_OK);
  sqlite3_bind_text(stmt, 1, id.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_blob(stmt, 2, message.data(), static_cast<int>(message.size()), SQLITE_TRANSIENT);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_DONE) << sqlite3_errmsg(db);
  sqlite3_finalize(stmt);
}

TEST(OutboxCompatTest, AnOutboxWrittenByThePreviousCodeOpensAndWorks) {
  const std::string dir =
      absl::StrCat(std::getenv("TEST_TMPDIR"), "/outbox-compat");
  ASSERT_EQ(std::system(absl::StrCat("rm -rf '", dir, "' && mkdir -p '", dir, "'").c_str()), 0);
  const std::string path = dir + "/outbox.db";
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                              nullptr),
              SQLITE_OK);
    Exec(db, "PRAGMA journal_mode=WAL");
    Exec(db, "PRAGMA synchronous=FULL");
    Exec(db, "PRAGMA secure_delete=ON");
    Exec(db, "PRAGMA journal_size_limit=16777216");
    Exec(db, "BEGIN IMMEDIATE");
    Exec(db, kOldSchema);
    Exec(db, "PRAGMA user_version=1");
    Exec(db, "COMMIT");
    InsertOldEntry(db, "psn-1/01OLDQUEUED", "key-queued", cv1::NOTIFICATION_STATE_QUEUED, kT0,
                   "Subject: queued\r\n\r\nbody one\r\n");
    InsertOldEntry(db, "psn-1/01OLDSENDING", "", cv1::NOTIFICATION_STATE_SENDING,
                   kT0 + absl::Seconds(1), "Subject: sending\r\n\r\nbody two\r\n");
    InsertOldEntry(db, "psn-1/01OLDSENT", "key-sent", cv1::NOTIFICATION_STATE_SENT,
                   kT0 + absl::Seconds(2), "Subject: sent\r\n\r\nbody three\r\n");
    ASSERT_EQ(sqlite3_close(db), SQLITE_OK);
  }

  FakeClock clock(kT0 + absl::Minutes(1));
  OutboxOptions options;
  options.node_name = "psn-1";
  options.random_unit = [] { return 0.5; };
  absl::StatusOr<std::unique_ptr<Outbox>> opened = Outbox::Open(path, &clock, options);
  ASSERT_TRUE(opened.ok()) << opened.status();
  Outbox& outbox = **opened;
  // The old SENDING entry was interrupted: re-queued, its attempt recorded.
  EXPECT_EQ(outbox.requeued_on_open(), 1);
  absl::StatusOr<OutboxEntry> interrupted = outbox.Get("psn-1/01OLDSENDING");
  ASSERT_TRUE(interrupted.ok()) << interrupted.status();
  EXPECT_EQ(interrupted->notification().state(), cv1::NOTIFICATION_STATE_QUEUED);
  EXPECT_THAT(interrupted->attempts(), SizeIs(1));

  // Old rows read back with every field.
  absl::StatusOr<OutboxEntry> by_key = outbox.GetByIdempotencyKey("key-sent");
  ASSERT_TRUE(by_key.ok()) << by_key.status();
  EXPECT_EQ(by_key->notification().id(), "psn-1/01OLDSENT");
  EXPECT_EQ(by_key->notification().state(), cv1::NOTIFICATION_STATE_SENT);
  EXPECT_EQ(by_key->notification().subject(), "Subject psn-1/01OLDSENT");
  EXPECT_EQ(by_key->notification().recipients(0).address().address(),
            "psn-1/01OLDSENT@example.test");
  EXPECT_EQ(by_key->notification().from().display_name(), "Guest WLAN");

  // Listing pages across old rows, newest first.
  ListOutboxRequest list;
  list.mutable_page()->set_page_size(2);
  absl::StatusOr<ListOutboxResponse> page = outbox.List(list);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->page().total_size(), 3);
  ASSERT_THAT(page->entries(), SizeIs(2));
  EXPECT_EQ(page->entries(0).notification().id(), "psn-1/01OLDSENT");
  list.mutable_page()->set_page_token(page->page().next_page_token());
  page = outbox.List(list);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_THAT(page->entries(), SizeIs(1));
  EXPECT_EQ(page->entries(0).notification().id(), "psn-1/01OLDQUEUED");
  EXPECT_EQ(page->counts().queued(), 2);
  EXPECT_EQ(page->counts().sent(), 1);

  // The old queued messages are delivered.
  absl::StatusOr<std::vector<ClaimedNotification>> claimed = outbox.ClaimDue(10);
  ASSERT_TRUE(claimed.ok()) << claimed.status();
  ASSERT_THAT(*claimed, SizeIs(2));
  EXPECT_EQ((*claimed)[0].id, "psn-1/01OLDQUEUED");
  EXPECT_EQ((*claimed)[0].message, "Subject: queued\r\n\r\nbody one\r\n");
  EXPECT_EQ((*claimed)[0].attempt, 1);
  EXPECT_EQ((*claimed)[1].attempt, 2);  // the interrupted attempt stays counted
  ASSERT_TRUE(outbox.MarkSent((*claimed)[0].id, {250, "2.0.0 OK"}).ok());
  absl::StatusOr<RetryDecision> retry =
      outbox.MarkRetry((*claimed)[1].id, Diagnosis(), {451, "4.3.2 try later"});
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_EQ(retry->state, cv1::NOTIFICATION_STATE_QUEUED);
  ASSERT_TRUE(outbox.Retry((*claimed)[1].id).ok());

  // New entries go into the old file beside the old ones; old keys are still remembered.
  NewNotification fresh;
  fresh.idempotency_key = "key-queued";
  fresh.request_fingerprint = "another request";
  fresh.kind = cv1::NOTIFICATION_KIND_GUEST_CREDENTIALS;
  fresh.from.set_address("noreply@example.test");
  fresh.recipients.emplace_back();
  fresh.recipients.back().mutable_address()->set_address("new@example.test");
  fresh.message_id = outbox.NewMessageId();
  fresh.message = "Subject: new\r\n\r\nnew\r\n";
  EXPECT_EQ(outbox.Enqueue(fresh).status().code(), absl::StatusCode::kAlreadyExists);
  fresh.idempotency_key = "key-new";
  absl::StatusOr<EnqueueResult> queued = outbox.Enqueue(fresh);
  ASSERT_TRUE(queued.ok()) << queued.status();
  EXPECT_FALSE(queued->duplicate);
  absl::StatusOr<OutboxCounts> counts = outbox.Counts();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts->queued(), 2);
  EXPECT_EQ(counts->sent(), 2);

  // Retention applies to the old rows too.
  clock.Advance(absl::Hours(24 * 8));
  absl::StatusOr<int64_t> purged = outbox.Purge();
  ASSERT_TRUE(purged.ok()) << purged.status();
  EXPECT_EQ(*purged, 2);
  EXPECT_EQ(outbox.Get("psn-1/01OLDSENT").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace mailroom
