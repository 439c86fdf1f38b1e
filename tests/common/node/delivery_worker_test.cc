// DeliveryWorker with a real outbox (SQLite in TEST_TMPDIR), a mock broker and a fake SMTP
// submitter: the paths the testbed cannot produce — a token refused by the mailbox (report,
// refetch, retry once, then FAILED with an alarm) and Exchange's daily quota (5.2.0: the
// broker pauses the mailbox, the message waits for the window); what it keeps for status (the
// last failed attempt, each delivery's latency).
#include "common/node/delivery_worker.h"

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/base/diagnosis.h"
#include "common/base/proto_time.h"
#include "tests/testing/fake_clock.h"
#include "common/base/metrics.h"
#include "common/mail/smtp_reply.h"
#include "common/rpc/status_grpc.h"
#include "gmock/gmock.h"
#include "tests/testing/capturing_alarms.h"
#include "gtest/gtest.h"
#include "proto/mailroom/broker/v1/broker_mock.grpc.pb.h"

namespace mailroom {
namespace {

namespace bv1 = ::mailroom::broker::v1;
namespace cv1 = ::mailroom::common::v1;
using ::testing::_;
using ::testing::HasSubstr;
using ::testing::Invoke;
using ::testing::Return;

// What the fake server and the mock broker saw, in order: "send <time limit>", "close",
// "report <n>", "release <permit>", "end previous run".
class Events {
 public:
  void Add(std::string event) {
    absl::MutexLock lock(&mu_);
    events_.push_back(std::move(event));
  }
  std::vector<std::string> Get() const {
    absl::MutexLock lock(&mu_);
    return events_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<std::string> events_;
};

class FakeSubmitter : public MailSubmitter {
 public:
  explicit FakeSubmitter(std::deque<std::string>* replies, std::vector<std::string>* tokens,
                         Events* events)
      : replies_(replies), tokens_(tokens), events_(events) {}
  void SetBearerToken(std::string token) override { token_ = std::move(token); }
  // Runs during each Send, as the server takes the message.
  std::function<void()> on_send;
  // A reply of "drop" is a transfer cut off with no final reply (code 0).
  // When set, hears "<envelope sender> -> <first recipient>" for each send.
  Events* senders = nullptr;
  SendResult Send(const std::string& envelope_from, const std::vector<std::string>& recipients,
                  const std::string&, absl::Duration time_limit) override {
    events_->Add(absl::StrCat("send ", absl::FormatDuration(time_limit)));
    if (senders != nullptr) {
      senders->Add(absl::StrCat(envelope_from, " -> ", recipients.empty() ? "" : recipients[0]));
    }
    if (on_send) on_send();
    tokens_->push_back(token_);
    const std::string raw = replies_->empty() ? "250 2.0.0 OK" : replies_->front();
    if (!replies_->empty()) replies_->pop_front();
    SendResult result;
    if (raw == "drop") {
      result.diagnosis = MakeDiagnosis(cv1::FAILURE_CAUSE_CONNECTION_LOST);
      result.outcome = DeliveryOutcome::kTransient;
      return result;
    }
    // Graph's 429 with "Retry-After: 600".
    if (raw == "throttle") {
      result.diagnosis = MakeDiagnosis(cv1::FAILURE_CAUSE_GRAPH_THROTTLED);
      result.diagnosis.mutable_retry_after()->set_seconds(600);
      result.reply.code = 429;
      result.outcome = DeliveryOutcome::kTransient;
      return result;
    }
    result.reply = ParseSmtpReply(raw);
    result.ok = result.reply.code / 100 == 2;
    if (!result.ok) {
      result.diagnosis = ClassifySmtpReply(result.reply, result.reply.code == 535
                                                             ? SmtpStage::kAuth
                                                             : SmtpStage::kData);
      result.outcome = OutcomeOf(result.diagnosis);
    } else {
      result.outcome = DeliveryOutcome::kDelivered;
    }
    for (const std::string& r : recipients) result.recipients.push_back({r, result.ok, result.reply});
    return result;
  }
  void Close() override { events_->Add("close"); }

 private:
  std::deque<std::string>* replies_;
  std::vector<std::string>* tokens_;
  Events* events_;
  std::string token_;
};

class DeliveryWorkerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = absl::StrCat(getenv("TEST_TMPDIR"), "/",
                         ::testing::UnitTest::GetInstance()->current_test_info()->name(), ".db");
    std::remove(path_.c_str());
    OutboxOptions options;
    options.node_name = "psn1";
    options.random_unit = [] { return 0.5; };
    options.busy_timeout = absl::Milliseconds(50);
    outbox_ = *Outbox::Open(path_, &clock_, options);
    ON_CALL(stub_, GetAccessToken(_, _, _))
        .WillByDefault(Invoke([this](grpc::ClientContext*,
                                     const bv1::GetAccessTokenRequest& request,
                                     bv1::GetAccessTokenResponse* response) {
          transports_asked_.push_back(request.transport());
          pool_events_.Add(absl::StrCat("token ", request.mailbox()));
          response->set_access_token(absl::StrCat("token-", ++tokens_issued_));
          response->set_token_fingerprint(absl::StrCat("fp-", tokens_issued_));
          response->mutable_expires_in()->set_seconds(3600);
          response->mutable_refresh_after()->set_seconds(1800);
          response->set_mailbox(request.mailbox().empty() ? "noreply@example.test"
                                                          : request.mailbox());
          response->set_use_authentication(true);
          response->set_transport(broker_transport_.load());
          response->set_graph_fallback(graph_fallback_);
          return grpc::Status::OK;
        }));
    ON_CALL(stub_, AcquireSendPermit(_, _, _))
        .WillByDefault(Invoke([this](grpc::ClientContext*,
                                     const bv1::AcquireSendPermitRequest& request,
                                     bv1::AcquireSendPermitResponse* response) {
          pool_events_.Add(absl::StrCat("permit ", request.mailbox()));
          if (paused_mailboxes_.count(request.mailbox()) > 0) {
            response->set_granted(false);
            response->set_denial_reason(bv1::PERMIT_DENIAL_REASON_MAILBOX_PAUSED);
            response->mutable_retry_after()->set_seconds(3600);
            return grpc::Status::OK;
          }
          response->set_granted(true);
          response->set_permit_id(absl::StrCat("permit-", ++permits_issued_));
          response->set_granted_messages(request.message_recipient_counts_size());
          ToProto(permit_lease_, response->mutable_lease());
          ToProto(connection_lease_, response->mutable_connection_lease());
          if (permits_name_transport_) response->set_transport(broker_transport_.load());
          return grpc::Status::OK;
        }));
    EXPECT_CALL(stub_, ReportSendResult(_, _, _))
        .WillRepeatedly(Invoke([this](grpc::ClientContext*,
                                      const bv1::ReportSendResultRequest& request,
                                      bv1::ReportSendResultResponse*) {
          events_.Add(absl::StrCat("report ", request.results_size(),
                                   request.connection_closed() ? " closed" : ""));
          return grpc::Status::OK;
        }));
    EXPECT_CALL(stub_, ReleaseSendPermit(_, _, _))
        .WillRepeatedly(Invoke([this](grpc::ClientContext*,
                                      const bv1::ReleaseSendPermitRequest& request,
                                      bv1::ReleaseSendPermitResponse*) {
          events_.Add(request.previous_run_ended()
                          ? "end previous run"
                          : absl::StrCat("release ", request.permit_id(),
                                         request.connection_closed() ? " closed" : ""));
          return grpc::Status::OK;
        }));
  }

  std::string Enqueue(cv1::NotificationKind kind = cv1::NOTIFICATION_KIND_PORTAL_TEST_EMAIL,
                      const std::string& to = "guest@example.test") {
    NewNotification n;
    n.kind = kind;
    n.from.set_address("noreply@example.test");
    cv1::Recipient recipient;
    recipient.mutable_address()->set_address(to);
    n.recipients.push_back(recipient);
    n.message_id = outbox_->NewMessageId();
    n.message = "Subject: x\r\n\r\nbody\r\n";
    return outbox_->Enqueue(n)->notification_id;
  }

  // Runs the worker until `done` holds or a real-time limit passes.
  void RunWhileNot(const std::function<bool()>& done, int connections = 1, int batch = 10) {
    BrokerEndpoints brokers(&stub_);
    BrokerTokenSource tokens(&brokers, &clock_, BrokerTokenSource::Options{"psn1"});
    BrokerPermits permits(&brokers, "psn1");
    DeliveryOptions options = options_;
    options.node_name = node_name_;
    options.connections = connections;
    options.batch = batch;
    DeliveryWorker worker(outbox_.get(), &tokens, &permits, &alarms_, &clock_, options,
                          [this](const SubmissionGrant& grant) {
                            submitters_made_.push_back(grant.transport);
                            auto submitter = std::make_unique<FakeSubmitter>(
                                &replies_, &tokens_used_, &events_);
                            submitter->on_send = on_send_;
                            submitter->senders = &senders_;
                            pool_events_.Add(absl::StrCat("submitter ", grant.mailbox));
                            return submitter;
                          });
    worker.Start();
    // A limit in real time, not in rounds: on a loaded machine 3000 rounds of 1 ms could end
    // before the worker had its turn, and Stop() then closed the connection out of order.
    const absl::Time give_up = absl::Now() + run_limit_;
    while (absl::Now() < give_up) {
      if (on_each_wait_) on_each_wait_();
      if (done()) break;
      absl::SleepFor(absl::Milliseconds(1));
    }
    worker.Stop();
    last_error_ = worker.last_error();
  }

  // Runs the worker until the entry is in `state` or a real-time limit passes.
  cv1::OutboxEntry RunUntil(const std::string& id, cv1::NotificationState state,
                            int connections = 1, int batch = 10) {
    cv1::OutboxEntry entry;
    RunWhileNot(
        [&] {
          absl::StatusOr<cv1::OutboxEntry> got = outbox_->Get(id);
          if (got.ok()) entry = *got;
          return got.ok() && entry.notification().state() == state;
        },
        connections, batch);
    return entry;
  }

  // The broker refuses every permit with `refusal_text` in its answer: nothing is sent within
  // offline_grace of Start, and afterwards the allowance carries the messages.
  void ExpectAllowanceWaitsForTheGrace(const std::string& refusal_text) {
    options_.offline_grace = absl::Seconds(75);
    std::vector<std::string> ids;
    for (int i = 0; i < 3; ++i) ids.push_back(Enqueue());
    int sends_within_grace = -1;
    on_each_wait_ = [&] {
      if (sends_within_grace >= 0) {
        // Past the grace: time keeps moving (a second a poll), as it would for a real worker.
        clock_.Advance(absl::Seconds(1));
        return;
      }
      // Once the worker has asked and put the first message back, nothing may have been sent.
      absl::StatusOr<cv1::OutboxEntry> first = outbox_->Get(ids[0]);
      if (!first.ok() || !absl::StrContains(first->wait_reason(), refusal_text)) return;
      clock_.Advance(absl::Seconds(70));  // still within the grace
      absl::SleepFor(absl::Milliseconds(300));  // the worker's next rounds
      sends_within_grace = 0;
      for (const std::string& event : events_.Get()) {
        sends_within_grace += absl::StartsWith(event, "send ");
      }
      clock_.Advance(absl::Seconds(10));  // past the grace and the broker retry
    };
    RunUntil(ids[2], cv1::NOTIFICATION_STATE_SENT);
    EXPECT_EQ(sends_within_grace, 0);
    int sent = 0;
    for (const std::string& id : ids) {
      sent += outbox_->Get(id)->notification().state() == cv1::NOTIFICATION_STATE_SENT;
    }
    EXPECT_EQ(sent, 3) << "after the grace the allowance carries them";
  }

  // Whether `event` has happened.
  bool Saw(const std::string& event) const {
    const std::vector<std::string> events = events_.Get();
    return std::find(events.begin(), events.end(), event) != events.end();
  }

  // The mailbox's settings have SMTP with Graph fallback: on SMTP until one report of a 5.7.139
  // for `mailbox` ("": the default one), which moves it to Graph, as the broker does.
  void FallBackOnceReportedFor(const std::string& mailbox) {
    broker_transport_ = bv1::MAIL_TRANSPORT_SMTP;
    graph_fallback_ = true;
    EXPECT_CALL(stub_, InvalidateAccessToken(_, _, _))
        .WillOnce(Invoke([this, mailbox](grpc::ClientContext*,
                                         const bv1::InvalidateAccessTokenRequest& request,
                                         bv1::InvalidateAccessTokenResponse*) {
          EXPECT_EQ(request.mailbox(), mailbox);
          EXPECT_EQ(request.smtp_code(), 535);
          EXPECT_THAT(request.reply_text(), HasSubstr("5.7.139"));
          broker_transport_ = bv1::MAIL_TRANSPORT_GRAPH;
          return grpc::Status::OK;
        }));
  }

  // The mock broker's routes (ResolveMailRoute): purpose → mailboxes; a purpose not here has
  // none (the default mailbox). route_status_ other than OK answers every request.
  void SetRoutes(std::map<cv1::MailPurpose, std::vector<std::string>> routes,
                 grpc::Status route_status = grpc::Status::OK) {
    ON_CALL(stub_, ResolveMailRoute(_, _, _))
        .WillByDefault(Invoke([routes, route_status](grpc::ClientContext*,
                                                     const bv1::ResolveMailRouteRequest& request,
                                                     bv1::ResolveMailRouteResponse* response) {
          if (!route_status.ok()) return route_status;
          response->set_settings_etag("etag-1");
          auto it = routes.find(request.purpose());
          if (it == routes.end()) {
            response->add_mailboxes("noreply@example.test");
            return grpc::Status::OK;
          }
          response->set_routed(true);
          for (const std::string& mailbox : it->second) response->add_mailboxes(mailbox);
          return grpc::Status::OK;
        }));
  }

  // The mock broker's grant of every message asked for.
  grpc::Status GrantAll(const bv1::AcquireSendPermitRequest& request,
                        bv1::AcquireSendPermitResponse* response) {
    response->set_granted(true);
    response->set_permit_id(absl::StrCat("permit-", ++permits_issued_));
    response->set_granted_messages(request.message_recipient_counts_size());
    ToProto(permit_lease_, response->mutable_lease());
    ToProto(connection_lease_, response->mutable_connection_lease());
    return grpc::Status::OK;
  }

  // The broker is unreachable (UNAVAILABLE) until *up; then it grants every permit request,
  // which `answered` hears first.
  void GrantOnlyWhileUp(std::atomic<bool>* up,
                        std::function<void(const bv1::AcquireSendPermitRequest&)> answered) {
    EXPECT_CALL(stub_, AcquireSendPermit(_, _, _))
        .WillRepeatedly(Invoke([this, up, answered](grpc::ClientContext*,
                                                    const bv1::AcquireSendPermitRequest& request,
                                                    bv1::AcquireSendPermitResponse* response) {
          if (!*up) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "connection refused");
          answered(request);
          return GrantAll(request, response);
        }));
  }

  // Whether pool_events_ has `event`.
  bool SawInPool(const std::string& event) const {
    const std::vector<std::string> events = pool_events_.Get();
    return std::find(events.begin(), events.end(), event) != events.end();
  }

  FakeClock clock_;
  DeliveryOptions options_;
  // "token <mailbox>", "permit <mailbox>" (the mailbox asked for; empty: the default one) and
  // "submitter <grant mailbox>", in order; what each send's envelope went from and to.
  Events pool_events_;
  Events senders_;
  // Mailboxes the mock broker refuses permits for as paused (5.2.0).
  std::set<std::string> paused_mailboxes_;
  // How long (real time) RunWhileNot gives the worker; tests that expect `done` never to hold
  // shorten it.
  absl::Duration run_limit_ = absl::Seconds(30);
  absl::Duration permit_lease_ = absl::Seconds(120);
  absl::Duration connection_lease_ = absl::Seconds(60);
  int permits_issued_ = 0;
  Events events_;
  std::string path_;
  std::function<void()> on_send_;
  std::function<void()> on_each_wait_;
  std::unique_ptr<Outbox> outbox_;
  ::testing::NiceMock<bv1::MockTokenBrokerStub> stub_;
  std::deque<std::string> replies_;
  std::vector<std::string> tokens_used_;
  int tokens_issued_ = 0;
  // What the mock broker says of the mailbox's transport (Graph fallback).
  std::atomic<bv1::MailTransport> broker_transport_{bv1::MAIL_TRANSPORT_UNSPECIFIED};
  bool graph_fallback_ = false;
  bool permits_name_transport_ = false;
  // The transport of each token the worker asked for, in order.
  std::vector<bv1::MailTransport> transports_asked_;
  // The transport of each submitter the worker made, in order.
  std::vector<bv1::MailTransport> submitters_made_;
  ::mailroom::testing::CapturingAlarms alarms_;
  std::string node_name_ = "psn1";
  // The worker's last_error() when RunUntil stopped it.
  absl::optional<DeliveryErrorRecord> last_error_;
};

TEST_F(DeliveryWorkerTest, EachDeliveryRecordsItsLatencyFromEnqueue) {
  node_name_ = "psn-latency";  // its own histogram in the process-wide metrics
  const MetricLabels labels = {{"node", node_name_}};
  const std::string id = Enqueue();
  clock_.Advance(absl::Seconds(3));  // queued 3 s before it goes out
  EXPECT_EQ(RunUntil(id, cv1::NOTIFICATION_STATE_SENT).notification().state(),
            cv1::NOTIFICATION_STATE_SENT);
  EXPECT_EQ(Metrics::Global().ObservationCount(kDeliveryLatencyMetric, labels), 1u);
  const absl::optional<absl::Duration> p50 =
      Metrics::Global().Quantile(kDeliveryLatencyMetric, labels, 0.5);
  ASSERT_TRUE(p50.has_value());
  EXPECT_GT(*p50, absl::Milliseconds(2500));  // within the (2.5 s, 5 s] bucket
  EXPECT_LE(*p50, absl::Seconds(5));
  EXPECT_FALSE(last_error_.has_value());
}

TEST_F(DeliveryWorkerTest, TheLastFailedAttemptIsKeptWithItsDiagnosis) {
  replies_ = {"550 5.7.60 SMTP; Client does not have permissions to send as this sender"};
  const std::string id = Enqueue();
  EXPECT_EQ(RunUntil(id, cv1::NOTIFICATION_STATE_FAILED).notification().state(),
            cv1::NOTIFICATION_STATE_FAILED);
  ASSERT_TRUE(last_error_.has_value());
  EXPECT_EQ(last_error_->notification_id, id);
  EXPECT_EQ(last_error_->outcome, "failed");
  EXPECT_EQ(last_error_->reply_code, 550);
  EXPECT_EQ(last_error_->diagnosis.cause(), cv1::FAILURE_CAUSE_SEND_AS_DENIED);
  EXPECT_EQ(last_error_->time, clock_.Now());
}

constexpr char kSmtpAuthDisabled[] =
    "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the "
    "Mailbox.";

// Issue 13, SMTP with Graph fallback: the 5.7.139 goes to the broker (which moves the mailbox
// to Graph), and the same message goes out at once through Graph: not failed, not lost.
TEST_F(DeliveryWorkerTest, WithGraphFallbackSmtpAuthDisabledSendsTheMessageThroughGraph) {
  FallBackOnceReportedFor("");
  replies_ = {kSmtpAuthDisabled, "250 2.0.0 accepted by Graph"};
  const std::string id = Enqueue();
  const cv1::OutboxEntry entry = RunUntil(id, cv1::NOTIFICATION_STATE_SENT);
  EXPECT_EQ(entry.notification().state(), cv1::NOTIFICATION_STATE_SENT);
  EXPECT_EQ(submitters_made_, (std::vector<bv1::MailTransport>{bv1::MAIL_TRANSPORT_SMTP,
                                                               bv1::MAIL_TRANSPORT_GRAPH}));
  ASSERT_FALSE(transports_asked_.empty());
  EXPECT_EQ(transports_asked_.back(), bv1::MAIL_TRANSPORT_GRAPH);
  absl::MutexLock lock(&alarms_.mu);
  EXPECT_TRUE(alarms_.raised.empty());
}

// Per-mailbox fallback: a pool mailbox's 5.7.139 is reported for that mailbox (the broker moves
// it alone) and its message goes out through Graph as that mailbox.
TEST_F(DeliveryWorkerTest, APoolMailboxsSmtpAuthDisabledIsReportedForItAndGoesThroughGraph) {
  SetRoutes({{cv1::MAIL_PURPOSE_ALARMS, {"alerts@example.test"}}});
  FallBackOnceReportedFor("alerts@example.test");
  replies_ = {kSmtpAuthDisabled, "250 2.0.0 accepted by Graph"};
  const std::string id = Enqueue(cv1::NOTIFICATION_KIND_ALARM, "admin@example.test");
  EXPECT_EQ(RunUntil(id, cv1::NOTIFICATION_STATE_SENT).notification().state(),
            cv1::NOTIFICATION_STATE_SENT);
  EXPECT_EQ(submitters_made_, (std::vector<bv1::MailTransport>{bv1::MAIL_TRANSPORT_SMTP,
                                                               bv1::MAIL_TRANSPORT_GRAPH}));
  EXPECT_THAT(senders_.Get(), ::testing::Each("alerts@example.test -> admin@example.test"));
}

// Without fallback a 5.7.139 stays what it was: FAILED with the alarm, nothing reported.
TEST_F(DeliveryWorkerTest, WithoutGraphFallbackSmtpAuthDisabledFailsTheMessage) {
  EXPECT_CALL(stub_, InvalidateAccessToken(_, _, _)).Times(0);
  replies_ = {kSmtpAuthDisabled};
  const std::string id = Enqueue();
  const cv1::OutboxEntry entry = RunUntil(id, cv1::NOTIFICATION_STATE_FAILED);
  EXPECT_EQ(entry.notification().state(), cv1::NOTIFICATION_STATE_FAILED);
  EXPECT_EQ(entry.notification().diagnosis().cause(), cv1::FAILURE_CAUSE_SMTP_AUTH_DISABLED);
  EXPECT_EQ(submitters_made_.size(), 1u);
}

// The broker moved the mailbox (a fallback ended) while this node held a token for the other
// transport: the permit says so, and the batch goes with a token for the mailbox's transport.
TEST_F(DeliveryWorkerTest, APermitNamingAnotherTransportGetsItsTokenBeforeSending) {
  broker_transport_ = bv1::MAIL_TRANSPORT_GRAPH;
  graph_fallback_ = true;
  permits_name_transport_ = true;
  const std::string first = Enqueue();
  std::string second;
  on_each_wait_ = [&] {
    // The worker sleeps until the next due entry it knew of: the clock wakes it.
    if (!second.empty()) clock_.Advance(absl::Milliseconds(100));
    absl::StatusOr<cv1::OutboxEntry> got = outbox_->Get(first);
    if (!second.empty() || !got.ok() ||
        got->notification().state() != cv1::NOTIFICATION_STATE_SENT) {
      return;
    }
    broker_transport_ = bv1::MAIL_TRANSPORT_SMTP;  // an SMTP Test Connection passed
    second = Enqueue();
  };
  RunWhileNot([&] {
    if (second.empty()) return false;
    absl::StatusOr<cv1::OutboxEntry> got = outbox_->Get(second);
    return got.ok() && got->notification().state() == cv1::NOTIFICATION_STATE_SENT;
  });
  ASSERT_FALSE(second.empty());
  EXPECT_EQ(outbox_->Get(second)->notification().state(), cv1::NOTIFICATION_STATE_SENT);
  EXPECT_EQ(submitters_made_, (std::vector<bv1::MailTransport>{bv1::MAIL_TRANSPORT_GRAPH,
                                                               bv1::MAIL_TRANSPORT_SMTP}));
}

// Issue 13: a server's Retry-After (Graph's 429/503) holds the message at least that long.
TEST_F(DeliveryWorkerTest, AServersRetryAfterHoldsTheMessage) {
  replies_ = {"throttle"};
  const std::string id = Enqueue();
  cv1::OutboxEntry entry;
  RunWhileNot([&] {
    absl::StatusOr<cv1::OutboxEntry> got = outbox_->Get(id);
    if (got.ok()) entry = *got;
    return got.ok() && entry.attempts_size() == 1 &&
           entry.notification().state() == cv1::NOTIFICATION_STATE_QUEUED;
  });
  ASSERT_EQ(entry.attempts_size(), 1);
  EXPECT_EQ(FromProto(entry.notification().next_attempt_time()), clock_.Now() + absl::Seconds(600));
  ASSERT_TRUE(last_error_.has_value());
  EXPECT_EQ(last_error_->outcome, "retried");
  EXPECT_EQ(last_error_->diagnosis.cause(), cv1::FAILURE_CAUSE_GRAPH_THROTTLED);
}

// L3: the outbox cannot record that a message was sent (here another process holds the
// database's write lock, as a full disk would refuse the write). The worker must say so with
// an alarm, keep the outcome, claim nothing new, and record SENT once it can, without
// sending the message again.
TEST_F(DeliveryWorkerTest, AnOutcomeTheOutboxCannotTakeIsKeptAlarmedAndWrittenLater) {
  const std::string id = Enqueue();
  sqlite3* blocker = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &blocker), SQLITE_OK);
  std::atomic<bool> locked{false};
  on_send_ = [&] {
    if (!locked.exchange(true)) {
      ASSERT_EQ(sqlite3_exec(blocker, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr), SQLITE_OK);
    }
  };
  int waits = 0;
  on_each_wait_ = [&] {
    // Once the alarm is up, let the outbox write again and let the worker's clock move on.
    bool alarmed = false;
    {
      absl::MutexLock lock(&alarms_.mu);
      for (const RaiseAlarmRequest& alarm : alarms_.raised) {
        alarmed = alarmed || absl::StartsWith(alarm.dedup_key(), "outbox-record-failed/");
      }
    }
    if (alarmed && ++waits == 1) {
      sqlite3_exec(blocker, "ROLLBACK", nullptr, nullptr, nullptr);
    }
    if (alarmed) clock_.Advance(absl::Milliseconds(100));
  };
  const cv1::OutboxEntry entry = RunUntil(id, cv1::NOTIFICATION_STATE_SENT);
  sqlite3_close(blocker);
  EXPECT_EQ(entry.notification().state(), cv1::NOTIFICATION_STATE_SENT);
  EXPECT_EQ(tokens_used_.size(), 1u);  // sent once, never again
  absl::MutexLock lock(&alarms_.mu);
  ASSERT_FALSE(alarms_.raised.empty());
  EXPECT_THAT(alarms_.raised.back().text(), HasSubstr("cannot record delivery outcomes"));
}

// The broker reads the proxy's credentials file again when it restarts, under the same saved
// settings: a node whose grant brings other proxy credentials builds a new submitter for them.
TEST_F(DeliveryWorkerTest, NewProxyCredentialsUnderTheSameSettingsMakeANewSubmitter) {
  ON_CALL(stub_, GetAccessToken(_, _, _))
      .WillByDefault(Invoke([this](grpc::ClientContext*, const bv1::GetAccessTokenRequest&,
                                   bv1::GetAccessTokenResponse* response) {
        ++tokens_issued_;
        response->set_access_token(absl::StrCat("token-", tokens_issued_));
        response->set_token_fingerprint(absl::StrCat("fp-", tokens_issued_));
        response->mutable_expires_in()->set_seconds(3600);
        response->mutable_refresh_after()->set_seconds(1800);
        response->set_mailbox("noreply@example.test");
        response->set_use_authentication(true);
        response->set_settings_etag("same-settings");
        response->mutable_smtp_proxy()->set_url("http://proxy.example.test:3128");
        response->mutable_smtp_proxy()->set_credentials(absl::StrCat("psn:pass-", tokens_issued_));
        return grpc::Status::OK;
      }));
  BrokerEndpoints brokers(&stub_);
  BrokerTokenSource tokens(&brokers, &clock_, BrokerTokenSource::Options{"psn1"});
  BrokerPermits permits(&brokers, "psn1");
  DeliveryOptions options;
  options.node_name = "psn1";
  options.connections = 1;
  options.idle_close = absl::Hours(10);  // no new submitter for being idle
  std::vector<std::string> made_with;
  DeliveryWorker worker(outbox_.get(), &tokens, &permits, &alarms_, &clock_, options,
                        [&](const SubmissionGrant& grant) {
                          made_with.push_back(grant.proxy.credentials);
                          return std::make_unique<FakeSubmitter>(&replies_, &tokens_used_,
                                                                 &events_);
                        });
  worker.Start();
  auto wait_sent = [&](const std::string& id) {
    worker.Wake();  // as the send RPCs do after queuing
    for (int i = 0; i < 3000; ++i) {
      absl::StatusOr<cv1::OutboxEntry> got = outbox_->Get(id);
      if (got.ok() && got->notification().state() == cv1::NOTIFICATION_STATE_SENT) return true;
      absl::SleepFor(absl::Milliseconds(1));
    }
    return false;
  };
  ASSERT_TRUE(wait_sent(Enqueue()));
  clock_.Advance(absl::Seconds(3500));  // the token nears its end: the next send fetches anew
  ASSERT_TRUE(wait_sent(Enqueue()));
  worker.Stop();
  EXPECT_THAT(made_with, ::testing::ElementsAre("psn:pass-1", "psn:pass-2"));
}

TEST_F(DeliveryWorkerTest, RefusedTokenIsReplacedAndTheMessageRetriedOnce) {
  EXPECT_CALL(stub_, InvalidateAccessToken(_, _, _))
      .WillOnce(Invoke([](grpc::ClientContext*, const bv1::InvalidateAccessTokenRequest& request,
                          bv1::InvalidateAccessTokenResponse* response) {
        EXPECT_EQ(request.token_fingerprint(), "fp-1");
        EXPECT_EQ(request.smtp_code(), 535);
        response->set_invalidated(true);
        return grpc::Status::OK;
      }));
  replies_ = {"535 5.7.3 Authentication unsuccessful"};
  const std::string id = Enqueue();
  const cv1::OutboxEntry entry = RunUntil(id, cv1::NOTIFICATION_STATE_SENT);
  EXPECT_EQ(entry.notification().state(), cv1::NOTIFICATION_STATE_SENT);
  EXPECT_THAT(tokens_used_, ::testing::ElementsAre("token-1", "token-2"));
  EXPECT_TRUE(alarms_.raised.empty());
}

TEST_F(DeliveryWorkerTest, ATokenRefusedTwiceFailsWithTheNamedCauseAndAnAlarm) {
  EXPECT_CALL(stub_, InvalidateAccessToken(_, _, _)).WillOnce(Return(grpc::Status::OK));
  replies_ = {"535 5.7.3 Authentication unsuccessful", "535 5.7.3 Authentication unsuccessful"};
  const std::string id = Enqueue();
  const cv1::OutboxEntry entry = RunUntil(id, cv1::NOTIFICATION_STATE_FAILED);
  EXPECT_EQ(entry.notification().state(), cv1::NOTIFICATION_STATE_FAILED);
  EXPECT_EQ(entry.notification().diagnosis().title(), "Invalid email address");
  EXPECT_EQ(tokens_used_.size(), 2u);
  ASSERT_EQ(alarms_.raised.size(), 1u);
  EXPECT_EQ(alarms_.raised[0].type(), mnt::v1::ALARM_TYPE_SMTP_AUTHENTICATION_FAILED);
  EXPECT_EQ(alarms_.raised[0].diagnosis().cause(), cv1::FAILURE_CAUSE_MAILBOX_AUTH_REJECTED);
}

TEST_F(DeliveryWorkerTest, QuotaExceededPausesUntilTheBrokerSays) {
  const absl::Time paused_until = clock_.Now() + absl::Hours(20);
  EXPECT_CALL(stub_, ReportSendResult(_, _, _))
      .WillRepeatedly(Invoke([&](grpc::ClientContext*, const bv1::ReportSendResultRequest& request,
                                 bv1::ReportSendResultResponse* response) {
        if (request.results_size() > 0 &&
            request.results(0).outcome() == bv1::SEND_OUTCOME_QUOTA_EXCEEDED) {
          response->mutable_mailbox_paused_until()->set_seconds(absl::ToUnixSeconds(paused_until));
        }
        return grpc::Status::OK;
      }));
  replies_ = {"554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException"};
  const std::string id = Enqueue();
  cv1::OutboxEntry entry;
  for (int i = 0; i < 3000; ++i) {
    entry = RunUntil(id, cv1::NOTIFICATION_STATE_QUEUED);
    if (entry.notification().attempts() >= 1) break;
  }
  EXPECT_EQ(entry.notification().state(), cv1::NOTIFICATION_STATE_QUEUED);
  // Not at the pause's end (20 hours away) but at the next recheck: an admin may resume the
  // mailbox early (mailroomctl quota resume), and the broker's permits say whether it did.
  EXPECT_EQ(entry.notification().next_attempt_time().seconds(),
            absl::ToUnixSeconds(clock_.Now() + absl::Minutes(1)));
  EXPECT_EQ(entry.notification().diagnosis().cause(), cv1::FAILURE_CAUSE_SUBMISSION_QUOTA_EXCEEDED);
}

TEST_F(DeliveryWorkerTest, WhileTheMailboxIsPausedMailAsksAgainEveryMinute) {
  EXPECT_CALL(stub_, AcquireSendPermit(_, _, _))
      .WillRepeatedly(Invoke([this](grpc::ClientContext*, const bv1::AcquireSendPermitRequest&,
                                    bv1::AcquireSendPermitResponse* response) {
        response->set_granted(false);
        response->set_denial_reason(bv1::PERMIT_DENIAL_REASON_MAILBOX_PAUSED);
        response->mutable_retry_after()->set_seconds(20 * 3600);
        response->mutable_paused_until()->set_seconds(
            absl::ToUnixSeconds(clock_.Now() + absl::Hours(20)));
        return grpc::Status::OK;
      }));
  const std::string id = Enqueue();
  run_limit_ = absl::Seconds(3);
  cv1::OutboxEntry entry = RunUntil(id, cv1::NOTIFICATION_STATE_SENT);  // never gets there
  EXPECT_EQ(entry.notification().state(), cv1::NOTIFICATION_STATE_QUEUED);
  EXPECT_EQ(entry.notification().attempts(), 0);
  EXPECT_EQ(entry.notification().next_attempt_time().seconds(),
            absl::ToUnixSeconds(clock_.Now() + absl::Minutes(1)));
}

// Priorities: the outbox hands the worker one class a batch, most urgent first, and the
// permit request says which.
TEST_F(DeliveryWorkerTest, EachPermitRequestCarriesItsBatchsClassMostUrgentFirst) {
  std::atomic<bool> up{true};
  GrantOnlyWhileUp(&up, [this](const bv1::AcquireSendPermitRequest& request) {
    events_.Add(absl::StrCat("permit ", cv1::SendPriority_Name(request.priority()), " x",
                             request.message_recipient_counts_size()));
  });
  for (int i = 0; i < 3; ++i) Enqueue(cv1::NOTIFICATION_KIND_PASSWORD_EXPIRY_REMINDER);
  Enqueue(cv1::NOTIFICATION_KIND_PASSWORD_RESET);
  RunWhileNot([this] { return outbox_->Counts()->sent() == 4; });
  std::vector<std::string> permits;
  for (const std::string& event : events_.Get()) {
    if (absl::StartsWith(event, "permit ")) permits.push_back(event);
  }
  EXPECT_THAT(permits, ::testing::ElementsAre("permit SEND_PRIORITY_URGENT x1",
                                              "permit SEND_PRIORITY_BULK x3"));
}

// More urgent mail on another node waits for a connection slot that this one holds: the
// broker says to yield it, and the worker closes the connection and gives the slot back at
// once instead of keeping it until it has been idle for idle_close.
TEST_F(DeliveryWorkerTest, APriorityDenialWithYieldClosesTheConnectionAndFreesTheSlot) {
  int asked = 0;
  EXPECT_CALL(stub_, AcquireSendPermit(_, _, _))
      .WillRepeatedly(Invoke([this, &asked](grpc::ClientContext*,
                                            const bv1::AcquireSendPermitRequest& request,
                                            bv1::AcquireSendPermitResponse* response) {
        if (++asked == 2) {
          events_.Add("yield");
          response->set_granted(false);
          response->set_denial_reason(bv1::PERMIT_DENIAL_REASON_PRIORITY);
          response->set_yield_connection(true);
          response->mutable_retry_after()->set_seconds(1);
          return grpc::Status::OK;
        }
        return GrantAll(request, response);
      }));
  Enqueue(cv1::NOTIFICATION_KIND_PASSWORD_EXPIRY_REMINDER);
  const std::string second = Enqueue(cv1::NOTIFICATION_KIND_PASSWORD_EXPIRY_REMINDER);
  on_each_wait_ = [this] { clock_.Advance(absl::Milliseconds(20)); };
  const cv1::OutboxEntry entry =
      RunUntil(second, cv1::NOTIFICATION_STATE_SENT, /*connections=*/1, /*batch=*/1);
  EXPECT_EQ(entry.notification().state(), cv1::NOTIFICATION_STATE_SENT);
  const std::vector<std::string> events = events_.Get();
  const auto yield = std::find(events.begin(), events.end(), "yield");
  ASSERT_GE(std::distance(yield, events.end()), 3);
  EXPECT_EQ(*(yield + 1), "close");
  EXPECT_EQ(*(yield + 2), "release  closed");
}

TEST_F(DeliveryWorkerTest, NoPermitMeansTheMessageWaitsWithoutLosingAnAttempt) {
  EXPECT_CALL(stub_, AcquireSendPermit(_, _, _))
      .WillRepeatedly(Invoke([](grpc::ClientContext*, const bv1::AcquireSendPermitRequest&,
                                bv1::AcquireSendPermitResponse* response) {
        response->set_granted(false);
        response->set_denial_reason(bv1::PERMIT_DENIAL_REASON_MESSAGE_RATE);
        response->mutable_retry_after()->set_seconds(42);
        return grpc::Status::OK;
      }));
  const std::string id = Enqueue();
  run_limit_ = absl::Seconds(3);
  cv1::OutboxEntry entry = RunUntil(id, cv1::NOTIFICATION_STATE_SENT);  // never gets there
  EXPECT_EQ(entry.notification().state(), cv1::NOTIFICATION_STATE_QUEUED);
  EXPECT_EQ(entry.notification().attempts(), 0);
  EXPECT_EQ(entry.notification().next_attempt_time().seconds(),
            absl::ToUnixSeconds(clock_.Now() + absl::Seconds(42)));
  EXPECT_THAT(entry.wait_reason(), ::testing::HasSubstr("messages-per-minute"));
  EXPECT_TRUE(tokens_used_.empty());
}

// No leading broker (a standby's NOT_LEADER during an election, or no broker answering): the
// offline allowance (outside the brokers' ledger) waits for offline_grace since a leader last
// answered, so a failover never adds unledgered mail to a minute the old leader already
// filled; past the grace it applies.
TEST_F(DeliveryWorkerTest, DuringAnElectionTheAllowanceWaitsOutTheGrace) {
  EXPECT_CALL(stub_, AcquireSendPermit(_, _, _))
      .WillRepeatedly(Return(ToGrpcStatus(WithReason(
          absl::UnavailableError("no broker leads now (connection refused)"), "NOT_LEADER"))));
  ExpectAllowanceWaitsForTheGrace("no broker leads now");
}

TEST_F(DeliveryWorkerTest, WithNoBrokerAnsweringTheAllowanceWaitsOutTheGrace) {
  EXPECT_CALL(stub_, AcquireSendPermit(_, _, _))
      .WillRepeatedly(Return(grpc::Status(grpc::StatusCode::UNAVAILABLE, "connection refused")));
  ExpectAllowanceWaitsForTheGrace("connection refused");
}

// The messages sent on the allowance are reported with the next request a leader answers, as
// how long ago each was sent, and only once.
TEST_F(DeliveryWorkerTest, OfflineSendsAreReportedToTheNextLeaderOnce) {
  std::atomic<bool> broker_up{false};
  std::vector<bv1::AcquireSendPermitRequest> answered;
  absl::Mutex answered_mu;
  GrantOnlyWhileUp(&broker_up, [&](const bv1::AcquireSendPermitRequest& request) {
    absl::MutexLock lock(&answered_mu);
    answered.push_back(request);
  });
  options_.offline_grace = absl::Seconds(75);
  std::vector<std::string> offline;
  for (int i = 0; i < 3; ++i) offline.push_back(Enqueue());
  std::string first;
  std::string second;
  bool past_grace = false;
  RunWhileNot(
      [&] {
        if (!past_grace) {
          past_grace = true;
          clock_.Advance(absl::Seconds(80));  // past the grace since Start
        }
        if (first.empty()) {
          if (outbox_->Get(offline[2])->notification().state() !=
              cv1::NOTIFICATION_STATE_SENT) {
            return false;
          }
          clock_.Advance(absl::Seconds(7));
          broker_up = true;
          first = Enqueue();
          return false;
        }
        if (outbox_->Get(first)->notification().state() != cv1::NOTIFICATION_STATE_SENT) {
          return false;
        }
        if (second.empty()) {
          second = Enqueue();
          clock_.Advance(absl::Minutes(1));  // the worker sleeps until then at most
        }
        return outbox_->Get(second)->notification().state() == cv1::NOTIFICATION_STATE_SENT;
      },
      1, 10);
  absl::MutexLock lock(&answered_mu);
  ASSERT_GE(answered.size(), 2u);
  ASSERT_EQ(answered[0].offline_sends_size(), 3);
  for (const bv1::OfflineSend& send : answered[0].offline_sends()) {
    EXPECT_EQ(FromProto(send.sent_ago()), absl::Seconds(7));
    EXPECT_EQ(send.recipients(), 1);
  }
  EXPECT_EQ(answered[1].offline_sends_size(), 0) << "reported twice";
}

// With no mail waiting, the node still reports its offline sends once a leader answers: a
// request with no messages, every offline_report_interval until one gets through.
TEST_F(DeliveryWorkerTest, OfflineSendsAreReportedWithNoMailWaiting) {
  std::atomic<bool> broker_up{false};
  std::atomic<int> report_only{0};
  std::atomic<int> reported_sends{0};
  EXPECT_CALL(stub_, AcquireSendPermit(_, _, _))
      .WillRepeatedly(Invoke([&](grpc::ClientContext*,
                                 const bv1::AcquireSendPermitRequest& request,
                                 bv1::AcquireSendPermitResponse*) {
        if (!broker_up) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "connection refused");
        if (request.message_recipient_counts_size() == 0) ++report_only;
        reported_sends += request.offline_sends_size();
        return grpc::Status::OK;
      }));
  options_.offline_grace = absl::ZeroDuration();
  const std::string id = Enqueue();
  RunWhileNot(
      [&] {
        absl::StatusOr<cv1::OutboxEntry> got = outbox_->Get(id);
        if (got.ok() && got->notification().state() == cv1::NOTIFICATION_STATE_SENT) {
          broker_up = true;
          clock_.Advance(absl::Seconds(1));  // the next report is due within the interval
        }
        return reported_sends.load() > 0;
      },
      1, 10);
  EXPECT_EQ(report_only.load(), 1);
  EXPECT_EQ(reported_sends.load(), 1);
}

TEST_F(DeliveryWorkerTest, ABrokerOutageStillLetsASmallAllowanceThrough) {
  EXPECT_CALL(stub_, AcquireSendPermit(_, _, _))
      .WillRepeatedly(Return(grpc::Status(grpc::StatusCode::UNAVAILABLE, "connection refused")));
  options_.offline_grace = absl::ZeroDuration();  // the grace has its own tests
  std::vector<std::string> ids;
  for (int i = 0; i < 12; ++i) ids.push_back(Enqueue());
  RunUntil(ids[9], cv1::NOTIFICATION_STATE_SENT);
  int sent = 0;
  for (const std::string& id : ids) {
    sent += outbox_->Get(id)->notification().state() == cv1::NOTIFICATION_STATE_SENT;
  }
  // Ten a minute on the cached token; the rest wait for the broker (or the next minute).
  EXPECT_EQ(sent, 10);
  EXPECT_EQ(tokens_used_.size(), 10u);
}

// Several connections, one message per claim: whichever connection claims a message while the
// broker is away, the allowance still goes out at once, not after the broker retry.
TEST_F(DeliveryWorkerTest, ABrokerOutageAllowanceIsNotHeldBackByTheOtherConnections) {
  EXPECT_CALL(stub_, AcquireSendPermit(_, _, _))
      .WillRepeatedly(Return(grpc::Status(grpc::StatusCode::UNAVAILABLE, "connection refused")));
  options_.offline_grace = absl::ZeroDuration();
  std::vector<std::string> ids;
  for (int i = 0; i < 12; ++i) ids.push_back(Enqueue());
  // A send takes a while, as a real one does, so the other connections claim meanwhile.
  on_send_ = [] { absl::SleepFor(absl::Milliseconds(100)); };
  // Time moves (a millisecond per poll, three seconds in all: less than the broker retry), so
  // a connection that found no token yet tries again.
  on_each_wait_ = [this] { clock_.Advance(absl::Milliseconds(1)); };
  run_limit_ = absl::Seconds(3);  // at most 3000 polls: the clock stays short of the retry
  RunUntil(ids[11], cv1::NOTIFICATION_STATE_SENT, /*connections=*/3, /*batch=*/1);
  int sent = 0;
  for (const std::string& id : ids) {
    sent += outbox_->Get(id)->notification().state() == cv1::NOTIFICATION_STATE_SENT;
  }
  EXPECT_EQ(sent, 10);
  EXPECT_EQ(tokens_used_.size(), 10u);
}

// The broker counts an unreported message of a permit until the permit's lease ends, so no
// message may reach the server later. Each send here takes 20 s: the worker keeps to the
// lease (120 s) less its margin (6 s) from before its request, hands the submitter only the
// time left, starts nothing with under a second left, and gives the rest back to the broker
// and to the outbox (without spending an attempt).
TEST_F(DeliveryWorkerTest, NothingIsSentOnAPermitAfterItsLeaseAndTheRestGoesBack) {
  connection_lease_ = absl::Minutes(10);  // here the permit's lease is the one that ends first
  options_.idle_close = absl::Minutes(20);
  EXPECT_CALL(stub_, AcquireSendPermit(_, _, _))
      .WillOnce(::testing::DoDefault())
      .WillRepeatedly(Invoke([](grpc::ClientContext*, const bv1::AcquireSendPermitRequest&,
                                bv1::AcquireSendPermitResponse* response) {
        response->set_denial_reason(bv1::PERMIT_DENIAL_REASON_MESSAGE_RATE);
        response->mutable_retry_after()->set_seconds(600);
        return grpc::Status::OK;
      }));
  std::vector<std::string> ids;
  for (int i = 0; i < 10; ++i) ids.push_back(Enqueue());
  on_send_ = [this] { clock_.Advance(absl::Seconds(20)); };
  RunWhileNot([this] { return Saw("release permit-1"); });
  EXPECT_THAT(events_.Get(),
              ::testing::ElementsAre("end previous run", "send 1m54s", "send 1m34s", "send 1m14s",
                                     "send 54s", "send 34s", "send 14s", "report 6",
                                     "release permit-1",
                                     // Stop():
                                     "close", "release  closed"));
  int sent = 0;
  for (const std::string& id : ids) {
    const cv1::Notification n = outbox_->Get(id)->notification();
    sent += n.state() == cv1::NOTIFICATION_STATE_SENT;
    if (n.state() == cv1::NOTIFICATION_STATE_QUEUED) {
      EXPECT_EQ(n.attempts(), 0);
    }
  }
  EXPECT_EQ(sent, 6);
}

// The broker stops counting a connection slot when its lease runs out (renewed by each grant
// and report): the worker closes the SMTP connection before then (60 s less 3 s here), even
// while it would still keep it open as not yet idle.
TEST_F(DeliveryWorkerTest, AConnectionIsClosedBeforeItsSlotsLeaseRunsOut) {
  options_.idle_close = absl::Minutes(20);
  const absl::Time start = clock_.Now();
  Enqueue();
  bool moved = false;
  // Time passes once the send is reported, with the connection idle: moving the clock as soon
  // as the outbox says SENT raced the report, and the worker then rightly closed first.
  on_each_wait_ = [&] {
    if (!moved && Saw("report 1")) {
      moved = true;
      clock_.SetTime(start + absl::Seconds(57));
    }
  };
  RunWhileNot([this] { return Saw("release  closed"); });
  EXPECT_EQ(clock_.Now(), start + absl::Seconds(57));  // the clock never went further
  EXPECT_THAT(events_.Get(), ::testing::ElementsAre("end previous run", "send 57s", "report 1",
                                                    "close", "release  closed"));
}

// A send that got no final reply may still be in the server's hands: the connection is closed
// before the message is reported (and with it the slot given back), so that the report is the
// last moment the message could arrive.
TEST_F(DeliveryWorkerTest, ASendWithoutAFinalReplyClosesTheConnectionBeforeTheReport) {
  replies_ = {"drop"};
  Enqueue();
  RunWhileNot([this] { return Saw("report 1 closed"); });
  const std::vector<std::string> events = events_.Get();
  ASSERT_GE(events.size(), 4u);
  EXPECT_THAT(std::vector<std::string>(events.begin(), events.begin() + 4),
              ::testing::ElementsAre("end previous run", "send 57s", "close", "report 1 closed"));
}

// The mailbox pool (README "Mailbox pool"): each message goes through the mailbox its purpose's
// route names, with that mailbox's token and permit, and as its envelope sender.
TEST_F(DeliveryWorkerTest, EachPurposeGoesThroughItsRoutesMailbox) {
  SetRoutes({{cv1::MAIL_PURPOSE_ALARMS, {"alerts@example.test"}},
             {cv1::MAIL_PURPOSE_GUEST_CREDENTIALS, {"guests@example.test"}}});
  const std::string alarm = Enqueue(cv1::NOTIFICATION_KIND_ALARM, "admin@example.test");
  const std::string guest = Enqueue(cv1::NOTIFICATION_KIND_GUEST_CREDENTIALS, "guest@example.test");
  const std::string test = Enqueue(cv1::NOTIFICATION_KIND_PORTAL_TEST_EMAIL, "tester@example.test");
  RunWhileNot([&] {
    for (const std::string& id : {alarm, guest, test}) {
      if (outbox_->Get(id)->notification().state() != cv1::NOTIFICATION_STATE_SENT) return false;
    }
    return true;
  });
  EXPECT_THAT(senders_.Get(), ::testing::UnorderedElementsAre(
                                  "alerts@example.test -> admin@example.test",
                                  "guests@example.test -> guest@example.test",
                                  "noreply@example.test -> tester@example.test"));
  EXPECT_TRUE(SawInPool("permit alerts@example.test"));
  EXPECT_TRUE(SawInPool("permit guests@example.test"));
  EXPECT_TRUE(SawInPool("permit "));  // the unrouted test mail: the default mailbox
  EXPECT_TRUE(SawInPool("token alerts@example.test"));
  EXPECT_TRUE(SawInPool("token guests@example.test"));
  // One mailbox a connection: a submitter (XOAUTH2 user) for each.
  EXPECT_TRUE(SawInPool("submitter alerts@example.test"));
  EXPECT_TRUE(SawInPool("submitter guests@example.test"));
  EXPECT_TRUE(SawInPool("submitter noreply@example.test"));
  for (const std::string& id : {alarm, guest, test}) {
    EXPECT_EQ(outbox_->Get(id)->notification().attempts(), 1) << "a split batch spends nothing";
  }
}

TEST_F(DeliveryWorkerTest, APausedMailboxPassesItsMailToTheRoutesNext) {
  SetRoutes({{cv1::MAIL_PURPOSE_ALARMS, {"alerts@example.test", "backup@example.test"}}});
  paused_mailboxes_ = {"alerts@example.test"};
  const std::string alarm = Enqueue(cv1::NOTIFICATION_KIND_ALARM, "admin@example.test");
  cv1::OutboxEntry entry = RunUntil(alarm, cv1::NOTIFICATION_STATE_SENT);
  EXPECT_EQ(entry.notification().state(), cv1::NOTIFICATION_STATE_SENT);
  EXPECT_THAT(senders_.Get(), ::testing::ElementsAre("backup@example.test -> admin@example.test"));
  std::vector<std::string> permits;
  for (const std::string& event : pool_events_.Get()) {
    if (absl::StartsWith(event, "permit ")) permits.push_back(event);
  }
  ASSERT_GE(permits.size(), 2u);
  EXPECT_EQ(permits[0], "permit alerts@example.test");
  EXPECT_EQ(permits[1], "permit backup@example.test");
}

// A 5.2.0 from the route's first mailbox: the broker pauses it, and the message goes through the
// route's next (after the retry backoff) rather than waiting out the pause.
TEST_F(DeliveryWorkerTest, AQuotaExceededMailboxPassesTheMessageToTheRoutesNext) {
  SetRoutes({{cv1::MAIL_PURPOSE_ALARMS, {"alerts@example.test", "backup@example.test"}}});
  EXPECT_CALL(stub_, ReportSendResult(_, _, _))
      .WillRepeatedly(Invoke([&](grpc::ClientContext*, const bv1::ReportSendResultRequest& request,
                                 bv1::ReportSendResultResponse* response) {
        if (request.results_size() > 0 &&
            request.results(0).outcome() == bv1::SEND_OUTCOME_QUOTA_EXCEEDED) {
          paused_mailboxes_.insert("alerts@example.test");  // as the broker does
          response->mutable_mailbox_paused_until()->set_seconds(
              absl::ToUnixSeconds(clock_.Now() + absl::Hours(20)));
        }
        return grpc::Status::OK;
      }));
  replies_ = {"554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException"};
  const std::string alarm = Enqueue(cv1::NOTIFICATION_KIND_ALARM, "admin@example.test");
  // Time moves on once the 5.2.0 is in, past the retry backoff but not the pause's recheck.
  on_each_wait_ = [&] {
    if (!senders_.Get().empty()) clock_.Advance(absl::Milliseconds(100));
  };
  const absl::Time start = clock_.Now();
  cv1::OutboxEntry entry = RunUntil(alarm, cv1::NOTIFICATION_STATE_SENT);
  EXPECT_EQ(entry.notification().state(), cv1::NOTIFICATION_STATE_SENT);
  EXPECT_THAT(senders_.Get(), ::testing::ElementsAre("alerts@example.test -> admin@example.test",
                                                     "backup@example.test -> admin@example.test"));
  EXPECT_EQ(entry.notification().attempts(), 2);
  EXPECT_LT(clock_.Now() - start, absl::Minutes(1)) << "not held until the pause's recheck";
}

TEST_F(DeliveryWorkerTest, WhenEveryMailboxOfTheRouteIsPausedMailWaits) {
  SetRoutes({{cv1::MAIL_PURPOSE_ALARMS, {"alerts@example.test", "backup@example.test"}}});
  paused_mailboxes_ = {"alerts@example.test", "backup@example.test"};
  const std::string alarm = Enqueue(cv1::NOTIFICATION_KIND_ALARM, "admin@example.test");
  run_limit_ = absl::Seconds(3);
  cv1::OutboxEntry entry = RunUntil(alarm, cv1::NOTIFICATION_STATE_SENT);  // never gets there
  EXPECT_EQ(entry.notification().state(), cv1::NOTIFICATION_STATE_QUEUED);
  EXPECT_EQ(entry.notification().attempts(), 0);
  EXPECT_THAT(entry.wait_reason(), HasSubstr("paused"));
  EXPECT_TRUE(senders_.Get().empty());
}

// The offline allowance is the default mailbox's: what it sent is reported in the default
// mailbox's requests only, never counted against a pool mailbox.
TEST_F(DeliveryWorkerTest, OfflineSendsAreReportedForTheDefaultMailboxOnly) {
  SetRoutes({{cv1::MAIL_PURPOSE_ALARMS, {"alerts@example.test"}}});
  std::atomic<bool> broker_up{false};
  absl::Mutex answered_mu;
  std::vector<std::pair<std::string, int>> answered;  // mailbox, offline sends reported
  GrantOnlyWhileUp(&broker_up, [&](const bv1::AcquireSendPermitRequest& request) {
    absl::MutexLock lock(&answered_mu);
    answered.emplace_back(request.mailbox(), request.offline_sends_size());
  });
  options_.offline_grace = absl::Seconds(75);
  const std::vector<std::string> offline = {Enqueue(), Enqueue()};
  std::string alarm;
  bool past_grace = false;
  RunWhileNot([&] {
    if (!past_grace) {
      past_grace = true;
      clock_.Advance(absl::Seconds(80));
    }
    if (alarm.empty()) {
      for (const std::string& id : offline) {
        if (outbox_->Get(id)->notification().state() != cv1::NOTIFICATION_STATE_SENT) return false;
      }
      clock_.Advance(absl::Seconds(7));
      broker_up = true;
      alarm = Enqueue(cv1::NOTIFICATION_KIND_ALARM, "admin@example.test");
      return false;
    }
    clock_.Advance(absl::Milliseconds(100));  // on to the next offline report
    if (outbox_->Get(alarm)->notification().state() != cv1::NOTIFICATION_STATE_SENT) return false;
    absl::MutexLock lock(&answered_mu);
    int reported = 0;
    for (const auto& [mailbox, sends] : answered) reported += sends;
    return reported >= 2;
  });
  absl::MutexLock lock(&answered_mu);
  int reported = 0;
  bool alarm_permit = false;
  for (const auto& [mailbox, sends] : answered) {
    reported += sends;
    if (sends > 0) EXPECT_EQ(mailbox, "") << "offline sends counted against a pool mailbox";
    alarm_permit |= mailbox == "alerts@example.test";
  }
  EXPECT_EQ(reported, 2);
  EXPECT_TRUE(alarm_permit);
  EXPECT_THAT(senders_.Get(), ::testing::Contains("alerts@example.test -> admin@example.test"));
}

TEST_F(DeliveryWorkerTest, UnroutedMailGoesThroughTheDefaultMailbox) {
  SetRoutes({{cv1::MAIL_PURPOSE_GUEST_CREDENTIALS, {"guests@example.test"}}});
  const std::string alarm = Enqueue(cv1::NOTIFICATION_KIND_ALARM, "admin@example.test");
  EXPECT_EQ(RunUntil(alarm, cv1::NOTIFICATION_STATE_SENT).notification().state(),
            cv1::NOTIFICATION_STATE_SENT);
  EXPECT_THAT(senders_.Get(), ::testing::ElementsAre("noreply@example.test -> admin@example.test"));
  EXPECT_TRUE(SawInPool("permit "));
  EXPECT_FALSE(SawInPool("permit noreply@example.test"));
}

TEST_F(DeliveryWorkerTest, ABrokerWithoutRoutesGetsEverythingThroughTheDefaultMailbox) {
  SetRoutes({{cv1::MAIL_PURPOSE_ALARMS, {"alerts@example.test"}}},
            grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "unknown method ResolveMailRoute"));
  const std::string alarm = Enqueue(cv1::NOTIFICATION_KIND_ALARM, "admin@example.test");
  EXPECT_EQ(RunUntil(alarm, cv1::NOTIFICATION_STATE_SENT).notification().state(),
            cv1::NOTIFICATION_STATE_SENT);
  EXPECT_THAT(senders_.Get(), ::testing::ElementsAre("noreply@example.test -> admin@example.test"));
  for (const std::string& event : pool_events_.Get()) {
    EXPECT_TRUE(event == "permit " || event == "token " ||
                event == "submitter noreply@example.test")
        << event;
  }
}

}  // namespace
}  // namespace mailroom
