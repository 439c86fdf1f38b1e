#include "pan/broker/quota_ledger.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/types/optional.h"
#include "common/base/logging.h"
#include "common/base/status_macros.h"
#include "common/rpc/status_grpc.h"
#include "pan/broker/leadership.h"

namespace mailroom::broker {
namespace {

constexpr char kWriter[] = "quota ledger";

absl::Status NotLeader(absl::string_view why) {
  return NotLeaderError(absl::StrCat(kWriter, ": ", why));
}

// The end of the key range of every key starting with `prefix` (etcd's range_end).
std::string PrefixEnd(std::string prefix) {
  while (!prefix.empty() && static_cast<unsigned char>(prefix.back()) == 0xff) prefix.pop_back();
  if (!prefix.empty()) prefix.back() = static_cast<char>(prefix.back() + 1);
  return prefix.empty() ? std::string(1, '\0') : prefix;
}

}  // namespace

QuotaLedger::QuotaLedger(QuotaLedgerOptions options, LeaderFence* fence, SendQuota* quota)
    : options_(std::move(options)), fence_(fence), quota_(quota) {}

absl::Status QuotaLedger::Load(const etcd::KeyHold& hold) {
  absl::MutexLock lock(&mu_);
  fence_->Drop();
  etcd::gw::RangeRequest range;
  range.set_key(options_.prefix);
  range.set_range_end(PrefixEnd(options_.prefix));
  MR_ASSIGN_OR_RETURN(etcd::gw::RangeResponse records, fence_->etcd()->Range(range));
  for (const etcd::gw::KeyValue& kv : records.kvs()) {
    ledger::LedgerRecord record;
    if (!record.ParseFromString(kv.value())) {
      return absl::DataLossError(absl::StrCat("quota ledger: unreadable record ", kv.key()));
    }
    const std::string mailbox = kv.key().substr(options_.prefix.size());
    quota_->Restore(mailbox, record);
    MR_LOG(kInfo, kLogBroker) << "quota ledger: continuing " << mailbox << " from "
                              << record.entries_size() << " counted entr"
                              << (record.entries_size() == 1 ? "y" : "ies");
  }
  fence_->Guard(hold);
  return absl::OkStatus();
}

absl::Status QuotaLedger::Persist(const std::string& mailbox) {
  absl::MutexLock lock(&mu_);
  Commits& commits = commits_[mailbox];
  const int64_t ticket = ++commits.requested;
  // Wait while another write is in flight; it, or the next one, covers this ticket.
  mu_.Await(absl::Condition(
      +[](Commits* c) { return !c->writing; }, &commits));
  if (commits.written >= ticket) return absl::OkStatus();
  if (commits.failed_through >= ticket) return commits.last_error;
  const absl::optional<etcd::KeyHold> hold = fence_->term();
  if (!hold.has_value()) return NotLeader("this broker has not loaded the ledger as leader");
  commits.writing = true;
  const int64_t covered = commits.requested;
  // Taken after every covered ticket's grant: this write includes all of them.
  const ledger::LedgerRecord record = quota_->Snapshot(mailbox);
  mu_.Unlock();
  absl::Status status =
      fence_->Put(kWriter, options_.prefix + mailbox, record.SerializeAsString(), *hold);
  mu_.Lock();
  commits.writing = false;
  if (!status.ok() && ReasonOf(status) != kNotLeaderReason) {
    // Cut off from etcd (a partition, no quorum): this broker cannot grant, and another may
    // lead once its lease lapses. To the role nodes that is an election, which they wait out;
    // etcd's own UNAVAILABLE or DEADLINE_EXCEEDED would look like a broker that is down, and
    // they would send their offline allowance at once, outside the ledger. The fence keeps
    // the term: a write that gets through again within the term is still guarded by it.
    status = NotLeader(absl::StrCat("cannot write to etcd: ", status.message()));
  }
  if (status.ok()) {
    commits.written = covered;
  } else {
    commits.last_error = status;
    commits.failed_through = covered;
  }
  return status;
}

}  // namespace mailroom::broker
