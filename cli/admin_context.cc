#include "cli/admin_context.h"

#include <iostream>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/base/diagnosis.h"
#include "common/base/status_macros.h"
#include "common/rpc/status_grpc.h"
#include "common/base/text_config.h"
#include "common/rpc/tls.h"
#include "google/protobuf/util/json_util.h"

ABSL_FLAG(std::string, config, "", "Admin client configuration (AdminClientConfig, text format).");
ABSL_FLAG(bool, json, false, "Print JSON for scripts instead of text for people.");

namespace mailroom::cli {

absl::StatusOr<std::shared_ptr<grpc::Channel>> Admin::Channel(const Target& target) const {
  MR_ASSIGN_OR_RETURN(std::shared_ptr<grpc::ChannelCredentials> credentials,
                      MakeChannelCredentials(tls, target.role));
  return grpc::CreateChannel(target.address, credentials);
}

void Admin::SetDeadline(grpc::ClientContext* context, absl::Duration extra) const {
  context->set_deadline(absl::ToChronoTime(absl::Now() + rpc_timeout + extra));
}

bool JsonOutput() { return absl::GetFlag(FLAGS_json); }

std::string ToJson(const google::protobuf::Message& message) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  google::protobuf::util::MessageToJsonString(message, &json, options);
  return json;
}

int Fail(const absl::Status& status) {
  std::cerr << "mailroomctl: " << status.message() << "\n";
  if (absl::optional<Diagnosis> diagnosis = DiagnosisOf(status); diagnosis.has_value()) {
    std::cerr << "  " << FormatDiagnosis(*diagnosis) << "\n";
  }
  const std::string reason = ReasonOf(status);
  if (!reason.empty()) std::cerr << "  reason: " << reason << "\n";
  return kExitFailed;
}

std::string Directory(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

absl::StatusOr<Admin> LoadAdmin() {
  const std::string path = absl::GetFlag(FLAGS_config);
  if (path.empty()) return absl::InvalidArgumentError("--config is required (AdminClientConfig)");
  Admin admin;
  if (absl::Status status = LoadTextConfigFile(path, &admin.config); !status.ok()) return status;
  const std::string base = Directory(path);
  auto resolve = [&](const std::string& p) {
    return p.empty() || p[0] == '/' ? p : absl::StrCat(base, "/", p);
  };
  admin.tls = TlsFiles{resolve(admin.config.tls().ca_file()),
                       resolve(admin.config.tls().cert_file()),
                       resolve(admin.config.tls().key_file())};
  // Fail here, naming the file, rather than at the first call.
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      MakeChannelCredentials(admin.tls, Role::kBroker);
  if (!credentials.ok()) return credentials.status();
  if (admin.config.has_rpc_timeout()) {
    admin.rpc_timeout = absl::Seconds(admin.config.rpc_timeout().seconds());
  }
  return admin;
}


}  // namespace mailroom::cli
