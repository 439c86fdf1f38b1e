// Provides GraphSubmitter, the MailSubmitter of the Microsoft Graph transport (a
// GraphMailClient, common/mail/graph_client.h, over an HttpTransport of its own), and
// TransportSubmitterFactory, the factory role nodes use: it makes a Graph submitter when the
// broker's grant is for Graph (SubmissionGrant.transport) and an SMTP one otherwise, so the
// DeliveryWorker (permits, outcomes, retries, 401 → fresh token and one retry) is the same
// for both transports. A grant with another transport or endpoint comes with another settings
// etag, on which the worker makes its submitters anew.
// GraphSubmitter is NOT thread-safe (one per delivery connection); the factory is.
#ifndef MAILROOM_COMMON_NODE_GRAPH_SUBMITTER_H_
#define MAILROOM_COMMON_NODE_GRAPH_SUBMITTER_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/base/clock.h"
#include "common/mail/graph_client.h"
#include "common/node/broker_client.h"
#include "common/node/delivery_worker.h"
#include "common/rpc/http_transport.h"

namespace mailroom {

class GraphSubmitter final : public MailSubmitter {
 public:
  // `clock` must outlive the submitter.
  GraphSubmitter(std::unique_ptr<HttpTransport> transport, const Clock* clock,
                 GraphEndpoint endpoint, std::string mailbox);

  void SetBearerToken(std::string token) override;
  // `envelope_from` is not sent: Graph sends as the mailbox of the URL and checks the
  // message's From header against it (ErrorSendAsDenied).
  SendResult Send(const std::string& envelope_from, const std::vector<std::string>& recipients,
                  const std::string& message, absl::Duration time_limit) override;
  // Nothing to close: each request is one HTTPS exchange.
  void Close() override {}

 private:
  std::unique_ptr<HttpTransport> transport_;
  GraphMailClient client_;
};

// Makes the HTTP transport of a Graph submitter for a grant.
using HttpTransportFactory =
    std::function<std::unique_ptr<HttpTransport>(const SubmissionGrant& grant)>;

// The production HttpTransportFactory: libcurl trusting the grant's CA bundle (with the
// system's roots unless the grant excludes them), through the grant's proxy.
std::unique_ptr<HttpTransport> CurlTransportForGrant(const SubmissionGrant& grant);

// A Graph submitter for a Graph grant (its graph_endpoint, its connection_timeout as the
// request timeout), else what `smtp` makes. `clock` must outlive every submitter.
SubmitterFactory TransportSubmitterFactory(const Clock* clock, SubmitterFactory smtp,
                                           HttpTransportFactory http = CurlTransportForGrant);

}  // namespace mailroom

#endif  // MAILROOM_COMMON_NODE_GRAPH_SUBMITTER_H_
