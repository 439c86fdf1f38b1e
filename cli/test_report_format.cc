#include "cli/test_report_format.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "cli/proto_words.h"

namespace mailroom::cli {
namespace {

namespace v1 = ::mailroom::broker::v1;

std::string StatusWord(v1::TestStepStatus status) {
  if (status == v1::TEST_STEP_STATUS_UNSPECIFIED || !v1::TestStepStatus_IsValid(status)) {
    return "?";
  }
  return WithoutPrefix(v1::TestStepStatus_Name(status), "TEST_STEP_STATUS_");
}

std::string Milliseconds(const google::protobuf::Duration& d) {
  return absl::StrCat(d.seconds() * 1000 + d.nanos() / 1000000, " ms");
}

std::string FormatTime(const google::protobuf::Timestamp& t) {
  return absl::FormatTime("%Y-%m-%d", absl::FromUnixSeconds(t.seconds()), absl::UTCTimeZone());
}

}  // namespace

std::string StepName(v1::TestStepKind kind) {
  switch (kind) {
    case v1::TEST_STEP_KIND_PROXY: return "Proxy";
    case v1::TEST_STEP_KIND_TOKEN_REQUEST: return "Token request";
    case v1::TEST_STEP_KIND_TCP_CONNECT: return "TCP connect";
    case v1::TEST_STEP_KIND_STARTTLS: return "STARTTLS";
    case v1::TEST_STEP_KIND_AUTH_XOAUTH2: return "AUTH XOAUTH2";
    case v1::TEST_STEP_KIND_SEND_TEST_MESSAGE: return "Test message";
    case v1::TEST_STEP_KIND_GRAPH_MAILBOX: return "Graph mailbox";
    default: return "Step";
  }
}

std::string FormatStep(const v1::TestStep& step) {
  const std::string name = StepName(step.kind());
  std::string line = absl::StrFormat("  %s %s %-7s", name, std::string(22 - name.size(), '.'),
                                     StatusWord(step.status()));
  if (step.status() == v1::TEST_STEP_STATUS_PASSED || step.status() == v1::TEST_STEP_STATUS_FAILED) {
    absl::StrAppend(&line, absl::StrFormat(" %8s", Milliseconds(step.duration())));
  }
  if (!step.detail().empty()) absl::StrAppend(&line, "  ", step.detail());
  absl::StrAppend(&line, "\n");
  if (step.status() == v1::TEST_STEP_STATUS_FAILED && step.has_diagnosis()) {
    const auto& d = step.diagnosis();
    absl::StrAppend(&line, "      error: ", d.title(), "\n");
    absl::StrAppend(&line, "      fix:   ", d.fix(), "\n");
    if (d.codes_size() > 0) {
      absl::StrAppend(&line, "      codes:");
      for (const std::string& code : d.codes()) absl::StrAppend(&line, " ", code);
      absl::StrAppend(&line, "\n");
    }
    if (!d.raw_reply().empty()) absl::StrAppend(&line, "      server said: ", d.raw_reply(), "\n");
  }
  if (step.status() == v1::TEST_STEP_STATUS_FAILED) {
    for (const v1::CertificateInfo& cert : step.certificate_chain()) {
      absl::StrAppend(&line, "      certificate: ", cert.subject(), "\n", "        issued by: ",
                      cert.issuer(), "\n");
      if (cert.has_not_after()) {
        absl::StrAppend(&line, "        valid until: ", FormatTime(cert.not_after()), "\n");
      }
    }
  }
  return line;
}

std::string FormatReportSummary(const v1::TestConnectionReport& report) {
  std::string out;
  if (report.passed()) {
    absl::StrAppend(&out, "Result: PASSED in ", Milliseconds(report.duration()), "\n");
    if (!report.message().empty()) absl::StrAppend(&out, report.message(), "\n");
  } else {
    absl::StrAppend(&out, "Result: FAILED at ", StepName(report.failed_step()), ": ",
                    report.diagnosis().title(), "\n");
  }
  if (!report.mailbox().empty()) absl::StrAppend(&out, "Mailbox: ", report.mailbox(), "\n");
  if (!report.token_endpoint().empty()) {
    absl::StrAppend(&out, "Token endpoint: ", report.token_endpoint(), "\n");
  }
  if (!report.test_message_id().empty()) {
    absl::StrAppend(&out, "Test message: <", report.test_message_id(), ">\n");
  }
  absl::StrAppend(&out, "Test id: ", report.test_id(), "\n");
  return out;
}

std::string FormatReport(const v1::TestConnectionReport& report) {
  std::string out;
  for (const v1::TestStep& step : report.steps()) absl::StrAppend(&out, FormatStep(step));
  absl::StrAppend(&out, FormatReportSummary(report));
  return out;
}

}  // namespace mailroom::cli
