// Provides SmtpConnectionTester, the real Test Connection: with a proxy configured, first a
// CONNECT tunnel through it to the token endpoint and to the SMTP server; then a fresh token
// from the token endpoint, then a real SMTP session (TCP connect, STARTTLS with chain
// verification, AUTH XOAUTH2) and optionally a test message, each reported as a step with its
// timing, the server's replies, the redacted dialogue, and on a certificate failure (of the
// token endpoint or the SMTP server) the chain the server presented. Thread-safe (each run
// uses its own session).
#ifndef MAILROOM_PAN_BROKER_SMTP_CONNECTION_TESTER_H_
#define MAILROOM_PAN_BROKER_SMTP_CONNECTION_TESTER_H_

#include <string>
#include <vector>

#include "common/base/clock.h"
#include "common/mail/smtp_client.h"
#include "pan/broker/connection_tester.h"

namespace mailroom::broker {

class SmtpConnectionTester final : public ConnectionTester {
 public:
  explicit SmtpConnectionTester(const Clock* clock) : clock_(clock) {}

  v1::TestConnectionReport Run(const v1::SmtpSettings& resolved, TokenClient* token_client,
                               const mailroom::common::v1::EmailAddress* recipient,
                               const Progress& progress,
                               const TakeMailboxShare& take_share) override;

 private:
  const Clock* clock_;
};

// The SMTP endpoint for resolved settings (trust store and proxy included).
absl::StatusOr<SmtpEndpoint> SmtpEndpointFor(const v1::SmtpSettings& resolved);

// Details of PEM certificates for a report (subject, issuer, validity, SHA-256, SANs).
std::vector<v1::CertificateInfo> DescribeChain(const std::vector<CertificateSummary>& chain);

// A plain-text test message (RFC 5322, CRLF) from `mailbox` to `recipient`.
std::string TestMessage(const std::string& mailbox, const std::string& recipient,
                        const std::string& message_id, absl::Time now);

}  // namespace mailroom::broker

#endif  // MAILROOM_PAN_BROKER_SMTP_CONNECTION_TESTER_H_
