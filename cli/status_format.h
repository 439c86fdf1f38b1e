// Provides what `mailroomctl status` makes of a ClusterStatus (proto/mailroom/status/v1): the
// findings that need an administrator (AttentionOf; status exits 1 when there are any) and
// the one screen people read (FormatClusterStatus); also a mailbox's quota line, shared with
// `mailroomctl quota`. Pure functions of the message: stateless and thread-safe.
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
// paused mailbox, a credential within kSecretAttentionDays of expiry, an active WARNING or
// CRITICAL alarm, alarms that could not be listed.
std::vector<std::string> AttentionOf(const mailroom::status::v1::ClusterStatus& status);

// The whole screen: nodes with health, version and uptime; the broker's token, quota and
// credential; each sending node's outbox, oldest unsent, latency, token and last error; the
// active alarms; and status.attention() ("Nothing needs an admin." when empty).
std::string FormatClusterStatus(const mailroom::status::v1::ClusterStatus& status);

// "MAILBOX: 3/30 messages this minute, 12/10000 recipients today, 1/3 connections", and a
// second line "  PAUSED until ..." while it is paused; newline-terminated.
std::string FormatMailboxQuota(const mailroom::broker::v1::MailboxQuota& quota);

}  // namespace mailroom::cli

#endif  // MAILROOM_CLI_STATUS_FORMAT_H_
