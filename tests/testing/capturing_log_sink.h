// Provides CapturingLogSink, a LogSink that keeps every finished (already redacted) log line
// in memory so a test can look at what a component logged, and ScopedLogCapture, which
// installs one for its lifetime and restores the default logging after. Thread-safe: lines
// may be written from any thread while the test reads them.
#ifndef MAILROOM_TESTS_TESTING_CAPTURING_LOG_SINK_H_
#define MAILROOM_TESTS_TESTING_CAPTURING_LOG_SINK_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/base/logging.h"

namespace mailroom::testing {

class CapturingLogSink final : public LogSink {
 public:
  void Write(absl::string_view line) override;
  std::vector<std::string> Lines() const;
  // Every line so far, each ending in '\n'.
  std::string Text() const;

 private:
  mutable absl::Mutex mu_;
  std::vector<std::string> lines_ ABSL_GUARDED_BY(mu_);
};

// Captures the process's log lines from construction to destruction (Logging::Reset then).
class ScopedLogCapture {
 public:
  ScopedLogCapture();
  ~ScopedLogCapture();
  ScopedLogCapture(const ScopedLogCapture&) = delete;
  ScopedLogCapture& operator=(const ScopedLogCapture&) = delete;

  const CapturingLogSink& sink() const { return *sink_; }

 private:
  std::shared_ptr<CapturingLogSink> sink_ = std::make_shared<CapturingLogSink>();
};

}  // namespace mailroom::testing

#endif  // MAILROOM_TESTS_TESTING_CAPTURING_LOG_SINK_H_
