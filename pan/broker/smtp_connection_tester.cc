#include "pan/broker/smtp_connection_tester.h"

#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/crypto/openssl_util.h"
#include "absl/strings/str_join.h"
#include "common/base/proto_time.h"
#include "common/base/diagnosis.h"
#include "common/base/logging.h"
#include "common/rpc/curl_proxy.h"
#include "common/rpc/http_transport.h"
#include "common/rpc/tls.h"
#include "pan/broker/smtp_settings.h"
#include "pan/broker/test_steps.h"

namespace mailroom::broker {
namespace {

namespace cv1 = ::mailroom::common::v1;

// The steps in the order they run.
constexpr v1::TestStepKind kStepOrder[] = {
    v1::TEST_STEP_KIND_PROXY,         v1::TEST_STEP_KIND_TOKEN_REQUEST,
    v1::TEST_STEP_KIND_TCP_CONNECT,   v1::TEST_STEP_KIND_STARTTLS,
    v1::TEST_STEP_KIND_AUTH_XOAUTH2,  v1::TEST_STEP_KIND_SEND_TEST_MESSAGE};

void SetAsn1Time(const ASN1_TIME* time, google::protobuf::Timestamp* out) {
  struct tm parsed = {};
  if (time != nullptr && ASN1_TIME_to_tm(time, &parsed) == 1) out->set_seconds(timegm(&parsed));
}

std::string NameOf(const X509_NAME* name) {
  crypto::BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr) return "";
  X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_ONELINE);
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, size);
}

// Which step a connection failure belongs to.
v1::TestStepKind StepOf(cv1::FailureCause cause) {
  switch (cause) {
    case cv1::FAILURE_CAUSE_CONNECT_TIMEOUT:
    case cv1::FAILURE_CAUSE_DNS_RESOLUTION_FAILED:
    case cv1::FAILURE_CAUSE_CONNECTION_REFUSED:
    case cv1::FAILURE_CAUSE_PROXY_CONNECTION_REFUSED:
    case cv1::FAILURE_CAUSE_PROXY_UNREACHABLE:
    case cv1::FAILURE_CAUSE_PROXY_AUTH_REQUIRED:
    case cv1::FAILURE_CAUSE_PROXY_AUTH_REJECTED:
    case cv1::FAILURE_CAUSE_PROXY_CONNECT_DENIED:
      return v1::TEST_STEP_KIND_TCP_CONNECT;
    case cv1::FAILURE_CAUSE_UNTRUSTED_CERTIFICATE_CHAIN:
    case cv1::FAILURE_CAUSE_CERTIFICATE_NAME_MISMATCH:
    case cv1::FAILURE_CAUSE_TLS_HANDSHAKE_FAILED:
    case cv1::FAILURE_CAUSE_STARTTLS_UNAVAILABLE:
      return v1::TEST_STEP_KIND_STARTTLS;
    default:
      return v1::TEST_STEP_KIND_AUTH_XOAUTH2;
  }
}


}  // namespace

absl::StatusOr<SmtpEndpoint> SmtpEndpointFor(const v1::SmtpSettings& resolved) {
  SmtpEndpoint endpoint;
  endpoint.host = resolved.smtp_host();
  endpoint.port = resolved.port();
  endpoint.connect_timeout = ConnectionTimeoutOf(resolved);
  endpoint.reply_timeout = ConnectionTimeoutOf(resolved);
  const v1::TrustStore& trust = resolved.smtp_trust_store();
  if (trust.source_case() == v1::TrustStore::kCaFile) endpoint.ca_file = trust.ca_file();
  if (trust.source_case() == v1::TrustStore::kCaBundlePem) endpoint.ca_pem = trust.ca_bundle_pem();
  endpoint.use_system_roots =
      !trust.exclude_system_roots() || trust.source_case() == v1::TrustStore::SOURCE_NOT_SET;
  endpoint.proxy = ProxyConfigOf(resolved);
  return endpoint;
}

std::vector<v1::CertificateInfo> DescribeChain(const std::vector<CertificateSummary>& chain) {
  std::vector<v1::CertificateInfo> out;
  for (size_t i = 0; i < chain.size(); ++i) {
    v1::CertificateInfo info;
    info.set_subject(chain[i].subject);
    info.set_issuer(chain[i].issuer);
    absl::StatusOr<crypto::X509Ptr> parsed = chain[i].pem.empty()
                                                 ? absl::NotFoundError("no PEM")
                                                 : crypto::ReadPemCertificate(chain[i].pem);
    if (parsed.ok()) {
      X509* x509 = parsed->get();
      info.set_subject(NameOf(X509_get_subject_name(x509)));
      info.set_issuer(NameOf(X509_get_issuer_name(x509)));
      SetAsn1Time(X509_get0_notBefore(x509), info.mutable_not_before());
      SetAsn1Time(X509_get0_notAfter(x509), info.mutable_not_after());
      unsigned char digest[SHA256_DIGEST_LENGTH];
      unsigned int length = 0;
      X509_digest(x509, EVP_sha256(), digest, &length);
      info.set_sha256_fingerprint(absl::BytesToHexString(
          absl::string_view(reinterpret_cast<const char*>(digest), length)));
      if (i == 0) {
        auto* names = static_cast<GENERAL_NAMES*>(
            X509_get_ext_d2i(x509, NID_subject_alt_name, nullptr, nullptr));
        for (int n = 0; names != nullptr && n < sk_GENERAL_NAME_num(names); ++n) {
          const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, n);
          if (name->type == GEN_DNS) {
            info.add_subject_alt_names(
                reinterpret_cast<const char*>(ASN1_STRING_get0_data(name->d.dNSName)));
          } else if (name->type == GEN_IPADD && name->d.iPAddress->length == 4) {
            const unsigned char* ip = name->d.iPAddress->data;
            info.add_subject_alt_names(absl::StrCat(ip[0], ".", ip[1], ".", ip[2], ".", ip[3]));
          }
        }
        GENERAL_NAMES_free(names);
      }
    }
    out.push_back(std::move(info));
  }
  return out;
}

std::string TestMessage(const std::string& mailbox, const std::string& recipient,
                        const std::string& message_id, absl::Time now) {
  return absl::StrCat(
      "From: <", mailbox, ">\r\n", "To: <", recipient, ">\r\n",
      "Subject: mailroom Test Connection\r\n",
      "Date: ", absl::FormatTime("%a, %d %b %Y %H:%M:%S +0000", now, absl::UTCTimeZone()), "\r\n",
      "Message-ID: <", message_id, ">\r\n", "MIME-Version: 1.0\r\n",
      "Content-Type: text/plain; charset=utf-8\r\n", "Content-Transfer-Encoding: 7bit\r\n", "\r\n",
      "This is a test message sent by mailroom's Test Connection from ", mailbox, ".\r\n",
      "If you received it, OAuth 2.0 (XOAUTH2) submission works.\r\n");
}

v1::TestConnectionReport SmtpConnectionTester::Run(const v1::SmtpSettings& resolved,
                                                   TokenClient* token_client,
                                                   const cv1::EmailAddress* recipient,
                                                   const Progress& progress,
                                                   const TakeMailboxShare& take_share) {
  v1::TestConnectionReport report;
  report.set_passed(true);
  const absl::Time start = clock_->Now();
  ToProto(start, report.mutable_start_time());
  StepRunner steps(clock_, progress, &report);
  auto finish = [&]() {
    ToProto(clock_->Now() - start, report.mutable_duration());
    report.set_message(report.passed()
                           ? absl::StrCat("Successfully tested the connection to the SMTP server ",
                                          resolved.smtp_host(), ":", resolved.port())
                           : report.diagnosis().title());
    return report;
  };
  auto skip_rest = [&](v1::TestStepKind after) {
    bool later = false;
    for (v1::TestStepKind kind : kStepOrder) {
      if (later && kind != v1::TEST_STEP_KIND_PROXY) steps.Skip(kind, "an earlier step failed");
      later = later || kind == after;
    }
  };

  // 0. The proxy, when there is one: a tunnel to each server it is used for.
  const ProxyConfig proxy = ProxyConfigOf(resolved);
  if (!proxy.url.empty()) {
    v1::TestStep* step = steps.Begin(v1::TEST_STEP_KIND_PROXY);
    const absl::Time t0 = clock_->Now();
    std::vector<std::pair<std::string, int>> targets;
    std::string token_host;
    int token_port = 0;
    if (token_client != nullptr &&
        HostAndPortOfUrl(resolved.token_endpoint(), &token_host, &token_port)) {
      targets.emplace_back(token_host, token_port);
    }
    targets.emplace_back(resolved.smtp_host(), resolved.port());
    std::vector<std::string> done;
    for (const auto& [host, port] : targets) {
      absl::StatusOr<std::string> tunnel =
          ProbeProxyTunnel(proxy, host, port, ConnectionTimeoutOf(resolved));
      if (!tunnel.ok()) {
        const Diagnosis diagnosis = DiagnosisOf(tunnel.status())
                                        .value_or(MakeDiagnosis(cv1::FAILURE_CAUSE_UNKNOWN,
                                                                tunnel.status().message()));
        steps.Fail(step, clock_->Now() - t0, diagnosis,
                   absl::StrCat("through proxy ", proxy.url, ": CONNECT ", HostForUrl(host), ":",
                                port, " failed"));
        skip_rest(v1::TEST_STEP_KIND_PROXY);
        return finish();
      }
      done.push_back(*std::move(tunnel));
    }
    steps.Pass(step, clock_->Now() - t0,
               absl::StrCat("through proxy ", proxy.url,
                            proxy.credentials.empty() ? "" : " (with its credentials)", ": ",
                            absl::StrJoin(done, "; ")));
  }

  // 1. Token.
  std::string token;
  if (token_client != nullptr) {
    v1::TestStep* step = steps.Begin(v1::TEST_STEP_KIND_TOKEN_REQUEST);
    const absl::Time t0 = clock_->Now();
    absl::StatusOr<AccessToken> fetched = token_client->Fetch();
    if (!fetched.ok()) {
      Diagnosis diagnosis = DiagnosisOf(fetched.status())
                                .value_or(MakeDiagnosis(cv1::FAILURE_CAUSE_UNKNOWN,
                                                        fetched.status().message()));
      // The token endpoint's chain, when it did not verify (as STARTTLS lists the SMTP server's).
      for (const v1::CertificateInfo& info : DescribeChain(PresentedChainOf(fetched.status()))) {
        *step->add_certificate_chain() = info;
      }
      steps.Fail(step, clock_->Now() - t0, diagnosis,
                 absl::StrCat("token request to ", resolved.token_endpoint(), " failed"));
      skip_rest(v1::TEST_STEP_KIND_TOKEN_REQUEST);
      return finish();
    }
    token = fetched->value;
    steps.Pass(step, clock_->Now() - t0,
               absl::StrCat("token issued by ", resolved.token_endpoint(), ", expires in ",
                            absl::ToInt64Seconds(fetched->expire_time - fetched->issue_time),
                            " s, fingerprint ", fetched->fingerprint.substr(0, 12), "…"));
  } else {
    steps.Skip(v1::TEST_STEP_KIND_TOKEN_REQUEST, "Use Authentication Settings is off");
  }

  // 2-4. TCP connect, STARTTLS, AUTH: one SMTP session, reported as three steps. The session
  // is closed when Run returns, before the mailbox's share is given back.
  const std::string where = absl::StrCat(resolved.smtp_host(), ":", resolved.port());
  v1::TestStep* connect_step = steps.Begin(v1::TEST_STEP_KIND_TCP_CONNECT);
  const absl::Time asked = clock_->Now();
  if (absl::Status share = take_share(recipient != nullptr); !share.ok()) {
    steps.Fail(connect_step, clock_->Now() - asked,
               DiagnosisOf(share).value_or(
                   MakeDiagnosis(cv1::FAILURE_CAUSE_UNKNOWN, share.message())),
               absl::StrCat("no connection opened to ", where, ": ", share.message()));
    skip_rest(v1::TEST_STEP_KIND_TCP_CONNECT);
    return finish();
  }
  absl::StatusOr<SmtpEndpoint> endpoint = SmtpEndpointFor(resolved);
  SmtpSession session(*endpoint, resolved.username());
  session.SetBearerToken(token);
  absl::StatusOr<ConnectReport> connected = session.Connect();
  const ConnectReport& seen = connected.ok() ? *connected : session.last_connect();
  const v1::TestStepKind failed =
      connected.ok() ? v1::TEST_STEP_KIND_UNSPECIFIED
                     : StepOf(DiagnosisOf(connected.status())
                                  .value_or(MakeDiagnosis(cv1::FAILURE_CAUSE_UNKNOWN))
                                  .cause());
  const Diagnosis failure =
      connected.ok() ? Diagnosis()
                     : DiagnosisOf(connected.status())
                           .value_or(MakeDiagnosis(cv1::FAILURE_CAUSE_UNKNOWN,
                                                   connected.status().message()));
  for (const std::string& line : seen.transcript) connect_step->add_transcript(line);
  if (failed == v1::TEST_STEP_KIND_TCP_CONNECT) {
    steps.Fail(connect_step, seen.tcp_connect, failure, absl::StrCat("cannot connect to ", where));
    skip_rest(v1::TEST_STEP_KIND_TCP_CONNECT);
    return finish();
  }
  steps.Pass(connect_step, seen.tcp_connect,
             absl::StrCat("connected to ", where,
                          seen.proxy.empty()
                              ? ""
                              : absl::StrCat(" through proxy ", seen.proxy, " (",
                                             seen.proxy_reply, ")"),
                          "; ", seen.greeting.raw));

  v1::TestStep* tls_step = steps.Begin(v1::TEST_STEP_KIND_STARTTLS);
  for (const v1::CertificateInfo& info : DescribeChain(seen.certificates)) {
    *tls_step->add_certificate_chain() = info;
  }
  if (failed == v1::TEST_STEP_KIND_STARTTLS) {
    std::string chain;
    for (const CertificateSummary& cert : seen.certificates) {
      absl::StrAppend(&chain, chain.empty() ? "" : "; ", "subject ", cert.subject, " issued by ",
                      cert.issuer);
    }
    steps.Fail(tls_step, seen.tls, failure,
               chain.empty() ? "STARTTLS failed" : absl::StrCat("server chain: ", chain));
    skip_rest(v1::TEST_STEP_KIND_STARTTLS);
    return finish();
  }
  steps.Pass(tls_step, seen.tls, "STARTTLS done, certificate chain verified");

  if (token.empty()) {
    steps.Skip(v1::TEST_STEP_KIND_AUTH_XOAUTH2, "Use Authentication Settings is off");
  } else {
    v1::TestStep* auth_step = steps.Begin(v1::TEST_STEP_KIND_AUTH_XOAUTH2);
    if (!connected.ok()) {
      steps.Fail(auth_step, seen.auth, failure,
                 absl::StrCat("AUTH XOAUTH2 as ", resolved.username(), " refused"));
      skip_rest(v1::TEST_STEP_KIND_AUTH_XOAUTH2);
      return finish();
    }
    steps.Pass(auth_step, seen.auth, seen.auth_reply.raw);
  }

  // 5. Test message.
  if (recipient == nullptr) {
    steps.Skip(v1::TEST_STEP_KIND_SEND_TEST_MESSAGE, "no test recipient given");
    return finish();
  }
  v1::TestStep* send_step = steps.Begin(v1::TEST_STEP_KIND_SEND_TEST_MESSAGE);
  const absl::Time t0 = clock_->Now();
  const std::string message_id =
      absl::StrCat("test-", absl::ToUnixMicros(t0), ".", resolved.username());
  SendResult sent = session.Send(resolved.username(), {recipient->address()},
                                 TestMessage(resolved.username(), recipient->address(),
                                             message_id, t0));
  for (const std::string& line : session.Transcript()) send_step->add_transcript(line);
  if (!sent.ok) {
    steps.Fail(send_step, clock_->Now() - t0, sent.diagnosis,
               absl::StrCat("test message to ", recipient->address(), " refused"));
    return finish();
  }
  report.set_test_message_id(message_id);
  steps.Pass(send_step, clock_->Now() - t0,
             absl::StrCat("test message to ", recipient->address(), " accepted: ", sent.reply.raw));
  session.Close();
  return finish();
}

}  // namespace mailroom::broker
