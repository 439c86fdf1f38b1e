#include "common/rpc/tls.h"

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>

#include <cerrno>
#include <functional>
#include <vector>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "common/crypto/openssl_util.h"

namespace mailroom {
namespace {

struct TlsMaterial {
  std::string ca;
  std::string cert;
  std::string key;
};

absl::StatusOr<TlsMaterial> ReadTlsMaterial(const TlsFiles& files) {
  TlsMaterial material;
  for (auto [path, out, what] : {std::make_tuple(&files.ca_file, &material.ca, "ca_file"),
                                 std::make_tuple(&files.cert_file, &material.cert, "cert_file"),
                                 std::make_tuple(&files.key_file, &material.key, "key_file")}) {
    if (path->empty()) return absl::InvalidArgumentError(absl::StrCat("tls.", what, " is empty"));
    absl::StatusOr<std::string> content = ReadFileToString(*path);
    if (!content.ok()) {
      return absl::Status(content.status().code(),
                          absl::StrCat("tls.", what, ": ", content.status().message()));
    }
    *out = *std::move(content);
  }
  return material;
}

}  // namespace

absl::StatusOr<std::string> ReadFileToString(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("cannot read ", path, ": ", std::strerror(errno)));
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsFiles& files) {
  MR_ASSIGN_OR_RETURN(TlsMaterial material, ReadTlsMaterial(files));
  grpc::SslServerCredentialsOptions options(
      GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_root_certs = material.ca;
  options.pem_key_cert_pairs.push_back({material.key, material.cert});
  return grpc::SslServerCredentials(options);
}

namespace {

// Accepts a server certificate (already verified against the cluster CA by gRPC) only if
// its one role URI SAN is the expected role.
class ServerRoleVerifier final : public grpc::experimental::ExternalCertificateVerifier {
 public:
  explicit ServerRoleVerifier(Role role)
      : expected_(absl::StrCat(kRoleUriPrefix, RoleName(role))), role_(RoleName(role)) {}

  bool Verify(grpc::experimental::TlsCustomVerificationCheckRequest* request,
              std::function<void(grpc::Status)>, grpc::Status* sync_status) override {
    int roles = 0;
    bool expected = false;
    for (const grpc::string_ref& uri : request->uri_names()) {
      const absl::string_view value(uri.data(), uri.size());
      if (!absl::StartsWith(value, kRoleUriPrefix)) continue;
      ++roles;
      expected = expected || value == expected_;
    }
    if (roles == 1 && expected) {
      *sync_status = grpc::Status::OK;
    } else {
      *sync_status = grpc::Status(
          grpc::StatusCode::UNAUTHENTICATED,
          absl::StrCat("expected a ", role_, " server: the certificate of \"",
                       std::string(request->common_name().data(), request->common_name().size()),
                       "\" does not carry ", expected_));
    }
    return true;  // decided synchronously
  }

  void Cancel(grpc::experimental::TlsCustomVerificationCheckRequest*) override {}

 private:
  const std::string expected_;
  const std::string role_;
};

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const TlsFiles& files, Role server_role) {
  MR_ASSIGN_OR_RETURN(TlsMaterial material, ReadTlsMaterial(files));
  auto provider = std::make_shared<grpc::experimental::StaticDataCertificateProvider>(
      material.ca, std::vector<grpc::experimental::IdentityKeyCertPair>{
                       {material.key, material.cert}});
  grpc::experimental::TlsChannelCredentialsOptions options;
  options.set_certificate_provider(provider);
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  options.set_verify_server_certs(true);
  options.set_check_call_host(true);
  options.set_certificate_verifier(
      grpc::experimental::ExternalCertificateVerifier::Create<ServerRoleVerifier>(server_role));
  std::shared_ptr<grpc::ChannelCredentials> credentials =
      grpc::experimental::TlsCredentials(options);
  if (credentials == nullptr) return absl::InternalError("cannot make TLS channel credentials");
  return credentials;
}

absl::StatusOr<PeerIdentity> IdentityFromCertificatePem(const std::string& pem) {
  absl::StatusOr<crypto::X509Ptr> parsed = crypto::ReadPemCertificate(pem);
  if (!parsed.ok()) return absl::InvalidArgumentError("peer certificate is not valid PEM");
  X509* cert = parsed->get();

  PeerIdentity identity;
  int roles_found = 0;
  absl::Status status = absl::OkStatus();
  auto* names = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; names != nullptr && i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type != GEN_URI) continue;
    const ASN1_IA5STRING* uri = name->d.uniformResourceIdentifier;
    absl::string_view value(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
                           ASN1_STRING_length(uri));
    if (!absl::StartsWith(value, kRoleUriPrefix)) continue;
    ++roles_found;
    absl::StatusOr<Role> role = ParseRole(value.substr(kRoleUriPrefix.size()));
    if (!role.ok()) {
      status = absl::PermissionDeniedError(
          absl::StrCat("peer certificate names ", role.status().message()));
    } else {
      identity.role = *role;
    }
  }
  GENERAL_NAMES_free(names);

  char common_name[256] = {0};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, common_name,
                            sizeof(common_name));
  identity.node_name = common_name;

  MR_RETURN_IF_ERROR(status);
  if (roles_found != 1) {
    return absl::PermissionDeniedError(absl::StrCat(
        "peer certificate must carry exactly one ", kRoleUriPrefix, "<role> URI SAN; found ",
        roles_found));
  }
  return identity;
}

absl::StatusOr<PeerIdentity> PeerIdentityOf(const grpc::AuthContext& auth_context) {
  if (!auth_context.IsPeerAuthenticated()) {
    return absl::UnauthenticatedError("the peer presented no verified client certificate");
  }
  std::vector<grpc::string_ref> pems = auth_context.FindPropertyValues("x509_pem_cert");
  if (pems.empty()) {
    return absl::UnauthenticatedError("the peer's certificate is not available");
  }
  std::string pem(pems.front().data(), pems.front().size());
  // Parsing a certificate costs more than the rest of a token request; a cluster has few
  // distinct peers, so remember each verified certificate's identity.
  static absl::Mutex mu;
  static auto* cache = new absl::flat_hash_map<std::string, PeerIdentity>();
  {
    absl::MutexLock lock(&mu);
    if (auto it = cache->find(pem); it != cache->end()) return it->second;
  }
  absl::StatusOr<PeerIdentity> identity = IdentityFromCertificatePem(pem);
  if (identity.ok()) {
    absl::MutexLock lock(&mu);
    if (cache->size() >= 4096) cache->clear();
    cache->emplace(std::move(pem), *identity);
  }
  return identity;
}

}  // namespace mailroom
