// Provides LogLevelOverrides: log levels changed at run time, per component, as an admin does
// on the seed's debug log configuration page (`mailroomctl log set NODE COMPONENT LEVEL
// [for=30m]`). An override may be given a duration, after which the component goes back by
// itself to the level it had before the first override (its configured level, or the default
// level). The expiry is driven by the injected Clock on a BackgroundLoop, so a FakeClock
// drives it in tests. Overrides change the process-wide Logging levels; one instance per
// process. Thread-safe.
#ifndef MAILROOM_COMMON_BASE_LOG_LEVEL_OVERRIDES_H_
#define MAILROOM_COMMON_BASE_LOG_LEVEL_OVERRIDES_H_

#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/optional.h"
#include "common/base/background_loop.h"
#include "common/base/clock.h"
#include "common/base/logging.h"

namespace mailroom {

// One component's level as LogLevelOverrides::List shows it.
struct ComponentLevelInfo {
  std::string component;
  // The level in force.
  LogLevel level = LogLevel::kInfo;
  // The level it goes back to when the override ends (the level in force without one).
  LogLevel configured = LogLevel::kInfo;
  // Whether an admin's override is in force.
  bool overridden = false;
  // When the override reverts by itself; absl::InfiniteFuture() for never (until the process
  // restarts or the next override).
  absl::Time revert_time = absl::InfiniteFuture();
};

class LogLevelOverrides {
 public:
  // `clock` must outlive this. The expiry thread starts at once.
  explicit LogLevelOverrides(const Clock* clock);
  // Stops the expiry thread; overrides in force stay in force.
  ~LogLevelOverrides();
  LogLevelOverrides(const LogLevelOverrides&) = delete;
  LogLevelOverrides& operator=(const LogLevelOverrides&) = delete;

  // Sets `component` to `level`, for `duration` if it is positive, else until the process
  // restarts. InvalidArgument, naming the field ("component: ...", "duration: ..."), for a
  // component that is not one of LogComponents() or a negative duration. `by` (who asked, e.g.
  // the admin certificate's name) goes into the log line that records the change.
  absl::Status Set(absl::string_view component, LogLevel level, absl::Duration duration,
                   absl::string_view by = "");

  // Every component of LogComponents(), in that order.
  std::vector<ComponentLevelInfo> List() const;

 private:
  struct Override {
    // The component's own level before the first override; nullopt: it followed the default.
    absl::optional<LogLevel> saved;
    absl::Time revert_time = absl::InfiniteFuture();
  };

  // Reverts the overrides whose time has come; returns when the next one is due.
  absl::Time RevertDue();

  const Clock* const clock_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Override> overrides_ ABSL_GUARDED_BY(mu_);
  BackgroundLoop loop_;
};

}  // namespace mailroom

#endif  // MAILROOM_COMMON_BASE_LOG_LEVEL_OVERRIDES_H_
