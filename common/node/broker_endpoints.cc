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
    : single_(stub), single_address_(std::move(address)) {}

BrokerEndpoints::BrokerEndpoints(std::vector<Endpoint> endpoints)
    : endpoints_(std::move(endpoints)) {}

BrokerEndpoints::Stub* BrokerEndpoints::StubAt(size_t index) const {
  return single_ != nullptr ? single_ : endpoints_[index].stub.get();
}

const std::string& BrokerEndpoints::AddressAt(size_t index) const {
  return single_ != nullptr ? single_address_ : endpoints_[index].address;
}

absl::Status BrokerEndpoints::Call(absl::FunctionRef<grpc::Status(Stub*)> rpc) {
  const size_t count = single_ != nullptr ? 1 : endpoints_.size();
  size_t first;
  {
    absl::MutexLock lock(&mu_);
    first = current_;
  }
  absl::Status reported;  // what the caller sees if no broker answers
  bool have_reported = false;
  bool any_not_leading = false;
  std::vector<bool> tried(count, false);
  size_t index = first;
  for (size_t attempt = 0; attempt < count; ++attempt) {
    tried[index] = true;
    absl::Status status = FromGrpcStatus(rpc(StubAt(index)));
    const BrokerAnswer answer = ClassifyBrokerAnswer(status);
    any_not_leading = any_not_leading || answer == BrokerAnswer::kNotLeading;
    if (answer == BrokerAnswer::kAnswered) {
      if (index != first) {
        absl::MutexLock lock(&mu_);
        if (current_ == first) {
          current_ = index;
          ++switches_;
          MR_LOG(kInfo, kLogBroker) << "calling the broker at " << AddressAt(index)
                                    << ": the one at " << AddressAt(first)
                                    << " does not answer as leader";
        }
      }
      return status;
    }
    if (!have_reported || (ClassifyBrokerAnswer(reported) == BrokerAnswer::kNotLeading &&
                           answer != BrokerAnswer::kNotLeading)) {
      reported = status;
      have_reported = true;
    }
    if (answer == BrokerAnswer::kTimedOut) {
      // This call's time is spent; the next one starts with the next broker.
      if (count > 1) {
        absl::MutexLock lock(&mu_);
        if (current_ == index) {
          current_ = (index + 1) % count;
          ++switches_;
          MR_LOG(kWarn, kLogBroker) << "the broker at " << AddressAt(index)
                                    << " did not answer in time; trying "
                                    << AddressAt(current_) << " next";
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
        if (!tried[i] && AddressAt(i) == leader) next = i;
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
  return AddressAt(current_);
}

int64_t BrokerEndpoints::switches() const {
  absl::MutexLock lock(&mu_);
  return switches_;
}

}  // namespace mailroom
