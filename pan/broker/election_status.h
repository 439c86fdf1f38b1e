// Provides the broker's part of NodeStatus when brokers are elected through etcd
// (BrokerConfig.ha): FillElectionStatus says whether this broker leads, which broker does,
// since when and in which term, and how the etcd cluster fares as this broker reaches it
// now (every configured member asked for its status at once, so that a member that does
// not answer costs one timeout). EtcdHealthOf is the pure part, for tests. Thread-safe.
#ifndef MAILROOM_PAN_BROKER_ELECTION_STATUS_H_
#define MAILROOM_PAN_BROKER_ELECTION_STATUS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/etcd/etcd_client.h"
#include "pan/broker/leader_election.h"
#include "proto/mailroom/status/v1/status.pb.h"

namespace mailroom::broker {

// How long a member may take to tell its status: beside the probe's 5 s, and longer than a
// renewal's timeout, since an answer that comes late still says the member is up.
inline constexpr absl::Duration kEtcdStatusTimeout = absl::Seconds(2);

// The etcd cluster from each configured endpoint's answer (answers[i] is endpoints[i]'s).
mailroom::status::v1::EtcdHealth EtcdHealthOf(
    const std::vector<std::string>& endpoints,
    const std::vector<absl::StatusOr<etcd::gw::StatusResponse>>& answers);

// Fills `out` from `election` and etcd's members as they answer now; `now` is the node's
// clock (leader_since is reckoned back from it).
void FillElectionStatus(const LeaderElection& election, etcd::EtcdClient* etcd, absl::Time now,
                        mailroom::status::v1::BrokerElection* out);

}  // namespace mailroom::broker

#endif  // MAILROOM_PAN_BROKER_ELECTION_STATUS_H_
