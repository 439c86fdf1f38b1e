// Provides NodeWatch, the MnT's watch over the cluster's nodes: it asks each configured node
// for its health at a fixed interval and raises NODE_DOWN for a node that has not answered
// SERVING for `down_after` (counted from its last good answer, or from the watch's start, so
// a node that never came up is reported too), and clears it when the node answers again. How
// a node is asked is injected (gRPC health in `main`, a fake in tests). Thread-safe.
#ifndef MAILROOM_MNT_NODE_WATCH_H_
#define MAILROOM_MNT_NODE_WATCH_H_

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/base/background_loop.h"
#include "common/base/clock.h"
#include "common/node/alarm_reporter.h"
#include "proto/mailroom/config/v1/config.pb.h"

namespace mailroom::mnt {

using ::mailroom::config::v1::WatchedNode;

struct NodeWatchOptions {
  std::string mnt_node_name;  // the alarms' source_node
  absl::Duration down_after = absl::Seconds(60);
  absl::Duration check_interval = absl::Seconds(10);
};

// What the watch knows of one node.
struct NodeSighting {
  absl::Time last_serving = absl::InfinitePast();
  absl::Status last_error;  // of the last check; OK if it answered SERVING
  bool down = false;        // NODE_DOWN raised and not cleared
};

class NodeWatch {
 public:
  // OK when the node answered SERVING; otherwise why not. Called from the watch's thread;
  // it must return within a few seconds (a deadline of its own).
  using Probe = std::function<absl::Status(const WatchedNode& node)>;

  // `alarms` and `clock` must outlive the watch.
  NodeWatch(std::vector<WatchedNode> nodes, Probe probe, AlarmReporter* alarms,
            const Clock* clock, NodeWatchOptions options);
  ~NodeWatch();

  void Start();
  void Stop();
  // One round of checks now; the background loop calls it every check_interval.
  void CheckAll();
  std::map<std::string, NodeSighting> sightings() const;

 private:
  void Check(const WatchedNode& node);

  const std::vector<WatchedNode> nodes_;
  const Probe probe_;
  AlarmReporter* const alarms_;
  const Clock* const clock_;
  const NodeWatchOptions options_;
  const absl::Time started_;

  mutable absl::Mutex mu_;
  std::map<std::string, NodeSighting> sightings_ ABSL_GUARDED_BY(mu_);
  BackgroundLoop loop_;
};

}  // namespace mailroom::mnt

#endif  // MAILROOM_MNT_NODE_WATCH_H_
