// mailroomctl outbox commands, against any sending node (pan, psn <n>, mnt):
//   outbox list NODE [--json]          newest entries and counts per state
//   outbox show NODE ID [--json]       one entry with its attempt history
//   outbox retry NODE ID               send a FAILED (or waiting) entry again now
// NODE is "pan", "mnt", or "psn" / "psnN" (the N-th of AdminClientConfig.psn_targets, 1-based).
#include <iostream>

#include "cli/command_call.h"
#include "cli/proto_words.h"
#include "cli/role_commands.h"
#include "proto/mailroom/common/v1/outbox.grpc.pb.h"

namespace mailroom::cli {
namespace {

namespace cv1 = ::mailroom::common::v1;
using Stub = cv1::OutboxAdmin::Stub;

constexpr char kUsage[] = "usage: outbox list NODE | outbox show NODE ID | outbox retry NODE ID\n";

std::string State(cv1::NotificationState state) {
  std::string name = cv1::NotificationState_Name(state);
  return name.substr(name.rfind('_') + 1);
}

std::string Time(const google::protobuf::Timestamp& t) {
  return FormatTimestamp(t, "%Y-%m-%d %H:%M:%S");
}

void PrintEntry(const cv1::OutboxEntry& entry, bool history) {
  const cv1::Notification& n = entry.notification();
  std::cout << n.id() << "  " << State(n.state()) << "  attempts " << n.attempts() << "  "
            << Time(n.create_time()) << "  " << n.subject() << "\n";
  for (const cv1::Recipient& r : n.recipients()) {
    std::cout << "    to " << r.address().address() << "\n";
  }
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

int List(const Admin& admin, const Arguments& args) {
  cv1::ListOutboxRequest request;
  request.mutable_page()->set_page_size(50);
  return Report(Call(admin, NodeTarget(admin, args.positional()[0]), &Stub::ListOutbox, request),
                [](const cv1::ListOutboxResponse& response) {
                  const cv1::OutboxCounts& c = response.counts();
                  std::cout << "queued " << c.queued() << ", sending " << c.sending()
                            << ", sent " << c.sent() << ", failed " << c.failed() << "\n";
                  for (const cv1::OutboxEntry& entry : response.entries()) {
                    PrintEntry(entry, false);
                  }
                });
}

// show and retry: a request with the id, a response with the entry (what --json prints too).
template <typename Request, typename Response>
int OneEntry(const Admin& admin, const Arguments& args,
             UnaryMethod<Stub, Request, Response> method) {
  Request request;
  request.set_id(args.positional()[1]);
  return Report(PartOf(Call(admin, NodeTarget(admin, args.positional()[0]), method, request),
                       [](const Response& response) { return response.entry(); }),
                [](const cv1::OutboxEntry& entry) { PrintEntry(entry, true); });
}

int Show(const Admin& admin, const Arguments& args) {
  return OneEntry(admin, args, &Stub::GetOutboxEntry);
}

int Retry(const Admin& admin, const Arguments& args) {
  return OneEntry(admin, args, &Stub::RetryOutboxEntry);
}

}  // namespace

const CommandGroup& OutboxCommands() {
  static const CommandGroup* const group = new CommandGroup{
      {"outbox"},
      kUsage,
      {
          {"outbox list", {{}, {}, {"NODE"}, 1}, List},
          {"outbox show", {{}, {}, {"NODE", "ID"}, 2}, Show},
          {"outbox retry", {{}, {}, {"NODE", "ID"}, 2}, Retry},
      }};
  return *group;
}

}  // namespace mailroom::cli
