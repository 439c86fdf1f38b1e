// Provides the one way a mailroomctl command calls a service: the target from the admin
// configuration, a stub on a channel with the admin's certificate, the admin's deadline, the
// call, its grpc::Status as an absl::Status, and the output: the response as JSON (protobuf
// JSON mapping) with --json, text for people otherwise, or the error on stderr, giving the
// exit code. A command is then a request, a Call and a printer:
//
//   return Report(Call(admin, MntTarget(admin), &mv1::Alarms::Stub::ListAlarms, request),
//                 PrintAlarms);
//
// Stateless; thread-compatible (the output goes to std::cout / std::cerr).
#ifndef MAILROOM_CLI_COMMAND_CALL_H_
#define MAILROOM_CLI_COMMAND_CALL_H_

#include <string>
#include <type_traits>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cli/admin_context.h"
#include "common/base/status_macros.h"
#include "common/rpc/status_grpc.h"

namespace mailroom::cli {

// The targets of AdminClientConfig; an error names the missing field. With several brokers
// (broker_targets), BrokerTarget is the one that leads (health SERVING), asked each time;
// UNAVAILABLE naming each broker's answer when none does.
absl::StatusOr<Target> BrokerTarget(const Admin& admin);
// Every configured broker: "broker", or broker1..brokerN with broker_targets.
std::vector<Target> BrokerTargets(const Admin& admin);
absl::StatusOr<Target> PanTarget(const Admin& admin);
absl::StatusOr<Target> MntTarget(const Admin& admin);
// psn1..psnN, in the order of psn_targets (possibly none).
std::vector<Target> PsnTargets(const Admin& admin);
// A sending node by name: "pan", "mnt", or "psn" / "psnN" (1-based; "psn" is psn1).
absl::StatusOr<Target> NodeTarget(const Admin& admin, const std::string& node);
// Which of `targets` stand by: brokers that are not serving while another broker serves (with
// several brokers one leads and the others are NOT_SERVING by design). `serving[i]` says
// whether targets[i] answered SERVING.
std::vector<bool> StandbyBrokers(const std::vector<Target>& targets,
                                 const std::vector<bool>& serving);
// Every node the admin configuration names: the broker(s), pan, psn1..psnN, mnt (those set).
std::vector<Target> ConfiguredTargets(const Admin& admin);

// The deadline of a probe (health, status): not the admin's rpc_timeout, so that a hung node
// is reported DOWN quickly.
inline constexpr absl::Duration kProbeTimeout = absl::Seconds(5);

template <typename Stub, typename Request, typename Response>
using UnaryMethod = grpc::Status (Stub::*)(grpc::ClientContext*, const Request&, Response*);

// One unary call with a deadline of the admin's rpc_timeout (or `timeout`, if not zero).
template <typename Stub, typename Request, typename Response>
absl::StatusOr<Response> Call(const Admin& admin, const Target& target,
                              UnaryMethod<Stub, Request, Response> method,
                              const Request& request,
                              absl::Duration timeout = absl::ZeroDuration()) {
  MR_ASSIGN_OR_RETURN(std::shared_ptr<grpc::Channel> channel, admin.Channel(target));
  Stub stub(channel);
  grpc::ClientContext context;
  if (timeout == absl::ZeroDuration()) {
    admin.SetDeadline(&context);
  } else {
    context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  }
  Response response;
  MR_RETURN_IF_ERROR(FromGrpcStatus((stub.*method)(&context, request, &response)));
  return response;
}

template <typename Stub, typename Request, typename Response>
absl::StatusOr<Response> Call(const Admin& admin, const absl::StatusOr<Target>& target,
                              UnaryMethod<Stub, Request, Response> method,
                              const Request& request) {
  MR_RETURN_IF_ERROR(target.status());
  return Call(admin, *target, method, request);
}

// A List call repeated page by page (1000 a page) until the last; the pages are merged into
// one response (repeated fields appended) without a next_page_token.
template <typename Stub, typename Request, typename Response>
absl::StatusOr<Response> CallAllPages(const Admin& admin, const absl::StatusOr<Target>& target,
                                      UnaryMethod<Stub, Request, Response> method,
                                      Request request) {
  MR_RETURN_IF_ERROR(target.status());
  request.mutable_page()->set_page_size(1000);
  Response all;
  do {
    MR_ASSIGN_OR_RETURN(Response page, Call(admin, *target, method, request));
    all.MergeFrom(page);
    request.mutable_page()->set_page_token(page.page().next_page_token());
  } while (!request.page().page_token().empty());
  all.mutable_page()->clear_next_page_token();
  return all;
}

// What a command prints of a successful response, `part(response)`, or the error.
template <typename Response, typename Part>
auto PartOf(const absl::StatusOr<Response>& response, Part part)
    -> absl::StatusOr<std::decay_t<decltype(part(*response))>> {
  MR_RETURN_IF_ERROR(response.status());
  return part(*response);
}

// Prints `message` as JSON on one line of standard output (the JSON itself spans lines).
void PrintJson(const google::protobuf::Message& message);

// The end of a command: an error is printed (Fail) and gives kExitFailed; otherwise the
// response is printed, as JSON with --json, else by `print(response)`, and gives kExitOk.
template <typename Response, typename Print>
int Report(const absl::StatusOr<Response>& response, Print print) {
  if (!response.ok()) return Fail(response.status());
  if (JsonOutput()) {
    PrintJson(*response);
  } else {
    print(*response);
  }
  return kExitOk;
}

}  // namespace mailroom::cli

#endif  // MAILROOM_CLI_COMMAND_CALL_H_
