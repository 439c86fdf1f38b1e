// Provides BrokerEndpoints: the token brokers a role node may call — one broker, or the
// primary and secondary PAN's brokers of a highly available cluster, of which one leads at a
// time — and the rule for reaching the one that leads. A call goes to the broker that last
// answered as leader; if that broker says it does not lead (UNAVAILABLE with reason
// NOT_LEADER) or cannot be reached (UNAVAILABLE without a broker's reason), the call is made
// on the others in turn (first the leader a standby names, if it is one of them), and the
// first that answers becomes the one called next time. A deadline that runs out moves the
// next call on to the next broker without retrying this one (its deadline is spent). When no
// broker leads, every call fails UNAVAILABLE and the node follows its offline allowance, as
// with one broker that is down. Thread-safe.
#ifndef MAILROOM_COMMON_NODE_BROKER_ENDPOINTS_H_
#define MAILROOM_COMMON_NODE_BROKER_ENDPOINTS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/support/status.h>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "proto/mailroom/broker/v1/broker.grpc.pb.h"

namespace mailroom {

// ErrorDetails.reason of a standby broker's refusal, and of a Call no broker answered while
// one said it does not lead (an election is under way).
inline constexpr char kNotLeaderReason[] = "NOT_LEADER";

class BrokerEndpoints {
 public:
  using Stub = mailroom::broker::v1::TokenBroker::StubInterface;
  struct Endpoint {
    std::string address;  // for logs and status
    std::unique_ptr<Stub> stub;
  };

  // One broker, not owned; it must outlive this object (tests, single-broker callers).
  explicit BrokerEndpoints(Stub* stub, std::string address = "broker");
  // The brokers of a cluster, in the configured order; the first is tried first. Not empty.
  explicit BrokerEndpoints(std::vector<Endpoint> endpoints);
  BrokerEndpoints(const BrokerEndpoints&) = delete;
  BrokerEndpoints& operator=(const BrokerEndpoints&) = delete;

  // Makes one call with `rpc` (which builds its own ClientContext and deadline, and may be
  // called once per broker) and returns its status as absl::Status, with the broker's
  // details. When no broker answered: the error of the first that did not merely say it does
  // not lead, with reason NOT_LEADER if any broker said that (no leader yet: an election).
  absl::Status Call(absl::FunctionRef<grpc::Status(Stub*)> rpc);

  // The address of the broker calls go to now.
  std::string current_address() const;
  // How many times calls moved on to another broker.
  int64_t switches() const;
  size_t size() const { return brokers_.size(); }

 private:
  struct Broker {
    std::string address;
    Stub* stub;
  };
  std::vector<Broker> brokers_;
  std::vector<std::unique_ptr<Stub>> owned_stubs_;

  mutable absl::Mutex mu_;
  size_t current_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t switches_ ABSL_GUARDED_BY(mu_) = 0;
};

// Why a call failed, as far as finding the leader goes.
enum class BrokerAnswer {
  kAnswered,      // OK, or an error of the broker's own (with its reason): keep calling it
  kNotLeading,    // UNAVAILABLE, reason NOT_LEADER: a standby; another broker leads
  kUnreachable,   // UNAVAILABLE with no broker reason: no connection to it
  kTimedOut,      // DEADLINE_EXCEEDED: it may be partitioned away; try another next time
};
BrokerAnswer ClassifyBrokerAnswer(const absl::Status& status);

}  // namespace mailroom

#endif  // MAILROOM_COMMON_NODE_BROKER_ENDPOINTS_H_
