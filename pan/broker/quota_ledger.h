// Provides QuotaLedger, the send ledger (send_quota.h) kept in etcd while brokers are elected
// (leader_election.h), so that a new leader continues from the last one's counts instead of an
// empty ledger: per mailbox, the messages still counting against the rolling minute and the
// recipients against the rolling day (quota_ledger.proto), and a pause.
//
// - Write-ahead: the leader writes the mailbox's record (SendQuota::Snapshot) before it answers
//   a grant (Persist); a grant whose record could not be written is taken back and refused. So
//   every message a leader let a node send is in etcd before the node can send it.
// - Fenced (leader_fence.h): each write is a transaction that succeeds only while the election
//   key is still held with the lease and create_revision of the term in which this broker
//   loaded the ledger; otherwise it fails with NOT_LEADER. A broker that lost the lead cannot
//   overwrite its successor's record.
// - Load: a newly elected leader reads every record (before its term starts: the election's
//   on_elected hook) and counts them (SendQuota::Restore), each message ending as long before
//   its own "now" as it had ended before the record was written: it counts at least as long as
//   it would have on the old leader, whatever the two clocks read.
// Connection slots need no record: the last leader's slot leases ended with its term, before
// this one began (leader_election.h). Access tokens never enter etcd. Thread-safe. Writes of
// a mailbox's record are group-committed: while one is in flight, the grants that call Persist
// wait, and the next write (one snapshot, taken after all of their grants) answers them all,
// so concurrent grants cost one etcd round trip, not one each.
#ifndef MAILROOM_PAN_BROKER_QUOTA_LEDGER_H_
#define MAILROOM_PAN_BROKER_QUOTA_LEDGER_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "common/etcd/etcd_client.h"
#include "pan/broker/leader_fence.h"
#include "pan/broker/send_quota.h"

namespace mailroom::broker {

struct QuotaLedgerOptions {
  // Records are at prefix + mailbox.
  std::string prefix = "/mailroom/broker/ledger/";
};

class QuotaLedger {
 public:
  // `fence` (and its etcd client) and `quota` must outlive the ledger.
  QuotaLedger(QuotaLedgerOptions options, LeaderFence* fence, SendQuota* quota);

  // Reads every mailbox's record into the quota; later writes are guarded by `hold` (the
  // election key as this broker just won it). The fence guards no write while it reads
  // (LeaderFence::Drop, then Guard once every record is counted).
  absl::Status Load(const etcd::KeyHold& hold);
  // Writes `mailbox`'s record as the quota counts it now. UNAVAILABLE, with reason NOT_LEADER
  // when the election key is no longer held as loaded (or nothing was loaded), or when etcd
  // cannot be reached.
  absl::Status Persist(const std::string& mailbox);

 private:
  // One mailbox's group commit: callers take tickets in order; a write covers every ticket
  // taken before its snapshot.
  struct Commits {
    int64_t requested = 0;
    int64_t written = 0;
    bool writing = false;
    // The error of the last failed write, and the last ticket it covered.
    absl::Status last_error;
    int64_t failed_through = 0;
  };

  const QuotaLedgerOptions options_;
  LeaderFence* const fence_;
  SendQuota* const quota_;
  absl::Mutex mu_;
  std::map<std::string, Commits> commits_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mailroom::broker

#endif  // MAILROOM_PAN_BROKER_QUOTA_LEDGER_H_
