#include "pan/broker/leader_fence.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "pan/broker/leadership.h"

namespace mailroom::broker {

LeaderFence::LeaderFence(LeaderFenceOptions options, etcd::EtcdClient* etcd)
    : options_(std::move(options)), etcd_(etcd) {}

void LeaderFence::Guard(const etcd::KeyHold& hold) {
  absl::MutexLock lock(&mu_);
  term_ = hold;
}

void LeaderFence::Drop() {
  absl::MutexLock lock(&mu_);
  term_.reset();
}

absl::optional<etcd::KeyHold> LeaderFence::term() const {
  absl::MutexLock lock(&mu_);
  return term_;
}

absl::Status LeaderFence::Put(absl::string_view writer, absl::string_view key,
                              absl::string_view value, const etcd::KeyHold& hold) {
  MR_ASSIGN_OR_RETURN(const bool written,
                      etcd_->PutWhileHeld(key, value, options_.election_key, hold));
  if (written) return absl::OkStatus();
  {
    absl::MutexLock lock(&mu_);
    // A Guard for a new term since `hold` was read is not undone by the old term's failure.
    if (term_.has_value() && term_->lease == hold.lease &&
        term_->create_revision == hold.create_revision) {
      term_.reset();
    }
  }
  return NotLeaderError(absl::StrCat(writer, ": the election key is no longer this broker's"));
}

}  // namespace mailroom::broker
