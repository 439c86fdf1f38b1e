#include "common/node/graph_submitter.h"

#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"

namespace mailroom {
namespace {

constexpr char kSystemBundle[] = "/etc/ssl/certs/ca-certificates.crt";

}  // namespace

GraphSubmitter::GraphSubmitter(std::unique_ptr<HttpTransport> transport, const Clock* clock,
                               GraphEndpoint endpoint, std::string mailbox)
    : transport_(std::move(transport)),
      client_(transport_.get(), clock, std::move(endpoint), std::move(mailbox)) {}

void GraphSubmitter::SetBearerToken(std::string token) {
  client_.SetBearerToken(std::move(token));
}

SendResult GraphSubmitter::Send(const std::string& /*envelope_from*/,
                                const std::vector<std::string>& recipients,
                                const std::string& message, absl::Duration time_limit) {
  return client_.Send(recipients, message, time_limit);
}

std::unique_ptr<HttpTransport> CurlTransportForGrant(const SubmissionGrant& grant) {
  CurlHttpTransport::Options options;
  options.ca_pem = grant.trust_pem;
  if (!options.ca_pem.empty() && grant.use_system_roots) {
    // An in-memory bundle replaces libcurl's default store: add the system's to it.
    std::ifstream system(kSystemBundle);
    std::stringstream roots;
    roots << system.rdbuf();
    options.ca_pem = absl::StrCat(roots.str(), "\n", options.ca_pem);
  }
  options.proxy = grant.proxy;
  return std::make_unique<CurlHttpTransport>(std::move(options));
}

SubmitterFactory TransportSubmitterFactory(const Clock* clock, SubmitterFactory smtp,
                                           HttpTransportFactory http) {
  return [clock, smtp = std::move(smtp),
          http = std::move(http)](const SubmissionGrant& grant) -> std::unique_ptr<MailSubmitter> {
    if (grant.transport != mailroom::broker::v1::MAIL_TRANSPORT_GRAPH) return smtp(grant);
    GraphEndpoint endpoint;
    if (!grant.graph_endpoint.empty()) endpoint.base_url = grant.graph_endpoint;
    if (grant.connection_timeout > absl::ZeroDuration()) {
      endpoint.request_timeout = grant.connection_timeout;
    }
    return std::make_unique<GraphSubmitter>(http(grant), clock, std::move(endpoint),
                                            grant.mailbox);
  };
}

}  // namespace mailroom
