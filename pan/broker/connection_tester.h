// Provides ConnectionTester, the interface of Test Connection: run the seed's checks step by
// step on resolved settings (token request → TCP connect → STARTTLS and certificate
// verification → AUTH XOAUTH2 → optionally a test message), reporting each step as it
// starts and ends. Its connection and test message count against the mailbox like the nodes'
// (pan/broker/send_quota.h): the tester asks for its share before it connects. The broker injects the implementation (SmtpConnectionTester in
// production, a fake in unit tests).
#ifndef MAILROOM_PAN_BROKER_CONNECTION_TESTER_H_
#define MAILROOM_PAN_BROKER_CONNECTION_TESTER_H_

#include <functional>

#include "absl/status/status.h"

#include "pan/broker/token_client.h"
#include "proto/mailroom/broker/v1/broker.pb.h"
#include "proto/mailroom/common/v1/common.pb.h"

namespace mailroom::broker {

class ConnectionTester {
 public:
  using Progress = std::function<void(const mailroom::broker::v1::TestStep&)>;
  // Asked once, just before the SMTP connection is opened (the TCP connect step is running),
  // with whether a test message will be sent: OK means the mailbox's connection slot (and
  // message permit) are held for this run until it returns, and the connection must be closed
  // by then; an error carries the Diagnosis to fail the TCP connect step with, and nothing is
  // opened.
  using TakeMailboxShare = std::function<absl::Status(bool with_message)>;
  virtual ~ConnectionTester() = default;

  // Runs the steps. `token_client` fetches from the token endpoint (never a cache);
  // `recipient` may be null (no test message). The report's test_id is left empty for the
  // caller to fill. Implementations must be thread-safe.
  virtual mailroom::broker::v1::TestConnectionReport Run(
      const mailroom::broker::v1::SmtpSettings& resolved, TokenClient* token_client,
      const mailroom::common::v1::EmailAddress* recipient, const Progress& progress,
      const TakeMailboxShare& take_share) = 0;
};

}  // namespace mailroom::broker

#endif  // MAILROOM_PAN_BROKER_CONNECTION_TESTER_H_
