// Provides the fuzz target of the text-format configuration loader
// (common/base/text_config.h): the input is a node's configuration file, or the SMTP settings
// file `mailroomctl settings set --file` reads, parsed as both. Checks that what parses prints
// back (protobuf's text format) to text that parses to the same message, that every error is
// INVALID_ARGUMENT naming "source:line:column", and that FieldLocator answers for the fields
// a semantic check asks about.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/base/text_config.h"
#include "common/base/utf8.h"
#include "google/protobuf/message.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/message_differencer.h"
#include "proto/mailroom/broker/v1/settings.pb.h"
#include "proto/mailroom/config/v1/config.pb.h"
#include "tests/fuzz/fuzz_check.h"

namespace mailroom {
namespace {

constexpr absl::string_view kSource = "/etc/mailroom/node.textproto";

void CheckParse(absl::string_view text, google::protobuf::Message* message,
                const std::string& what) {
  FieldLocator locator(std::string(kSource), message);
  const absl::Status status = ParseTextConfig(text, kSource, message, &locator);
  const std::string described = absl::StrCat(what, " as ", message->GetTypeName());
  if (!status.ok()) {
    FUZZ_CHECK(status.code() == absl::StatusCode::kInvalidArgument &&
                   absl::StartsWith(status.message(), absl::StrCat(kSource, ":")),
               absl::StrCat(described, ": ", QuoteForError(status.ToString(), 400)));
    return;
  }
  for (absl::string_view path : {"node_name", "tls.ca_file", "logging.components[0].level",
                                 "broker.send_limits.messages_per_minute", "username",
                                 "smtp_trust_store.ca_file", "no_such_field", "x[99999999999]",
                                 "tls..", "[0]"}) {
    const std::string where = locator.Where(path);
    FUZZ_CHECK(absl::StartsWith(where, kSource), absl::StrCat(described, ": ", path, " ", where));
  }
  std::string printed;
  FUZZ_CHECK(google::protobuf::TextFormat::PrintToString(*message, &printed), described);
  std::unique_ptr<google::protobuf::Message> again(message->New());
  const absl::Status reparsed = ParseTextConfig(printed, kSource, again.get());
  FUZZ_CHECK(reparsed.ok() && google::protobuf::util::MessageDifferencer::Equals(*message, *again),
             absl::StrCat(described, " printed as ", QuoteForError(printed, 400), ": ",
                          reparsed.ToString()));
}

}  // namespace
}  // namespace mailroom

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ::mailroom;  // NOLINT(build/namespaces): a fuzz entry point
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  const std::string what = absl::StrCat("input ", QuoteForError(input, 400));
  ::mailroom::config::v1::NodeConfig node;
  CheckParse(input, &node, what);
  ::mailroom::broker::v1::SmtpSettings settings;
  CheckParse(input, &settings, what);
  return 0;
}
