#include "cli/command_call.h"

#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/base/diagnosis.h"
#include "common/rpc/status_grpc.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/test_certs.h"
#include "proto/mailroom/common/v1/outbox.grpc.pb.h"

namespace mailroom::cli {
namespace {

namespace cv1 = ::mailroom::common::v1;
using Stub = cv1::OutboxAdmin::Stub;
using ::testing::HasSubstr;

// An outbox with three entries served two to a page, one entry id that is unknown, and one
// that never answers (until the caller gives up).
class FakeOutboxAdmin final : public cv1::OutboxAdmin::Service {
 public:
  grpc::Status ListOutbox(grpc::ServerContext*, const cv1::ListOutboxRequest* request,
                          cv1::ListOutboxResponse* response) override {
    {
      absl::MutexLock lock(&mu_);
      page_sizes_.push_back(request->page().page_size());
    }
    const int first = request->page().page_token().empty() ? 0 : 2;
    for (int i = first; i < 3 && i < first + 2; ++i) {
      response->add_entries()->mutable_notification()->set_id(absl::StrCat("psn1/", i));
    }
    if (first == 0) response->mutable_page()->set_next_page_token("two");
    response->mutable_page()->set_total_size(3);
    response->mutable_counts()->set_queued(3);
    return grpc::Status::OK;
  }

  grpc::Status GetOutboxEntry(grpc::ServerContext* context,
                              const cv1::GetOutboxEntryRequest* request,
                              cv1::GetOutboxEntryResponse* response) override {
    if (request->id() == "hang") {
      while (!context->IsCancelled()) absl::SleepFor(absl::Milliseconds(5));
      return grpc::Status::CANCELLED;
    }
    if (request->id() != "psn1/1") {
      Diagnosis diagnosis;
      diagnosis.set_title("no such entry");
      diagnosis.set_fix("list the outbox for its ids");
      return ToGrpcStatus(
          WithDiagnosis(absl::NotFoundError(absl::StrCat("no entry \"", request->id(), "\"")),
                        diagnosis));
    }
    response->mutable_entry()->mutable_notification()->set_id(request->id());
    response->mutable_entry()->set_wait_reason("waiting for a token");
    return grpc::Status::OK;
  }

  std::vector<int> page_sizes() {
    absl::MutexLock lock(&mu_);
    return page_sizes_;
  }

 private:
  absl::Mutex mu_;
  std::vector<int> page_sizes_;
};

// Replaces std::cout and std::cerr while alive.
class CapturedOutput {
 public:
  CapturedOutput()
      : old_out_(std::cout.rdbuf(out_.rdbuf())), old_err_(std::cerr.rdbuf(err_.rdbuf())) {}
  ~CapturedOutput() {
    std::cout.rdbuf(old_out_);
    std::cerr.rdbuf(old_err_);
  }
  std::string out() const { return out_.str(); }
  std::string err() const { return err_.str(); }

 private:
  std::ostringstream out_;
  std::ostringstream err_;
  std::streambuf* old_out_;
  std::streambuf* old_err_;
};

class CommandCallTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static const std::string* certs =
        new std::string(mailroom::testing::MakeTestCerts("certs", "test CA", "psn1:psn admin:admin"));
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0",
                             *MakeServerCredentials(mailroom::testing::NodeTlsFiles(*certs, "psn1")),
                             &port);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    target_ = {"psn1", absl::StrCat("127.0.0.1:", port), Role::kPsn};
    admin_.tls = mailroom::testing::NodeTlsFiles(*certs, "admin");
    admin_.config.add_psn_targets(target_.address);
    admin_.config.add_psn_targets("127.0.0.1:1");
    absl::SetFlag(&FLAGS_json, false);
  }
  void TearDown() override {
    server_->Shutdown(absl::ToChronoTime(absl::Now()));
    absl::SetFlag(&FLAGS_json, false);
  }

  absl::StatusOr<cv1::GetOutboxEntryResponse> Get(const std::string& id) {
    cv1::GetOutboxEntryRequest request;
    request.set_id(id);
    return Call(admin_, target_, &Stub::GetOutboxEntry, request);
  }

  FakeOutboxAdmin service_;
  std::unique_ptr<grpc::Server> server_;
  Target target_;
  Admin admin_;
};

TEST_F(CommandCallTest, CallReturnsTheResponse) {
  absl::StatusOr<cv1::GetOutboxEntryResponse> response = Get("psn1/1");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->entry().notification().id(), "psn1/1");
}

TEST_F(CommandCallTest, CallKeepsTheServersCodeMessageAndDiagnosis) {
  absl::StatusOr<cv1::GetOutboxEntryResponse> response = Get("psn1/9");
  EXPECT_EQ(response.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(response.status().message(), "no entry \"psn1/9\"");
  absl::optional<Diagnosis> diagnosis = DiagnosisOf(response.status());
  ASSERT_TRUE(diagnosis.has_value());
  EXPECT_EQ(diagnosis->title(), "no such entry");
}

TEST_F(CommandCallTest, CallGivesUpAtTheAdminsDeadline) {
  admin_.rpc_timeout = absl::Milliseconds(200);
  EXPECT_EQ(Get("hang").status().code(), absl::StatusCode::kDeadlineExceeded);
}

TEST_F(CommandCallTest, CallWithAnUnresolvedTargetSendsNothing) {
  cv1::ListOutboxRequest request;
  absl::StatusOr<cv1::ListOutboxResponse> response =
      Call(admin_, PanTarget(admin_), &Stub::ListOutbox, request);
  EXPECT_EQ(response.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(response.status().message(), HasSubstr("pan_target"));
  EXPECT_TRUE(service_.page_sizes().empty());
}

TEST_F(CommandCallTest, CallAllPagesMergesEveryPage) {
  absl::StatusOr<cv1::ListOutboxResponse> all =
      CallAllPages(admin_, target_, &Stub::ListOutbox, cv1::ListOutboxRequest());
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->entries_size(), 3);
  EXPECT_EQ(all->entries(2).notification().id(), "psn1/2");
  EXPECT_TRUE(all->page().next_page_token().empty());
  EXPECT_EQ(all->page().total_size(), 3);
  EXPECT_EQ(service_.page_sizes(), (std::vector<int>{1000, 1000}));
}

TEST_F(CommandCallTest, ReportPrintsTextForPeople) {
  CapturedOutput output;
  const int code = Report(Get("psn1/1"), [](const cv1::GetOutboxEntryResponse& response) {
    std::cout << "entry " << response.entry().notification().id() << "\n";
  });
  EXPECT_EQ(code, kExitOk);
  EXPECT_EQ(output.out(), "entry psn1/1\n");
  EXPECT_EQ(output.err(), "");
}

TEST_F(CommandCallTest, ReportPrintsJsonWithProtoFieldNames) {
  absl::SetFlag(&FLAGS_json, true);
  CapturedOutput output;
  bool printed_text = false;
  const int code = Report(PartOf(Get("psn1/1"),
                                 [](const cv1::GetOutboxEntryResponse& response) {
                                   return response.entry();
                                 }),
                          [&](const cv1::OutboxEntry&) { printed_text = true; });
  EXPECT_EQ(code, kExitOk);
  EXPECT_FALSE(printed_text);
  EXPECT_THAT(output.out(), HasSubstr("\"wait_reason\": \"waiting for a token\""));
  EXPECT_THAT(output.out(), ::testing::Not(HasSubstr("\"entry\"")));
}

TEST_F(CommandCallTest, ReportPrintsTheErrorAndFails) {
  CapturedOutput output;
  const int code = Report(Get("psn1/9"), [](const cv1::GetOutboxEntryResponse&) {
    std::cout << "not this\n";
  });
  EXPECT_EQ(code, kExitFailed);
  EXPECT_EQ(output.out(), "");
  EXPECT_THAT(output.err(), HasSubstr("mailroomctl: no entry \"psn1/9\""));
  EXPECT_THAT(output.err(), HasSubstr("no such entry"));
}

TEST_F(CommandCallTest, NodeTargetsNameTheConfiguredNodes) {
  EXPECT_EQ(NodeTarget(admin_, "psn")->address, target_.address);
  EXPECT_EQ(NodeTarget(admin_, "psn2")->address, "127.0.0.1:1");
  EXPECT_EQ(NodeTarget(admin_, "psn2")->name, "psn2");
  EXPECT_THAT(NodeTarget(admin_, "psn3").status().message(), HasSubstr("unknown node \"psn3\""));
  EXPECT_THAT(NodeTarget(admin_, "mnt").status().message(), HasSubstr("unknown node \"mnt\""));
  admin_.config.set_mnt_target("mnt.example:7104");
  EXPECT_EQ(NodeTarget(admin_, "mnt")->name, "mnt");
  EXPECT_EQ(MntTarget(admin_)->address, "mnt.example:7104");
  ASSERT_EQ(PsnTargets(admin_).size(), 2u);
  EXPECT_EQ(PsnTargets(admin_)[1].name, "psn2");
}

// Two brokers of an HA cluster, each a gRPC server with the standard health service.
class BrokerTargetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static const std::string* certs = new std::string(mailroom::testing::MakeTestCerts(
        "broker-certs", "test CA", "broker1:broker broker2:broker admin:admin"));
    grpc::EnableDefaultHealthCheckService(true);
    for (const char* name : {"broker1", "broker2"}) {
      grpc::ServerBuilder builder;
      // A synchronous service, so the server polls for the health service too.
      builder.RegisterService(&services_[servers_.size()]);
      int port = 0;
      builder.AddListeningPort(
          "127.0.0.1:0", *MakeServerCredentials(mailroom::testing::NodeTlsFiles(*certs, name)),
          &port);
      servers_.push_back(builder.BuildAndStart());
      ASSERT_NE(servers_.back(), nullptr);
      admin_.config.add_broker_targets(absl::StrCat("127.0.0.1:", port));
    }
    admin_.tls = mailroom::testing::NodeTlsFiles(*certs, "admin");
  }
  void TearDown() override {
    for (auto& server : servers_) server->Shutdown(absl::ToChronoTime(absl::Now()));
  }
  void SetServing(int index, bool serving) {
    servers_[index]->GetHealthCheckService()->SetServingStatus(serving);
  }

  FakeOutboxAdmin services_[2];
  std::vector<std::unique_ptr<grpc::Server>> servers_;
  Admin admin_;
};

TEST_F(BrokerTargetTest, BrokerCommandsGoToTheBrokerThatServes) {
  ASSERT_EQ(BrokerTargets(admin_).size(), 2u);
  EXPECT_EQ(BrokerTargets(admin_)[1].name, "broker2");
  SetServing(0, false);
  absl::StatusOr<Target> leader = BrokerTarget(admin_);
  ASSERT_TRUE(leader.ok()) << leader.status();
  EXPECT_EQ(leader->name, "broker2");
  EXPECT_EQ(leader->address, admin_.config.broker_targets(1));
  SetServing(0, true);
  SetServing(1, false);
  EXPECT_EQ(BrokerTarget(admin_)->name, "broker1");
}

TEST_F(BrokerTargetTest, WithoutALeaderEachBrokersAnswerIsNamed) {
  SetServing(0, false);
  servers_[1]->Shutdown(absl::ToChronoTime(absl::Now()));
  const absl::Status status = BrokerTarget(admin_).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(status.message(), HasSubstr("no broker leads (broker1 "));
  EXPECT_THAT(status.message(), HasSubstr(": standing by; broker2 "));
  EXPECT_EQ(ConfiguredTargets(admin_).front().name, "broker1");
}

TEST(StandbyBrokersTest, BrokersNotServingWhileAnotherServesStandBy) {
  const std::vector<Target> targets = {{"broker1", "a:1", Role::kBroker},
                                       {"broker2", "b:1", Role::kBroker},
                                       {"psn1", "c:1", Role::kPsn}};
  EXPECT_EQ(StandbyBrokers(targets, {true, false, false}),
            std::vector<bool>({false, true, false}));
  EXPECT_EQ(StandbyBrokers(targets, {false, false, true}),
            std::vector<bool>({false, false, false}))
      << "no broker leads: nobody stands by";
}

TEST_F(BrokerTargetTest, OneBrokerInTheListIsCalledBroker) {
  admin_.config.mutable_broker_targets()->DeleteSubrange(1, 1);
  ASSERT_EQ(BrokerTargets(admin_).size(), 1u);
  EXPECT_EQ(BrokerTarget(admin_)->name, "broker");
}

}  // namespace
}  // namespace mailroom::cli
