// mailroomctl outbox commands, against any sending node (pan, psn <n>, mnt):
//   outbox list NODE [--json]          newest entries and counts per state
//   outbox show NODE ID [--json]       one entry with its attempt history
//   outbox retry NODE ID               send a FAILED (or waiting) entry again now
// NODE is "pan", "mnt", or "psn" / "psnN" (the N-th of AdminClientConfig.psn_targets, 1-based).
#include <iostream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "cli/role_commands.h"
#include "common/rpc/status_grpc.h"
#include "proto/mailroom/common/v1/outbox.grpc.pb.h"

namespace mailroom::cli {
namespace {

namespace cv1 = ::mailroom::common::v1;

absl::StatusOr<std::string> TargetOf(const Admin& admin, const std::string& node) {
  if (node == "pan" && !admin.config.pan_target().empty()) return admin.config.pan_target();
  if (node == "mnt" && !admin.config.mnt_target().empty()) return admin.config.mnt_target();
  if (node.rfind("psn", 0) == 0 && admin.config.psn_targets_size() > 0) {
    int index = 1;
    if (node.size() > 3 && !absl::SimpleAtoi(node.substr(3), &index)) index = 0;
    if (index >= 1 && index <= admin.config.psn_targets_size()) {
      return admin.config.psn_targets(index - 1);
    }
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown node \"", node,
                                                 "\" (pan, mnt, psn1..psnN from the config)"));
}

std::string State(cv1::NotificationState state) {
  std::string name = cv1::NotificationState_Name(state);
  return name.substr(name.rfind('_') + 1);
}

std::string Time(const google::protobuf::Timestamp& t) {
  if (t.seconds() == 0) return "-";
  return absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::FromUnixSeconds(t.seconds()),
                          absl::UTCTimeZone());
}

void PrintEntry(const cv1::OutboxEntry& entry, bool history) {
  const cv1::Notification& n = entry.notification();
  std::cout << n.id() << "  " << State(n.state()) << "  attempts " << n.attempts() << "  "
            << Time(n.create_time()) << "  " << n.subject() << "\n";
  for (const cv1::Recipient& r : n.recipients()) std::cout << "    to " << r.address().address() << "\n";
  if (n.last_reply_code() != 0) {
    std::cout << "    last reply: " << n.last_reply_text() << "\n";
  }
  if (n.has_diagnosis()) {
    std::cout << "    " << n.diagnosis().title() << "\n    fix: " << n.diagnosis().fix() << "\n";
  }
  if (!entry.wait_reason().empty()) std::cout << "    " << entry.wait_reason() << "\n";
  if (!history) return;
  for (const cv1::DeliveryAttempt& a : entry.attempts()) {
    std::cout << "    attempt " << a.number() << " at " << Time(a.start_time()) << ": "
              << (a.reply_code() != 0 ? a.reply_text() : a.diagnosis().title()) << "\n";
  }
}

}  // namespace

absl::optional<int> RunOutboxCommand(const Admin& admin, const std::vector<std::string>& args) {
  if (args.size() < 3 || args[0] != "outbox") return absl::nullopt;
  absl::StatusOr<std::string> target = TargetOf(admin, args[2]);
  if (!target.ok()) return Fail(target.status());
  auto stub = cv1::OutboxAdmin::NewStub(admin.Channel(*target));
  grpc::ClientContext context;
  admin.SetDeadline(&context);
  if (args[1] == "list" && args.size() == 3) {
    cv1::ListOutboxRequest request;
    request.mutable_page()->set_page_size(50);
    cv1::ListOutboxResponse response;
    const grpc::Status status = stub->ListOutbox(&context, request, &response);
    if (!status.ok()) return Fail(FromGrpcStatus(status));
    if (JsonOutput()) {
      std::cout << ToJson(response) << "\n";
      return kExitOk;
    }
    const cv1::OutboxCounts& c = response.counts();
    std::cout << "queued " << c.queued() << ", sending " << c.sending() << ", sent " << c.sent()
              << ", failed " << c.failed() << "\n";
    for (const cv1::OutboxEntry& entry : response.entries()) PrintEntry(entry, false);
    return kExitOk;
  }
  if ((args[1] == "show" || args[1] == "retry") && args.size() == 4) {
    cv1::OutboxEntry entry;
    grpc::Status status;
    if (args[1] == "show") {
      cv1::GetOutboxEntryRequest request;
      request.set_id(args[3]);
      cv1::GetOutboxEntryResponse response;
      status = stub->GetOutboxEntry(&context, request, &response);
      entry = response.entry();
    } else {
      cv1::RetryOutboxEntryRequest request;
      request.set_id(args[3]);
      cv1::RetryOutboxEntryResponse response;
      status = stub->RetryOutboxEntry(&context, request, &response);
      entry = response.entry();
    }
    if (!status.ok()) return Fail(FromGrpcStatus(status));
    if (JsonOutput()) {
      std::cout << ToJson(entry) << "\n";
    } else {
      PrintEntry(entry, true);
    }
    return kExitOk;
  }
  std::cerr << "usage: outbox list NODE | outbox show NODE ID | outbox retry NODE ID\n";
  return kExitUsage;
}

}  // namespace mailroom::cli
