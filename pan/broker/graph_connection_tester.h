// Provides GraphConnectionTester, Test Connection for a mailbox whose transport is Microsoft
// Graph (SmtpSettings.transport = GRAPH), step by step:
//   TOKEN_REQUEST      a token for https://graph.microsoft.com/.default from the same credential;
//                      when it is a JWT (Entra's are), its roles claim must list Mail.Send
//                      (else GRAPH_MAIL_SEND_NOT_GRANTED, before anything is sent to Graph);
//   GRAPH_MAILBOX      the mailbox through Graph without sending: a sendMail with an empty body,
//                      which Graph refuses with 400 only once the token, the permission, an
//                      application access policy and the mailbox are accepted (any other
//                      answer is diagnosed as a delivery would be: ClassifyGraphResponse);
//   SEND_TEST_MESSAGE  with a test recipient, the test message through Graph (202).
// It takes the mailbox's share of the send ledger before the probe, as the SMTP tester does
// before it connects. Settings with another transport are tested by the SMTP tester it wraps.
// Thread-safe (each run makes its own token client and transport).
#ifndef MAILROOM_PAN_BROKER_GRAPH_CONNECTION_TESTER_H_
#define MAILROOM_PAN_BROKER_GRAPH_CONNECTION_TESTER_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/types/optional.h"
#include "common/base/clock.h"
#include "common/rpc/http_transport.h"
#include "pan/broker/broker.h"
#include "pan/broker/connection_tester.h"

namespace mailroom::broker {

class GraphConnectionTester final : public ConnectionTester {
 public:
  // The HTTPS transport to Graph for resolved settings (trust store and proxy).
  using TransportFactory =
      std::function<std::unique_ptr<HttpTransport>(const v1::SmtpSettings& resolved)>;

  // `smtp` and `clock` must outlive the tester.
  GraphConnectionTester(ConnectionTester* smtp, TokenClientFactory token_clients,
                        TransportFactory transports, const Clock* clock);

  v1::TestConnectionReport Run(const v1::SmtpSettings& resolved, TokenClient* token_client,
                               const mailroom::common::v1::EmailAddress* recipient,
                               const Progress& progress,
                               const TakeMailboxShare& take_share) override;

 private:
  ConnectionTester* const smtp_;
  const TokenClientFactory token_clients_;
  const TransportFactory transports_;
  const Clock* const clock_;
};

// The roles claim of a JWT access token ("Mail.Send", ...); nullopt when the token is not a
// JWT whose payload can be read (an opaque token), an empty list when it has no roles claim.
absl::optional<std::vector<std::string>> RolesOfToken(const std::string& token);

}  // namespace mailroom::broker

#endif  // MAILROOM_PAN_BROKER_GRAPH_CONNECTION_TESTER_H_
