// The outbox's queries and admin calls: Get, List (keyset pages), Counts and Retry.
#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/logging.h"
#include "common/base/status_macros.h"
#include "common/outbox/outbox.h"
#include "common/outbox/outbox_schema.h"
#include "common/sqlite/database.h"
#include "common/sqlite/page_token.h"

namespace mailroom {
namespace {

namespace cv1 = ::mailroom::common::v1;
using outbox_schema::Micros;
using outbox_schema::SetTimestamp;
using outbox_schema::StateName;
using sqlite::Statement;
using sqlite::Transaction;
using sqlite::Where;

// The listing's filters, normalized, so that a page token is only accepted by the same listing.
std::string FilterKey(const ListOutboxRequest& request) {
  std::vector<int> states(request.states().begin(), request.states().end());
  std::vector<int> kinds(request.kinds().begin(), request.kinds().end());
  std::sort(states.begin(), states.end());
  std::sort(kinds.begin(), kinds.end());
  states.erase(std::unique(states.begin(), states.end()), states.end());
  kinds.erase(std::unique(kinds.begin(), kinds.end()), kinds.end());
  return absl::StrCat("outbox;s=", absl::StrJoin(states, ","), ";k=", absl::StrJoin(kinds, ","),
                      ";a=",
                      request.has_create_time_after()
                          ? absl::StrCat(request.create_time_after().seconds(), ".",
                                         request.create_time_after().nanos())
                          : "");
}

// "column IN (...)" unless `values` is empty or holds UNSPECIFIED (0), which means "any".
template <typename T>
void AddInUnlessAny(absl::string_view column, const T& values, Where* where) {
  if (std::find(values.begin(), values.end(), 0) != values.end()) return;
  where->AddIn(column, values);
}

}  // namespace

absl::StatusOr<OutboxEntry> Outbox::GetLocked(absl::string_view id, bool with_attempts) const {
  const absl::Time now = clock_->Now();
  OutboxEntry entry;
  {
    MR_ASSIGN_OR_RETURN(
        Statement q,
        db_->Prepare(absl::StrCat("SELECT ", outbox_schema::kEntryColumns,
                                  " FROM entries WHERE id = ?")));
    MR_ASSIGN_OR_RETURN(const bool row, q.Bind(1, id).Step());
    if (!row) return absl::NotFoundError(absl::StrCat("outbox: no notification ", id));
    entry = outbox_schema::RowToEntry(q, now);
  }
  if (!with_attempts) return entry;
  MR_ASSIGN_OR_RETURN(
      Statement q,
      db_->Prepare("SELECT number, start_us, end_us, reply_code, reply_text, diagnosis, "
                   "permit_id FROM attempts WHERE entry_id = ? ORDER BY number"));
  q.Bind(1, id);
  while (true) {
    MR_ASSIGN_OR_RETURN(const bool row, q.Step());
    if (!row) break;
    cv1::DeliveryAttempt* a = entry.add_attempts();
    a->set_number(static_cast<int32_t>(q.Int(0)));
    SetTimestamp(q.Int(1), a->mutable_start_time());
    SetTimestamp(q.Int(2), a->mutable_end_time());
    a->set_reply_code(static_cast<int32_t>(q.Int(3)));
    a->set_reply_text(q.Text(4));
    if (!q.IsNull(5)) a->mutable_diagnosis()->ParseFromString(q.Text(5));
    a->set_permit_id(q.Text(6));
  }
  return entry;
}

absl::StatusOr<OutboxEntry> Outbox::Get(absl::string_view id) const {
  absl::MutexLock lock(&mu_);
  return GetLocked(id, /*with_attempts=*/true);
}

absl::StatusOr<OutboxEntry> Outbox::GetByIdempotencyKey(absl::string_view idempotency_key) const {
  absl::MutexLock lock(&mu_);
  std::string id;
  {
    MR_ASSIGN_OR_RETURN(Statement q,
                        db_->Prepare("SELECT id FROM entries WHERE idempotency_key = ?"));
    MR_ASSIGN_OR_RETURN(const bool row, q.Bind(1, idempotency_key).Step());
    if (!row) {
      return absl::NotFoundError(
          absl::StrCat("outbox: no notification with idempotency key \"", idempotency_key, "\""));
    }
    id = q.Text(0);
  }
  return GetLocked(id, /*with_attempts=*/true);
}

absl::StatusOr<int> Outbox::StateLocked(absl::string_view id) const {
  MR_ASSIGN_OR_RETURN(Statement q, db_->Prepare("SELECT state FROM entries WHERE id = ?"));
  MR_ASSIGN_OR_RETURN(const bool row, q.Bind(1, id).Step());
  if (!row) return absl::NotFoundError(absl::StrCat("outbox: no notification ", id));
  return static_cast<int>(q.Int(0));
}

namespace {

// Which OutboxCounts field counts the rows in each stored state.
using CountSetter = void (OutboxCounts::*)(int64_t);
constexpr std::pair<int, CountSetter> kCountOfState[] = {
    {cv1::NOTIFICATION_STATE_QUEUED, &OutboxCounts::set_queued},
    {cv1::NOTIFICATION_STATE_SENDING, &OutboxCounts::set_sending},
    {cv1::NOTIFICATION_STATE_SENT, &OutboxCounts::set_sent},
    {cv1::NOTIFICATION_STATE_FAILED, &OutboxCounts::set_failed},
};

}  // namespace

absl::StatusOr<OutboxCounts> Outbox::CountsLocked() const {
  OutboxCounts counts;
  MR_ASSIGN_OR_RETURN(Statement q,
                      db_->Prepare("SELECT state, COUNT(*) FROM entries GROUP BY state"));
  while (true) {
    MR_ASSIGN_OR_RETURN(const bool row, q.Step());
    if (!row) break;
    for (const auto& [state, set_count] : kCountOfState) {
      if (q.Int(0) == state) (counts.*set_count)(q.Int(1));
    }
  }
  return counts;
}

absl::StatusOr<OutboxCounts> Outbox::Counts() const {
  absl::MutexLock lock(&mu_);
  return CountsLocked();
}

absl::StatusOr<UnsentSummary> Outbox::Unsent() const {
  UnsentSummary unsent;
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_->Now();
  {
    MR_ASSIGN_OR_RETURN(Statement q,
                        db_->Prepare("SELECT COUNT(*) FROM entries WHERE state IN (?, ?)"));
    q.Bind(1, cv1::NOTIFICATION_STATE_QUEUED).Bind(2, cv1::NOTIFICATION_STATE_SENDING);
    MR_ASSIGN_OR_RETURN(const bool row, q.Step());
    if (row) unsent.count = q.Int(0);
  }
  if (unsent.count == 0) return unsent;
  MR_ASSIGN_OR_RETURN(
      Statement q,
      db_->Prepare(absl::StrCat("SELECT ", outbox_schema::kEntryColumns,
                                " FROM entries WHERE state IN (?, ?) "
                                "ORDER BY create_us, id LIMIT 1")));
  q.Bind(1, cv1::NOTIFICATION_STATE_QUEUED).Bind(2, cv1::NOTIFICATION_STATE_SENDING);
  MR_ASSIGN_OR_RETURN(const bool row, q.Step());
  if (row) unsent.oldest = outbox_schema::RowToEntry(q, now);
  return unsent;
}

absl::StatusOr<ListOutboxResponse> Outbox::List(const ListOutboxRequest& request) const {
  MR_ASSIGN_OR_RETURN(const sqlite::KeysetPage page,
                      sqlite::KeysetPage::Start(request.page(), FilterKey(request),
                                                {"create_us", "id"},
                                                sqlite::SortOrder::kDescending));
  Where where;
  AddInUnlessAny("state", request.states(), &where);
  AddInUnlessAny("kind", request.kinds(), &where);
  if (request.has_create_time_after()) {
    where.Add("create_us >= ?", {request.create_time_after().seconds() * 1'000'000 +
                                 request.create_time_after().nanos() / 1000});
  }
  ListOutboxResponse response;
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_->Now();
  MR_RETURN_IF_ERROR(page.Run(
      db_.get(), outbox_schema::kEntryColumns, "entries", where,
      [&](const Statement& row) {
        *response.add_entries() = outbox_schema::RowToEntry(row, now);
        return absl::OkStatus();
      },
      response.mutable_page()));
  MR_ASSIGN_OR_RETURN(*response.mutable_counts(), CountsLocked());
  return response;
}

absl::StatusOr<OutboxEntry> Outbox::Retry(absl::string_view id) {
  absl::StatusOr<OutboxEntry> entry;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = clock_->Now();
    Transaction txn(db_.get());
    MR_RETURN_IF_ERROR(txn.Begin());
    MR_ASSIGN_OR_RETURN(const int state, StateLocked(id));
    if (state == cv1::NOTIFICATION_STATE_SENT) {
      return absl::FailedPreconditionError(absl::StrCat(
          "notification ", id, " was already sent; a sent message is never re-sent"));
    }
    if (state == cv1::NOTIFICATION_STATE_SENDING) {
      return absl::FailedPreconditionError(
          absl::StrCat("notification ", id, " is being sent right now"));
    }
    {
      // FAILED gets a fresh lifetime; QUEUED keeps its own and skips its backoff.
      MR_ASSIGN_OR_RETURN(
          Statement q,
          db_->Prepare("UPDATE entries SET state = 1, next_attempt_us = ?1, wait_reason = '', "
                       "update_us = ?1, "
                       "expire_us = CASE WHEN state = 4 THEN ?2 ELSE expire_us END WHERE id = ?3"));
      MR_RETURN_IF_ERROR(q.Bind(1, Micros(now))
                             .Bind(2, Micros(now + options_.retry_lifetime))
                             .Bind(3, id)
                             .Run());
    }
    MR_RETURN_IF_ERROR(txn.Commit());
    MR_LOG(kInfo, kLogOutbox) << "retry of " << id << " (" << StateName(state)
                              << ") requested: due now";
    entry = GetLocked(id, /*with_attempts=*/true);
  }
  Wake();
  return entry;
}

}  // namespace mailroom
