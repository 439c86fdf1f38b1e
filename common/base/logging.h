// Provides mailroom's logger: levels per component (as the seed's product sets debug level
// per component, e.g. `guestaccess`), one line per record, and redaction of secrets and
// bearer tokens at the logging layer itself, whatever the level, so no caller can leak one
// by accident. Use:  MR_LOG(kInfo, kLogBroker) << "token refreshed, expires " << t;
// Thread-safe.
#ifndef MAILROOM_COMMON_LOGGING_H_
#define MAILROOM_COMMON_LOGGING_H_

#include <memory>
#include <sstream>
#include <string>
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"
#include "absl/types/span.h"

namespace mailroom {

class Clock;

enum class LogLevel { kTrace = 0, kDebug, kInfo, kWarn, kError, kOff };

// Accepts TRACE, DEBUG, INFO, WARN (or WARNING), ERROR, OFF in any case.
absl::StatusOr<LogLevel> ParseLogLevel(absl::string_view name);
absl::string_view LogLevelName(LogLevel level);

// Components. The PAN's guest administration and the PSN's portal mail keep the seed's
// names (`guest-access-admin`, `guestaccess`) so that admins find them where they expect.
inline constexpr char kLogBroker[] = "broker";
inline constexpr char kLogToken[] = "token";
inline constexpr char kLogSmtp[] = "smtp";
inline constexpr char kLogOutbox[] = "outbox";
inline constexpr char kLogPan[] = "guest-access-admin";
inline constexpr char kLogPsn[] = "guestaccess";
inline constexpr char kLogMnt[] = "alarms";
inline constexpr char kLogRpc[] = "rpc";
inline constexpr char kLogConfig[] = "config";
inline constexpr char kLogTls[] = "tls";

// Every component above, in that order (what `mailroomctl log show` lists).
absl::Span<const char* const> LogComponents();
// Whether `name` is one of LogComponents().
bool IsLogComponent(absl::string_view name);

// Where finished, already-redacted lines go.
class LogSink {
 public:
  virtual ~LogSink() = default;
  virtual void Write(absl::string_view line) = 0;
};

// Writes each line to stderr.
class StderrLogSink final : public LogSink {
 public:
  void Write(absl::string_view line) override;
};

// Process-wide logger configuration and output.
class Logging {
 public:
  static void SetDefaultLevel(LogLevel level);
  static LogLevel DefaultLevel();
  static void SetComponentLevel(absl::string_view component, LogLevel level);
  // The level set for `component` itself; nullopt when it follows the default level.
  static absl::optional<LogLevel> ComponentLevel(absl::string_view component);
  // Makes `component` follow the default level again.
  static void ClearComponentLevel(absl::string_view component);
  // Restores INFO for everything and the stderr sink; for tests.
  static void Reset();
  static bool IsEnabled(absl::string_view component, LogLevel level);

  // Replaces the output; nullptr means stderr.
  static void SetSink(std::shared_ptr<LogSink> sink);
  // The clock that timestamps lines; nullptr means the real clock.
  static void SetClock(const Clock* clock);

  // Formats, redacts (registered secrets via Redactor::Global() and credential shapes) and
  // writes one record if `level` is enabled for `component`.
  static void Write(absl::string_view component, LogLevel level, absl::string_view message);
};

// One record being built; written when destroyed. Use MR_LOG rather than this directly.
class LogMessage {
 public:
  LogMessage(absl::string_view component, LogLevel level)
      : component_(component), level_(level) {}
  LogMessage(const LogMessage&) = delete;
  LogMessage& operator=(const LogMessage&) = delete;
  ~LogMessage() { Logging::Write(component_, level_, stream_.str()); }
  std::ostream& stream() { return stream_; }

 private:
  absl::string_view component_;
  LogLevel level_;
  std::ostringstream stream_;
};

}  // namespace mailroom

// The message is only built if the level is enabled for the component.
#define MR_LOG(level, component)                                                        \
  for (bool mr_log_enabled_ =                                                           \
           ::mailroom::Logging::IsEnabled((component), ::mailroom::LogLevel::level);    \
       mr_log_enabled_; mr_log_enabled_ = false)                                        \
  ::mailroom::LogMessage((component), ::mailroom::LogLevel::level).stream()

#endif  // MAILROOM_COMMON_LOGGING_H_
