// Provides ConnectionTester, the interface of Test Connection: run the seed's checks step by
// step on resolved settings (token request → TCP connect → STARTTLS and certificate
// verification → AUTH XOAUTH2 → optionally a test message), reporting each step as it
// starts and ends. The broker injects the implementation (SmtpConnectionTester in
// production, a fake in unit tests).
#ifndef MAILROOM_PAN_BROKER_CONNECTION_TESTER_H_
#define MAILROOM_PAN_BROKER_CONNECTION_TESTER_H_

#include <functional>

#include "pan/broker/token_client.h"
#include "proto/mailroom/broker/v1/broker.pb.h"
#include "proto/mailroom/common/v1/common.pb.h"

namespace mailroom::broker {

class ConnectionTester {
 public:
  using Progress = std::function<void(const mailroom::broker::v1::TestStep&)>;
  virtual ~ConnectionTester() = default;

  // Runs the steps. `token_client` fetches from the token endpoint (never a cache);
  // `recipient` may be null (no test message). The report's test_id is left empty for the
  // caller to fill. Implementations must be thread-safe.
  virtual mailroom::broker::v1::TestConnectionReport Run(
      const mailroom::broker::v1::SmtpSettings& resolved, TokenClient* token_client,
      const mailroom::common::v1::EmailAddress* recipient, const Progress& progress) = 0;
};

}  // namespace mailroom::broker

#endif  // MAILROOM_PAN_BROKER_CONNECTION_TESTER_H_
