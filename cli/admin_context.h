// Provides what every mailroomctl command needs: the admin identity and cluster addresses
// (AdminClientConfig), channels authenticated with the admin certificate, deadlines, JSON
// output for --json, and the one way errors are printed. Thread-compatible.
#ifndef MAILROOM_CLI_ADMIN_CONTEXT_H_
#define MAILROOM_CLI_ADMIN_CONTEXT_H_

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/flags/declare.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "common/rpc/tls.h"
#include "proto/mailroom/config/v1/config.pb.h"

ABSL_DECLARE_FLAG(std::string, config);
ABSL_DECLARE_FLAG(bool, json);

namespace mailroom::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;

// A node to call: its name in messages ("pan", "psn2"), its address, and the role its
// certificate must carry (a server of another role fails the TLS handshake).
struct Target {
  std::string name;
  std::string address;
  Role role;
};

struct Admin {
  mailroom::config::v1::AdminClientConfig config;
  TlsFiles tls;  // the admin's certificate, key and the cluster CA (paths resolved)
  absl::Duration rpc_timeout = absl::Seconds(30);

  // A channel to `target` with the admin's certificate that accepts only a server of the
  // target's role.
  absl::StatusOr<std::shared_ptr<grpc::Channel>> Channel(const Target& target) const;
  void SetDeadline(grpc::ClientContext* context,
                   absl::Duration extra = absl::ZeroDuration()) const;
};

// Loads --config (paths relative to the file's directory).
absl::StatusOr<Admin> LoadAdmin();
// Whether --json was given.
bool JsonOutput();
std::string ToJson(const google::protobuf::Message& message);
// Prints the error (with its diagnosis and reason, if any) to stderr; returns kExitFailed.
int Fail(const absl::Status& status);

}  // namespace mailroom::cli

#endif  // MAILROOM_CLI_ADMIN_CONTEXT_H_
