// The outbox's delivery-loop calls: claiming due entries and recording how each attempt ended
// (sent, retry with backoff, failed, released without an attempt).
#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/base/logging.h"
#include "common/base/status_macros.h"
#include "common/mail/send_priority.h"
#include "common/outbox/outbox.h"
#include "common/outbox/outbox_schema.h"
#include "common/sqlite/database.h"

namespace mailroom {
namespace {

namespace cv1 = ::mailroom::common::v1;
using outbox_schema::FromMicros;
using outbox_schema::Micros;
using outbox_schema::StateName;
using sqlite::Statement;
using sqlite::Transaction;

constexpr int kMaxAttemptsKept = 50;

std::string FormatUtc(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

// "451 4.3.2" from a reply, or the diagnosis title when there was no reply.
std::string WhatFailed(int reply_code, absl::string_view reply_text, const Diagnosis& diagnosis) {
  if (reply_code != 0) {
    std::vector<absl::string_view> words =
        absl::StrSplit(reply_text, absl::MaxSplits(' ', 1), absl::SkipEmpty());
    // An enhanced status code ("4.3.2") is the first word if present.
    if (!words.empty() && words[0].size() >= 5 && absl::ascii_isdigit(words[0][0]) &&
        words[0][1] == '.') {
      return absl::StrCat(reply_code, " ", words[0]);
    }
    return absl::StrCat(reply_code);
  }
  if (!diagnosis.title().empty()) return diagnosis.title();
  return "failure";
}

absl::Status NotSending(absl::string_view id, int state) {
  return absl::FailedPreconditionError(
      absl::StrCat("outbox: notification ", id, " is ", StateName(state), ", not SENDING"));
}

}  // namespace

absl::StatusOr<std::vector<ClaimedNotification>> Outbox::ClaimDue(size_t max) {
  return Claim(max, /*one_class=*/false);
}

absl::StatusOr<std::vector<ClaimedNotification>> Outbox::ClaimBatch(size_t max) {
  return Claim(max, /*one_class=*/true);
}

absl::StatusOr<std::vector<ClaimedNotification>> Outbox::Claim(size_t max, bool one_class) {
  std::vector<ClaimedNotification> claimed;
  if (max == 0) return claimed;
  absl::MutexLock lock(&mu_);
  const int64_t now = Micros(clock_->Now());
  Transaction txn(db_.get());
  MR_RETURN_IF_ERROR(txn.Begin());
  {
    MR_ASSIGN_OR_RETURN(Statement select, db_->Prepare(outbox_schema::kClaimDueSql));
    select.Bind(1, now).Bind(2, static_cast<int64_t>(std::min<size_t>(max, INT64_MAX)));
    while (true) {
      MR_ASSIGN_OR_RETURN(const bool row, select.Step());
      if (!row) break;
      const auto kind = static_cast<NotificationKind>(select.Int(2));
      if (one_class && !claimed.empty() && PriorityOf(kind) != PriorityOf(claimed[0].kind)) {
        break;
      }
      ClaimedNotification c;
      c.id = select.Text(0);
      c.message_id = select.Text(1);
      c.kind = kind;
      c.from.set_address(select.Text(3));
      c.from.set_display_name(select.Text(4));
      outbox_schema::ParseRecipients(select.Text(5), &c.recipients);
      c.attempt = static_cast<int>(select.Int(6)) + 1;
      c.create_time = FromMicros(select.Int(7));
      c.expire_time = FromMicros(select.Int(8));
      c.message = select.Text(9);
      claimed.push_back(std::move(c));
    }
  }
  for (const ClaimedNotification& c : claimed) {
    MR_ASSIGN_OR_RETURN(
        Statement q,
        db_->Prepare("UPDATE entries SET state = 2, attempts = attempts + 1, "
                     "attempt_start_us = ?1, next_attempt_us = NULL, update_us = ?1 WHERE id = ?2"));
    MR_RETURN_IF_ERROR(q.Bind(1, now).Bind(2, c.id).Run());
  }
  MR_RETURN_IF_ERROR(txn.Commit());
  return claimed;
}

absl::StatusOr<int> Outbox::FinishAttemptLocked(absl::string_view id, const Diagnosis* diagnosis,
                                                const AttemptReport& report, absl::Time now) {
  int attempts = 0;
  int64_t start_us = Micros(now);
  {
    MR_ASSIGN_OR_RETURN(
        Statement q,
        db_->Prepare("SELECT state, attempts, attempt_start_us FROM entries WHERE id = ?"));
    MR_ASSIGN_OR_RETURN(const bool row, q.Bind(1, id).Step());
    if (!row) return absl::NotFoundError(absl::StrCat("outbox: no notification ", id));
    const int state = static_cast<int>(q.Int(0));
    if (state != cv1::NOTIFICATION_STATE_SENDING) return NotSending(id, state);
    attempts = static_cast<int>(q.Int(1));
    if (!q.IsNull(2)) start_us = q.Int(2);
  }
  {
    MR_ASSIGN_OR_RETURN(
        Statement insert,
        db_->Prepare("INSERT OR REPLACE INTO attempts (entry_id, number, start_us, end_us, "
                     "reply_code, reply_text, diagnosis, permit_id) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"));
    insert.Bind(1, id)
        .Bind(2, attempts)
        .Bind(3, start_us)
        .Bind(4, Micros(now))
        .Bind(5, report.reply_code)
        .Bind(6, report.reply_text)
        .Bind(8, report.permit_id);
    if (diagnosis != nullptr) {
      insert.BindBlob(7, diagnosis->SerializeAsString());
    } else {
      insert.BindNull(7);
    }
    MR_RETURN_IF_ERROR(insert.Run());
  }
  {
    MR_ASSIGN_OR_RETURN(Statement q,
                        db_->Prepare("DELETE FROM attempts WHERE entry_id = ? AND number <= ?"));
    MR_RETURN_IF_ERROR(q.Bind(1, id).Bind(2, attempts - kMaxAttemptsKept).Run());
  }
  return attempts;
}

absl::Status Outbox::MarkSent(absl::string_view id, const AttemptReport& report) {
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_->Now();
  // A "sent" mark is committed without its own fsync: the next durable commit (an enqueue, a
  // retry, a checkpoint) flushes it with everything before it in the WAL. Losing it to a power
  // cut means the message is sent again with the same Message-ID, which at-least-once delivery
  // allows; an acknowledged notification is never lost. This halves the disk syncs per
  // delivered message, the largest cost of delivery after the MTA itself (bench/delivery.sh).
  const bool relaxed = options_.sync_every_commit;
  if (relaxed) MR_RETURN_IF_ERROR(db_->Exec("PRAGMA synchronous=NORMAL"));
  struct RestoreSync {
    sqlite::Database* db;
    bool active;
    ~RestoreSync() {
      if (active) db->Exec("PRAGMA synchronous=FULL").IgnoreError();
    }
  } restore{db_.get(), relaxed};
  Transaction txn(db_.get());
  MR_RETURN_IF_ERROR(txn.Begin());
  MR_ASSIGN_OR_RETURN(const int attempts, FinishAttemptLocked(id, nullptr, report, now));
  {
    MR_ASSIGN_OR_RETURN(
        Statement q,
        db_->Prepare("UPDATE entries SET state = 3, send_us = ?1, update_us = ?1, "
                     "last_reply_code = ?2, last_reply_text = ?3, diagnosis = NULL, "
                     "wait_reason = '', attempt_start_us = NULL, "
                     "sending_mailbox = CASE WHEN ?4 = '' THEN sending_mailbox ELSE ?4 END "
                     "WHERE id = ?5"));
    MR_RETURN_IF_ERROR(q.Bind(1, Micros(now))
                           .Bind(2, report.reply_code)
                           .Bind(3, report.reply_text)
                           .Bind(4, report.sending_mailbox)
                           .Bind(5, id)
                           .Run());
  }
  {
    // The body may hold a guest password: it goes as soon as the server has it
    // (secure_delete zeroes its pages).
    MR_ASSIGN_OR_RETURN(Statement q, db_->Prepare("DELETE FROM messages WHERE entry_id = ?"));
    MR_RETURN_IF_ERROR(q.Bind(1, id).Run());
  }
  MR_RETURN_IF_ERROR(txn.Commit());
  MR_LOG(kDebug, kLogOutbox) << "sent " << id << " (attempt " << attempts
                             << "): " << report.reply_code << " " << report.reply_text;
  return absl::OkStatus();
}

absl::StatusOr<RetryDecision> Outbox::MarkRetry(absl::string_view id, const Diagnosis& diagnosis,
                                                const AttemptReport& report,
                                                absl::optional<absl::Time> not_before) {
  RetryDecision decision;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = clock_->Now();
    Transaction txn(db_.get());
    MR_RETURN_IF_ERROR(txn.Begin());
    MR_ASSIGN_OR_RETURN(const int attempts, FinishAttemptLocked(id, &diagnosis, report, now));
    absl::Time expire;
    {
      MR_ASSIGN_OR_RETURN(Statement q, db_->Prepare("SELECT expire_us FROM entries WHERE id = ?"));
      MR_RETURN_IF_ERROR(q.Bind(1, id).Run());
      expire = FromMicros(q.Int(0));
    }
    absl::Time next = now + backoff_.Delay(attempts);
    const std::string what = WhatFailed(report.reply_code, report.reply_text, diagnosis);
    std::string wait_reason = absl::StrCat("backoff after ", what, " until ", FormatUtc(next));
    if (not_before.has_value() && *not_before > next) {
      next = *not_before;
      wait_reason = absl::StrCat("held after ", what, " until ", FormatUtc(next),
                                 diagnosis.title().empty() ? "" : ": ", diagnosis.title());
    }
    const bool expired = next > expire;
    decision.state = expired ? cv1::NOTIFICATION_STATE_FAILED : cv1::NOTIFICATION_STATE_QUEUED;
    decision.next_attempt_time = expired ? absl::InfinitePast() : next;
    MR_RETURN_IF_ERROR(UpdateAfterFailureLocked(
        id, decision.state, expired ? absl::nullopt : absl::make_optional(next),
        expired ? "" : wait_reason, diagnosis, report, now));
    MR_RETURN_IF_ERROR(txn.Commit());
    if (expired) {
      MR_LOG(kWarn, kLogOutbox) << "failed " << id << " after " << attempts
                                << " attempt(s): retry lifetime ends " << FormatUtc(expire)
                                << "; last failure: " << what;
    } else {
      MR_LOG(kDebug, kLogOutbox) << id << ": " << wait_reason;
    }
  }
  if (decision.state == cv1::NOTIFICATION_STATE_QUEUED) Wake();
  return decision;
}

absl::Status Outbox::MarkFailed(absl::string_view id, const Diagnosis& diagnosis,
                                const AttemptReport& report) {
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_->Now();
  Transaction txn(db_.get());
  MR_RETURN_IF_ERROR(txn.Begin());
  MR_ASSIGN_OR_RETURN(const int attempts, FinishAttemptLocked(id, &diagnosis, report, now));
  MR_RETURN_IF_ERROR(UpdateAfterFailureLocked(id, cv1::NOTIFICATION_STATE_FAILED, absl::nullopt,
                                              "", diagnosis, report, now));
  MR_RETURN_IF_ERROR(txn.Commit());
  MR_LOG(kInfo, kLogOutbox) << "failed " << id << " (attempt " << attempts
                            << "): " << WhatFailed(report.reply_code, report.reply_text, diagnosis);
  return absl::OkStatus();
}

absl::Status Outbox::UpdateAfterFailureLocked(absl::string_view id,
                                              cv1::NotificationState state,
                                              absl::optional<absl::Time> next_attempt,
                                              absl::string_view wait_reason,
                                              const Diagnosis& diagnosis,
                                              const AttemptReport& report, absl::Time now) {
  MR_ASSIGN_OR_RETURN(
      Statement update,
      db_->Prepare("UPDATE entries SET state = ?1, next_attempt_us = ?2, wait_reason = ?3, "
                   "last_reply_code = ?4, last_reply_text = ?5, diagnosis = ?6, "
                   "attempt_start_us = NULL, update_us = ?7, "
                   "sending_mailbox = CASE WHEN ?8 = '' THEN sending_mailbox ELSE ?8 END "
                   "WHERE id = ?9"));
  update.Bind(1, static_cast<int64_t>(state));
  if (next_attempt.has_value()) {
    update.Bind(2, Micros(*next_attempt));
  } else {
    update.BindNull(2);
  }
  return update.Bind(3, wait_reason)
      .Bind(4, report.reply_code)
      .Bind(5, report.reply_text)
      .BindBlob(6, diagnosis.SerializeAsString())
      .Bind(7, Micros(now))
      .Bind(8, report.sending_mailbox)
      .Bind(9, id)
      .Run();
}

absl::Status Outbox::Release(absl::string_view id, absl::string_view wait_reason,
                             absl::optional<absl::Time> not_before) {
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = clock_->Now();
    const absl::Time due = not_before.has_value() ? std::max(now, *not_before) : now;
    Transaction txn(db_.get());
    MR_RETURN_IF_ERROR(txn.Begin());
    MR_ASSIGN_OR_RETURN(const int state, StateLocked(id));
    if (state != cv1::NOTIFICATION_STATE_SENDING) return NotSending(id, state);
    {
      MR_ASSIGN_OR_RETURN(
          Statement q,
          db_->Prepare("UPDATE entries SET state = 1, attempts = MAX(attempts - 1, 0), "
                       "next_attempt_us = ?1, wait_reason = ?2, attempt_start_us = NULL, "
                       "update_us = ?3 WHERE id = ?4"));
      MR_RETURN_IF_ERROR(
          q.Bind(1, Micros(due)).Bind(2, wait_reason).Bind(3, Micros(now)).Bind(4, id).Run());
    }
    MR_RETURN_IF_ERROR(txn.Commit());
  }
  Wake();
  return absl::OkStatus();
}

absl::StatusOr<absl::optional<absl::Time>> Outbox::NextDueTime() const {
  absl::MutexLock lock(&mu_);
  MR_ASSIGN_OR_RETURN(Statement q,
                      db_->Prepare("SELECT MIN(next_attempt_us) FROM entries WHERE state = 1"));
  MR_ASSIGN_OR_RETURN(const bool row, q.Step());
  if (!row || q.IsNull(0)) return absl::optional<absl::Time>();
  return absl::optional<absl::Time>(FromMicros(q.Int(0)));
}

}  // namespace mailroom
