#include "tests/testing/capturing_log_sink.h"

#include "absl/strings/str_cat.h"

namespace mailroom::testing {

void CapturingLogSink::Write(absl::string_view line) {
  absl::MutexLock lock(&mu_);
  lines_.emplace_back(line);
}

std::vector<std::string> CapturingLogSink::Lines() const {
  absl::MutexLock lock(&mu_);
  return lines_;
}

std::string CapturingLogSink::Text() const {
  absl::MutexLock lock(&mu_);
  std::string text;
  for (const std::string& line : lines_) absl::StrAppend(&text, line, "\n");
  return text;
}

ScopedLogCapture::ScopedLogCapture() {
  Logging::Reset();
  Logging::SetSink(sink_);
}

ScopedLogCapture::~ScopedLogCapture() { Logging::Reset(); }

}  // namespace mailroom::testing
