#include "pan/broker/settings_replica.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "pan/broker/leadership.h"

namespace mailroom::broker {
namespace {

constexpr char kWriter[] = "settings in etcd";

absl::Status NotLeader(absl::string_view why) {
  return NotLeaderError(absl::StrCat(kWriter, ": ", why));
}

}  // namespace

SettingsReplica::SettingsReplica(SettingsReplicaOptions options, LeaderFence* fence)
    : options_(std::move(options)), fence_(fence) {}

void SettingsReplica::Guard(const etcd::KeyHold& hold) { fence_->Guard(hold); }

absl::Status SettingsReplica::Publish(absl::string_view record) {
  const absl::optional<etcd::KeyHold> term = fence_->term();
  if (!term.has_value()) {
    return NotLeader("only the leading broker saves settings; this one stands by");
  }
  return fence_->Put(kWriter, options_.key, record, *term);
}

absl::StatusOr<absl::optional<std::string>> SettingsReplica::Fetch() {
  MR_ASSIGN_OR_RETURN(absl::optional<etcd::gw::KeyValue> kv, fence_->etcd()->Get(options_.key));
  if (!kv.has_value()) return absl::optional<std::string>();
  return absl::optional<std::string>(std::move(*kv->mutable_value()));
}

}  // namespace mailroom::broker
