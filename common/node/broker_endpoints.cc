#include "common/node/broker_endpoints.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/base/logging.h"
#include "common/rpc/status_grpc.h"

namespace mailroom {
BrokerAnswer ClassifyBrokerAnswer(const absl::Status& status) {
  if (status.code() == absl::StatusCode::kDeadlineExceeded) return BrokerAnswer::kTimedOut;
  if (status.code() != absl::StatusCode::kUnavailable) return BrokerAnswer::kAnswered;
  const std::string reason = ReasonOf(status);
  if (reason == kNotLeaderReason) return BrokerAnswer::kNotLeading;
  if (reason.empty()) return BrokerAnswer::kUnreachable;
  return BrokerAnswer::kAnswered;
}

BrokerEndpoints::BrokerEndpoints(Stub* stub, std::string address)
    : brokers_{{std::move(address), stub}} {}

BrokerEndpoints::BrokerEndpoints(std::vector<Endpoint> endpoints) {
  for (Endpoint& endpoint : endpoints) {
    brokers_.push_back({std::move(endpoint.address), endpoint.stub.get()});
    owned_stubs_.push_back(std::move(endpoint.stub));
  }
}

absl::Status BrokerEndpoints::Call(absl::FunctionRef<grpc::Status(Stub*)> rpc) {
  const size_t count = brokers_.size();
  size_t first;
  {
    absl::MutexLock lock(&mu_);
    first = current_;
  }
  absl::Status reported;  // what the caller sees if no broker answers (OK until one fails)
  bool any_not_leading = false;
  std::vector<bool> tried(count, false);
  size_t index = first;
  for (size_t attempt = 0; attempt < count; ++attempt) {
    tried[index] = true;
    absl::Status status = FromGrpcStatus(rpc(brokers_[index].stub));
    const BrokerAnswer answer = ClassifyBrokerAnswer(status);
    any_not_leading = any_not_leading || answer == BrokerAnswer::kNotLeading;
    if (answer == BrokerAnswer::kAnswered) {
      if (index != first) {
        absl::MutexLock lock(&mu_);
        if (current_ == first) {
          current_ = index;
          ++switches_;
          MR_LOG(kInfo, kLogBroker) << "calling the broker at " << brokers_[index].address
                                    << ": the one at " << brokers_[first].address
                                    << " does not answer as leader";
        }
      }
      return status;
    }
    if (reported.ok() || (ClassifyBrokerAnswer(reported) == BrokerAnswer::kNotLeading &&
                          answer != BrokerAnswer::kNotLeading)) {
      reported = status;
    }
    if (answer == BrokerAnswer::kTimedOut) {
      // This call's time is spent; the next one starts with the next broker.
      if (count > 1) {
        absl::MutexLock lock(&mu_);
        if (current_ == index) {
          current_ = (index + 1) % count;
          ++switches_;
          MR_LOG(kWarn, kLogBroker) << "the broker at " << brokers_[index].address
                                    << " did not answer in time; trying "
                                    << brokers_[current_].address << " next";
        }
      }
      break;
    }
    // Next: the leader a standby named, if it is one of ours and not yet asked; otherwise
    // the next broker in the configured order.
    size_t next = count;
    if (answer == BrokerAnswer::kNotLeading) {
      const std::string leader = LeaderAddressOf(status);
      for (size_t i = 0; i < count && !leader.empty(); ++i) {
        if (!tried[i] && brokers_[i].address == leader) next = i;
      }
    }
    for (size_t step = 1; next == count && step < count; ++step) {
      if (!tried[(index + step) % count]) next = (index + step) % count;
    }
    if (next == count) break;
    index = next;
  }
  if (any_not_leading && ReasonOf(reported) != kNotLeaderReason) {
    // A standby answered while the leader did not: no broker leads yet.
    return WithReason(absl::UnavailableError(absl::StrCat("no broker leads now (",
                                                          reported.message(), ")")),
                      kNotLeaderReason);
  }
  return reported;
}

std::string BrokerEndpoints::current_address() const {
  absl::MutexLock lock(&mu_);
  return brokers_[current_].address;
}

int64_t BrokerEndpoints::switches() const {
  absl::MutexLock lock(&mu_);
  return switches_;
}

}  // namespace mailroom
