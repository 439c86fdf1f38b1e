// Provides the human-readable rendering of Test Connection progress and reports for
// mailroomctl: one line per step with its status and timing, then the diagnosis with the
// admin's fix, the server's raw reply and, for certificate failures, the chain the server
// presented. Stateless and thread-safe.
#ifndef MAILROOM_CLI_TEST_REPORT_FORMAT_H_
#define MAILROOM_CLI_TEST_REPORT_FORMAT_H_

#include <string>

#include "proto/mailroom/broker/v1/broker.pb.h"

namespace mailroom::cli {

std::string StepName(mailroom::broker::v1::TestStepKind kind);
// One finished step (PASSED / FAILED / SKIPPED) with its details, newline-terminated.
std::string FormatStep(const mailroom::broker::v1::TestStep& step);
// The closing summary of a report.
std::string FormatReportSummary(const mailroom::broker::v1::TestConnectionReport& report);
// A whole report: every step, then the summary.
std::string FormatReport(const mailroom::broker::v1::TestConnectionReport& report);

}  // namespace mailroom::cli

#endif  // MAILROOM_CLI_TEST_REPORT_FORMAT_H_
