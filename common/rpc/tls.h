// Provides mutual-TLS credentials for mailroom's gRPC servers and channels, built from PEM
// files, and the identity of a verified peer: its role (from the certificate's URI SAN
// `urn:mailroom:role:<role>`) and node name (the subject CN). Servers require and verify a
// client certificate from the cluster CA; plaintext is never offered. Thread-safe.
#ifndef MAILROOM_COMMON_TLS_H_
#define MAILROOM_COMMON_TLS_H_

#include <memory>
#include <string>

#include <grpcpp/security/auth_context.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include "absl/status/statusor.h"
#include "common/rpc/role.h"

namespace mailroom {

// Paths of one node's PEM files.
struct TlsFiles {
  std::string ca_file;    // the cluster CA that signs every node certificate
  std::string cert_file;  // this node's certificate (chain)
  std::string key_file;   // this node's private key
};

// Server side: requires a client certificate signed by the cluster CA.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsFiles& files);

// Client side: presents this node's certificate, trusts only the cluster CA, checks the host
// name as usual, and accepts only a server whose certificate carries the role it calls
// (`urn:mailroom:role:<server_role>`): every cluster certificate is signed by the same CA
// and names localhost, so without this any node listening on a broker's address would
// receive what is meant for the broker (settings with a secret, say). A server of another
// role fails the handshake (UNAVAILABLE, "expected a <role> server").
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const TlsFiles& files, Role server_role);

// A verified peer.
struct PeerIdentity {
  Role role;
  std::string node_name;  // subject CN
};

// Reads the role and name from a PEM certificate. The certificate must carry exactly one
// `urn:mailroom:role:` URI SAN naming a known role.
absl::StatusOr<PeerIdentity> IdentityFromCertificatePem(const std::string& pem);

// The identity of the peer of an RPC, from the certificate gRPC verified during the
// handshake. UNAUTHENTICATED when there is no verified certificate.
absl::StatusOr<PeerIdentity> PeerIdentityOf(const grpc::AuthContext& auth_context);

// Reads a whole file; NOT_FOUND naming the path if it can't.
absl::StatusOr<std::string> ReadFileToString(const std::string& path);

}  // namespace mailroom

#endif  // MAILROOM_COMMON_TLS_H_
