// Provides what the PSN command groups (guest, template, psn-settings) share, against
// AdminClientConfig.psn_targets: choosing PSNs with psn=N, calling each chosen PSN in turn,
// reading a text file or standard input, template kinds and the PSN's time format.
// Stateless; thread-compatible (output goes to std::cout / std::cerr).
#ifndef MAILROOM_CLI_PSN_COMMON_H_
#define MAILROOM_CLI_PSN_COMMON_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "cli/arguments.h"
#include "cli/command_call.h"
#include "proto/mailroom/psn/v1/psn.grpc.pb.h"

namespace mailroom::cli {

using PsnStub = ::mailroom::psn::v1::GuestNotifications::Stub;

// psn=N or psn=psnN (1-based) if given; else the PSN named `fallback` ("psn2"), if any;
// else psn1, or every PSN when `all_by_default`.
absl::StatusOr<std::vector<Target>> ChoosePsns(const Admin& admin, const Arguments& args,
                                               bool all_by_default,
                                               absl::string_view fallback = "");

// What ForEachPsn prints for --json: an array of {"psn": NAME, "response": RESPONSE}, or
// only {"failures": N}.
enum class PsnJson { kResponses, kFailureCount };

// Calls `call` for each target in turn. A failure is printed as "psnN (ADDRESS): " and the
// error, and counted; a success is printed by `print` (text) or gathered for --json. Returns
// the exit code: kExitOk if no call failed, else kExitFailed.
template <typename Response>
int ForEachPsn(const std::vector<Target>& targets,
               const std::function<absl::StatusOr<Response>(const Target&)>& call,
               const std::function<void(const Target&, const Response&)>& print,
               PsnJson json_style = PsnJson::kResponses);

absl::StatusOr<std::string> ReadText(const std::string& path);  // "-": standard input

// self_registration, guest_credentials, sponsor_summary or password_reset, in any spelling.
absl::StatusOr<::mailroom::psn::v1::TemplateKind> ParseTemplateKind(const std::string& value);

// "2026-05-01 10:00:00 UTC"; "-" when unset.
std::string PsnTime(const google::protobuf::Timestamp& time);

// --- implementation ------------------------------------------------------------------------

// The non-template part of ForEachPsn: one result at a time, then the end.
class PsnFanOut {
 public:
  explicit PsnFanOut(PsnJson json_style) : json_style_(json_style) {}
  // Prints the failure; false. Or gathers the JSON; true (the caller prints text).
  bool Add(const Target& target, const absl::Status& status,
           const google::protobuf::Message* response);
  int Finish();

 private:
  PsnJson json_style_;
  int failures_ = 0;
  std::vector<std::string> json_;
};

template <typename Response>
int ForEachPsn(const std::vector<Target>& targets,
               const std::function<absl::StatusOr<Response>(const Target&)>& call,
               const std::function<void(const Target&, const Response&)>& print,
               PsnJson json_style) {
  PsnFanOut fan_out(json_style);
  for (const Target& target : targets) {
    const absl::StatusOr<Response> response = call(target);
    if (fan_out.Add(target, response.status(), response.ok() ? &*response : nullptr) &&
        !JsonOutput()) {
      print(target, *response);
    }
  }
  return fan_out.Finish();
}

}  // namespace mailroom::cli

#endif  // MAILROOM_CLI_PSN_COMMON_H_
