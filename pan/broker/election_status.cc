#include "pan/broker/election_status.h"

#include <map>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/proto_time.h"

namespace mailroom::broker {

namespace sv1 = ::mailroom::status::v1;

namespace {

std::string Hex(uint64_t id) { return absl::StrCat(absl::Hex(id)); }

}  // namespace

sv1::EtcdHealth EtcdHealthOf(const std::vector<std::string>& endpoints,
                             const std::vector<absl::StatusOr<etcd::gw::StatusResponse>>& answers) {
  sv1::EtcdHealth health;
  std::map<uint64_t, int> named;  // leader ID -> members naming it
  for (size_t i = 0; i < endpoints.size() && i < answers.size(); ++i) {
    sv1::EtcdMemberHealth* member = health.add_members();
    member->set_endpoint(endpoints[i]);
    if (!answers[i].ok()) {
      member->set_error(std::string(answers[i].status().message()));
      continue;
    }
    const etcd::gw::StatusResponse& status = *answers[i];
    member->set_reachable(true);
    health.set_reachable(health.reachable() + 1);
    member->set_member_id(Hex(status.header().member_id()));
    if (status.leader() != 0) {
      member->set_leader_id(Hex(status.leader()));
      ++named[status.leader()];
    }
    member->set_raft_term(status.raft_term());
    member->set_version(status.version());
    member->set_error(absl::StrJoin(status.errors(), "; "));
  }
  uint64_t leader = 0;
  int most = 0;
  for (const auto& [id, count] : named) {
    if (count > most) {
      leader = id;
      most = count;
    }
  }
  if (leader != 0) {
    health.set_leader_id(Hex(leader));
    for (const sv1::EtcdMemberHealth& member : health.members()) {
      if (member.reachable() && member.member_id() == health.leader_id()) {
        health.set_leader_endpoint(member.endpoint());
      }
    }
  }
  health.set_healthy(leader != 0 &&
                     2 * health.reachable() > static_cast<int>(endpoints.size()));
  return health;
}

void FillElectionStatus(const LeaderElection& election, etcd::EtcdClient* etcd, absl::Time now,
                        sv1::BrokerElection* out) {
  const ElectionState state = election.State();
  const LeaderElectionOptions& options = election.options();
  out->set_advertised_address(options.advertised_address);
  out->set_election_key(options.election_key);
  ToProto(options.ttl, out->mutable_lease_ttl());
  out->set_leading(state.leading);
  out->set_leader_address(state.leader_address);
  out->set_term(state.term);
  if (state.leading) {
    ToProto(now - state.leading_for, out->mutable_leader_since());
    ToProto(state.remaining_term, out->mutable_remaining_term());
  }
  const std::vector<std::string>& endpoints = etcd->endpoints();
  std::vector<absl::StatusOr<etcd::gw::StatusResponse>> answers(
      endpoints.size(), absl::UnknownError("not asked"));
  std::vector<std::thread> asks;
  for (size_t i = 0; i < endpoints.size(); ++i) {
    asks.emplace_back(
        [&, i] { answers[i] = etcd->MemberStatus(endpoints[i], kEtcdStatusTimeout); });
  }
  for (std::thread& ask : asks) ask.join();
  *out->mutable_etcd() = EtcdHealthOf(endpoints, answers);
}

}  // namespace mailroom::broker
