// Provides what `mailroomctl status` makes of a ClusterStatus (proto/mailroom/status/v1): the
// findings that need an administrator (AttentionOf; status exits 1 when there are any) and
// the one screen people read (FormatClusterStatus); also a mailbox's quota line, shared with
// `mailroomctl quota`, the mailbox pool as `mailroomctl settings show` prints it, and the election among brokers and etcd's health as a broker sees it,
// shared with `mailroomctl health`. Pure functions of the message: stateless and thread-safe.
#ifndef MAILROOM_CLI_STATUS_FORMAT_H_
#define MAILROOM_CLI_STATUS_FORMAT_H_

#include <string>
#include <vector>

#include "proto/mailroom/broker/v1/broker.pb.h"
#include "proto/mailroom/status/v1/status.pb.h"

namespace mailroom::cli {

// A credential this close to its expiry (or past it) needs an admin.
inline constexpr int kSecretAttentionDays = 14;

// What needs an admin, one line each, in the order of the nodes, then the alarms: a node
// that is DOWN (or not SERVING, or gives no status), a backlog over its threshold, a sending
// node without a usable token, a broker without settings or that cannot renew its token, a
// paused mailbox, a credential within kSecretAttentionDays of expiry, brokers elected through
// etcd of which none leads, an etcd member a broker cannot reach or an etcd without a leader
// or quorum as a broker sees it (EtcdAttentionOf), an active WARNING or CRITICAL alarm, alarms
// that could not be listed.
std::vector<std::string> AttentionOf(const mailroom::status::v1::ClusterStatus& status);

// The whole screen: nodes with health, version and uptime; with elected brokers, which leads
// since when and etcd's health as each broker sees it; the broker's token, quota and
// credential; each sending node's outbox, oldest unsent, latency, token and last error; the
// active alarms; and status.attention() ("Nothing needs an admin." when empty).
std::string FormatClusterStatus(const mailroom::status::v1::ClusterStatus& status);

// "MAILBOX: 3/30 messages this minute, 12/10000 recipients today, 1/3 connections", and a
// second line "  PAUSED until ..." while it is paused; newline-terminated.
std::string FormatMailboxQuota(const mailroom::broker::v1::MailboxQuota& quota);

// The mailbox pool of saved settings (README "Mailbox pool"): a line per mailbox, the default
// first, with its transport, its own limits (the broker's where it sets none) and what it may
// send as; then which mailboxes carry each purpose, unrouted purposes going to the default
// mailbox. Newline-terminated.
std::string FormatMailboxPool(const mailroom::broker::v1::SmtpSettings& settings);

// A broker's part in the election, as of its clock `node_time`: "leads since 2027-01-15
// 07:57:00 UTC (3m), term 42" or "stands by; the leader is pan1:7100 (term 42)" or "stands
// by; no broker leads".
std::string ElectionText(const mailroom::status::v1::BrokerElection& election,
                         const google::protobuf::Timestamp& node_time);

// etcd as broker `broker` sees it: a summary line ("etcd as broker1 sees it: healthy, 3/3
// members answer, leader http://...:2379 (member a1)"), then a line per member, or with
// `every_member` false only those that do not answer or report an error; newline-terminated.
std::string FormatEtcdHealth(const std::string& broker,
                             const mailroom::status::v1::EtcdHealth& etcd, bool every_member);

// What needs an admin in etcd as broker `broker` sees it: no leader or quorum, and each member
// that does not answer or reports an error.
std::vector<std::string> EtcdAttentionOf(const std::string& broker,
                                         const mailroom::status::v1::EtcdHealth& etcd);

}  // namespace mailroom::cli

#endif  // MAILROOM_CLI_STATUS_FORMAT_H_
