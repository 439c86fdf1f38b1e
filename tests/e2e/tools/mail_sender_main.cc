// mail_sender: a stand-in role node for the delivery end-to-end tests. It owns a durable
// outbox, optionally queues N numbered messages into it (recording each acknowledged id in an
// ack file only after Enqueue returned), and runs the real delivery worker against the real
// broker and MTA until the outbox is drained or it is killed.
//
//   mail_sender --outbox=F --broker=HOST:PORT --certs=DIR --node=psn1 --from=MAILBOX
//               [--enqueue=N --to=ADDR --ack_file=F --dump_dir=D] [--exit_when_drained]
//               [--status_file=F]
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>

#include <grpcpp/grpcpp.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/node/alarm_reporter.h"
#include "common/node/broker_client.h"
#include "common/base/clock.h"
#include "common/node/delivery_worker.h"
#include "common/base/logging.h"
#include "common/mail/mime_message.h"
#include "common/outbox/outbox.h"
#include "common/rpc/tls.h"

ABSL_FLAG(std::string, outbox, "", "outbox file");
ABSL_FLAG(std::string, broker, "", "broker host:port");
ABSL_FLAG(std::string, certs, "", "gen-certs.sh directory");
ABSL_FLAG(std::string, node, "psn1", "node name (certificate)");
ABSL_FLAG(std::string, from, "", "From address (the mailbox)");
ABSL_FLAG(int, enqueue, 0, "messages to queue");
ABSL_FLAG(int, first, 0, "number of the first message");
ABSL_FLAG(std::string, to, "", "recipient");
ABSL_FLAG(std::string, ack_file, "", "append each acknowledged notification id here");
ABSL_FLAG(std::string, dump_dir, "", "write each queued message's bytes here as <n>.eml");
ABSL_FLAG(bool, exit_when_drained, false, "exit 0 once nothing is QUEUED or SENDING");
ABSL_FLAG(int, connections, 3, "SMTP connections");
ABSL_FLAG(int, backoff_ms, 1000, "first retry delay");
ABSL_FLAG(int, lifetime_s, 86400, "retry lifetime in seconds");
ABSL_FLAG(int, offline_grace_s, 75,
          "seconds without a leading broker before the offline allowance (DeliveryOptions)");
ABSL_FLAG(int, enqueue_delay_ms, 0,
          "wait this long after starting delivery before queuing (tokens are cached by then)");
ABSL_FLAG(bool, deliver, true, "run the delivery worker (false: only queue, then exit)");
ABSL_FLAG(std::string, status_file, "",
          "while delivering, rewrite this file every 100 ms (atomically): one line "
          "\"queued=N sending=N sent=N failed=N\" (+ \" token_broker_calls=N\" in the last one, "
          "written when drained), then \"wait N <reason>\" per distinct wait reason of the "
          "QUEUED entries");

namespace mailroom {
namespace {

// --status_file: what the outbox holds right now, for tests that watch a running sender.
// `tokens` only once it is stopped: broker_calls() waits on its lock, which a token fetch holds
// for the whole broker RPC (up to its 10 s deadline while the broker is unreachable).
void WriteStatus(const std::string& path, const Outbox& outbox,
                 const BrokerTokenSource* tokens = nullptr) {
  absl::StatusOr<common::v1::OutboxCounts> counts = outbox.Counts();
  if (!counts.ok()) return;
  std::map<std::string, int> waits;
  if (counts->queued() > 0) {
    common::v1::ListOutboxRequest list;
    list.add_states(common::v1::NOTIFICATION_STATE_QUEUED);
    list.mutable_page()->set_page_size(1000);
    absl::StatusOr<common::v1::ListOutboxResponse> entries = outbox.List(list);
    if (entries.ok()) {
      for (const common::v1::OutboxEntry& entry : entries->entries()) {
        std::string reason = entry.wait_reason().empty() ? "(due now)" : entry.wait_reason();
        // "... until 2026-01-02T03:04:05Z ..." differs per entry: tally by the rest.
        if (size_t at = reason.find(" until "); at != std::string::npos) {
          size_t end = std::min(reason.find(' ', at + 7), reason.size());
          if (reason[end - 1] == ':') --end;  // "until <time>: <diagnosis>"
          reason.replace(at + 7, end - at - 7, "T");
        }
        ++waits[reason];
      }
    }
  }
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << "queued=" << counts->queued() << " sending=" << counts->sending()
        << " sent=" << counts->sent() << " failed=" << counts->failed();
    if (tokens != nullptr) out << " token_broker_calls=" << tokens->broker_calls();
    out << "\n";
    for (const auto& [reason, n] : waits) out << "wait " << n << " " << reason << "\n";
  }
  std::rename(tmp.c_str(), path.c_str());
}

int Run() {
  Logging::SetDefaultLevel(LogLevel::kInfo);
  RealClock& clock = RealClock::Get();
  const std::string node = absl::GetFlag(FLAGS_node);
  const std::string certs = absl::GetFlag(FLAGS_certs);
  OutboxOptions options;
  options.node_name = node;
  options.backoff_initial = absl::Milliseconds(absl::GetFlag(FLAGS_backoff_ms));
  options.backoff_max = absl::Seconds(5);
  options.retry_lifetime = absl::Seconds(absl::GetFlag(FLAGS_lifetime_s));
  absl::StatusOr<std::unique_ptr<Outbox>> outbox =
      Outbox::Open(absl::GetFlag(FLAGS_outbox), &clock, options);
  if (!outbox.ok()) {
    std::cerr << "mail_sender: " << outbox.status() << "\n";
    return 1;
  }
  auto credentials = MakeChannelCredentials(
      {certs + "/ca.pem", certs + "/" + node + ".pem", certs + "/" + node + ".key"},
      mailroom::Role::kBroker);
  if (!credentials.ok()) {
    std::cerr << "mail_sender: " << credentials.status() << "\n";
    return 1;
  }
  auto channel = grpc::CreateChannel(absl::GetFlag(FLAGS_broker), *credentials);
  auto stub = broker::v1::TokenBroker::NewStub(channel);
  BrokerEndpoints brokers(stub.get(), absl::GetFlag(FLAGS_broker));
  BrokerTokenSource tokens(&brokers, &clock, BrokerTokenSource::Options{node});
  BrokerPermits permits(&brokers, node);
  LoggingAlarmReporter alarms;
  DeliveryOptions delivery;
  delivery.node_name = node;
  delivery.connections = absl::GetFlag(FLAGS_connections);
  delivery.offline_grace = absl::Seconds(absl::GetFlag(FLAGS_offline_grace_s));
  DeliveryWorker worker(outbox->get(), &tokens, &permits, &alarms, &clock, delivery,
                        SmtpSubmitterFactory());
  (*outbox)->SetWakeCallback([&worker] { worker.Wake(); });
  const bool deliver = absl::GetFlag(FLAGS_deliver);
  if (deliver) {
    tokens.Start();
    worker.Start();
  }

  std::ofstream acks;
  if (!absl::GetFlag(FLAGS_ack_file).empty()) acks.open(absl::GetFlag(FLAGS_ack_file), std::ios::app);
  absl::SleepFor(absl::Milliseconds(absl::GetFlag(FLAGS_enqueue_delay_ms)));
  const int first = absl::GetFlag(FLAGS_first);
  const std::string status_file = absl::GetFlag(FLAGS_status_file);
  absl::Time status_written = absl::InfinitePast();
  for (int n = first; n < first + absl::GetFlag(FLAGS_enqueue); ++n) {
    if (deliver && !status_file.empty() && absl::Now() - status_written >= absl::Milliseconds(100)) {
      WriteStatus(status_file, **outbox);  // delivery runs meanwhile
      status_written = absl::Now();
    }
    MailContent content;
    content.from = {absl::GetFlag(FLAGS_from), "mailroom 通知"};
    content.to = {{absl::GetFlag(FLAGS_to), "訪客 王小明"}};
    content.subject = absl::StrCat("訪客帳號即將到期 — 王小明 #", n);
    content.text_body = absl::StrCat("您好，這是第 ", n, " 封測試郵件。\nMessage number ", n, ".\n");
    content.html_body = absl::StrCat("<p>您好，這是第 <b>", n, "</b> 封測試郵件。</p>");
    content.message_id = (*outbox)->NewMessageId();
    content.date = clock.Now();
    absl::StatusOr<std::string> message = BuildMimeMessage(content, MimeOptions());
    if (!message.ok()) {
      std::cerr << "mail_sender: " << message.status() << "\n";
      return 1;
    }
    NewNotification notification;
    notification.idempotency_key = absl::StrCat("msg-", n);
    notification.request_fingerprint = absl::StrCat("n=", n);
    notification.kind = common::v1::NOTIFICATION_KIND_PORTAL_TEST_EMAIL;
    notification.from.set_address(content.from.address);
    common::v1::Recipient recipient;
    recipient.mutable_address()->set_address(absl::GetFlag(FLAGS_to));
    recipient.set_type(common::v1::RECIPIENT_TYPE_TO);
    notification.recipients.push_back(recipient);
    notification.subject = content.subject;
    notification.message_id = content.message_id;
    notification.message = *message;
    absl::StatusOr<EnqueueResult> queued = (*outbox)->Enqueue(notification);
    if (!queued.ok()) {
      std::cerr << "mail_sender: " << queued.status() << "\n";
      return 1;
    }
    if (!absl::GetFlag(FLAGS_dump_dir).empty() && !queued->duplicate) {
      std::ofstream(absl::StrCat(absl::GetFlag(FLAGS_dump_dir), "/", n, ".eml"), std::ios::binary)
          << *message;
    }
    if (acks.is_open()) acks << queued->notification_id << " " << queued->message_id << "\n" << std::flush;
  }
  if (!deliver) {
    std::cout << "mail_sender: queued" << std::endl;
    return 0;
  }
  std::cout << "mail_sender: queued; delivering" << std::endl;
  while (true) {
    absl::SleepFor(absl::Milliseconds(100));
    if (!status_file.empty()) WriteStatus(status_file, **outbox);
    if (!absl::GetFlag(FLAGS_exit_when_drained)) continue;
    absl::StatusOr<common::v1::OutboxCounts> counts = (*outbox)->Counts();
    if (counts.ok() && counts->queued() == 0 && counts->sending() == 0) break;
  }
  worker.Stop();
  tokens.Stop();
  if (!status_file.empty()) WriteStatus(status_file, **outbox, &tokens);
  absl::StatusOr<common::v1::OutboxCounts> counts = (*outbox)->Counts();
  std::cout << "mail_sender: drained: sent=" << counts->sent() << " failed=" << counts->failed()
            << std::endl;
  // One line per entry, for the tests: "entry <id> <state> attempts=<n> reply=<code> cause=<c>"
  // (+ " send_time_ms=<unix ms>" once SENT).
  common::v1::ListOutboxRequest list;
  list.mutable_page()->set_page_size(1000);
  absl::StatusOr<common::v1::ListOutboxResponse> entries = (*outbox)->List(list);
  if (entries.ok()) {
    for (const common::v1::OutboxEntry& entry : entries->entries()) {
      const common::v1::Notification& n = entry.notification();
      std::cout << "entry " << n.id() << " " << common::v1::NotificationState_Name(n.state())
                << " attempts=" << n.attempts() << " reply=" << n.last_reply_code()
                << " cause=" << common::v1::FailureCause_Name(n.diagnosis().cause());
      if (n.has_send_time()) {  // when the MTA accepted it, for tests that cut the network
        std::cout << " send_time_ms="
                  << n.send_time().seconds() * 1000 + n.send_time().nanos() / 1000000;
      }
      std::cout << std::endl;
    }
  }
  return 0;
}

}  // namespace
}  // namespace mailroom

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return mailroom::Run();
}
