#include "pan/broker/settings_replica.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "pan/broker/leadership.h"

namespace mailroom::broker {
namespace {

absl::Status NotLeader(absl::string_view why) {
  return NotLeaderError(absl::StrCat("settings in etcd: ", why));
}

}  // namespace

SettingsReplica::SettingsReplica(SettingsReplicaOptions options, etcd::EtcdClient* etcd)
    : options_(std::move(options)), etcd_(etcd) {}

void SettingsReplica::Guard(const etcd::KeyHold& hold) {
  absl::MutexLock lock(&mu_);
  hold_ = hold;
}

absl::Status SettingsReplica::Publish(absl::string_view record) {
  absl::MutexLock lock(&mu_);
  if (!hold_.has_value()) {
    return NotLeader("only the leading broker saves settings; this one stands by");
  }
  MR_ASSIGN_OR_RETURN(const bool written,
                      etcd_->PutWhileHeld(options_.key, record, options_.election_key, *hold_));
  if (!written) {
    hold_.reset();
    return NotLeader("the election key is no longer this broker's");
  }
  return absl::OkStatus();
}

absl::StatusOr<absl::optional<std::string>> SettingsReplica::Fetch() {
  MR_ASSIGN_OR_RETURN(absl::optional<etcd::gw::KeyValue> kv, etcd_->Get(options_.key));
  if (!kv.has_value()) return absl::optional<std::string>();
  return absl::optional<std::string>(std::move(*kv->mutable_value()));
}

}  // namespace mailroom::broker
