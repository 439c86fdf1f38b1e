// Provides the fuzz target of the SMTP reply parser and classifier (common/mail/smtp_reply.h):
// the input is what a server sent as one reply. Checks that parsing is stable (the raw lines
// parse to the same reply), that every field keeps its documented shape, that each stage's
// classification honours the README's promises (4xx retried, 5xx never retried blindly, a
// reply below 400 is no failure) and that the Diagnosis survives the trip through an
// absl::Status that carries it to the RPC edge.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"
#include "common/base/diagnosis.h"
#include "common/base/utf8.h"
#include "common/mail/smtp_reply.h"
#include "tests/fuzz/fuzz_check.h"

namespace mailroom {
namespace {

namespace fc = ::mailroom::common::v1;

constexpr SmtpStage kStages[] = {
    SmtpStage::kConnect, SmtpStage::kGreeting, SmtpStage::kEhlo,
    SmtpStage::kStartTls, SmtpStage::kAuth,     SmtpStage::kMailFrom,
    SmtpStage::kRcptTo,  SmtpStage::kData,     SmtpStage::kQuit,
};

std::string Describe(const SmtpReply& reply) {
  return absl::StrCat("code=", reply.code, " enhanced=", QuoteForError(reply.enhanced_code),
                      " text=", QuoteForError(reply.text), " raw=", QuoteForError(reply.raw));
}

void CheckReplyShape(const SmtpReply& reply) {
  FUZZ_CHECK(reply.code == 0 || (reply.code >= 100 && reply.code <= 599), Describe(reply));
  if (reply.code == 0) {
    FUZZ_CHECK(reply.enhanced_code.empty() && reply.text == reply.raw, Describe(reply));
    return;
  }
  if (!reply.enhanced_code.empty()) {
    // "<class>.<1-3 digits>.<1-3 digits>", the class being the reply code's first digit.
    const std::string& e = reply.enhanced_code;
    FUZZ_CHECK(e[0] == static_cast<char>('0' + reply.code / 100) && e.size() >= 5 &&
                   e.size() <= 9 && e[1] == '.' && absl::StartsWith(reply.text, e),
               Describe(reply));
  }
}

void CheckClassification(const SmtpReply& reply, SmtpStage stage) {
  const Diagnosis diagnosis = ClassifySmtpReply(reply, stage);
  const DeliveryOutcome outcome = OutcomeOf(diagnosis);
  const std::string what =
      absl::StrCat(SmtpStageName(stage), ": ", Describe(reply), " -> ",
                   fc::FailureCause_Name(diagnosis.cause()), " ", DeliveryOutcomeName(outcome));
  FUZZ_CHECK(diagnosis.raw_reply().size() <= kMaxRawReplyBytes + 64, what);
  if (reply.code == 0) {
    FUZZ_CHECK(diagnosis.cause() == fc::FAILURE_CAUSE_UNKNOWN, what);
  } else if (reply.code < 400) {
    FUZZ_CHECK(diagnosis.cause() == fc::FAILURE_CAUSE_UNSPECIFIED &&
                   outcome == DeliveryOutcome::kDelivered,
               what);
  } else if (reply.code < 500) {
    FUZZ_CHECK(outcome == DeliveryOutcome::kTransient, what);
  } else {
    FUZZ_CHECK(outcome != DeliveryOutcome::kDelivered && outcome != DeliveryOutcome::kTransient,
               what);
  }
  if (reply.code >= 400) {
    FUZZ_CHECK(diagnosis.smtp_code() == reply.code && !diagnosis.title().empty(), what);
  }
  // The Diagnosis reaches the admin inside a Status (and from there in a gRPC reply): it must
  // come out as it went in.
  const absl::Status status = DiagnosedError(diagnosis, "fuzz");
  const absl::optional<Diagnosis> carried = DiagnosisOf(status);
  FUZZ_CHECK(carried.has_value() &&
                 carried->SerializeAsString() == diagnosis.SerializeAsString(),
             absl::StrCat("the Diagnosis did not survive its Status: ", what));
  FUZZ_CHECK(IsValidUtf8(diagnosis.raw_reply()),
             absl::StrCat("raw_reply is not UTF-8 (a proto3 string): ", what));
  FormatDiagnosis(diagnosis);
}

}  // namespace
}  // namespace mailroom

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ::mailroom;  // NOLINT(build/namespaces): a fuzz entry point
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  const SmtpReply reply = ParseSmtpReply(input);
  CheckReplyShape(reply);
  const SmtpReply again = ParseSmtpReply(reply.raw);
  FUZZ_CHECK(again.code == reply.code && again.enhanced_code == reply.enhanced_code &&
                 again.text == reply.text && again.raw == reply.raw,
             absl::StrCat("raw lines parse differently: ", Describe(reply), " then ",
                          Describe(again)));
  for (SmtpStage stage : kStages) CheckClassification(reply, stage);
  return 0;
}
