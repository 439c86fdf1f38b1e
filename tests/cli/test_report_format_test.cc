#include "cli/test_report_format.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mailroom::cli {
namespace {

namespace v1 = ::mailroom::broker::v1;
using ::testing::HasSubstr;

TEST(TestReportFormat, FailedStepShowsTitleFixRawReplyAndChain) {
  v1::TestStep step;
  step.set_kind(v1::TEST_STEP_KIND_STARTTLS);
  step.set_status(v1::TEST_STEP_STATUS_FAILED);
  step.mutable_duration()->set_nanos(23000000);
  step.mutable_diagnosis()->set_title("unable to find valid certification path to requested target");
  step.mutable_diagnosis()->set_fix("add the issuing CA to the trust store");
  step.mutable_diagnosis()->set_raw_reply("SSL certificate problem: unable to get local issuer");
  v1::CertificateInfo* cert = step.add_certificate_chain();
  cert->set_subject("CN = localhost");
  cert->set_issuer("CN = untrusted test root");
  const std::string text = FormatStep(step);
  EXPECT_THAT(text, HasSubstr("STARTTLS"));
  EXPECT_THAT(text, HasSubstr("FAILED"));
  EXPECT_THAT(text, HasSubstr("23 ms"));
  EXPECT_THAT(text, HasSubstr("unable to find valid certification path"));
  EXPECT_THAT(text, HasSubstr("fix:   add the issuing CA"));
  EXPECT_THAT(text, HasSubstr("server said: SSL certificate problem"));
  EXPECT_THAT(text, HasSubstr("issued by: CN = untrusted test root"));
}

TEST(TestReportFormat, SummaryNamesTheFailedStep) {
  v1::TestConnectionReport report;
  report.set_passed(false);
  report.set_failed_step(v1::TEST_STEP_KIND_AUTH_XOAUTH2);
  report.mutable_diagnosis()->set_title("Invalid email address");
  report.set_test_id("test-1-abc");
  const std::string text = FormatReportSummary(report);
  EXPECT_THAT(text, HasSubstr("FAILED at AUTH XOAUTH2: Invalid email address"));
  EXPECT_THAT(text, HasSubstr("test-1-abc"));
}

TEST(TestReportFormat, PassedReportListsEveryStep) {
  v1::TestConnectionReport report;
  report.set_passed(true);
  for (auto kind : {v1::TEST_STEP_KIND_TOKEN_REQUEST, v1::TEST_STEP_KIND_TCP_CONNECT}) {
    v1::TestStep* step = report.add_steps();
    step->set_kind(kind);
    step->set_status(v1::TEST_STEP_STATUS_PASSED);
  }
  report.set_message(
      "Successfully tested the connection to the SMTP server smtp.office365.com:587");
  const std::string text = FormatReport(report);
  EXPECT_THAT(text, HasSubstr("Token request"));
  EXPECT_THAT(text, HasSubstr("TCP connect"));
  EXPECT_THAT(text, HasSubstr("Result: PASSED"));
  EXPECT_THAT(text, HasSubstr(
                        "Successfully tested the connection to the SMTP server "
                        "smtp.office365.com:587\n"));
}

}  // namespace
}  // namespace mailroom::cli
