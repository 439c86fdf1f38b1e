#include "common/base/log_level_overrides.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace mailroom {

LogLevelOverrides::LogLevelOverrides(const Clock* clock)
    : clock_(clock), loop_(clock, [this] { return RevertDue(); }) {
  loop_.Start();
}

LogLevelOverrides::~LogLevelOverrides() { loop_.Stop(); }

absl::Status LogLevelOverrides::Set(absl::string_view component, LogLevel level,
                                    absl::Duration duration, absl::string_view by) {
  if (!IsLogComponent(component)) {
    return absl::InvalidArgumentError(
        absl::StrCat("component: unknown log component \"", component, "\" (expected one of ",
                     absl::StrJoin(LogComponents(), ", "), ")"));
  }
  if (duration < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "duration: must not be negative (got ", absl::FormatDuration(duration), ")"));
  }
  const absl::Time revert_time =
      duration > absl::ZeroDuration() ? clock_->Now() + duration : absl::InfiniteFuture();
  {
    absl::MutexLock lock(&mu_);
    auto [it, inserted] = overrides_.try_emplace(component);
    if (inserted) it->second.saved = Logging::ComponentLevel(component);
    it->second.revert_time = revert_time;
    Logging::SetComponentLevel(component, level);
  }
  MR_LOG(kInfo, kLogConfig) << "log level of " << component << " set to " << LogLevelName(level)
                            << (duration > absl::ZeroDuration()
                                    ? absl::StrCat(" for ", absl::FormatDuration(duration))
                                    : " until restart")
                            << (by.empty() ? "" : absl::StrCat(" (by ", by, ")"));
  loop_.Wake();
  return absl::OkStatus();
}

std::vector<ComponentLevelInfo> LogLevelOverrides::List() const {
  absl::MutexLock lock(&mu_);
  const LogLevel default_level = Logging::DefaultLevel();
  std::vector<ComponentLevelInfo> out;
  for (const char* component : LogComponents()) {
    ComponentLevelInfo info;
    info.component = component;
    info.level = Logging::ComponentLevel(component).value_or(default_level);
    info.configured = info.level;
    if (auto it = overrides_.find(component); it != overrides_.end()) {
      info.overridden = true;
      info.configured = it->second.saved.value_or(default_level);
      info.revert_time = it->second.revert_time;
    }
    out.push_back(std::move(info));
  }
  return out;
}

absl::Time LogLevelOverrides::RevertDue() {
  const absl::Time now = clock_->Now();
  absl::Time next = absl::InfiniteFuture();
  std::vector<std::string> reverted;
  {
    absl::MutexLock lock(&mu_);
    for (auto it = overrides_.begin(); it != overrides_.end();) {
      if (it->second.revert_time > now) {
        next = std::min(next, it->second.revert_time);
        ++it;
        continue;
      }
      if (it->second.saved.has_value()) {
        Logging::SetComponentLevel(it->first, *it->second.saved);
      } else {
        Logging::ClearComponentLevel(it->first);
      }
      reverted.push_back(it->first);
      overrides_.erase(it++);
    }
  }
  for (const std::string& component : reverted) {
    MR_LOG(kInfo, kLogConfig) << "log level of " << component << " back to "
                              << LogLevelName(Logging::ComponentLevel(component).value_or(
                                     Logging::DefaultLevel()))
                              << " (the override's time is over)";
  }
  return next;
}

}  // namespace mailroom
