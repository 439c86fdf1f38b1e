#include "pan/broker/graph_connection_tester.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/base/diagnosis.h"
#include "common/base/proto_time.h"
#include "common/mail/graph_client.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "pan/broker/smtp_connection_tester.h"
#include "pan/broker/smtp_settings.h"
#include "pan/broker/test_steps.h"

namespace mailroom::broker {
namespace {

namespace cv1 = ::mailroom::common::v1;

constexpr char kMailSend[] = "Mail.Send";

}  // namespace

absl::optional<std::vector<std::string>> RolesOfToken(const std::string& token) {
  const std::vector<std::string> parts = absl::StrSplit(token, '.');
  std::string payload;
  if (parts.size() != 3 || !absl::WebSafeBase64Unescape(parts[1], &payload)) return absl::nullopt;
  google::protobuf::Struct claims;
  if (!google::protobuf::util::JsonStringToMessage(payload, &claims).ok()) return absl::nullopt;
  std::vector<std::string> roles;
  auto it = claims.fields().find("roles");
  if (it == claims.fields().end()) return roles;
  for (const google::protobuf::Value& role : it->second.list_value().values()) {
    roles.push_back(role.string_value());
  }
  return roles;
}

GraphConnectionTester::GraphConnectionTester(ConnectionTester* smtp,
                                             TokenClientFactory token_clients,
                                             TransportFactory transports, const Clock* clock)
    : smtp_(smtp),
      token_clients_(std::move(token_clients)),
      transports_(std::move(transports)),
      clock_(clock) {}

v1::TestConnectionReport GraphConnectionTester::Run(const v1::SmtpSettings& resolved,
                                                    TokenClient* token_client,
                                                    const cv1::EmailAddress* recipient,
                                                    const Progress& progress,
                                                    const TakeMailboxShare& take_share) {
  if (resolved.transport() != v1::MAIL_TRANSPORT_GRAPH) {
    return smtp_->Run(resolved, token_client, recipient, progress, take_share);
  }
  v1::TestConnectionReport report;
  report.set_passed(true);
  const absl::Time start = clock_->Now();
  ToProto(start, report.mutable_start_time());
  StepRunner steps(clock_, progress, &report);
  auto finish = [&](v1::TestStepKind failed) {
    bool later = false;
    for (v1::TestStepKind kind : {v1::TEST_STEP_KIND_TOKEN_REQUEST,
                                  v1::TEST_STEP_KIND_GRAPH_MAILBOX,
                                  v1::TEST_STEP_KIND_SEND_TEST_MESSAGE}) {
      if (later) steps.Skip(kind, "an earlier step failed");
      later = later || kind == failed;
    }
    ToProto(clock_->Now() - start, report.mutable_duration());
    return report;
  };

  // 1. A token for Graph, from the same credential.
  v1::TestStep* step = steps.Begin(v1::TEST_STEP_KIND_TOKEN_REQUEST);
  absl::Time t0 = clock_->Now();
  v1::SmtpSettings for_graph = resolved;
  for_graph.set_scope(kGraphScope);
  absl::StatusOr<std::unique_ptr<TokenClient>> client = token_clients_(for_graph);
  absl::StatusOr<AccessToken> token =
      client.ok() ? (*client)->Fetch() : absl::StatusOr<AccessToken>(client.status());
  if (!token.ok()) {
    const Diagnosis diagnosis = DiagnosisOf(token.status())
                                    .value_or(MakeDiagnosis(cv1::FAILURE_CAUSE_UNKNOWN,
                                                            token.status().message()));
    for (const v1::CertificateInfo& info : DescribeChain(PresentedChainOf(token.status()))) {
      *step->add_certificate_chain() = info;
    }
    steps.Fail(step, clock_->Now() - t0, diagnosis,
               absl::StrCat("token request for ", kGraphScope, " to ",
                            resolved.token_endpoint(), " failed"));
    return finish(v1::TEST_STEP_KIND_TOKEN_REQUEST);
  }
  const absl::optional<std::vector<std::string>> roles = RolesOfToken(token->value);
  std::string roles_text = "an opaque token (its roles are checked by Graph in the next step)";
  if (roles.has_value()) {
    if (std::find(roles->begin(), roles->end(), kMailSend) == roles->end()) {
      const std::string seen = roles->empty() ? "no roles claim"
                                              : absl::StrCat("roles ", absl::StrJoin(*roles, ", "));
      steps.Fail(step, clock_->Now() - t0,
                 MakeDiagnosis(cv1::FAILURE_CAUSE_GRAPH_MAIL_SEND_NOT_GRANTED, seen),
                 absl::StrCat("the Graph token has ", seen, ": Mail.Send is not granted"));
      return finish(v1::TEST_STEP_KIND_TOKEN_REQUEST);
    }
    roles_text = absl::StrCat("roles claim: ", absl::StrJoin(*roles, ", "));
  }
  steps.Pass(step, clock_->Now() - t0,
             absl::StrCat("token for ", kGraphScope, " issued by ", resolved.token_endpoint(),
                          ", expires in ",
                          absl::ToInt64Seconds(token->expire_time - token->issue_time),
                          " s, fingerprint ", token->fingerprint.substr(0, 12), "…; ",
                          roles_text));

  // 2. The mailbox through Graph, sending nothing.
  step = steps.Begin(v1::TEST_STEP_KIND_GRAPH_MAILBOX);
  t0 = clock_->Now();
  if (absl::Status share = take_share(recipient != nullptr); !share.ok()) {
    steps.Fail(step, clock_->Now() - t0,
               DiagnosisOf(share).value_or(MakeDiagnosis(cv1::FAILURE_CAUSE_UNKNOWN,
                                                         share.message())),
               "no share of the mailbox's limits for the test");
    return finish(v1::TEST_STEP_KIND_GRAPH_MAILBOX);
  }
  std::unique_ptr<HttpTransport> transport = transports_(resolved);
  GraphEndpoint endpoint;
  endpoint.base_url = resolved.graph_endpoint();
  endpoint.request_timeout = ConnectionTimeoutOf(resolved);
  GraphMailClient graph(transport.get(), clock_, endpoint, resolved.username());
  graph.SetBearerToken(token->value);
  const SendResult probe = graph.Send({}, "");
  if (probe.reply.code != 400) {
    Diagnosis diagnosis = probe.diagnosis;
    if (probe.ok) {  // Graph took an empty message: not Graph as documented
      diagnosis = MakeDiagnosis(cv1::FAILURE_CAUSE_UNKNOWN, probe.reply.raw);
    }
    steps.Fail(step, clock_->Now() - t0, diagnosis,
               absl::StrCat("POST ", graph.url(), ": ", probe.reply.raw));
    return finish(v1::TEST_STEP_KIND_GRAPH_MAILBOX);
  }
  steps.Pass(step, clock_->Now() - t0,
             absl::StrCat("mailbox ", resolved.username(), " reachable at ", graph.url(),
                          " (an empty probe message was refused, as expected: ",
                          probe.reply.raw, ")"));

  // 3. The test message.
  if (recipient == nullptr) {
    steps.Skip(v1::TEST_STEP_KIND_SEND_TEST_MESSAGE, "no test recipient given");
    ToProto(clock_->Now() - start, report.mutable_duration());
    return report;
  }
  step = steps.Begin(v1::TEST_STEP_KIND_SEND_TEST_MESSAGE);
  t0 = clock_->Now();
  const std::string message_id =
      absl::StrCat("test-", absl::ToUnixMicros(t0), ".", resolved.username());
  const SendResult sent =
      graph.Send({recipient->address()},
                 TestMessage(resolved.username(), recipient->address(), message_id, t0));
  if (!sent.ok) {
    steps.Fail(step, clock_->Now() - t0, sent.diagnosis,
               absl::StrCat("test message to ", recipient->address(), " refused"));
    return finish(v1::TEST_STEP_KIND_SEND_TEST_MESSAGE);
  }
  report.set_test_message_id(message_id);
  steps.Pass(step, clock_->Now() - t0,
             absl::StrCat("test message to ", recipient->address(), " accepted by Graph: ",
                          sent.reply.raw));
  ToProto(clock_->Now() - start, report.mutable_duration());
  return report;
}

}  // namespace mailroom::broker
