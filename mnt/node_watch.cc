#include "mnt/node_watch.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/base/logging.h"
#include "common/base/proto_time.h"

namespace mailroom::mnt {

namespace cv1 = ::mailroom::common::v1;
namespace mv1 = ::mailroom::mnt::v1;

namespace {

std::string DedupKey(const WatchedNode& node) { return absl::StrCat("node-down/", node.name()); }

std::string Consequence(cv1::Role role) {
  switch (role) {
    case cv1::ROLE_BROKER:
      return "Role nodes keep sending only a small allowance on their cached tokens, and stop "
             "when those expire; no settings can be changed or tested.";
    case cv1::ROLE_PSN:
      return "Guests and sponsors of the portals it serves get no mail; what it had queued "
             "waits in its outbox until it returns.";
    case cv1::ROLE_PAN:
      return "Guest-expiry and password-expiry reminders are not sent; what it had queued "
             "waits in its outbox until it returns.";
    default:
      return "What it had queued waits in its outbox until it returns.";
  }
}

}  // namespace

NodeWatch::NodeWatch(std::vector<WatchedNode> nodes, Probe probe, AlarmReporter* alarms,
                     const Clock* clock, NodeWatchOptions options)
    : nodes_(std::move(nodes)),
      probe_(std::move(probe)),
      alarms_(alarms),
      clock_(clock),
      options_(std::move(options)),
      started_(clock->Now()),
      loop_(clock, [this] {
        CheckAll();
        return clock_->Now() + options_.check_interval;
      }) {}

NodeWatch::~NodeWatch() { Stop(); }

void NodeWatch::Start() { loop_.Start(); }

void NodeWatch::Stop() { loop_.Stop(); }

std::map<std::string, NodeSighting> NodeWatch::sightings() const {
  absl::MutexLock lock(&mu_);
  return sightings_;
}

void NodeWatch::CheckAll() {
  for (const WatchedNode& node : nodes_) Check(node);
}

void NodeWatch::Check(const WatchedNode& node) {
  const absl::Status answer = probe_(node);
  const absl::Time now = clock_->Now();
  NodeSighting sighting;
  bool raise = false;
  bool clear = false;
  {
    absl::MutexLock lock(&mu_);
    NodeSighting& s = sightings_[node.name()];
    s.last_error = answer;
    if (answer.ok()) {
      s.last_serving = now;
      clear = s.down;
      s.down = false;
    } else {
      const absl::Time since = std::max(s.last_serving, started_);
      raise = !s.down && now - since >= options_.down_after;
      s.down = s.down || raise;
    }
    sighting = s;
  }
  if (clear) {
    MR_LOG(kInfo, kLogMnt) << "node " << node.name() << " answers again";
    alarms_->ClearOwn(options_.mnt_node_name, DedupKey(node),
                      absl::StrCat(node.name(), " answers again"));
  }
  if (!raise) return;
  const std::string since =
      sighting.last_serving == absl::InfinitePast()
          ? absl::StrCat("the MnT started watching it (",
                         absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", started_, absl::UTCTimeZone()),
                         ")")
          : absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", sighting.last_serving, absl::UTCTimeZone());
  RaiseAlarmRequest request;
  request.set_type(mv1::ALARM_TYPE_NODE_DOWN);
  request.set_severity(mv1::ALARM_SEVERITY_CRITICAL);
  request.set_source_node(options_.mnt_node_name);
  request.set_dedup_key(DedupKey(node));
  request.set_text(absl::StrCat(
      "Node ", node.name(), " (", cv1::Role_Name(node.role()), " at ", node.target(),
      ") has not answered since ", since, ": ", answer.message(), ". ",
      Consequence(node.role()),
      " Fix: check that its service runs (systemctl status; mailroomctl health) and that the "
      "MnT reaches it; the alarm clears when it answers again."));
  ToProto(now, request.mutable_occur_time());
  request.set_idempotency_key(absl::StrCat(DedupKey(node), "/", absl::ToUnixMillis(now)));
  MR_LOG(kWarn, kLogMnt) << request.text();
  alarms_->Raise(std::move(request));
}

}  // namespace mailroom::mnt
