// Provides SendQuota, the broker's cluster-wide accounting of Exchange's per-mailbox limits
// (messages per rolling minute, recipients per rolling day, concurrent connections), handed
// out to role nodes as send permits so that N nodes together stay under the limits as the MTA
// counts them: at the receiving end, when each message arrives. Permits never block: a request
// is granted (a prefix of the messages asked for) or told how long to wait and why. Thread-safe.
//
// Why the MTA never sees more than the limit in any rolling window of length W (W = 60 s for
// messages; W = 24 h for recipients, counting recipients instead of messages):
// 1. Each granted message may reach the MTA at any moment of [grant, end]. `end` is the time its
//    result is reported: a node reports a message only after the server's final reply, or after
//    it has closed the connection when no reply came, so nothing of it reaches the server
//    later. While unreported, `end` is the permit's lease end: a node never sends on a permit
//    after its lease (DeliveryWorker reckons the lease from before its request, ends it early by
//    a margin for clock-rate differences, and cuts an SMTP transfer still running then). A
//    report that comes after the lease is refused: the message keeps counting to the lease end.
// 2. A grant at time g counts every message with end >= g - W (an unreported one has its end
//    ahead of g, so it counts) and grants no more than the limit minus that count.
// 3. Take any closed window [w, w + W] at the MTA and the set S of messages that arrive in it.
//    Let m be the member of S granted last, at g_m <= arrival(m) <= w + W. Every other x in S
//    was granted before m (or with it, in the same request) and arrived at a_x >= w >= g_m - W,
//    with end_x >= a_x; so the grant of m counted x, and |S| <= limit.
// 4. A refund (Release) says the message was never sent and never will be: it has no interval
//    and stops counting at once.
// Connections follow the same argument with slots: a slot counts from its grant until the node
// reports the connection closed (it closes it first) or the slot's lease runs out (each grant
// and report on the connection renews it); a node closes an SMTP connection before the lease it
// reckons from its own request time runs out, so the connections open at the MTA at any moment
// hold distinct slots: at most max_connections. Test Connection takes its slot and its test
// message from the same ledger (AcquireUnleased) and gives them back once its session is closed.
// A node killed with kill -9 cannot report: its messages count until a window after their lease
// ends and its slots until their leases end, unless the node's next run says that the previous
// one is over (EndNodeRun): a dead process sends nothing more, and its connections died with it.
// Offline allowance (README "Offline allowance"): a node that has heard from no leading broker
// for DeliveryOptions::offline_grace (longer than the minute plus the sends still running on
// earlier permits) sends a few messages a minute without permits, and reports each one with its
// next request (CountOfflineSends): they count from then on like any other, as long before now
// as they were sent. The first report of an outage holds the mailbox's grants for
// kOfflineReportHold, long enough for every other node that sent offline to report too (they
// ask at least every DeliveryOptions::offline_report_interval); so does a leader elected after
// no broker led for long enough that nodes may have gone offline (HoldForOfflineReports).
// Assumptions: one process runs per node name at a time (a node's outbox holds an exclusive
// flock on its data directory, released only when the process is gone, so a restarted run
// cannot overlap the one it ends); times are the broker's clock; the ledger is in memory, so a
// broker restart forgets it, except where brokers are elected through etcd: then the leader
// writes it to etcd before answering each grant (Snapshot, quota_ledger.h) and the next leader
// continues from it (Restore).
//
// Priorities (README "Priorities"). Each request carries its messages' class (URGENT, NORMAL,
// BULK). Priority decides only which request gets room that the counting above allows, never
// how much room there is. A request refused for the rate, a connection slot or priority is
// remembered per mailbox as waiting demand until kDemandGrace after the retry_after it was
// given (so a node that stops asking holds nothing back for long), and is forgotten once it is
// granted. Each class has a share of the minute: guaranteed_share_percent of
// messages_per_minute, at least 1. Free message room is claimed in this order: by each class
// for what it waits for up to what is left of its share in the last minute, most urgent class
// first; then by each class for the rest it waits for, most urgent first. A request takes what
// the claims of other requests ahead of its class's leave. So a password reset gets the next
// free room ahead of any number of reminders, and a class that keeps asking gets at least its
// share of every minute, however much more urgent mail waits: none starves. Connection slots:
// a waiting request ranks by class, except that a class under
// its share ranks above every class that is not; a slot is kept free for each waiting
// request of a higher rank that holds none, and when they are short a lower-ranked holder is
// refused with yield_connection (it closes its connection and releases the slot). While more
// urgent mail waits, a refused request is told to come back kPriorityLag later, so that room
// freed at one moment is usually asked for by the most urgent first.
#ifndef MAILROOM_PAN_BROKER_SEND_QUOTA_H_
#define MAILROOM_PAN_BROKER_SEND_QUOTA_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/base/clock.h"
#include "common/mail/send_priority.h"
#include "pan/broker/quota_ledger.pb.h"
#include "proto/mailroom/broker/v1/broker.pb.h"

namespace mailroom::broker {

struct SendLimitValues {
  int messages_per_minute = 30;
  int64_t recipients_per_day = 10000;
  int max_connections = 3;
  int max_recipients_per_message = 500;
  absl::Duration permit_lease = absl::Seconds(120);
  absl::Duration connection_idle_lease = absl::Seconds(60);
  // A class with fewer than this share of messages_per_minute (at least 1 message) in the
  // last minute is served before every other waiting class (the starvation guard).
  int guaranteed_share_percent = 10;
};

// The configured limits with zeros replaced by `defaults` (Exchange's unless given).
SendLimitValues ResolveSendLimits(const mailroom::broker::v1::SendLimits& limits,
                                  const SendLimitValues& defaults = SendLimitValues());

class SendQuota {
 public:
  SendQuota(const Clock* clock, SendLimitValues limits);

  void SetLimits(SendLimitValues limits);
  // Each named mailbox's own limits (the broker's mailbox pool, mailbox_pool.h), replacing the
  // previous ones; other mailboxes keep SetLimits' limits. Status lists every named mailbox.
  void SetMailboxLimits(std::map<std::string, SendLimitValues> limits);
  // The mailbox of the open permit `permit_id`; empty if there is none.
  std::string PermitMailbox(const std::string& permit_id);

  // Requests are validated here (INVALID_ARGUMENT naming the field); a denial is an OK
  // response with granted = false. `lease_cap` shortens the permit's and the connection
  // slot's leases: an elected broker passes what is left of its term (leader_election.h), so
  // nothing it grants is in use once another broker may lead.
  // `priority` is the class of every message asked for (see "Priorities" above).
  absl::StatusOr<mailroom::broker::v1::AcquireSendPermitResponse> Acquire(
      const std::string& mailbox, const std::string& node, const std::string& connection_id,
      const std::vector<int>& recipient_counts,
      SendPriority priority = ::mailroom::common::v1::SEND_PRIORITY_NORMAL,
      absl::Duration lease_cap = absl::InfiniteDuration());

  // For the broker's own sessions (Test Connection): a connection slot under `connection_id`
  // and, if `with_message`, a permit for one single-recipient message, both without a lease:
  // they count until the caller reports the message (Report with connection_closed) or gives
  // them back (Release), which it must do once its session is closed. Denials as Acquire's;
  // URGENT (an admin is waiting for the test).
  absl::StatusOr<mailroom::broker::v1::AcquireSendPermitResponse> AcquireUnleased(
      const std::string& mailbox, const std::string& holder, const std::string& connection_id,
      bool with_message);

  // A report on an open connection renews its slot's lease (by connection_idle_lease, capped
  // by `lease_cap` as Acquire's) and says by how much (connection_lease).
  absl::StatusOr<mailroom::broker::v1::ReportSendResultResponse> Report(
      const std::string& node, const std::string& permit_id,
      const std::vector<mailroom::broker::v1::SendResult>& results, bool connection_closed,
      absl::Duration lease_cap = absl::InfiniteDuration());

  absl::StatusOr<mailroom::broker::v1::ReleaseSendPermitResponse> Release(
      const std::string& node, const std::string& permit_id, const std::string& connection_id,
      bool connection_closed);

  // The node's previous run is over (it was restarted, e.g. after kill -9): the messages of its
  // open permits end now (they may have reached the MTA before, never after) and its
  // connection slots are freed. Returns how many permits ended.
  int EndNodeRun(const std::string& node);

  // Counts messages that `node` sent on its offline allowance (see "Offline allowance" above),
  // each as if sent `sent_ago` before now; the first report on `mailbox` in a minute holds its
  // grants for kOfflineReportHold. INVALID_ARGUMENT naming the field for a bad entry (nothing
  // is counted then).
  absl::Status CountOfflineSends(const std::string& mailbox, const std::string& node,
                                 const std::vector<mailroom::broker::v1::OfflineSend>& sends);
  // Grants nothing on any mailbox for `hold` (answers PERMIT_DENIAL_REASON_OFFLINE_RECOVERY):
  // nodes may have sent offline and will report it within the hold.
  void HoldForOfflineReports(absl::Duration hold);

  // Pauses a mailbox (e.g. on a quota-exceeded reply) until `until`.
  void Pause(const std::string& mailbox, absl::Time until);
  // Ends a pause early; returns whether the mailbox was paused.
  bool Resume(const std::string& mailbox);
  // When the mailbox's pause ends; InfinitePast if it is not paused.
  absl::Time PausedUntil(const std::string& mailbox);

  std::vector<mailroom::broker::v1::MailboxQuota> Status(const std::string& mailbox_filter);

  // The mailbox's ledger as of now, for the etcd ledger (quota_ledger.h): every message still
  // counting against the minute, the rest of the day's per minute of their end (rounded
  // toward now, so a reader counts them no shorter), and the pause.
  mailroom::broker::ledger::LedgerRecord Snapshot(const std::string& mailbox);
  // Counts what `record` counts, as if it had been written now (a new leader continuing from
  // the last leader's record): each message ends `ended_ago` before now. Adds to what is
  // counted already (counting twice is only stricter).
  void Restore(const std::string& mailbox, const mailroom::broker::ledger::LedgerRecord& record);

 private:
  // The level of grants whose class is not known (restored from a previous leader's ledger):
  // counted against the limits, not towards any class's share.
  static constexpr int kUnknownLevel = -1;
  // One granted message, while it may still count against the day.
  struct Grant {
    absl::Time time;  // granted
    // The latest it can reach the MTA: its report, or while unreported its permit's lease end.
    absl::Time end;
    int recipients;  // counted against the day (the accepted ones, once reported)
    std::string node;
    int level = kUnknownLevel;  // PriorityLevel of its class
  };
  struct Permit {
    std::string mailbox;
    std::string node;
    std::string connection_key;
    std::vector<int64_t> grants;  // ids, in sending order
    size_t reported = 0;
    absl::Time lease_end;
  };
  struct Connection {
    std::string node;
    absl::Time lease_end;
    int level = kUnknownLevel;  // of its last grant
  };
  // A refused request (by node/connection_id), remembered so that room goes to it first
  // when it ranks above the others.
  struct Demand {
    std::string node;
    int level = 0;
    int messages = 0;
    bool needs_slot = false;  // it holds no connection slot (or was told to yield it)
    absl::Time retry_at;      // when it was told to ask again
    absl::Time until;         // forgotten after this: the node stopped asking
  };
  struct Mailbox {
    // Every grant that may still count against the day (end >= now - 24 h), by id: in grant
    // order.
    std::map<int64_t, Grant> grants;
    // The ids of those that may still count against the minute (end >= now - 1 min).
    std::vector<int64_t> minute;
    std::map<std::string, Connection> connections;
    absl::Time paused_until = absl::InfinitePast();
    std::map<std::string, Demand> waiting;
    // The last report of offline sends, and how long grants wait for the rest of them.
    absl::Time offline_reported_at = absl::InfinitePast();
    absl::Time offline_hold_until = absl::InfinitePast();
  };

  absl::StatusOr<mailroom::broker::v1::AcquireSendPermitResponse> AcquireLocked(
      const std::string& mailbox, const std::string& node, const std::string& connection_id,
      const std::vector<int>& recipient_counts, int level, absl::Duration permit_lease,
      absl::Duration connection_lease) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ExpireLocked(Mailbox& mailbox, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The node's open permit `permit_id`, or null if there is none (or its lease has ended).
  Permit* FindPermitLocked(const std::string& node, const std::string& permit_id, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RefundLocked(const Permit& permit, size_t from) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Restore's work, each message attributed to `source`.
  void RestoreLocked(Mailbox& mailbox, const mailroom::broker::ledger::LedgerRecord& record,
                     const std::string& source) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static int64_t DayRecipients(const Mailbox& mailbox);
  const SendLimitValues& LimitsLocked(const std::string& mailbox) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);

  const Clock* clock_;
  absl::Mutex mu_;
  SendLimitValues limits_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, SendLimitValues> mailbox_limits_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Mailbox> mailboxes_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Permit> permits_ ABSL_GUARDED_BY(mu_);
  int64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  // HoldForOfflineReports: every mailbox's grants wait until then.
  absl::Time hold_all_until_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

// How long the first report of an outage's offline sends holds a mailbox's grants: above
// DeliveryOptions::offline_report_interval (2 s) and a request's round trip.
inline constexpr absl::Duration kOfflineReportHold = absl::Seconds(4);

}  // namespace mailroom::broker

#endif  // MAILROOM_PAN_BROKER_SEND_QUOTA_H_
