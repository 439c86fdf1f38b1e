#include "common/base/logging.h"

#include <iostream>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/base/clock.h"
#include "common/base/redactor.h"

namespace mailroom {
namespace {

struct LoggingState {
  absl::Mutex mu;
  LogLevel default_level ABSL_GUARDED_BY(mu) = LogLevel::kInfo;
  absl::flat_hash_map<std::string, LogLevel> component_levels ABSL_GUARDED_BY(mu);
  std::shared_ptr<LogSink> sink ABSL_GUARDED_BY(mu) = std::make_shared<StderrLogSink>();
  const Clock* clock ABSL_GUARDED_BY(mu) = nullptr;
};

LoggingState& State() {
  static LoggingState* state = new LoggingState();
  return *state;
}

}  // namespace

absl::StatusOr<LogLevel> ParseLogLevel(absl::string_view name) {
  const std::string upper = absl::AsciiStrToUpper(name);
  if (upper == "TRACE") return LogLevel::kTrace;
  if (upper == "DEBUG") return LogLevel::kDebug;
  if (upper == "INFO") return LogLevel::kInfo;
  if (upper == "WARN" || upper == "WARNING") return LogLevel::kWarn;
  if (upper == "ERROR") return LogLevel::kError;
  if (upper == "OFF") return LogLevel::kOff;
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown log level \"", name, "\" (expected TRACE, DEBUG, INFO, WARN, ERROR or OFF)"));
}

absl::string_view LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kTrace: return "TRACE";
    case LogLevel::kDebug: return "DEBUG";
    case LogLevel::kInfo: return "INFO";
    case LogLevel::kWarn: return "WARN";
    case LogLevel::kError: return "ERROR";
    case LogLevel::kOff: return "OFF";
  }
  return "?";
}

absl::Span<const char* const> LogComponents() {
  static constexpr const char* kComponents[] = {kLogBroker, kLogToken, kLogSmtp, kLogOutbox,
                                                kLogPan,    kLogPsn,   kLogMnt,  kLogRpc,
                                                kLogConfig, kLogTls};
  return kComponents;
}

bool IsLogComponent(absl::string_view name) {
  for (absl::string_view component : LogComponents()) {
    if (component == name) return true;
  }
  return false;
}

void StderrLogSink::Write(absl::string_view line) {
  // One write per line keeps concurrent lines from interleaving.
  std::string with_newline = absl::StrCat(line, "\n");
  std::cerr.write(with_newline.data(), with_newline.size());
  std::cerr.flush();
}

void Logging::SetDefaultLevel(LogLevel level) {
  absl::MutexLock lock(&State().mu);
  State().default_level = level;
}

LogLevel Logging::DefaultLevel() {
  absl::ReaderMutexLock lock(&State().mu);
  return State().default_level;
}

void Logging::SetComponentLevel(absl::string_view component, LogLevel level) {
  absl::MutexLock lock(&State().mu);
  State().component_levels[component] = level;
}

absl::optional<LogLevel> Logging::ComponentLevel(absl::string_view component) {
  absl::ReaderMutexLock lock(&State().mu);
  auto it = State().component_levels.find(component);
  if (it == State().component_levels.end()) return absl::nullopt;
  return it->second;
}

void Logging::ClearComponentLevel(absl::string_view component) {
  absl::MutexLock lock(&State().mu);
  State().component_levels.erase(component);
}

void Logging::Reset() {
  absl::MutexLock lock(&State().mu);
  State().default_level = LogLevel::kInfo;
  State().component_levels.clear();
  State().sink = std::make_shared<StderrLogSink>();
  State().clock = nullptr;
}

bool Logging::IsEnabled(absl::string_view component, LogLevel level) {
  if (level == LogLevel::kOff) return false;
  absl::ReaderMutexLock lock(&State().mu);
  auto it = State().component_levels.find(component);
  const LogLevel threshold =
      it == State().component_levels.end() ? State().default_level : it->second;
  return level >= threshold;
}

void Logging::SetSink(std::shared_ptr<LogSink> sink) {
  absl::MutexLock lock(&State().mu);
  State().sink = sink ? std::move(sink) : std::make_shared<StderrLogSink>();
}

void Logging::SetClock(const Clock* clock) {
  absl::MutexLock lock(&State().mu);
  State().clock = clock;
}

void Logging::Write(absl::string_view component, LogLevel level, absl::string_view message) {
  if (!IsEnabled(component, level)) return;
  std::shared_ptr<LogSink> sink;
  const Clock* clock;
  {
    absl::ReaderMutexLock lock(&State().mu);
    sink = State().sink;
    clock = State().clock;
  }
  const absl::Time now = clock ? clock->Now() : RealClock::Get().Now();
  // The component name is redacted with the rest: nothing reaches the sink unredacted.
  const std::string line = Redactor::Global().Redact(absl::StrCat(
      absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", now, absl::UTCTimeZone()), " ",
      LogLevelName(level), " [", component, "] ", message));
  sink->Write(line);
}

}  // namespace mailroom
